"""The hub doctor's console against a real hub on loopback: allergies, the speciality and the red flags reach the
hub and the facility's other PCs; the doctor's question reaches the spoke and its answer comes back; a prescription
arrives checked against the hub's key, and a tampered one is marked as failing."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from spoke_client.domain.consultation import PrescriptionStatus
from spoke_client.domain.model import CaseStatus, ConsentGiver, ConsentMethod, Role
from spoke_client.domain.vitals import Vitals
from spoke_client.services.cases import CaseForm
from spoke_client.services.patients import PatientForm
from spoke_client.services.sync_local import enroll, sync_once
from sync.hub.models import HubChangeRow
from tests.sync import records


def enrolled(spoke, hub, hub_server, facility_id, name):
    services, admin, paths = spoke(name)
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facility_id), name, allow_http=True)
    return services, admin, paths


def synced(services, paths):
    report = sync_once(services.store, paths)
    assert report.error is None, report.error
    return report


def queued_case(services, admin, speciality=None, allergies="Penicillin, sulfa drugs"):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60,
                                                          village="Rampur", allergies=allergies))
    case = services.cases.open_case(admin, kamla.id)
    services.cases.save(admin, case.id, CaseForm(complaints=("Headache",)),
                        vitals=Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118, spo2_pct=93))
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, "Kamla Devi", ConsentMethod.VERBAL)
    services.cases.transition(admin, case.id, CaseStatus.READY)
    services.cases.transition(admin, case.id, CaseStatus.QUEUED, speciality=speciality)
    return kamla, services.cases.get(case.id)


def hub_made(hub, facility_id: str, entity: str, payload: dict, version: int = 1) -> None:
    """A record written into the hub's change log directly, as the hub's own code writes its records."""
    with hub.session.begin() as s:
        s.add(HubChangeRow(change_id=str(uuid.uuid4()), facility_id=facility_id, entity=entity,
                           entity_id=payload["id"], version=version, op="upsert",
                           hlc=hub.clock().now(int(time.time() * 1000)).encode(), device_id="hub", payload=payload,
                           received_at=datetime.now(timezone.utc)))


def test_allergies_survive_a_round_trip_to_the_hub_and_back_to_another_pc(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    kamla = pc1.patients.register(admin1, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                      allergies="Penicillin, sulfa drugs"))
    synced(pc1, paths1)
    assert hub.record("patient", kamla.id).payload["allergies"] == ["Penicillin", "sulfa drugs"]
    pc2, admin2, paths2 = enrolled(spoke, hub, hub_server, facilities[0], "pc2")
    synced(pc2, paths2)
    on2 = pc2.patients.get(admin2, kamla.id)
    assert on2.allergies == ("Penicillin", "sulfa drugs")
    # PC-2 learns of another allergy while PC-1 corrects the phone number: both edits survive, field by field.
    pc2.patients.update(admin2, kamla.id, PatientForm(name="Kamla Devi", sex="female", birth_date=on2.birth_date,
                                                      birth_date_approximate=True, village="Rampur",
                                                      allergies="Penicillin, sulfa drugs, ibuprofen"), on2.version)
    pc1.patients.update(admin1, kamla.id, PatientForm(name="Kamla Devi", sex="female", birth_date=kamla.birth_date,
                                                      birth_date_approximate=True, village="Rampur", phone="9415012345",
                                                      allergies="Penicillin, sulfa drugs"), kamla.version)
    synced(pc2, paths2)
    synced(pc1, paths1)
    synced(pc2, paths2)
    for services, user in ((pc1, admin1), (pc2, admin2)):
        p = services.patients.get(user, kamla.id)
        assert (p.allergies, p.phone) == (("Penicillin", "sulfa drugs", "ibuprofen"), "9415012345")
    assert pc1.conflicts.open_count() == 0


def test_the_speciality_and_the_red_flags_reach_the_hub_and_the_other_pc(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    _kamla, case = queued_case(pc1, admin1, speciality="Cardiology")
    synced(pc1, paths1)
    assert hub.record("case", case.id).payload["speciality"] == "Cardiology"
    [vitals] = case.vitals
    sent = hub.record("vitals", vitals.id).payload["assessment"]
    assert sent["level"] == 3 and sent["lang"] == "en"
    assert [f["code"] for f in sent["flags"]][:2] == ["hypertensive_crisis", "low_spo2"]
    assert sent["flags"][0]["message"] == "Hypertensive crisis: BP 186/122 mmHg (>= 180/120)."
    pc2, _admin2, paths2 = enrolled(spoke, hub, hub_server, facilities[0], "pc2")
    synced(pc2, paths2)
    there = pc2.cases.get(case.id)
    assert there.speciality == "Cardiology" and there.vitals[0].assessment == sent


def test_a_pulled_question_asks_for_more_and_the_answer_flows_back(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    paramedic = pc1.auth.add_user(admin1, "sunita", "Sunita Yadav", Role.PARAMEDIC, "sunita-pass-1")
    _kamla, case = queued_case(pc1, admin1)
    synced(pc1, paths1)
    hub_made(hub, facilities[0], "question", records.question("q-1", case.id, text="Any other medicines?"))
    assert synced(pc1, paths1).pulled == 1
    assert pc1.cases.get(case.id).status == CaseStatus.INFO_REQUESTED
    [q] = pc1.consultation.questions(case.id)
    assert q.waiting and q.text == "Any other medicines?"
    added = pc1.cases.record_vitals(paramedic, case.id, Vitals(systolic_mmhg=170, diastolic_mmhg=104))
    answered = pc1.cases.answer(paramedic, "q-1", "Only amlodipine, stopped a month ago.")
    assert answered.status == CaseStatus.QUEUED
    synced(pc1, paths1)
    [answer] = pc1.consultation.questions(case.id)[0].answers
    at_hub = hub.record("answer", answer.id).payload
    assert (at_hub["question_id"], at_hub["case_id"], at_hub["text"], at_hub["answered_by"]) == (
        "q-1", case.id, "Only amlodipine, stopped a month ago.", "Sunita Yadav")
    assert hub.record("vitals", added.id) is not None, "the vitals added while the doctor waited travel too"
    with hub.session() as s:
        sent = [c.payload["status"] for c in s.scalars(select(HubChangeRow).where(
            HubChangeRow.entity == "case", HubChangeRow.entity_id == case.id).order_by(HubChangeRow.seq))]
    assert sent[-1] == "queued", "the spoke's case change sends it back to the queue"
    # Another PC of the facility sees the question answered, and the case back in the queue.
    pc2, _admin2, paths2 = enrolled(spoke, hub, hub_server, facilities[0], "pc2")
    synced(pc2, paths2)
    assert pc2.cases.get(case.id).status == CaseStatus.QUEUED
    [q2] = pc2.consultation.questions(case.id)
    assert not q2.waiting and q2.answers[0].text == "Only amlodipine, stopped a month ago."


def test_a_signed_prescription_is_checked_and_a_tampered_one_fails(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    kamla, case = queued_case(pc1, admin1)
    synced(pc1, paths1)
    key = Ed25519PrivateKey.generate()
    pc1.store.set_setting("hub_public_key", records.public_key_b64(key))
    good = records.prescription(str(uuid.uuid4()), case.id, kamla.id, key, issued_at="2026-12-01T08:00:00+00:00")
    tampered = records.prescription(str(uuid.uuid4()), case.id, kamla.id, key, issued_at="2026-12-01T09:00:00+00:00")
    tampered["medicines"][0]["dose"] = "2 tablet"          # one byte of a medicine
    for payload in (good, tampered):
        hub_made(hub, facilities[0], "prescription", payload)
    assert synced(pc1, paths1).pulled == 2
    shown = {p.id: p.signature_ok for p in pc1.consultation.prescriptions(case.id)}
    assert shown == {good["id"]: True, tampered["id"]: False}
    assert [(p.prescription_id, p.signature_ok) for p in pc1.consultation.received()] == [
        (tampered["id"], False), (good["id"], True)]
    # Cancelled at the hub: the same record, a newer version; its signature still holds.
    hub_made(hub, facilities[0], "prescription", good | {"status": "cancelled", "cancelled_reason": "Wrong dose",
                                                         "cancelled_at": "2026-12-01T08:30:00+00:00"}, version=2)
    synced(pc1, paths1)
    cancelled = next(p for p in pc1.consultation.prescriptions(case.id) if p.id == good["id"])
    assert (cancelled.status, cancelled.cancelled_reason, cancelled.signature_ok) == (
        PrescriptionStatus.CANCELLED, "Wrong dose", True)


def test_the_hubs_own_doctor_asks_and_prescribes_and_the_spoke_checks_with_the_key_from_enrolment(
        hub, hub_server, facilities, spoke):
    """Both halves of the issue together: the hub's clinic (sync/hub/clinic.py) asks and issues; the spoke learnt
    the hub's key when it enrolled."""
    org = hub.create_hub("District Hospital Sitapur", "district hospital")
    admin = hub.add_staff(None, org, "admin", "Anita Sharma", "admin-pass-12", "admin")
    mehta = hub.add_staff(admin, org, "dr.mehta", "Dr Rajesh Mehta", "mehta-pass-12", "doctor",
                          qualification="MBBS, MD", registration_number="UPMC 45678",
                          council="Uttar Pradesh Medical Council", specialities=("Cardiology",))
    hub.assign_facility(admin, facilities[0], org)
    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    assert pc1.store.get_setting("hub_public_key") == hub.public_key()
    _kamla, case = queued_case(pc1, admin1, speciality="Cardiology")
    synced(pc1, paths1)
    hub.take(mehta, case.id)
    hub.ask(mehta, case.id, "Is she taking any other medicine?")
    synced(pc1, paths1)
    assert pc1.cases.get(case.id).status == CaseStatus.INFO_REQUESTED
    [q] = pc1.consultation.questions(case.id)
    pc1.cases.answer(admin1, q.id, "No other medicine.")
    synced(pc1, paths1)
    assert hub.record("case", case.id).payload["status"] == "queued"
    from sync.hub.clinic import PrescriptionDraft

    issued = hub.issue(mehta, case.id, PrescriptionDraft(diagnosis="Hypertensive urgency",
                                                         advice="Low-salt diet; come back tomorrow for a BP check."))
    synced(pc1, paths1)
    [rx] = pc1.consultation.prescriptions(case.id)
    assert rx.id == issued["id"] and rx.signature_ok and rx.allergies_noted == ("Penicillin", "sulfa drugs")
    assert rx.prescriber.registration_number == "UPMC 45678"
    assert pc1.cases.get(case.id).status == CaseStatus.PRESCRIBED
    assert not pc1.consultation.questions(case.id)[0].waiting


def test_a_prescription_an_older_version_kept_unapplied_is_applied_after_the_upgrade(hub, hub_server, facilities,
                                                                                      spoke):
    """Spoke 0.2.0 before this issue pulled prescriptions and kept them in its inbox, unapplied (it did not know
    them): the first sync of this version applies them, though the program's version number is the same."""
    from spoke_client import __version__
    from spoke_client.db.models import InboxRow

    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    kamla, case = queued_case(pc1, admin1)
    synced(pc1, paths1)
    key = Ed25519PrivateKey.generate()
    pc1.store.set_setting("hub_public_key", records.public_key_b64(key))
    rx = records.prescription(str(uuid.uuid4()), case.id, kamla.id, key)
    with pc1.store.write(None) as w:
        w.session.add(InboxRow(seq=-1, change_id=str(uuid.uuid4()), entity="prescription", entity_id=rx["id"], version=1,
                               op="upsert", hlc=hub.clock().now(int(time.time() * 1000)).encode(), device_id="hub",
                               payload=rx, received_at=w.now, applied_at=None))
        w.set_setting("inbox_app_version", __version__)    # what that version wrote
    assert pc1.consultation.prescriptions(case.id) == []
    synced(pc1, paths1)
    [applied] = pc1.consultation.prescriptions(case.id)
    assert applied.id == rx["id"] and applied.signature_ok
