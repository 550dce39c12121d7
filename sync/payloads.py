"""What each record that travels is: one pydantic model per entity, the only declaration of its payload.

Both ends derive from these models: the spoke writes its change log through them and applies pulled changes
through them; the hub checks every pushed and staff-written payload against them and refuses a bad one with
the field and the reason, so one device's bad value can never reach the other PCs of its facility.

Reading is lenient where writing is strict: the hub refuses keys it does not know (`strict_keys`), a spoke
ignores keys a newer hub added. Imports nothing of the project but the protocol's patterns.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, ValidationError

from sync.hlc import STAMP_PATTERN

# --- the vocabulary both ends share (the spoke's domain enums carry the same values; a test checks it) -------
CASE_STATES = ("draft", "ready", "queued", "in_consultation", "info_requested", "prescribed", "closed", "cancelled")
SEXES = ("female", "male", "other")
RELATIONS = ("S/o", "D/o", "W/o", "H/o", "C/o")
ROLES = ("paramedic", "generalist", "admin")
VITALS_STATES = ("final", "entered-in-error")
CONSCIOUSNESS = ("alert", "confusion", "voice", "pain", "unresponsive")
GLUCOSE_KINDS = ("random", "fasting")
CONSENT_GIVERS = ("patient", "guardian")
CONSENT_METHODS = ("verbal", "written", "recorded")
ATTACHMENT_KINDS = ("photo", "audio", "document")
ATTACHMENT_STATES = ("active", "withdrawn")

CaseState = Literal["draft", "ready", "queued", "in_consultation", "info_requested", "prescribed", "closed", "cancelled"]

# Vital signs outside these ranges cannot be real readings (the spoke's form refuses them with the same
# numbers, spoke_client.domain.vitals.PLAUSIBLE; a test checks that the two agree).
VITALS_RANGES: dict[str, tuple[float, float]] = {
    "systolic_mmhg": (50, 300),
    "diastolic_mmhg": (20, 200),
    "pulse_per_min": (20, 250),
    "respiratory_rate_per_min": (4, 100),
    "temperature_c": (25.0, 45.0),
    "spo2_pct": (50, 100),
    "weight_kg": (0.3, 350.0),
    "height_cm": (20.0, 250.0),
    "glucose_mg_dl": (10, 1500),
}

INT32_MAX = 2**31 - 1
MAX_MEDIA_BYTES = 200 * 1024 * 1024


class PayloadInvalid(ValueError):
    """A payload that does not describe a valid record: which field, and why, in words a technician can use."""

    def __init__(self, entity: str, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.entity, self.field, self.reason = entity, field, reason


# --- field types ----------------------------------------------------------------------------------------------
_DESCRIBED: dict[str, str] = {}
_NO_NUL = r"^[^\x00]*$"      # PostgreSQL's text cannot hold NUL; checked by pydantic's own regex engine
_DESCRIBED[_NO_NUL] = "text without a NUL character"


def _text(max_length: int, min_length: int = 0):
    return Annotated[str, Strict(), Field(min_length=min_length, max_length=max_length, pattern=_NO_NUL)]


def _form(pattern: str, description: str):
    """Text that must match `pattern` (checked by pydantic's own regex engine: a sync page checks hundreds of
    thousands of ids); a mismatch is explained as `description`."""
    anchored = f"^(?:{pattern})$"
    _DESCRIBED[anchored] = description
    return Annotated[str, Strict(), Field(pattern=anchored)]


Id = _form(r"[0-9A-Za-z-]{1,64}", "an id (letters, digits and '-', at most 64)")
StampOrEmpty = _form(r"|" + STAMP_PATTERN.strip("^$"), "a clock stamp such as 001796000000000-00000-device, or empty")
Int = Annotated[int, Strict()]
Phone = _form(r"([0-9]{10})?", "10 digits (no spaces or +91), or empty")
AbhaNumber = _form(r"([0-9]{14})?", "14 digits (no dashes), or empty")
Sha256 = _form(r"[0-9a-f]{64}", "a SHA-256 in lower-case hex")
MediaType = _form(r"[a-z]+/[0-9a-z.+-]{1,80}", "a media type such as image/jpeg")


def _iso_date(value: Any) -> Any:
    # Only "YYYY-MM-DD" (or a date): pydantic alone would also take a number of seconds or "31/12/1990"-like
    # input in other forms, which one end might read differently from the other.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return date.fromisoformat(value)
    raise ValueError("a date is written YYYY-MM-DD, e.g. 1990-12-31")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]{8,15}(Z|[+-][0-9]{2}:[0-9]{2})", value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("a time is written in ISO 8601 with its zone, e.g. 2026-12-01T08:30:00+00:00")
    if parsed.tzinfo is None:
        raise ValueError("a time must carry its zone (UTC offset)")
    return parsed


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


def _bounded(name: str, integer: bool):
    low, high = VITALS_RANGES[name]
    return Annotated[Annotated[int if integer else float, Strict()] | None, Field(ge=low, le=high)]


# --- the entities ---------------------------------------------------------------------------------------------
class Payload(BaseModel):
    """A record as it travels. `parents`: fields that name another record (entity), applied before it."""

    # Scalars are strict (no "5" for 5, no 1 for True); sequences take a list or a tuple, dates only ISO text.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False, from_attributes=True,
                              populate_by_name=True)
    entity: ClassVar[str] = ""
    parents: ClassVar[tuple[tuple[str, str], ...]] = ()
    legacy_keys: ClassVar[frozenset[str]] = frozenset()   # sent by older spokes, accepted and dropped

    id: Id

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict that travels and is stored (dates in ISO 8601, field stamps under `_fields`)."""
        return self.model_dump(mode="json", by_alias=True)


class FacilityPayload(Payload):
    entity: ClassVar[str] = "facility"
    name: _text(200, 1)
    hwc_id: _text(50, 1)
    district: _text(100) = ""
    state: _text(100) = ""


class UserPayload(Payload):
    entity: ClassVar[str] = "user"
    username: _text(64, 1)
    full_name: _text(200) = ""
    role: Literal["paramedic", "generalist", "admin"]
    active: StrictBool = True


PatientGroup = Literal["name", "sex", "birth_date", "relative", "phone", "village", "address", "abha_number",
                       "abha_address", "allergies"]


class PatientPayload(Payload):
    entity: ClassVar[str] = "patient"
    name: _text(200, 1)
    sex: Literal["female", "male", "other"]
    birth_date: IsoDate
    birth_date_approximate: StrictBool = False
    relative_name: _text(200) = ""
    relative_relation: Literal["S/o", "D/o", "W/o", "H/o", "C/o"] | None = None
    phone: Phone = ""
    village: _text(200) = ""
    address: _text(2000) = ""
    abha_number: AbhaNumber = ""
    abha_address: _text(100) = ""
    # Known drug allergies as the paramedic wrote them ("penicillin", "sulfa drugs"): the hub shows them where no
    # doctor can miss them, and a medicine matching one needs an explicit, audited override.
    allergies: Annotated[tuple[_text(100, 1), ...], Field(max_length=20)] = ()
    version: Annotated[Int, Field(ge=1, le=INT32_MAX)] = 1
    created_at: IsoDateTime | None = None
    # Per group of fields: [stamp of the edit that set it, stamp of the value it replaced] (sync.merge).
    # None (absent) means a payload from before field stamps, which merges as of the whole change.
    field_stamps: dict[PatientGroup, tuple[StampOrEmpty, StampOrEmpty]] | None = Field(None, alias="_fields")

    def wire(self) -> dict[str, Any]:
        out = super().wire()
        if self.field_stamps is None:
            out.pop("_fields", None)
        return out


class CasePayload(Payload):
    entity: ClassVar[str] = "case"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("patient_id", "patient"),)
    legacy_keys: ClassVar[frozenset[str]] = frozenset({"vitals", "consent"})   # always empty: their own entities

    patient_id: Id
    status: CaseState
    complaints: Annotated[tuple[_text(200, 1), ...], Field(max_length=50)] = ()
    complaint_text: _text(2000) = ""
    duration: _text(100) = ""
    history: _text(4000) = ""
    examination: _text(4000) = ""
    pregnant: StrictBool = False
    priority: Annotated[Int, Field(ge=0, le=3)] = 0
    created_at: IsoDateTime | None = None
    updated_at: IsoDateTime | None = None
    version: Annotated[Int, Field(ge=1, le=INT32_MAX)] = 1
    speciality: _text(60) = ""             # what the spoke asked for when it sent the case ("" for any doctor)
    doctor_note: _text(8000) = ""          # the hub's: the doctor's note on the consultation


class VitalsValues(BaseModel):
    """One set of measurements; units in the names (the spoke's domain Vitals has exactly these fields)."""

    model_config = Payload.model_config

    systolic_mmhg: _bounded("systolic_mmhg", True) = None
    diastolic_mmhg: _bounded("diastolic_mmhg", True) = None
    pulse_per_min: _bounded("pulse_per_min", True) = None
    respiratory_rate_per_min: _bounded("respiratory_rate_per_min", True) = None
    temperature_c: _bounded("temperature_c", False) = None
    spo2_pct: _bounded("spo2_pct", True) = None
    weight_kg: _bounded("weight_kg", False) = None
    height_cm: _bounded("height_cm", False) = None
    glucose_mg_dl: _bounded("glucose_mg_dl", True) = None
    glucose_kind: Literal["random", "fasting"] | None = None
    consciousness: Literal["alert", "confusion", "voice", "pain", "unresponsive"] | None = None
    on_supplemental_oxygen: StrictBool = False


class VitalsPayload(Payload):
    entity: ClassVar[str] = "vitals"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"), ("replaces_id", "vitals"))

    case_id: Id
    recorded_at: IsoDateTime
    recorded_by: Id
    vitals: VitalsValues
    status: Literal["final", "entered-in-error"] = "final"
    replaces_id: Id | None = None
    source: _text(200, 1) = "manual"
    device_status: Annotated[tuple[_text(200), ...], Field(max_length=20)] = ()
    measured_at: IsoDateTime | None = None
    # The red flags the spoke assessed from these values (spoke_client.domain.redflags): the hub shows them as
    # they are, so there is one implementation of the rules, not a second copy at the hub.
    assessment: "Assessed | None" = None


class AssessedFlag(BaseModel):
    model_config = Payload.model_config

    code: _text(60, 1)
    severity: Annotated[Int, Field(ge=0, le=3)]
    message: _text(300)
    field: _text(60) | None = None


class Assessed(BaseModel):
    model_config = Payload.model_config

    level: Annotated[Int, Field(ge=0, le=3)] = 0
    news2: Annotated[Int, Field(ge=0, le=20)] | None = None
    note: _text(300) | None = None
    flags: Annotated[tuple[AssessedFlag, ...], Field(max_length=20)] = ()
    lang: _text(10) = "en"   # the language the messages are in


VitalsPayload.model_rebuild()


class ConsentPayload(Payload):
    entity: ClassVar[str] = "consent"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"),)

    case_id: Id
    giver: Literal["patient", "guardian"]
    giver_name: _text(200, 1)
    giver_relation: _text(100) = ""
    method: Literal["verbal", "written", "recorded"]
    given_at: IsoDateTime
    recorded_by: Id


class AttachmentPayload(Payload):
    entity: ClassVar[str] = "attachment"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"),)

    case_id: Id
    kind: Literal["photo", "audio", "document"]
    sha256: Sha256
    mime: MediaType
    size_bytes: Annotated[Int, Field(ge=0, le=MAX_MEDIA_BYTES)]
    label: _text(200) = ""
    width_px: Annotated[Int, Field(ge=1, le=100_000)] | None = None
    height_px: Annotated[Int, Field(ge=1, le=100_000)] | None = None
    duration_ms: Annotated[Int, Field(ge=0, le=24 * 3600 * 1000)] | None = None
    status: Literal["active", "withdrawn"] = "active"
    withdrawn_reason: _text(2000) = ""
    created_at: IsoDateTime
    created_by: Id
    version: Annotated[Int, Field(ge=1, le=INT32_MAX)] = 1


class AnswerPayload(Payload):
    """The spoke's answer to a doctor's question (text; a photo or vitals it adds travel as their own records)."""

    entity: ClassVar[str] = "answer"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"), ("question_id", "question"))

    question_id: Id
    case_id: Id
    text: _text(4000, 1)
    answered_at: IsoDateTime
    answered_by: _text(200) = ""


# --- the hub's own records: made at the hub, pulled by the facility's spokes, never pushed by a device ---------
class QuestionPayload(Payload):
    """A doctor asks the spoke for more ("a photo of the rash in daylight, please")."""

    entity: ClassVar[str] = "question"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"),)

    case_id: Id
    text: _text(2000, 1)
    asked_at: IsoDateTime
    asked_by: _text(200, 1)
    status: Literal["open", "answered", "withdrawn"] = "open"


class Prescriber(BaseModel):
    model_config = Payload.model_config

    name: _text(200, 1)
    qualification: _text(200, 1)
    registration_number: _text(60, 1)
    council: _text(200) = ""


class Medicine(BaseModel):
    """One line of a prescription. `name` is the generic name in capitals; `formulary_id` names its row of the
    hub's formulary, None when the doctor typed it (printed as not from the formulary)."""

    model_config = Payload.model_config

    formulary_id: _text(60) | None = None
    name: _text(200, 1)
    form: _text(60) = ""
    strength: _text(60) = ""
    dose: _text(60, 1)                     # "1 tablet", "5 mL"
    route: _text(40) = "oral"
    frequency: _text(20, 1)                # OD, BD, TDS, QID, HS, SOS, or 1-0-1
    duration_days: Annotated[Int, Field(ge=0, le=3650)]
    quantity: _text(60) = ""               # "10 tablets", from dose, frequency and duration
    instructions: _text(300) = ""          # "after food"
    tpg_list: Literal["O", "A", "B", "Prohibited", ""] = ""


class Referral(BaseModel):
    model_config = Payload.model_config

    to: _text(200, 1)
    speciality: _text(60) = ""
    urgency: Literal["routine", "urgent", "emergency"] = "routine"
    reason: _text(1000) = ""


class PrescriptionPayload(Payload):
    """An issued e-prescription: final (a correction cancels it and issues another), signed with the hub's
    Ed25519 key over its canonical JSON (sync.prescriptions), so a spoke and a pharmacist can check it offline."""

    entity: ClassVar[str] = "prescription"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"),)

    case_id: Id
    patient_id: Id
    hub_name: _text(200, 1)
    prescriber: Prescriber
    issued_at: IsoDateTime
    consultation_type: Literal["first", "follow_up"]
    consultation_mode: Literal["video", "audio", "store_and_forward"]
    diagnosis: _text(1000, 1)
    icd10_code: _text(10) = ""
    icd10_title: _text(300) = ""
    medicines: Annotated[tuple[Medicine, ...], Field(max_length=30)] = ()
    investigations: Annotated[tuple[_text(300, 1), ...], Field(max_length=30)] = ()
    advice: _text(4000) = ""
    follow_up: IsoDate | None = None
    referral: Referral | None = None
    allergies_noted: Annotated[tuple[_text(100, 1), ...], Field(max_length=20)] = ()
    allergy_overrides: Annotated[tuple[_text(300, 1), ...], Field(max_length=30)] = ()
    status: Literal["issued", "cancelled"] = "issued"
    replaces_id: Id | None = None
    cancelled_reason: _text(1000) = ""
    cancelled_at: IsoDateTime | None = None
    key_id: _text(64, 1)
    signature: _text(200, 1)               # base64 Ed25519 over the canonical JSON of the issued prescription
    # The printed QR code's text: a compact summary signed on its own by the same key (sync.rx_code), so the paper
    # can be checked offline; "" on prescriptions issued before codes were made.
    qr: _text(2000) = ""


class CallPayload(Payload):
    """A call between the spoke and a hub doctor on a case, as the hub recorded it when it ended: part of the
    clinical record. The prescription's consultation mode (and so the List A rule) comes from these."""

    entity: ClassVar[str] = "call"
    parents: ClassVar[tuple[tuple[str, str], ...]] = (("case_id", "case"),)

    case_id: Id
    started_at: IsoDateTime                  # when the spoke rang
    answered_at: IsoDateTime | None = None
    ended_at: IsoDateTime
    duration_s: Annotated[Int, Field(ge=0, le=86_400)] = 0   # from the answer to the end
    outcome: Literal["completed", "missed", "cancelled", "failed"]
    # "video": the doctor saw the patient's video during the call; "audio": they only talked; "none": no call.
    mode_used: Literal["video", "audio", "none"] = "none"
    doctor: _text(200) = ""
    doctor_registration: _text(60) = ""
    caller: _text(200) = ""
    end_reason: _text(200) = ""


# What a spoke may push; the hub makes other entities itself (prescriptions, questions), and refuses them
# from a device.
PAYLOADS: dict[str, type[Payload]] = {m.entity: m for m in (FacilityPayload, UserPayload, PatientPayload, CasePayload,
                                                            VitalsPayload, ConsentPayload, AttachmentPayload,
                                                            AnswerPayload)}
HUB_PAYLOADS: dict[str, type[Payload]] = {m.entity: m for m in (QuestionPayload, PrescriptionPayload, CallPayload)}
ALL_PAYLOADS = PAYLOADS | HUB_PAYLOADS
_KNOWN = {entity: frozenset({f.alias or name for name, f in model.model_fields.items()} | set(model.model_fields)
                             | model.legacy_keys) for entity, model in ALL_PAYLOADS.items()}
# Parents before children: the order in which a page of pulled changes is applied.
APPLY_ORDER = ("facility", "user", "patient", "case", "vitals", "consent", "attachment", "question", "answer",
               "prescription", "call")


def validate(entity: str, payload: Any, *, entity_id: str | None = None, strict_keys: bool = False) -> Payload:
    """The payload as its model, or PayloadInvalid naming the field and the reason.

    strict_keys: refuse keys the model does not know (the hub, for what devices and staff write); otherwise they
    are ignored (a spoke reading what a newer hub sent)."""
    model = ALL_PAYLOADS.get(entity)
    if model is None:
        raise PayloadInvalid(entity, "", f"records of type '{entity}' are not known")
    if not isinstance(payload, dict):
        raise PayloadInvalid(entity, "", "the payload must be a JSON object")
    if strict_keys:
        # Only keys the model declares, each of a declared type: so nothing the hub stores can hide a NaN (JSON
        # has none: it would be stored and served back as null) or nest without end. A lenient reader drops
        # unknown keys, and the model refuses NaN in what it keeps.
        known = _KNOWN[entity]
        unknown = [k for k in payload if k not in known]
        if unknown:
            raise PayloadInvalid(entity, str(sorted(map(str, unknown))[0]), "this field is not part of a " + entity
                                 + " record")
    try:
        value = model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise PayloadInvalid(entity, field, _reason(first)) from None
    if entity_id is not None and value.id != entity_id:
        raise PayloadInvalid(entity, "id", "the payload's id is not the id of the record it changes")
    return value


def payload_of(entity: str, obj: Any, **extra: Any) -> dict[str, Any]:
    """The payload of a record from an object with the model's attributes (a spoke's domain dataclass) or a
    mapping of its fields, plus `extra` fields; checked by the model, so a PC never writes a change the hub
    would refuse for its form (an unknown entity raises KeyError)."""
    model = ALL_PAYLOADS[entity]
    if extra and not isinstance(obj, dict):
        obj = {name: getattr(obj, name) for name in model.model_fields if hasattr(obj, name)}
    if isinstance(obj, dict):
        return model.model_validate(obj | extra).wire()
    return model.model_validate(obj, from_attributes=True).wire()


def _reason(error: dict) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    given = error.get("input")
    if isinstance(given, float) and (given != given or given in (float("inf"), float("-inf"))):
        return "NaN and Infinity are not numbers"
    if kind == "missing":
        return "this field is required"
    if kind == "finite_number":
        return "NaN and Infinity are not numbers"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', 'the allowed values')}"
    if kind == "string_pattern_mismatch":
        return "must be " + _DESCRIBED.get(str(ctx.get("pattern")), "in the expected form")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return error["msg"].lower()
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"][0].lower() + error["msg"][1:]
