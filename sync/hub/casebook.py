"""The queue's view of cases (hub_case), kept in step with the case and patient records as the hub writes them,
and the hub's own records (questions, prescriptions) written as changes its spokes pull."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from sync.hub.models import HubCase, HubChangeRow, HubRecord
from sync.payloads import validate
from sync.protocol import Change, HubChange, Op

HUB_DEVICE_ID = "hub"
QUEUE_STATES = ("queued", "in_consultation", "info_requested")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def refresh_cases(s: Session, case_ids: set[str], patient_ids: set[str]) -> None:
    """Brings the rows of hub_case for these cases (and the cases of these patients) in line with their records:
    status, priority, speciality, complaints, the patient's sex and birth date, and when the case was queued."""
    if patient_ids:
        case_ids = case_ids | set(s.scalars(select(HubCase.case_id).where(HubCase.patient_id.in_(sorted(patient_ids)))))
    if not case_ids:
        return
    ids = sorted(case_ids)
    cases = {r.entity_id: r for r in s.scalars(select(HubRecord).where(HubRecord.entity == "case",
                                                                      HubRecord.entity_id.in_(ids)))}
    wanted_patients = {(r.payload or {}).get("patient_id") for r in cases.values()} - {None}
    patients = {r.entity_id: r.payload or {} for r in s.scalars(select(HubRecord).where(
        HubRecord.entity == "patient", HubRecord.entity_id.in_(sorted(wanted_patients))))} if wanted_patients else {}
    rows = {r.case_id: r for r in s.scalars(select(HubCase).where(HubCase.case_id.in_(ids)))}
    now = utcnow()
    for case_id, record in cases.items():
        p = record.payload or {}
        patient = patients.get(p.get("patient_id"), {})
        status = "deleted" if record.deleted else str(p.get("status", ""))
        complaints = ", ".join([*(p.get("complaints") or []), *([p["complaint_text"]] if p.get("complaint_text") else [])])
        values = dict(facility_id=record.facility_id, patient_id=str(p.get("patient_id", "")), status=status,
                      priority=int(p.get("priority") or 0), speciality=str(p.get("speciality") or ""),
                      complaints=complaints[:2000], patient_sex=str(patient.get("sex", "")),
                      patient_birth=str(patient.get("birth_date", "")), updated_at=now)
        row = rows.get(case_id)
        if row is None:
            s.add(HubCase(case_id=case_id, queued_at=now if status == "queued" else None, taken_by=None, taken_at=None,
                          **values))
            continue
        if status == "queued" and row.status != "queued":
            values["queued_at"] = row.queued_at if row.status == "info_requested" and row.queued_at else now
        if status not in ("in_consultation", "info_requested", "prescribed"):
            values |= dict(taken_by=None, taken_at=None)   # released, answered or ended: nobody holds it
        for key, value in values.items():
            setattr(row, key, value)


def rebuild_missing(s: Session) -> int:
    """Adds the rows of cases that have none (cases held before the queue's view existed)."""
    have = set(s.scalars(select(HubCase.case_id)))
    missing = {r for r in s.scalars(select(HubRecord.entity_id).where(HubRecord.entity == "case")) if r not in have}
    stale = set(s.scalars(select(HubCase.case_id).where(HubCase.status == "unknown")))
    if stale:
        s.execute(delete(HubCase).where(HubCase.case_id.in_(sorted(stale))))
    refresh_cases(s, missing | stale, set())
    return len(missing | stale)


def hub_write(s: Session, record: HubRecord, stamp: str, payload: dict) -> HubChange:
    """A change of an existing record made by the hub itself (checked like a device's), logged for the facility's
    spokes to pull; the record and the queue's view follow."""
    payload = validate(record.entity, payload, entity_id=record.entity_id, strict_keys=True).wire()
    change = Change(change_id=uuid.uuid4(), entity=record.entity, entity_id=record.entity_id,
                    version=record.version + 1, op=Op.UPSERT, hlc=stamp, device_id=HUB_DEVICE_ID, payload=payload)
    seq = _log(s, record.facility_id, change)
    record.version, record.hlc, record.payload = change.version, stamp, payload
    s.flush()
    if record.entity in ("case", "patient"):
        refresh_cases(s, {record.entity_id} if record.entity == "case" else set(),
                      {record.entity_id} if record.entity == "patient" else set())
    return HubChange(seq=seq, **change.model_dump())


def hub_create(s: Session, facility_id: str, entity: str, payload: dict, stamp: str) -> HubChange:
    """A new record made by the hub (a question, a prescription), for the facility's spokes to pull."""
    checked = validate(entity, payload, entity_id=payload["id"], strict_keys=True).wire()
    change = Change(change_id=uuid.uuid4(), entity=entity, entity_id=payload["id"], version=1, op=Op.UPSERT, hlc=stamp,
                    device_id=HUB_DEVICE_ID, payload=checked)
    seq = _log(s, facility_id, change)
    s.add(HubRecord(entity=entity, entity_id=payload["id"], facility_id=facility_id, version=1, hlc=stamp, deleted=False,
                    payload=checked, parent_id=checked.get("case_id")))
    s.flush()
    return HubChange(seq=seq, **change.model_dump())


def _log(s: Session, facility_id: str, change: Change) -> int:
    s.execute(insert(HubChangeRow), [dict(change_id=str(change.change_id), facility_id=facility_id, entity=change.entity,
                                          entity_id=change.entity_id, version=change.version, op=change.op.value,
                                          hlc=change.hlc, device_id=change.device_id, payload=change.payload,
                                          received_at=utcnow())])
    s.flush()
    return s.scalar(select(HubChangeRow.seq).where(HubChangeRow.change_id == str(change.change_id)))

