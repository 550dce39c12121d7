"""Valid payloads of each entity for protocol tests (what a real spoke writes), with fields to override."""

from __future__ import annotations

import hashlib

from sync.payloads import payload_of

WHEN = "2026-12-01T08:30:00+00:00"


def patient(entity_id: str, **fields) -> dict:
    return payload_of("patient", dict(id=entity_id, name="Kamla Devi", sex="female", birth_date="1966-01-01",
                                      birth_date_approximate=True, village="Rampur") | fields)


def case(entity_id: str, patient_id: str, **fields) -> dict:
    return payload_of("case", dict(id=entity_id, patient_id=patient_id, status="queued", complaints=["Fever"],
                                   created_at=WHEN, updated_at=WHEN) | fields)


def vitals(entity_id: str, case_id: str, **values) -> dict:
    return payload_of("vitals", dict(id=entity_id, case_id=case_id, recorded_at=WHEN, recorded_by="u-1",
                                     vitals=dict(pulse_per_min=80) | values))


def consent(entity_id: str, case_id: str, **fields) -> dict:
    return payload_of("consent", dict(id=entity_id, case_id=case_id, giver="patient", giver_name="Kamla Devi",
                                      method="verbal", given_at=WHEN, recorded_by="u-1") | fields)


def attachment(entity_id: str, case_id: str, content: bytes = b"photo", **fields) -> dict:
    return payload_of("attachment", dict(id=entity_id, case_id=case_id, kind="photo",
                                         sha256=hashlib.sha256(content).hexdigest(), mime="image/jpeg",
                                         size_bytes=len(content), created_at=WHEN, created_by="u-1") | fields)


def raw_change(w, entity: str, entity_id: str, payload: dict | None, version: int = 1) -> None:
    """A change-log entry written past the payload check, as an older version or a damaged PC might have:
    what the hub must refuse with a reason, without the rest of the queue stopping."""
    from spoke_client.db.models import ChangeRow
    from spoke_client.services.store import new_id

    w.session.add(ChangeRow(change_id=new_id(), entity=entity, entity_id=entity_id, version=version,
                            op="upsert" if payload is not None else "delete", hlc=w.stamp(), changed_at=w.now,
                            user_id=w.user_id, device_id=w.store.device_id, payload=payload))
