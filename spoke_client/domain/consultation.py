"""What comes back from the hub's doctor: questions to the spoke (and the spoke's answers) and prescriptions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from spoke_client.domain.model import Patient


class QuestionStatus(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"        # the hub's word: it has read an answer
    WITHDRAWN = "withdrawn"


class PrescriptionStatus(enum.StrEnum):
    ISSUED = "issued"
    CANCELLED = "cancelled"      # a correction cancels it (and the hub issues another)


@dataclass(frozen=True)
class Answer:
    id: str
    question_id: str
    case_id: str
    text: str
    answered_at: datetime
    answered_by: str
    version: int = 1


@dataclass(frozen=True)
class Question:
    """A doctor's question on a case, with the answers given from this facility's PCs."""

    id: str
    case_id: str
    text: str
    asked_at: datetime
    asked_by: str
    status: QuestionStatus
    answers: tuple[Answer, ...] = ()

    @property
    def waiting(self) -> bool:
        """Open and not answered here yet: what the paramedic must answer."""
        return self.status == QuestionStatus.OPEN and not self.answers


@dataclass(frozen=True)
class Prescriber:
    name: str
    qualification: str
    registration_number: str
    council: str = ""


@dataclass(frozen=True)
class Medicine:
    name: str
    dose: str
    frequency: str
    duration_days: int
    form: str = ""
    strength: str = ""
    route: str = "oral"
    quantity: str = ""
    instructions: str = ""
    formulary_id: str | None = None
    tpg_list: str = ""


@dataclass(frozen=True)
class Referral:
    to: str
    speciality: str = ""
    urgency: str = "routine"
    reason: str = ""


@dataclass(frozen=True)
class Prescription:
    """An e-prescription as received. signature_ok: its signature was checked against the hub's key when it
    arrived; False when it failed or the key was not known (shown with a warning, never trusted silently)."""

    id: str
    case_id: str
    patient_id: str
    hub_name: str
    prescriber: Prescriber
    issued_at: datetime
    consultation_type: str
    consultation_mode: str
    diagnosis: str
    status: PrescriptionStatus
    signature_ok: bool
    received_at: datetime | None = None
    icd10_code: str = ""
    icd10_title: str = ""
    medicines: tuple[Medicine, ...] = ()
    investigations: tuple[str, ...] = ()
    advice: str = ""
    follow_up: date | None = None
    referral: Referral | None = None
    allergies_noted: tuple[str, ...] = ()
    allergy_overrides: tuple[str, ...] = ()
    replaces_id: str | None = None
    cancelled_reason: str = ""
    cancelled_at: datetime | None = None
    qr: str = ""                 # the hub's signed code for the paper (sync.rx_code); "" if it sent none


@dataclass(frozen=True)
class PrescriptionSummary:
    """A line of the home screen's "Prescriptions received"."""

    prescription_id: str
    case_id: str
    patient: Patient
    issued_at: datetime
    doctor: str
    medicines: int
    status: PrescriptionStatus
    signature_ok: bool



@dataclass(frozen=True)
class CallRecord:
    """A call with the hub's doctor on a case, as the hub recorded it."""

    id: str
    case_id: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration_s: int
    outcome: str          # completed | missed | cancelled | failed
    mode_used: str        # video | audio | none
    doctor: str
    caller: str
    end_reason: str
