"""The doctor's work at the hub: the queue, taking and releasing a case, reading it, asking the spoke for more,
and the e-prescription: checked against the Telemedicine Practice Guidelines' lists, signed, final.

Every view of a case by a doctor is in the hub's audit log. Everything is also reachable through the JSON API
under /v1/hub/ (sync.hub.console), on this same layer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sync import prescriptions, rx_code
from sync.hub import casebook, formulary
from sync.hub.errors import HubError
from sync.hub.models import HubCase, HubFacility, HubFacilityHub, HubOrg, HubRecord, HubSigningKey, HubStaff
from sync.hub.staff import Staff, audit, utcnow
from sync.payloads import PayloadInvalid, payload_of

FOLLOW_UP_WITHIN = timedelta(days=183)   # TPG 2020: a follow-up is with the same doctor, for the same condition,
#                                           within 6 months of the last consultation
FREQUENCIES = {"OD": (1, "once a day"), "BD": (2, "twice a day"), "TDS": (3, "three times a day"),
               "QID": (4, "four times a day"), "HS": (1, "at bedtime"), "SOS": (0, "when needed")}
ROUTES = ("oral", "topical", "eye", "ear", "nasal", "inhaled", "rectal", "vaginal", "injection", "sublingual")
INSTRUCTIONS = ("", "before food", "after food", "with food", "empty stomach", "at bedtime")


class PrescriptionRefused(HubError):
    """A prescription the rules refuse: each problem with the field it is about and a sentence."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(400, "prescription_refused", "; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


@dataclass
class MedicineDraft:
    formulary_id: str | None = None
    name: str = ""                 # a typed medicine's name (a formulary one takes its own)
    dose: str = ""
    route: str = "oral"
    frequency: str = ""
    duration_days: int = 0
    instructions: str = ""
    allergy_override: str = ""     # why this medicine is given despite a recorded allergy it matches


@dataclass
class PrescriptionDraft:
    diagnosis: str = ""
    icd10_code: str = ""
    medicines: list[MedicineDraft] = field(default_factory=list)
    investigations: list[str] = field(default_factory=list)
    advice: str = ""
    follow_up: date | None = None
    referral_to: str = ""
    referral_speciality: str = ""
    referral_urgency: str = "routine"
    referral_reason: str = ""


@dataclass(frozen=True)
class QueueItem:
    case_id: str
    facility: str
    facility_id: str
    sex: str
    age: str
    complaints: str
    priority: int
    status: str
    speciality: str
    waiting_minutes: int
    taken_by: str


@dataclass(frozen=True)
class CaseView:
    case: dict
    patient: dict
    facility: str
    vitals: list[dict]
    consents: list[dict]
    attachments: list[dict]
    questions: list[dict]
    answers: list[dict]
    prescriptions: list[dict]
    earlier: list[dict]           # this patient's earlier prescriptions at this hub
    taken_by: str
    taken_by_me: bool
    consultation_mode: str
    calls: list[dict] = field(default_factory=list)   # the calls with the spoke on this case, newest first


def age_text(birth: str, on: date) -> str:
    try:
        born = date.fromisoformat(birth)
    except ValueError:
        return "?"
    days = (on - born).days
    if days < 0:
        return "?"
    if days < 31:
        return f"{days // 7} w"
    months = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    return f"{months} m" if months < 24 else f"{months // 12} y"


def per_day(frequency: str) -> int | None:
    """Doses a day of OD/BD/TDS/QID/HS, or of the 1-0-1 notation (morning-noon-night); 0 for SOS; None if not
    a frequency."""
    f = frequency.strip().upper()
    if f in FREQUENCIES:
        return FREQUENCIES[f][0]
    if re.fullmatch(r"[0-9](-[0-9]){1,3}", f):
        return sum(int(x) for x in f.split("-"))
    return None


def quantity(dose: str, frequency: str, days: int) -> str:
    """'1 tablet', BD, 5 days -> '10 tablets'; '5 mL', TDS, 5 days -> '75 mL'; '' when it cannot be worked out."""
    match = re.match(r"\s*([0-9]+/[0-9]+|[0-9]+(?:\.[0-9]+)?|½)\s*(.*)$", dose)
    n = per_day(frequency)
    if not match or not n or days <= 0:
        return ""
    amount = match.group(1)
    value = 0.5 if amount == "½" else (int(amount.split("/")[0]) / int(amount.split("/")[1]) if "/" in amount else float(amount))
    total = value * n * days
    unit = match.group(2).strip() or "doses"
    if unit in ("tablet", "capsule", "sachet", "drop", "puff") and total != 1:
        unit += "s"
    shown = f"{total:g}" if total != int(total) else str(int(total))
    return f"{shown} {unit}"


class HubClinic:
    """Mixed into sync.hub.service.Hub (needs .session, .stamp_after, ._lock_facility)."""

    # --- the signing key ---------------------------------------------------------------------------------
    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """The hub's current prescription key, made on first use (in the database: every worker uses the same)."""
        with self.session.begin() as s:
            row = s.scalars(select(HubSigningKey).where(HubSigningKey.retired_at.is_(None))
                            .order_by(HubSigningKey.created_at.desc())).first()
            if row is None:
                key = Ed25519PrivateKey.generate()
                public = key.public_key()
                import base64

                row = HubSigningKey(key_id=prescriptions.key_id(public),
                                    private_pem=key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
                                    public_b64=base64.b64encode(prescriptions.raw_public(public)).decode(),
                                    created_at=utcnow(), retired_at=None)
                s.add(row)
            return row.key_id, load_pem_private_key(row.private_pem.encode(), password=None)

    def public_key(self) -> str:
        """The hub's prescription key (base64 of the raw Ed25519 public key), for spokes and pharmacists."""
        key_id, key = self.signing_key()
        import base64

        return base64.b64encode(prescriptions.raw_public(key.public_key())).decode()

    # --- the queue ------------------------------------------------------------------------------------
    def queue(self, doctor: Staff, *, speciality: str = "", facility_id: str = "", limit: int = 200) -> list[QueueItem]:
        """Cases waiting at this hub's facilities: red flags first, then the longest waiting; with those in
        consultation or waiting for the spoke's answer after them."""
        now = utcnow()
        with self.session() as s:
            q = (select(HubCase, HubFacility.name, HubStaff.full_name)
                 .join(HubFacilityHub, HubFacilityHub.facility_id == HubCase.facility_id)
                 .join(HubFacility, HubFacility.id == HubCase.facility_id)
                 .outerjoin(HubStaff, HubStaff.id == HubCase.taken_by)
                 .where(HubFacilityHub.hub_id == doctor.hub_id, HubCase.status.in_(casebook.QUEUE_STATES)))
            if speciality:
                q = q.where(HubCase.speciality.in_([speciality, ""]))
            if facility_id:
                q = q.where(HubCase.facility_id == facility_id)
            order = (HubCase.status != "queued", HubCase.priority.desc(), HubCase.queued_at.asc(), HubCase.case_id)
            rows = s.execute(q.order_by(*order).limit(limit)).all()
        out = []
        for case, facility, taker in rows:
            queued = case.queued_at.replace(tzinfo=timezone.utc) if case.queued_at and case.queued_at.tzinfo is None else case.queued_at
            out.append(QueueItem(case.case_id, facility, case.facility_id, case.patient_sex,
                                 age_text(case.patient_birth, now.date()), case.complaints, case.priority, case.status,
                                 case.speciality, int((now - queued).total_seconds() // 60) if queued else 0,
                                 taker or ""))
        return out

    def take(self, doctor: Staff, case_id: str) -> None:
        """The doctor takes the case ("in consultation"): one statement that only succeeds for a case nobody
        holds, so two doctors never answer the same one."""
        self._require_doctor(doctor)
        with self.session.begin() as s:
            self._case_at_my_hub(s, doctor, case_id)
            taken = s.execute(update(HubCase).where(HubCase.case_id == case_id, HubCase.status == "queued",
                                                    HubCase.taken_by.is_(None))
                              .values(taken_by=doctor.id, taken_at=utcnow())).rowcount
            if not taken:
                row = s.get(HubCase, case_id)
                who = s.get(HubStaff, row.taken_by).full_name if row and row.taken_by else None
                raise HubError(409, "taken", f"{who} has already taken this case." if who else
                               "This case is not waiting in the queue now.")
            record = s.get(HubRecord, ("case", case_id), with_for_update=True)
            self._lock_facility(s, record.facility_id)
            casebook.hub_write(s, record, self.stamp_after(s, record), {**record.payload, "status": "in_consultation"})
            s.execute(update(HubCase).where(HubCase.case_id == case_id).values(taken_by=doctor.id, taken_at=utcnow()))
            audit(s, doctor.id, "take", "case", case_id)

    def release(self, doctor: Staff, case_id: str) -> None:
        """Back to the queue, for another doctor."""
        with self.session.begin() as s:
            row = self._case_at_my_hub(s, doctor, case_id)
            if row.taken_by != doctor.id and not doctor.is_admin:
                raise HubError(403, "not_yours", "Only the doctor who took this case (or an administrator) can release it.")
            record = s.get(HubRecord, ("case", case_id), with_for_update=True)
            self._lock_facility(s, record.facility_id)
            casebook.hub_write(s, record, self.stamp_after(s, record), {**record.payload, "status": "queued"})
            audit(s, doctor.id, "release", "case", case_id)

    # --- a case ---------------------------------------------------------------------------------------
    def case_view(self, doctor: Staff, case_id: str) -> CaseView:
        with self.session.begin() as s:
            row = self._case_at_my_hub(s, doctor, case_id)
            case = s.get(HubRecord, ("case", case_id))
            patient_id = case.payload.get("patient_id")
            patient = s.get(HubRecord, ("patient", patient_id))
            facility = s.get(HubFacility, row.facility_id)

            def children(entity: str) -> list[dict]:
                return [r.payload for r in s.scalars(select(HubRecord).where(
                    HubRecord.parent_id == case_id, HubRecord.entity == entity, HubRecord.deleted.is_(False)))]

            taker = s.get(HubStaff, row.taken_by) if row.taken_by else None
            view = CaseView(
                case=case.payload, patient=patient.payload if patient else {}, facility=facility.name,
                vitals=sorted(children("vitals"), key=lambda v: v.get("recorded_at") or ""),
                consents=children("consent"), attachments=[a for a in children("attachment") if a.get("status") == "active"],
                questions=sorted(children("question"), key=lambda q: q.get("asked_at") or ""),
                answers=sorted(children("answer"), key=lambda a: a.get("answered_at") or ""),
                prescriptions=sorted(children("prescription"), key=lambda p: p.get("issued_at") or ""),
                earlier=self._earlier(s, doctor, patient_id, case_id), taken_by=taker.full_name if taker else "",
                taken_by_me=row.taken_by == doctor.id, consultation_mode=self._mode(s, case_id),
                calls=sorted(children("call"), key=lambda c: c.get("started_at") or "", reverse=True))
            audit(s, doctor.id, "view", "case", case_id)
            return view

    def _earlier(self, s: Session, doctor: Staff, patient_id: str, case_id: str) -> list[dict]:
        # By the patient's cases (indexed), never by reading every prescription of the hub.
        cases = (select(HubCase.case_id).join(HubFacilityHub, HubFacilityHub.facility_id == HubCase.facility_id)
                 .where(HubCase.patient_id == patient_id, HubFacilityHub.hub_id == doctor.hub_id,
                        HubCase.case_id != case_id))
        rows = s.scalars(select(HubRecord).where(HubRecord.parent_id.in_(cases), HubRecord.entity == "prescription"))
        out = [r.payload for r in rows if (r.payload or {}).get("patient_id") == patient_id]
        return sorted(out, key=lambda p: p.get("issued_at") or "", reverse=True)

    def _mode(self, s: Session, case_id: str) -> str:
        """How the consultation was held: by video or audio if the case has a call record saying so (the calls
        of the hub), else store-and-forward."""
        calls = [r.payload or {} for r in s.scalars(select(HubRecord).where(HubRecord.parent_id == case_id,
                                                                              HubRecord.entity == "call"))]
        modes = {c.get("mode_used") for c in calls}
        return "video" if "video" in modes else "audio" if "audio" in modes else "store_and_forward"

    def ask(self, doctor: Staff, case_id: str, text: str) -> dict:
        """A question for the spoke; the case shows 'information requested' there until it answers."""
        self._require_doctor(doctor)
        text = text.strip()
        if not 3 <= len(text) <= 2000:
            raise PrescriptionRefused([("question", "Write the question for the spoke (3 to 2000 characters).")])
        with self.session.begin() as s:
            row = self._case_at_my_hub(s, doctor, case_id)
            record = s.get(HubRecord, ("case", case_id), with_for_update=True)
            self._lock_facility(s, record.facility_id)
            if record.payload.get("status") not in ("queued", "in_consultation", "info_requested"):
                raise HubError(409, "case_finished", "This case is not open for questions any more.")
            question = {"id": str(uuid.uuid4()), "case_id": case_id, "text": text, "asked_at": utcnow().isoformat(),
                        "asked_by": doctor.full_name, "status": "open"}
            casebook.hub_create(s, row.facility_id, "question", question, self.stamp_after(s, record))
            casebook.hub_write(s, record, self.stamp_after(s, record), {**record.payload, "status": "info_requested"})
            audit(s, doctor.id, "ask", "case", case_id, question["id"])
            return question

    # --- the prescription -----------------------------------------------------------------------------
    def consultation_type(self, s: Session, doctor: Staff, patient_id: str, case_id: str, draft: PrescriptionDraft) -> str:
        """First consult or follow-up: a follow-up is the same doctor, the same condition (ICD-10 code, or the
        diagnosis in words), within 6 months of an earlier issued prescription at this hub."""
        cutoff = (utcnow() - FOLLOW_UP_WITHIN).isoformat()
        condition = draft.icd10_code.strip().upper() or " ".join(draft.diagnosis.lower().split())
        for earlier in self._earlier(s, doctor, patient_id, case_id):
            same_doctor = earlier.get("prescriber", {}).get("registration_number") == doctor.registration_number
            then = (earlier.get("icd10_code") or "").upper() or " ".join((earlier.get("diagnosis") or "").lower().split())
            if earlier.get("status") == "issued" and same_doctor and then == condition and \
                    (earlier.get("issued_at") or "") >= cutoff:
                return "follow_up"
        return "first"

    def issue(self, doctor: Staff, case_id: str, draft: PrescriptionDraft, *, replaces: str | None = None) -> dict:
        """Checks the draft against the rules, signs it with the hub's key and issues it: the case becomes
        'prescribed' and the prescription travels to the spoke. It is never edited afterwards."""
        self._require_doctor(doctor)
        key_id, key = self.signing_key()
        with self.session.begin() as s:
            row = self._case_at_my_hub(s, doctor, case_id)
            if row.taken_by not in (None, doctor.id):
                raise HubError(409, "taken", "Another doctor has taken this case.")
            record = s.get(HubRecord, ("case", case_id), with_for_update=True)
            self._lock_facility(s, record.facility_id)
            if record.payload.get("status") not in ("queued", "in_consultation", "info_requested", "prescribed"):
                raise HubError(409, "case_finished", "This case was closed or cancelled at the spoke.")
            patient_id = record.payload.get("patient_id")
            patient = (s.get(HubRecord, ("patient", patient_id)) or HubRecord(payload={})).payload or {}
            hub = s.get(HubOrg, doctor.hub_id)
            mode = self._mode(s, case_id)
            kind = self.consultation_type(s, doctor, patient_id, case_id, draft)
            medicines = self._check(doctor, draft, mode, kind, tuple(patient.get("allergies") or ()))
            now = utcnow()
            referral = None
            if draft.referral_to.strip():
                referral = {"to": draft.referral_to.strip(), "speciality": draft.referral_speciality.strip(),
                            "urgency": draft.referral_urgency, "reason": draft.referral_reason.strip()}
            body = {
                "id": str(uuid.uuid4()), "case_id": case_id, "patient_id": patient_id, "hub_name": hub.name,
                "prescriber": {"name": doctor.full_name, "qualification": doctor.qualification,
                               "registration_number": doctor.registration_number, "council": doctor.council},
                "issued_at": now.isoformat(), "consultation_type": kind, "consultation_mode": mode,
                "diagnosis": draft.diagnosis.strip(), "icd10_code": draft.icd10_code.strip().upper(),
                "icd10_title": formulary.icd10_title(draft.icd10_code) or "" if draft.icd10_code.strip() else "",
                "medicines": medicines, "investigations": [i.strip() for i in draft.investigations if i.strip()],
                "advice": draft.advice.strip(), "follow_up": draft.follow_up.isoformat() if draft.follow_up else None,
                "referral": referral, "allergies_noted": list(patient.get("allergies") or []),
                "allergy_overrides": [f"{m.name or m.formulary_id}: {m.allergy_override.strip()}"
                                      for m in draft.medicines if m.allergy_override.strip()],
                "status": "issued", "replaces_id": replaces, "key_id": key_id, "signature": "-",
            }
            try:
                body = payload_of("prescription", body)          # its final form, checked, before it is signed
            except PayloadInvalid as exc:
                raise PrescriptionRefused([(exc.field, exc.reason)]) from None
            sex = {"female": "F", "male": "M", "other": "O"}.get(str(patient.get("sex", "")), "")
            age = age_text(str(patient.get("birth_date", "")), now.date()) if patient.get("birth_date") else "?"
            body["qr"] = rx_code.make(body, str(patient.get("name", "")), f"{age} {sex}".strip(), key)
            body["signature"] = prescriptions.sign(body, key)
            casebook.hub_create(s, row.facility_id, "prescription", body, self.stamp_after(s, record))
            casebook.hub_write(s, record, self.stamp_after(s, record), {**record.payload, "status": "prescribed"})
            audit(s, doctor.id, "prescribe", "prescription", body["id"], case_id)
            for override in body["allergy_overrides"]:
                audit(s, doctor.id, "allergy_override", "prescription", body["id"], override)
            return body

    def cancel(self, doctor: Staff, prescription_id: str, reason: str) -> dict:
        """A prescription is never edited: a correction cancels it (with the reason) and issues a new one; both
        stay, and both reach the spoke."""
        self._require_doctor(doctor)
        reason = reason.strip()
        if len(reason) < 3:
            raise PrescriptionRefused([("reason", "Say why the prescription is cancelled.")])
        with self.session.begin() as s:
            record = s.get(HubRecord, ("prescription", prescription_id), with_for_update=True)
            if record is None:
                raise HubError(404, "no_prescription", "No such prescription.")
            self._case_at_my_hub(s, doctor, record.payload["case_id"])
            if record.payload.get("status") == "cancelled":
                raise HubError(409, "already_cancelled", "This prescription was already cancelled.")
            self._lock_facility(s, record.facility_id)
            change = casebook.hub_write(s, record, self.stamp_after(s, record), {
                **record.payload, "status": "cancelled", "cancelled_reason": reason, "cancelled_at": utcnow().isoformat()})
            audit(s, doctor.id, "cancel", "prescription", prescription_id, reason)
            return change.payload

    def _check(self, doctor: Staff, draft: PrescriptionDraft, mode: str, kind: str,
               allergies: tuple[str, ...]) -> list[dict]:
        """The medicines as they will be printed, or PrescriptionRefused with a sentence per problem."""
        problems: list[tuple[str, str]] = []
        if not doctor.registration_number.strip():
            problems.append(("prescriber", "Your account has no medical registration number; an administrator must "
                                           "add it before you can prescribe."))
        if not draft.diagnosis.strip():
            problems.append(("diagnosis", "Write the provisional diagnosis."))
        if draft.icd10_code.strip() and formulary.icd10_title(draft.icd10_code) is None:
            problems.append(("icd10_code", "This is not an ICD-10 code; pick one from the list, or leave it empty."))
        out, seen = [], {}
        for i, m in enumerate(draft.medicines):
            where = f"medicines.{i}"
            item = formulary.get(m.formulary_id) if m.formulary_id else None
            if m.formulary_id and item is None:
                problems.append((where, "This medicine is not in the formulary any more; pick it again."))
                continue
            name = item.generic if item else " ".join(m.name.split()).upper()
            if not name:
                problems.append((where, "This line has no medicine: pick one, or remove the line."))
                continue
            if not m.dose.strip() or not m.frequency.strip():
                problems.append((where, f"{name}: give the dose and how often."))
            elif per_day(m.frequency) is None:
                problems.append((where, f"{name}: how often is OD, BD, TDS, QID, HS, SOS, or like 1-0-1."))
            if not 0 < m.duration_days <= 3650 and m.frequency.strip().upper() != "SOS":
                problems.append((where, f"{name}: give the duration in days."))
            key = name.split(" ")[0] if item is None else f"{item.number}"
            if key in seen:
                problems.append((where, f"{name} is already on line {seen[key] + 1}."))
            seen.setdefault(key, i)
            listed, known = (item.tpg_list, item) if item else formulary.list_of_typed(name)
            label = name.title() if item is None else item.medicine
            if listed == "Prohibited":
                problems.append((where, f"{label} may not be prescribed by telemedicine (Telemedicine Practice "
                                        "Guidelines 2020: prohibited list)."))
            elif listed == "A" and mode != "video":
                problems.append((where, f"{label} is on list A: it may be prescribed only in a video consultation."))
            elif listed == "B" and kind != "follow_up":
                problems.append((where, f"{label} is on list B: it may be added only on a follow-up consultation."))
            matched = [a for a in allergies if _matches_allergy(name, a)]
            if matched and not m.allergy_override.strip():
                problems.append((where, f"The patient is recorded as allergic to {', '.join(matched)}: {label} needs "
                                        "an explicit override with the reason."))
            out.append({"formulary_id": item.id if item else None, "name": name, "form": item.form if item else "",
                        "strength": item.strength if item else "", "dose": m.dose.strip(),
                        "route": m.route if m.route in ROUTES else "oral", "frequency": m.frequency.strip().upper(),
                        "duration_days": m.duration_days, "quantity": quantity(m.dose, m.frequency, m.duration_days),
                        "instructions": m.instructions.strip(), "tpg_list": listed})
        if problems:
            raise PrescriptionRefused(problems)
        return out

    def case_file(self, staff: Staff, sha256: str):
        """(path, media type) of a file attached to a case at this hub, for its doctors."""
        with self.session() as s:
            facilities = [f for (f,) in s.execute(select(HubFacilityHub.facility_id).where(HubFacilityHub.hub_id == staff.hub_id))]
            for record in s.scalars(select(HubRecord).where(HubRecord.entity == "attachment",
                                                            HubRecord.facility_id.in_(facilities),
                                                            HubRecord.payload["sha256"].as_string() == sha256,
                                                            HubRecord.deleted.is_(False))):
                p = record.payload or {}
                if p.get("sha256") == sha256 and p.get("status") == "active" and self.blob_path(sha256).exists():
                    return self.blob_path(sha256), p.get("mime") or "application/octet-stream"
        raise HubError(404, "no_file", "The hub does not have this file (yet).")

    # --- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _require_doctor(staff: Staff) -> None:
        if staff.role != "doctor":
            raise HubError(403, "not_doctor", "Only a doctor may do this.")

    @staticmethod
    def _case_at_my_hub(s: Session, staff: Staff, case_id: str) -> HubCase:
        row = s.get(HubCase, case_id)
        served = row is not None and s.scalar(select(func.count()).select_from(HubFacilityHub).where(
            HubFacilityHub.facility_id == row.facility_id, HubFacilityHub.hub_id == staff.hub_id))
        if not served:
            raise HubError(404, "no_case", "No such case at this hub.")
        return row


def _matches_allergy(medicine: str, allergy: str) -> bool:
    """A recorded allergy ("penicillin", "sulfa drugs") matches a medicine whose name shares a word of 4 letters or
    more with it, or contains it ("amoxicillin" is not matched by "penicillin": the doctor judges classes)."""
    if allergy.strip().lower() in ("nkda", "none known", "no known drug allergy"):
        return False
    words = {w for w in re.findall(r"[a-z]+", allergy.lower()) if len(w) >= 4 and w not in ("drug", "drugs", "allergy")}
    name = medicine.lower()
    return any(w in name for w in words)

