"""Register, update, find and de-duplicate patients; every write also indexes the patient for search."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from spoke_client.db.models import FacilityRow, PatientRow
from spoke_client.domain.abha import abha_advisories, normalize_abha_address, normalize_abha_number
from spoke_client.domain.errors import Advisory, FieldProblem, NotFound, SpokeError, ValidationFailed
from spoke_client.domain.model import Patient, Relation, Sex, User, age_in_years, birth_date_from_age
from spoke_client.domain.names import name_key, name_similarity, normalize_name
from spoke_client.i18n import _
from spoke_client.services.search import PatientIndex
from spoke_client.services.store import Store, new_id
from sync.merge import FIELD_META, PATIENT_GROUPS, changed_groups, stamp_edit
from sync.payloads import payload_of


@dataclass
class PatientForm:
    """What the registration form collects, as typed (strings), before validation."""

    name: str = ""
    sex: str = ""
    birth_date: date | None = None
    birth_date_approximate: bool = False   # a birth date given is itself an estimate (kept from an earlier age)
    age_years: int | None = None
    age_months: int | None = None
    relative_name: str = ""
    relative_relation: str = ""
    phone: str = ""
    village: str = ""
    address: str = ""
    abha_number: str = ""
    abha_address: str = ""
    allergies: str = ""          # known drug allergies, comma-separated ("penicillin, sulfa"), or "NKDA"


@dataclass(frozen=True)
class DuplicateCandidate:
    patient: Patient
    reasons: tuple[str, ...]
    score: float


class LikelyDuplicate(SpokeError):
    """Registration stopped to show patients who may be the same person; the user may go on."""

    def __init__(self, candidates: list[DuplicateCandidate]) -> None:
        self.candidates = candidates
        super().__init__(
            _("{n} registered patient(s) may be the same person. Check them before registering a new one.").format(
                n=len(candidates)
            )
        )


@dataclass(frozen=True)
class ValidPatient:
    fields: dict
    advisories: list[Advisory] = field(default_factory=list)


_NAME = re.compile(r"^[^\W\d_]+(?:[ .'-]+[^\W\d_]+)*\.?$")


def normalize_phone(text_: str) -> str:
    digits = re.sub(r"[\s()+-]", "", text_)
    if not digits:
        return ""
    if not digits.isdigit():
        raise ValidationFailed([FieldProblem("phone", _("A phone number has digits only, like 98765 43210."))])
    if len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) != 10:
        raise ValidationFailed([FieldProblem("phone", _("A phone number has 10 digits (an optional +91 or 0 in front)."))])
    return digits


MAX_ALLERGIES, ALLERGY_MAX_LENGTH = 20, 100   # as the payload allows (sync.payloads.PatientPayload)
NKDA = "NKDA"
# What people write for "asked, and there are none": kept as one explicit entry, so that "nobody asked" (empty)
# and "no known drug allergies" never look alike.
_NONE_KNOWN = {"nkda", "nka", "none", "none known", "nil", "no known allergies", "no known allergy",
               "no known drug allergies", "no known drug allergy"}


def parse_allergies(text_: str) -> tuple[str, ...]:
    """Known drug allergies from the form: comma- (or semicolon-) separated, each trimmed, the same one once;
    "NKDA" (or "none known") on its own for none. Raises ValidationFailed, on the field "allergies"."""
    items: list[str] = []
    for raw in re.split(r"[,;\n]", text_ or ""):
        item = " ".join(raw.split())
        if item and item.casefold() not in {i.casefold() for i in items}:
            items.append(NKDA if item.casefold().rstrip(".") in _NONE_KNOWN else item)
    if NKDA in items and len(items) > 1:
        raise ValidationFailed([FieldProblem("allergies", _(
            "Write either the drug allergies or 'NKDA' (no known drug allergies), not both."))])
    if len(items) > MAX_ALLERGIES:
        raise ValidationFailed([FieldProblem("allergies", _("At most {n} allergies; write the most important ones.")
                                             .format(n=MAX_ALLERGIES))])
    if any(len(i) > ALLERGY_MAX_LENGTH for i in items):
        raise ValidationFailed([FieldProblem("allergies", _(
            "Each allergy is at most {n} characters; separate allergies with commas.").format(n=ALLERGY_MAX_LENGTH))])
    return tuple(items)


def allergies_text(allergies: tuple[str, ...] | list[str]) -> str:
    """The allergies as the form shows them (the input parse_allergies reads back)."""
    return ", ".join(allergies)


def validate_patient(form: PatientForm, today: date) -> ValidPatient:
    problems: list[FieldProblem] = []
    advisories: list[Advisory] = []
    name = " ".join(form.name.split())
    if len(name) < 2 or len(name) > 100 or not _NAME.match(name):
        problems.append(FieldProblem("name", _("Enter the patient's name in letters (2 to 100 characters).")))
    try:
        sex = Sex(form.sex)
    except ValueError:
        sex = None
        problems.append(FieldProblem("sex", _("Choose the patient's sex.")))
    birth, approximate = None, False
    if form.birth_date is not None:
        birth, approximate = form.birth_date, form.birth_date_approximate
        if birth > today:
            problems.append(FieldProblem("birth_date", _("The date of birth cannot be in the future.")))
        elif age_in_years(birth, today) > 120:
            problems.append(FieldProblem("birth_date", _("The date of birth is more than 120 years ago; please check it.")))
    elif form.age_years is not None or form.age_months is not None:
        years, months = form.age_years or 0, form.age_months or 0
        if not (0 <= years <= 120) or not (0 <= months <= 11 if years else 0 <= months <= 24):
            problems.append(FieldProblem("age_years", _("Age is 0 to 120 years (and 0 to 11 months).")))
        else:
            birth = _months_back(birth_date_from_age(years, today), months)
            approximate = True
    else:
        problems.append(FieldProblem("age_years", _("Enter the date of birth, or the age in years if it is not known.")))
    relation = None
    relative = " ".join(form.relative_name.split())
    if form.relative_relation:
        try:
            relation = Relation(form.relative_relation)
        except ValueError:
            problems.append(FieldProblem("relative_relation", _("Choose S/o, D/o, W/o, H/o or C/o.")))
    if relative and not _NAME.match(relative):
        problems.append(FieldProblem("relative_name", _("Enter the relative's name in letters.")))
    if relative and relation is None:
        problems.append(FieldProblem("relative_relation", _("Say how the relative is related: S/o, D/o, W/o, H/o or C/o.")))
    values: dict = {}
    for key, fn in (("phone", normalize_phone), ("abha_number", normalize_abha_number), ("abha_address", normalize_abha_address)):
        raw = getattr(form, key).strip()
        try:
            values[key] = fn(raw) if raw else ""
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    if values.get("abha_number"):
        advisories.extend(abha_advisories(values["abha_number"]))
    allergies: tuple[str, ...] = ()
    try:
        allergies = parse_allergies(form.allergies)
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    if problems:
        raise ValidationFailed(problems)
    return ValidPatient(
        fields=dict(
            name=name, sex=sex.value, birth_date=birth, birth_date_approximate=approximate,
            relative_name=relative, relative_relation=relation.value if relation else None,
            phone=values["phone"], village=" ".join(form.village.split()), address=form.address.strip(),
            abha_number=values["abha_number"], abha_address=values["abha_address"], allergies=list(allergies),
        ),
        advisories=advisories,
    )


def _months_back(d: date, months: int) -> date:
    if not months:
        return d
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    day = min(d.day, 28)
    return date(y, m + 1, day)


def to_patient(row: PatientRow) -> Patient:
    return Patient(
        id=row.id, name=row.name, sex=Sex(row.sex), birth_date=row.birth_date,
        birth_date_approximate=row.birth_date_approximate, relative_name=row.relative_name,
        relative_relation=Relation(row.relative_relation) if row.relative_relation else None,
        phone=row.phone, village=row.village, address=row.address, abha_number=row.abha_number,
        abha_address=row.abha_address, allergies=tuple(row.allergies or ()), version=row.version,
        created_at=row.created_at,
    )


def patient_payload(patient: Patient, field_hlc: dict) -> dict:
    """What a patient change carries: the record and its field stamps (sync.merge)."""
    return payload_of("patient", patient, **{FIELD_META: field_hlc})


def search_columns(name: str, relative: str, village: str) -> tuple[str, str]:
    """The indexed text: the name as typed (normalised) and its phonetic key, then the relative's; the village."""
    names = " ".join(x for x in (normalize_name(name), name_key(name), "/", normalize_name(relative), name_key(relative)) if x)
    return names, " ".join(x for x in (normalize_name(village), name_key(village)) if x)


class PatientService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.index = PatientIndex(store)

    def register(self, actor: User, form: PatientForm, *, confirmed_new: bool = False, today: date | None = None) -> Patient:
        today = today or self.store.clock().date()
        valid = validate_patient(form, today)
        with self.store.read() as s:
            self._refuse_taken_abha(s, valid.fields["abha_number"], None)
        if not confirmed_new:
            candidates = self.find_duplicates(form, today=today)
            if candidates:
                raise LikelyDuplicate(candidates)
        with self.store.write(actor.id) as w:
            facility_id = w.session.scalars(select(FacilityRow.id).limit(1)).first()
            if facility_id is None:
                raise NotFound(_("This computer has no facility yet: finish the set-up first."))
            self._refuse_taken_abha(w.session, valid.fields["abha_number"], None)
            stamp = w.stamp()
            row = PatientRow(id=new_id(), facility_id=facility_id, created_at=w.now, updated_at=w.now,
                             created_by=actor.id, version=1, field_hlc=stamp_edit({}, list(PATIENT_GROUPS), stamp),
                             **valid.fields)
            self._index_fields(row)
            w.session.add(row)
            patient = to_patient(row)
            w.change("patient", row.id, 1, patient_payload(patient, row.field_hlc), stamp=stamp)
            w.audit("create", "patient", row.id, "duplicate warning overridden" if confirmed_new else "")
            self.index.add_vocabulary(w.session, row)
        return patient

    def update(self, actor: User, patient_id: str, form: PatientForm, expected_version: int) -> Patient:
        valid = validate_patient(form, self.store.clock().date())
        with self.store.write(actor.id) as w:
            row = w.session.get(PatientRow, patient_id)
            if row is None:
                raise NotFound(_("This patient is not in the register."))
            if row.version != expected_version:
                raise SpokeError(_("Someone else changed this patient meanwhile; reopen the record and try again."))
            self._refuse_taken_abha(w.session, valid.fields["abha_number"], patient_id)
            changed = [k for k, v in valid.fields.items() if getattr(row, k) != v]
            if not changed:
                return to_patient(row)
            patient = self._edit(w, row, valid.fields)
            w.audit("update", "patient", row.id, ",".join(changed))
        return patient

    def _edit(self, w, row: PatientRow, values: dict) -> Patient:
        """Sets fields of a patient, reindexes it and logs the change with field stamps: only what this edit
        changed moves, so that another PC's (or the hub's) edit of another field survives the merge."""
        before = payload_of("patient", to_patient(row))
        for k, v in values.items():
            setattr(row, k, v)
        self._index_fields(row)
        row.version += 1
        row.updated_at = w.now
        patient = to_patient(row)
        stamp = w.stamp()
        row.field_hlc = stamp_edit(dict(row.field_hlc or {}), changed_groups(before, payload_of("patient", patient)), stamp)
        w.change("patient", row.id, row.version, patient_payload(patient, row.field_hlc), stamp=stamp)
        self.index.add_vocabulary(w.session, row)
        return patient

    def use_conflict_value(self, actor: User, conflict_id: int) -> Patient:
        """Takes the value that lost a merge (kept in sync_conflict) as a new edit of this PC, and closes the
        conflict, in one transaction. The value was valid where it was typed; it is checked again here."""
        from spoke_client.db.models import ConflictRow

        with self.store.write(actor.id) as w:
            conflict = w.session.get(ConflictRow, conflict_id)
            if conflict is None or conflict.resolved_at is not None:
                raise NotFound(_("This difference was already settled."))
            row = w.session.get(PatientRow, conflict.entity_id)
            if row is None:
                raise NotFound(_("This patient is not in the register."))
            values = json.loads(conflict.lost_value or "{}")
            if "birth_date" in values:
                values["birth_date"] = date.fromisoformat(values["birth_date"])
            if "abha_number" in values and values["abha_number"]:
                self._refuse_taken_abha(w.session, values["abha_number"], row.id)
            values = {k: v if v is not None or k == "relative_relation" else "" for k, v in values.items()}
            patient = self._edit(w, row, values)
            conflict.resolved_at, conflict.resolved_by = w.now, actor.id
            w.audit("conflict_use_other", "patient", row.id, conflict.field)
            return patient

    def get(self, actor: User, patient_id: str, *, audit_view: bool = True) -> Patient:
        with self.store.read() as s:
            row = s.get(PatientRow, patient_id)
            if row is None:
                raise NotFound(_("This patient is not in the register."))
            patient = to_patient(row)
        if audit_view:
            with self.store.write(actor.id) as w:
                w.audit("view", "patient", patient_id)
        return patient

    def search(self, query: str, limit: int = 30):
        return self.index.search(query, limit)

    def find_duplicates(self, form: PatientForm, *, today: date | None = None, exclude_id: str | None = None) -> list[DuplicateCandidate]:
        """Same phone, or a similar name with a similar relative's name, a close age or the same village."""
        today = today or self.store.clock().date()
        try:
            valid = validate_patient(form, today)
        except ValidationFailed:
            return []
        f = valid.fields
        found: dict[str, DuplicateCandidate] = {}
        with self.store.read() as s:
            rows: dict[str, PatientRow] = {}
            if f["phone"]:
                for r in s.scalars(select(PatientRow).where(PatientRow.phone == f["phone"])):
                    rows[r.id] = r
            for r in self.index.candidate_rows(s, f["name"], 200):
                rows[r.id] = r
            new_age = age_in_years(f["birth_date"], today)
            for r in rows.values():
                if r.id == exclude_id:
                    continue
                reasons: list[str] = []
                score = 0.0
                if f["phone"] and r.phone == f["phone"]:
                    reasons.append(_("same phone number"))
                    score += 3
                name_sim = name_similarity(f["name"], r.name)
                if name_sim >= 0.8:
                    reasons.append(_("similar name"))
                    score += name_sim
                    rel_sim = name_similarity(f["relative_name"], r.relative_name) if f["relative_name"] and r.relative_name else 0.0
                    if rel_sim >= 0.75:
                        reasons.append(_("similar relative's name"))
                        score += rel_sim
                    age_gap = abs(age_in_years(r.birth_date, today) - new_age)
                    if age_gap <= 10:
                        reasons.append(_("age within {n} years").format(n=max(age_gap, 1)))
                        score += 1 - age_gap / 10
                    if f["village"] and normalize_name(f["village"]) == normalize_name(r.village):
                        reasons.append(_("same village"))
                        score += 0.5
                    if len(reasons) == 1 and not (f["phone"] and r.phone == f["phone"]):
                        continue  # a shared name alone is too common to stop a registration
                if reasons:
                    found[r.id] = DuplicateCandidate(to_patient(r), tuple(reasons), round(score, 3))
        return sorted(found.values(), key=lambda c: -c.score)[:10]

    @staticmethod
    def _index_fields(row: PatientRow) -> None:
        row.search_names, row.search_village = search_columns(row.name, row.relative_name, row.village)

    @staticmethod
    def _refuse_taken_abha(session: Session, abha_number: str, patient_id: str | None) -> None:
        if not abha_number:
            return
        q = select(PatientRow).where(PatientRow.abha_number == abha_number)
        if patient_id:
            q = q.where(PatientRow.id != patient_id)
        other = session.scalars(q.limit(1)).first()
        if other is not None:
            raise ValidationFailed([FieldProblem(
                "abha_number",
                _("This ABHA number is already registered to {name} ({village}). Open that record instead.").format(
                    name=other.name, village=other.village or "-"),
            )])

