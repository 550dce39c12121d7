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


def question(entity_id: str, case_id: str, **fields) -> dict:
    return payload_of("question", dict(id=entity_id, case_id=case_id, text="A photo of the rash in daylight, please.",
                                       asked_at=WHEN, asked_by="Dr Anil Mehta", status="open") | fields)


def answer(entity_id: str, question_id: str, case_id: str, **fields) -> dict:
    return payload_of("answer", dict(id=entity_id, question_id=question_id, case_id=case_id,
                                     text="Photo added; the rash itches at night.", answered_at=WHEN,
                                     answered_by="Sunita Yadav") | fields)


def prescription(entity_id: str, case_id: str, patient_id: str, key=None, **fields) -> dict:
    """A prescription as the hub issues it, signed with `key` (an Ed25519 private key) over its canonical JSON, as
    sync.prescriptions signs it; with no key, signed by a key nobody knows."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync import prescriptions

    key = key or Ed25519PrivateKey.generate()
    body = payload_of("prescription", dict(
        id=entity_id, case_id=case_id, patient_id=patient_id, hub_name="District Hospital Sitapur (hub)",
        prescriber=dict(name="Dr Anil Mehta", qualification="MBBS, MD (Medicine)", registration_number="UPMC-48213",
                        council="Uttar Pradesh Medical Council"),
        issued_at=WHEN, consultation_type="first", consultation_mode="video", diagnosis="Hypertensive urgency",
        icd10_code="I16.0", medicines=[dict(name="AMLODIPINE", form="tablet", strength="5 mg", dose="1 tablet",
                                            frequency="OD", duration_days=30, quantity="30 tablets",
                                            instructions="after food", tpg_list="A")],
        investigations=["Serum creatinine"], advice="Low-salt diet; recheck BP daily.", follow_up="2026-12-08",
        referral=dict(to="CHC Sidhauli", speciality="Cardiology", urgency="urgent", reason="Persistent headache"),
        key_id=prescriptions.key_id(key.public_key()), signature="-") | fields)
    return body | {"signature": prescriptions.sign(body, key)}


def public_key_b64(key) -> str:
    """The hub's public key as a spoke keeps it (setting hub_public_key): base64 of the raw 32 bytes."""
    import base64

    from sync import prescriptions

    return base64.b64encode(prescriptions.raw_public(key.public_key())).decode()
