"""What the hub's doctor sent back, for the screens: a case's questions (with the answers given here) and its
prescriptions, the home screen's prescriptions received, and the check of a prescription's signature."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spoke_client.db.models import AnswerRow, CallRow, PatientRow, PrescriptionRow, QuestionRow
from spoke_client.domain.consultation import (
    Answer,
    CallRecord,
    Prescription,
    PrescriptionStatus,
    PrescriptionSummary,
    Question,
    QuestionStatus,
)
from spoke_client.domain.model import from_values
from spoke_client.services.hub_link import HUB_PUBLIC_KEY
from spoke_client.services.patients import to_patient
from spoke_client.services.store import Store
from sync.payloads import PayloadInvalid, validate
from sync.prescriptions import SignatureInvalid, verify

log = logging.getLogger(__name__)

RECEIVED_SHOWN = 200   # the home screen's list: the newest prescriptions


def signature_ok(payload: dict[str, Any], hub_key: str | None) -> bool:
    """Whether `payload` (a prescription as pulled) carries the hub's signature over its content. False when the
    hub's key is not known here: an unchecked prescription is never taken for a checked one."""
    if not hub_key:
        return False
    try:
        verify(payload, hub_key)
    except SignatureInvalid:
        return False
    except ValueError:   # a key that is not a key (damaged setting): nothing can be checked with it
        log.warning("the hub's public key kept on this computer cannot be read; prescriptions stay unchecked")
        return False
    return True


def to_prescription(row: PrescriptionRow) -> Prescription:
    """A received prescription, read back through its payload's declaration (sync.payloads) like any record."""
    fields = validate("prescription", row.payload).model_dump()
    return from_values(Prescription, fields | {"status": row.status, "signature_ok": row.signature_ok,
                                               "received_at": row.received_at})


def prescription_summaries(s: Session, limit: int = RECEIVED_SHOWN) -> list[PrescriptionSummary]:
    """The newest prescriptions received, for the home screen."""
    out = []
    rows = s.execute(select(PrescriptionRow, PatientRow).join(PatientRow, PatientRow.id == PrescriptionRow.patient_id)
                     .order_by(PrescriptionRow.issued_at.desc(), PrescriptionRow.id).limit(limit))
    for r, patient in rows:
        p = r.payload or {}
        out.append(PrescriptionSummary(
            prescription_id=r.id, case_id=r.case_id, patient=to_patient(patient), issued_at=r.issued_at,
            doctor=str((p.get("prescriber") or {}).get("name", "")), medicines=len(p.get("medicines") or ()),
            status=PrescriptionStatus(r.status), signature_ok=r.signature_ok))
    return out


def waiting_questions(s: Session, case_id: str) -> list[str]:
    """Ids of the case's questions that are open and not answered from this facility yet."""
    answered = select(AnswerRow.question_id).where(AnswerRow.case_id == case_id)
    return list(s.scalars(select(QuestionRow.id).where(QuestionRow.case_id == case_id,
                                                       QuestionRow.status == QuestionStatus.OPEN.value,
                                                       QuestionRow.id.not_in(answered))))


class ConsultationService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def questions(self, case_id: str) -> list[Question]:
        """The doctor's questions on a case, oldest first, each with the answers given from this facility."""
        with self.store.read() as s:
            answers: dict[str, list[Answer]] = {}
            for a in s.scalars(select(AnswerRow).where(AnswerRow.case_id == case_id).order_by(AnswerRow.answered_at)):
                answers.setdefault(a.question_id, []).append(Answer(
                    id=a.id, question_id=a.question_id, case_id=a.case_id, text=a.text, answered_at=a.answered_at,
                    answered_by=a.answered_by, version=a.version))
            return [Question(id=q.id, case_id=q.case_id, text=q.text, asked_at=q.asked_at, asked_by=q.asked_by,
                             status=QuestionStatus(q.status), answers=tuple(answers.get(q.id, ())))
                    for q in s.scalars(select(QuestionRow).where(QuestionRow.case_id == case_id)
                                       .order_by(QuestionRow.asked_at, QuestionRow.id))]

    def prescriptions(self, case_id: str) -> list[Prescription]:
        """A case's prescriptions, newest first (a cancelled one stays, marked so)."""
        with self.store.read() as s:
            rows = list(s.scalars(select(PrescriptionRow).where(PrescriptionRow.case_id == case_id)
                                  .order_by(PrescriptionRow.issued_at.desc(), PrescriptionRow.id)))
        out = []
        for row in rows:
            try:
                out.append(to_prescription(row))
            except PayloadInvalid:   # checked when it arrived; a damaged row is left out rather than shown wrong
                log.warning("a stored prescription could not be read back; it is not shown")
        return out

    def received(self, limit: int = RECEIVED_SHOWN) -> list[PrescriptionSummary]:
        with self.store.read() as s:
            return prescription_summaries(s, limit)

    def calls(self, case_id: str) -> list[CallRecord]:
        """The case's calls with the hub, newest first, as the hub recorded them."""
        with self.store.read() as s:
            return [CallRecord(id=r.id, case_id=r.case_id, started_at=r.started_at, answered_at=r.answered_at,
                               ended_at=r.ended_at, duration_s=r.duration_s, outcome=r.outcome, mode_used=r.mode_used,
                               doctor=r.doctor, caller=r.caller, end_reason=r.end_reason)
                    for r in s.scalars(select(CallRow).where(CallRow.case_id == case_id)
                                       .order_by(CallRow.started_at.desc(), CallRow.id))]

    def hub_key_known(self) -> bool:
        return bool(self.store.get_setting(HUB_PUBLIC_KEY))
