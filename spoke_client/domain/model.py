"""The clinic's records as plain dataclasses: what services hand to the UI, CLI and exporters."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime

from spoke_client.domain.vitals import Vitals
from spoke_client.i18n import N_, _


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class Relation(enum.StrEnum):
    """How Indian registers name a relative: S/o, D/o, W/o, C/o."""

    SON_OF = "S/o"
    DAUGHTER_OF = "D/o"
    WIFE_OF = "W/o"
    HUSBAND_OF = "H/o"
    CARE_OF = "C/o"


class Role(enum.StrEnum):
    PARAMEDIC = "paramedic"
    GENERALIST = "generalist"
    ADMIN = "admin"


class CaseStatus(enum.StrEnum):
    DRAFT = "draft"
    READY = "ready"              # ready for consultation
    QUEUED = "queued"            # queued for the hub
    IN_CONSULTATION = "in_consultation"
    INFO_REQUESTED = "info_requested"   # the hub's doctor asked the spoke for more (a question to answer)
    PRESCRIBED = "prescribed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class VitalsStatus(enum.StrEnum):
    FINAL = "final"
    ENTERED_IN_ERROR = "entered-in-error"


class ConsentGiver(enum.StrEnum):
    PATIENT = "patient"
    GUARDIAN = "guardian"        # the accompanying adult, for a minor or a patient who cannot consent


class ConsentMethod(enum.StrEnum):
    VERBAL = "verbal"
    WRITTEN = "written"
    RECORDED = "recorded"        # audio or video


@dataclass(frozen=True)
class Facility:
    id: str
    name: str
    hwc_id: str
    district: str
    state: str


@dataclass(frozen=True)
class User:
    id: str
    username: str
    full_name: str
    role: Role
    active: bool = True


@dataclass(frozen=True)
class Patient:
    id: str
    name: str
    sex: Sex
    birth_date: date
    birth_date_approximate: bool
    relative_name: str = ""
    relative_relation: Relation | None = None
    phone: str = ""
    village: str = ""
    address: str = ""
    abha_number: str = ""        # 14 digits, no dashes
    abha_address: str = ""
    allergies: tuple[str, ...] = ()   # known drug allergies as written ("penicillin"), or ("NKDA",)
    version: int = 1
    created_at: datetime | None = None

    def age_years(self, on: date | None = None) -> int:
        return age_in_years(self.birth_date, on or date.today())

    def age_text(self, on: date | None = None, gettext: Callable[[str], str] | None = None) -> str:
        """'58 y', '~60 y', '11 m', '3 w' — the way a register shows age, in the language of the screens, or through
        `gettext` (a printed paper's own language)."""
        tr = gettext or _
        on = on or date.today()
        days = (on - self.birth_date).days
        prefix = "~" if self.birth_date_approximate else ""
        if days < 0:
            return "?"
        if days < 31:
            # TRANSLATORS: an age in weeks, as short as a register writes it
            return prefix + tr(N_("{n} w")).format(n=days // 7)
        months = age_in_months(self.birth_date, on)
        if months < 24:
            # TRANSLATORS: an age in months, as short as a register writes it
            return prefix + tr(N_("{n} m")).format(n=months)
        # TRANSLATORS: an age in years, as short as a register writes it
        return prefix + tr(N_("{n} y")).format(n=age_in_years(self.birth_date, on))


@dataclass(frozen=True)
class Consent:
    id: str
    case_id: str
    giver: ConsentGiver
    giver_name: str
    giver_relation: str
    method: ConsentMethod
    given_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class VitalsRecord:
    id: str
    case_id: str
    recorded_at: datetime
    recorded_by: str
    vitals: Vitals
    status: VitalsStatus = VitalsStatus.FINAL
    replaces_id: str | None = None
    source: str = "manual"       # "manual" or the measuring device's name
    device_status: tuple[str, ...] = ()   # what the device reported: "irregular pulse", "cuff too loose"...
    measured_at: datetime | None = None   # when the device says it measured, if it said
    # The red flags assessed when the set was recorded, as sent to the hub (redflags.assessed: level, news2,
    # note, flags, lang); None for sets recorded before assessments travelled.
    assessment: dict | None = None


@dataclass(frozen=True)
class Case:
    id: str
    patient_id: str
    status: CaseStatus
    complaints: tuple[str, ...] = ()
    complaint_text: str = ""
    duration: str = ""
    history: str = ""
    examination: str = ""
    pregnant: bool = False
    priority: int = 0            # 0 none, 1 low, 2 urgent, 3 emergency: from the latest red flags
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1
    speciality: str = ""         # asked for when sent to the hub ("" for any doctor)
    vitals: tuple[VitalsRecord, ...] = field(default=())
    consent: Consent | None = None


def age_in_years(birth: date, on: date) -> int:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return max(years, 0)


def age_in_months(birth: date, on: date) -> int:
    months = (on.year - birth.year) * 12 + (on.month - birth.month) - (on.day < birth.day)
    return max(months, 0)


def birth_date_from_age(years: int, on: date) -> date:
    """An approximate birth date for 'about N years': the same day N years back."""
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28)


class AttachmentKind(enum.StrEnum):
    PHOTO = "photo"
    AUDIO = "audio"
    DOCUMENT = "document"


class AttachmentStatus(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"      # kept (the hub may have seen it), but no longer part of the record


@dataclass(frozen=True)
class Attachment:
    """A photo, recording or document on a case; the bytes are a file named by sha256."""

    id: str
    case_id: str
    kind: AttachmentKind
    sha256: str
    mime: str
    size_bytes: int
    label: str
    width_px: int | None
    height_px: int | None
    duration_ms: int | None
    status: AttachmentStatus
    withdrawn_reason: str
    created_at: datetime
    created_by: str
    version: int


def from_values(cls, values: dict):
    """A domain dataclass from plain values (a checked payload, a database row's columns): enums from their
    values, tuples from lists, nested dataclasses from dicts, by the dataclass's own type hints. So a record is
    described once, by its dataclass, and read back the same way from wherever it comes."""
    hints = _hints(cls)
    return cls(**{f.name: _value(hints[f.name], values[f.name]) for f in fields(cls) if f.name in values})


def _hints(cls) -> dict:
    import typing

    cached = _HINTS.get(cls)
    if cached is None:
        cached = _HINTS[cls] = typing.get_type_hints(cls)
    return cached


_HINTS: dict = {}


def _value(hint, value):
    import types
    import typing

    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        inner = typing.get_args(hint)[0]
        return tuple(_value(inner, v) for v in value)
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return hint(value)
        if is_dataclass(hint) and isinstance(value, dict):
            return from_values(hint, value)
    return value
