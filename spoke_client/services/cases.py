"""Cases: complaints, vitals sets (never overwritten), consent, the state machine and the home screen's lists."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from spoke_client.db.models import AnswerRow, CaseRow, ConsentRow, DraftRow, PatientRow, QuestionRow, VitalsRow
from spoke_client.domain.consultation import PrescriptionSummary, QuestionStatus
from spoke_client.domain.errors import FieldProblem, InvalidTransition, NotFound, ValidationFailed
from spoke_client.domain.model import (
    Case,
    CaseStatus,
    Consent,
    ConsentGiver,
    ConsentMethod,
    Patient,
    User,
    VitalsRecord,
    VitalsStatus,
    from_values,
)
from spoke_client.domain.redflags import Assessment, PatientContext, Severity, assess, assessed
from spoke_client.domain.vitals import Vitals, is_empty, validate_vitals
from spoke_client.i18n import N_, _, current_language
from spoke_client.services.consultation import prescription_summaries, waiting_questions
from spoke_client.services.patients import to_patient
from spoke_client.services.store import Store, Writer, new_id

# Who may move a case where. The hub's own moves (in consultation, information requested, prescribed) arrive
# by sync; the spoke may also start a consultation itself (a call), answer the doctor's question (back to the
# queue), and close or cancel.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.DRAFT: frozenset({CaseStatus.READY, CaseStatus.CANCELLED}),
    CaseStatus.READY: frozenset({CaseStatus.DRAFT, CaseStatus.QUEUED, CaseStatus.CANCELLED}),
    CaseStatus.QUEUED: frozenset({CaseStatus.READY, CaseStatus.IN_CONSULTATION, CaseStatus.CANCELLED}),
    CaseStatus.IN_CONSULTATION: frozenset({CaseStatus.QUEUED, CaseStatus.PRESCRIBED, CaseStatus.CLOSED}),
    CaseStatus.INFO_REQUESTED: frozenset({CaseStatus.QUEUED, CaseStatus.CLOSED, CaseStatus.CANCELLED}),
    CaseStatus.PRESCRIBED: frozenset({CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset(),
    CaseStatus.CANCELLED: frozenset(),
}
EDITABLE = frozenset({CaseStatus.DRAFT, CaseStatus.READY})
# While the hub's doctor waits for more, vitals (and photos and documents) may still be added; the complaints
# and notes the doctor has read stay as they were sent.
VITALS_OPEN = EDITABLE | {CaseStatus.INFO_REQUESTED}
ADULT_CONSENT_AGE = 18
ANSWER_MAX = 4000   # as the answer's payload allows


def specialities() -> dict[str, str]:
    """What "Send to the hub" offers: the value sent to the hub (its words, in English; "" for any doctor) and
    its label on this screen. The one list of them."""
    return {
        "": _("Any doctor"),
        "General medicine": _("General medicine"),
        "Paediatrics": _("Paediatrics"),
        "Obstetrics and gynaecology": _("Obstetrics and gynaecology"),
        "Dermatology": _("Dermatology"),
        "Cardiology": _("Cardiology"),
        "Orthopaedics": _("Orthopaedics"),
        "ENT": _("ENT"),
        "Ophthalmology": _("Ophthalmology"),
        "Psychiatry": _("Psychiatry"),
    }


SPECIALITIES = tuple(specialities())

# The pick-list's words as stored (in English, so a case reads the same at the hub); the UI shows each through _().
COMMON_COMPLAINTS = (
    N_("Fever"), N_("Cough"), N_("Cold"), N_("Breathlessness"), N_("Chest pain"), N_("Headache"), N_("Body ache"),
    N_("Abdominal pain"), N_("Loose motions"), N_("Vomiting"), N_("Burning urination"), N_("Skin rash"),
    N_("Itching"), N_("Wound"), N_("Joint pain"), N_("Back pain"), N_("Dizziness"), N_("Weakness"),
    N_("High blood pressure follow-up"), N_("Diabetes follow-up"), N_("Eye problem"), N_("Ear pain"), N_("Toothache"),
    N_("Pregnancy check-up"), N_("White discharge"),
)


def status_label(status: CaseStatus) -> str:
    return {
        CaseStatus.DRAFT: _("Draft"),
        CaseStatus.READY: _("Ready for consultation"),
        CaseStatus.QUEUED: _("Queued for the hub"),
        CaseStatus.IN_CONSULTATION: _("In consultation"),
        CaseStatus.INFO_REQUESTED: _("Information requested by the hub"),
        CaseStatus.PRESCRIBED: _("Prescribed"),
        CaseStatus.CLOSED: _("Closed"),
        CaseStatus.CANCELLED: _("Cancelled"),
    }[status]


@dataclass(frozen=True)
class CaseForm:
    complaints: tuple[str, ...] = ()
    complaint_text: str = ""
    duration: str = ""
    history: str = ""
    examination: str = ""
    pregnant: bool = False


@dataclass(frozen=True)
class CaseSummary:
    case_id: str
    patient: Patient
    status: CaseStatus
    priority: int
    complaints: str
    created_at: datetime


@dataclass(frozen=True)
class HomeSummary:
    today: list[CaseSummary]
    waiting_for_hub: list[CaseSummary]
    prescribed: list[CaseSummary]                 # cases the hub marked prescribed
    drafts: list[CaseSummary]
    info_requested: list[CaseSummary] = field(default_factory=list)    # the hub's doctor waits for an answer
    prescriptions: list[PrescriptionSummary] = field(default_factory=list)   # received, newest first


def _columns(row, names) -> dict:
    return {name: getattr(row, name) for name in names}


# A vitals set's measurements are the columns named after the fields of Vitals (which the payload declares too).
_VITALS_FIELDS = tuple(f.name for f in fields(Vitals))
_RECORD_FIELDS = tuple(f.name for f in fields(VitalsRecord) if f.name != "vitals")
_CONSENT_FIELDS = tuple(f.name for f in fields(Consent))


def _vitals_record(r: VitalsRow) -> VitalsRecord:
    return from_values(VitalsRecord, _columns(r, _RECORD_FIELDS) | {"vitals": _columns(r, _VITALS_FIELDS)})


def _consent(r: ConsentRow) -> Consent:
    return from_values(Consent, _columns(r, _CONSENT_FIELDS))


def _summary(row: CaseRow, patient: PatientRow) -> CaseSummary:
    complaints = ", ".join([_(c) for c in row.complaints] + ([row.complaint_text] if row.complaint_text else []))
    return CaseSummary(row.id, to_patient(patient), CaseStatus(row.status), row.priority, complaints, row.created_at)


def patient_context(patient: Patient, pregnant: bool, on: date) -> PatientContext:
    return PatientContext(age_days=max((on - patient.birth_date).days, 0), pregnant=pregnant)


@dataclass(frozen=True)
class DeviceMark:
    """Vitals measured by a device: its name, what it reported about the measurement, and when it measured."""

    name: str
    status: tuple[str, ...] = ()
    measured_at: datetime | None = None


class CaseService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- reading --------------------------------------------------------------------------------
    def get(self, case_id: str) -> Case:
        with self.store.read() as s:
            return self._load(s, case_id)

    def view(self, actor: User, case_id: str) -> Case:
        """Opening a case to read or edit it: the audit trail records who looked at which record."""
        with self.store.write(actor.id) as w:
            case = self._load(w.session, case_id)
            w.audit("view", "case", case_id)
            return case

    def _load(self, s: Session, case_id: str) -> Case:
        row = s.get(CaseRow, case_id)
        if row is None:
            raise NotFound(_("This case does not exist on this computer."))
        vitals = tuple(_vitals_record(v) for v in s.scalars(
            select(VitalsRow).where(VitalsRow.case_id == case_id).order_by(VitalsRow.recorded_at, VitalsRow.id)))
        consent_row = s.scalars(select(ConsentRow).where(ConsentRow.case_id == case_id)
                                .order_by(ConsentRow.given_at.desc(), ConsentRow.id.desc()).limit(1)).first()
        return Case(
            id=row.id, patient_id=row.patient_id, status=CaseStatus(row.status), complaints=tuple(row.complaints),
            complaint_text=row.complaint_text, duration=row.duration, history=row.history,
            examination=row.examination, pregnant=row.pregnant, priority=row.priority, created_at=row.created_at,
            updated_at=row.updated_at, version=row.version, speciality=row.speciality, vitals=vitals,
            consent=_consent(consent_row) if consent_row else None,
        )

    def patient_of(self, case: Case) -> Patient:
        with self.store.read() as s:
            row = s.get(PatientRow, case.patient_id)
            if row is None:
                raise NotFound(_("This patient is not in the register."))
            return to_patient(row)

    def cases_for_patient(self, patient_id: str) -> list[CaseSummary]:
        with self.store.read() as s:
            patient = s.get(PatientRow, patient_id)
            rows = s.scalars(select(CaseRow).where(CaseRow.patient_id == patient_id).order_by(CaseRow.created_at.desc()))
            return [_summary(r, patient) for r in rows]

    def assessment(self, case: Case, patient: Patient, on: date | None = None) -> Assessment | None:
        latest = latest_vitals(case)
        if latest is None:
            return None
        return assess(latest.vitals, patient_context(patient, case.pregnant, on or self.store.clock().date()))

    def home(self, today: date | None = None, tz: timezone | None = None) -> HomeSummary:
        """Today's cases (red flags first), what the hub's doctor asks about, what waits for the hub,
        prescriptions received (newest first), open drafts."""
        now = self.store.clock()
        today = today or now.astimezone(tz).date()
        start = datetime.combine(today, time.min, tzinfo=tz or now.astimezone().tzinfo).astimezone(timezone.utc)
        end = start + timedelta(days=1)
        with self.store.read() as s:
            def query(*where):
                q = (select(CaseRow, PatientRow).join(PatientRow, PatientRow.id == CaseRow.patient_id)
                     .where(*where).order_by(CaseRow.priority.desc(), CaseRow.created_at).limit(500))
                return [_summary(c, p) for c, p in s.execute(q)]
            return HomeSummary(
                today=query(CaseRow.created_at >= start, CaseRow.created_at < end,
                            CaseRow.status != CaseStatus.CANCELLED.value),
                waiting_for_hub=query(CaseRow.status == CaseStatus.QUEUED.value),
                prescribed=query(CaseRow.status == CaseStatus.PRESCRIBED.value),
                drafts=query(CaseRow.status == CaseStatus.DRAFT.value, CaseRow.created_at < start),
                info_requested=query(CaseRow.status == CaseStatus.INFO_REQUESTED.value),
                prescriptions=prescription_summaries(s),
            )

    # --- writing --------------------------------------------------------------------------------
    def open_case(self, actor: User, patient_id: str) -> Case:
        with self.store.write(actor.id) as w:
            if w.session.get(PatientRow, patient_id) is None:
                raise NotFound(_("This patient is not in the register."))
            row = CaseRow(id=new_id(), patient_id=patient_id, status=CaseStatus.DRAFT.value, complaints=[],
                          complaint_text="", duration="", history="", examination="", pregnant=False, priority=0,
                          created_at=w.now, updated_at=w.now, created_by=actor.id, version=1)
            w.session.add(row)
            w.session.flush()
            case = self._load(w.session, row.id)
            w.change("case", row.id, 1, case)   # vitals and consent travel as their own entities
            w.audit("create", "case", row.id)
            return case

    def save_details(self, actor: User, case_id: str, form: CaseForm) -> Case:
        return self.save(actor, case_id, form)

    def record_vitals(self, actor: User, case_id: str, vitals: Vitals, *, source: str = "manual",
                      replaces_id: str | None = None, device: "DeviceMark | None" = None) -> VitalsRecord:
        _check_vitals(vitals)
        with self.store.write(actor.id) as w:
            row = self._editable(w.session, case_id, VITALS_OPEN)
            record = self._add_vitals(w, row, vitals, source, replaces_id, device)
            self._reprioritise(w, row)
            self._bump(w, row, None)
            return record

    def save(self, actor: User, case_id: str, form: CaseForm | None, *, vitals: Vitals | None = None,
             correcting: str | None = None, draft_key: str | None = None, device: "DeviceMark | None" = None) -> Case:
        """The editor's Save: details, a new vitals set and the end of the draft in ONE transaction, so a power
        cut leaves either the saved case or the draft, never half of each. form None: the details are not
        touched (a case whose doctor asked for more takes new vitals, not new complaints)."""
        if form is not None and (len(form.complaint_text) > 2000 or len(form.history) > 4000
                                 or len(form.examination) > 4000):
            raise ValidationFailed([FieldProblem("complaint_text", _("This text is too long; keep notes under 4000 characters."))])
        if vitals is not None:
            _check_vitals(vitals)
        with self.store.write(actor.id) as w:
            row = self._editable(w.session, case_id, EDITABLE if form is not None else VITALS_OPEN)
            changed: list[str] = []
            if form is not None:
                new = dict(complaints=list(dict.fromkeys(c.strip() for c in form.complaints if c.strip())),
                           complaint_text=form.complaint_text.strip(), duration=form.duration.strip(),
                           history=form.history.strip(), examination=form.examination.strip(), pregnant=form.pregnant)
                changed = [k for k, v in new.items() if getattr(row, k) != v]
                for k in changed:
                    setattr(row, k, new[k])
            if vitals is not None:
                self._add_vitals(w, row, vitals, "manual", correcting, device)
            if changed or vitals is not None:
                self._reprioritise(w, row)
                self._bump(w, row, "update" if changed else None)
            if draft_key:
                w.session.execute(delete(DraftRow).where(DraftRow.key == draft_key))
            return self._load(w.session, case_id)

    def _add_vitals(self, w: Writer, row: CaseRow, vitals: Vitals, source: str, replaces_id: str | None,
                    device: "DeviceMark | None" = None) -> VitalsRecord:
        if replaces_id is not None:
            old = w.session.get(VitalsRow, replaces_id)
            if old is None or old.case_id != row.id:
                raise NotFound(_("The vitals being corrected are not part of this case."))
            if old.status == VitalsStatus.ENTERED_IN_ERROR.value:
                raise InvalidTransition(_("These vitals were already corrected."))
            self._mark_in_error(w, old)
        if device is not None:
            source = device.name
        # The red flags travel with the values they were assessed from, in the words this screen showed.
        patient = to_patient(w.session.get(PatientRow, row.patient_id))
        flags = assessed(assess(vitals, patient_context(patient, row.pregnant, w.now.date())), current_language())
        v = VitalsRow(id=new_id(), case_id=row.id, recorded_at=w.now, recorded_by=w.user_id,
                      status=VitalsStatus.FINAL.value, replaces_id=replaces_id, source=source, version=1,
                      device_status=list(device.status) if device else [],
                      measured_at=device.measured_at if device else None, assessment=flags,
                      **{f.name: _column_value(getattr(vitals, f.name)) for f in fields(Vitals)})
        w.session.add(v)
        w.session.flush()
        record = _vitals_record(v)
        w.change("vitals", v.id, 1, record)
        w.audit("correct" if replaces_id else "create", "vitals", v.id, row.id)
        return record

    def correct_vitals(self, actor: User, vitals_id: str, vitals: Vitals) -> VitalsRecord:
        """A correction never overwrites: the old set is marked entered-in-error and a new one replaces it."""
        with self.store.read() as s:
            old = s.get(VitalsRow, vitals_id)
            if old is None:
                raise NotFound(_("These vitals do not exist."))
            case_id = old.case_id
        return self.record_vitals(actor, case_id, vitals, replaces_id=vitals_id, source="manual")

    def mark_vitals_in_error(self, actor: User, vitals_id: str) -> None:
        with self.store.write(actor.id) as w:
            old = w.session.get(VitalsRow, vitals_id)
            if old is None:
                raise NotFound(_("These vitals do not exist."))
            row = self._editable(w.session, old.case_id, VITALS_OPEN)
            self._mark_in_error(w, old)
            self._reprioritise(w, row)
            self._bump(w, row, None)

    def record_consent(self, actor: User, case_id: str, giver: ConsentGiver, giver_name: str, method: ConsentMethod,
                       giver_relation: str = "", given_at: datetime | None = None) -> Consent:
        with self.store.write(actor.id) as w:
            row = w.session.get(CaseRow, case_id)
            if row is None:
                raise NotFound(_("This case does not exist on this computer."))
            patient = to_patient(w.session.get(PatientRow, row.patient_id))
            problems = []
            if len(giver_name.strip()) < 2:
                problems.append(FieldProblem("giver_name", _("Enter the name of the person who gave consent.")))
            if patient.age_years(w.now.date()) < ADULT_CONSENT_AGE and giver == ConsentGiver.PATIENT:
                problems.append(FieldProblem("giver", _(
                    "The patient is a minor: consent must come from the accompanying adult (parent or guardian).")))
            if giver == ConsentGiver.GUARDIAN and not giver_relation.strip():
                problems.append(FieldProblem("giver_relation", _("Say how the adult is related to the patient (mother, father...).")))
            when = given_at or w.now
            if when > w.now + timedelta(minutes=5):
                problems.append(FieldProblem("given_at", _("Consent cannot be dated in the future.")))
            if problems:
                raise ValidationFailed(problems)
            c = ConsentRow(id=new_id(), case_id=case_id, giver=giver.value, giver_name=giver_name.strip(),
                           giver_relation=giver_relation.strip(), method=method.value, given_at=when,
                           recorded_by=actor.id, version=1)
            w.session.add(c)
            consent = _consent(c)
            w.change("consent", c.id, 1, consent)
            w.audit("create", "consent", c.id, case_id)
            return consent

    def transition(self, actor: User, case_id: str, to: CaseStatus, *, speciality: str | None = None) -> Case:
        """Moves a case by TRANSITIONS. Sending it to the hub (QUEUED) may name the speciality asked for (one of
        SPECIALITIES; "" for any doctor; None keeps what was asked before)."""
        if speciality is not None and (to != CaseStatus.QUEUED or speciality not in SPECIALITIES):
            raise ValidationFailed([FieldProblem("speciality", _("Choose a speciality from the list."))])
        with self.store.write(actor.id) as w:
            row = w.session.get(CaseRow, case_id)
            if row is None:
                raise NotFound(_("This case does not exist on this computer."))
            current = CaseStatus(row.status)
            if to not in TRANSITIONS[current]:
                raise InvalidTransition(_("A case that is '{a}' cannot become '{b}'.").format(
                    a=status_label(current), b=status_label(to)))
            case = self._load(w.session, case_id)
            if to in (CaseStatus.READY, CaseStatus.QUEUED) and not (case.complaints or case.complaint_text):
                raise ValidationFailed([FieldProblem("complaints", _("Record at least one complaint first."))])
            if to == CaseStatus.QUEUED and case.consent is None:
                raise ValidationFailed([FieldProblem("consent", _(
                    "Record the patient's consent to a teleconsultation before sending the case to the hub."))])
            row.status = to.value
            if speciality is not None:
                row.speciality = speciality
            self._bump(w, row, f"status:{current.value}->{to.value}")
            return replace(self._load(w.session, case_id))

    def answer(self, actor: User, question_id: str, text: str) -> Case:
        """Answers the hub doctor's question: the answer goes to the hub as its own record, and the case goes back
        to the hub's queue once no question of it waits, in one transaction."""
        text = text.strip()
        if not text:
            raise ValidationFailed([FieldProblem("answer", _("Write the answer to the doctor's question first."))])
        if len(text) > ANSWER_MAX:
            raise ValidationFailed([FieldProblem("answer", _("The answer is too long; keep it under {n} characters.")
                                                 .format(n=ANSWER_MAX))])
        with self.store.write(actor.id) as w:
            question = w.session.get(QuestionRow, question_id)
            if question is None:
                raise NotFound(_("This question of the hub's doctor is not on this computer."))
            row = w.session.get(CaseRow, question.case_id)
            if CaseStatus(row.status) in (CaseStatus.CLOSED, CaseStatus.CANCELLED):
                raise InvalidTransition(_("This case is closed; its questions can no longer be answered here."))
            if question.status != QuestionStatus.OPEN.value or _answered(w.session, question_id):
                raise InvalidTransition(_("This question was already answered or withdrawn by the doctor."))
            answer = AnswerRow(id=new_id(), question_id=question_id, case_id=row.id, text=text, answered_at=w.now,
                               answered_by=actor.full_name or actor.username, version=1)
            w.session.add(answer)
            w.session.flush()
            w.change("answer", answer.id, 1, dict(id=answer.id, question_id=question_id, case_id=row.id, text=text,
                                                  answered_at=w.now, answered_by=answer.answered_by))
            w.audit("create", "answer", answer.id, row.id)
            if row.status == CaseStatus.INFO_REQUESTED.value and not waiting_questions(w.session, row.id):
                row.status = CaseStatus.QUEUED.value
                self._bump(w, row, f"status:{CaseStatus.INFO_REQUESTED.value}->{CaseStatus.QUEUED.value}")
            return self._load(w.session, row.id)

    # --- helpers --------------------------------------------------------------------------------
    def _editable(self, s: Session, case_id: str, allowed: frozenset[CaseStatus] = EDITABLE) -> CaseRow:
        row = s.get(CaseRow, case_id)
        if row is None:
            raise NotFound(_("This case does not exist on this computer."))
        if CaseStatus(row.status) not in allowed:
            if row.status == CaseStatus.INFO_REQUESTED.value:
                raise InvalidTransition(_("The hub's doctor has read this case as it was sent: add vitals, photos or "
                                          "documents and answer the question, but the complaints stay as they are."))
            raise InvalidTransition(_("This case has gone to the hub ('{s}'); its record can no longer be changed here.")
                                    .format(s=status_label(CaseStatus(row.status))))
        return row

    def _mark_in_error(self, w: Writer, old: VitalsRow) -> None:
        old.status = VitalsStatus.ENTERED_IN_ERROR.value
        old.version += 1
        w.change("vitals", old.id, old.version, _vitals_record(old))
        w.audit("entered_in_error", "vitals", old.id, old.case_id)

    def _reprioritise(self, w: Writer, row: CaseRow) -> None:
        w.session.flush()
        case = self._load(w.session, row.id)
        patient = to_patient(w.session.get(PatientRow, row.patient_id))
        a = self.assessment(case, patient, w.now.date())
        row.priority = int(a.level) if a else int(Severity.INFO)

    def _bump(self, w: Writer, row: CaseRow, audit_detail: str | None) -> None:
        row.version += 1
        row.updated_at = w.now
        w.session.flush()
        w.change("case", row.id, row.version, self._load(w.session, row.id))
        if audit_detail is not None:
            w.audit("update", "case", row.id, audit_detail)


def _answered(s: Session, question_id: str) -> bool:
    return s.scalars(select(AnswerRow.id).where(AnswerRow.question_id == question_id).limit(1)).first() is not None


def _check_vitals(vitals: Vitals) -> None:
    validate_vitals(vitals)
    if is_empty(vitals):
        raise ValidationFailed([FieldProblem("vitals", _("Enter at least one vital sign."))])


def latest_vitals(case: Case) -> VitalsRecord | None:
    final = [v for v in case.vitals if v.status == VitalsStatus.FINAL]
    return final[-1] if final else None


def _column_value(value):
    return value.value if hasattr(value, "value") else value
