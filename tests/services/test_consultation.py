"""The hub doctor's console, the spoke's side: drug allergies, the speciality asked for, the red flags sent with
vitals, the doctor's questions and the spoke's answers, prescriptions received and their signatures.

Pulled changes go through the real inbox (sync_inbox.Inbox.apply) over a real SQLite file; the end-to-end paths
against a real hub are in tests/sync/test_consultation_sync.py."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from spoke_client import i18n
from spoke_client.db.models import ChangeRow, InboxRow, PrescriptionRow
from spoke_client.domain.consultation import PrescriptionStatus, QuestionStatus
from spoke_client.domain.errors import InvalidTransition, ValidationFailed
from spoke_client.domain.model import AttachmentKind, CaseStatus, ConsentGiver, ConsentMethod
from spoke_client.domain.vitals import Vitals
from spoke_client.services.cases import SPECIALITIES, CaseForm, specialities
from spoke_client.services.patients import NKDA, PatientForm, parse_allergies, validate_patient
from spoke_client.services.seed import seed_demo
from spoke_client.services.sync_inbox import Inbox
from spoke_client.services.sync_local import LocalSync
from sync.hlc import HybridLogicalClock
from sync.payloads import validate
from sync.protocol import HubChange, Op, PullPage
from tests.sync import records

SEQ = itertools.count(1)
HUB_CLOCK = HybridLogicalClock("hub")


def pull(services, *changes: tuple[str, str, dict], device: str = "hub", version: int = 1) -> None:
    """Applies changes as a page pulled from the hub: (entity, id, payload) each."""
    page = [HubChange(seq=next(SEQ), change_id=uuid.uuid4(), entity=entity, entity_id=entity_id, version=version,
                      op=Op.UPSERT, hlc=HUB_CLOCK.now(int(time.time() * 1000)).encode(), device_id=device,
                      payload=payload) for entity, entity_id, payload in changes]
    Inbox(services.store).apply(PullPage(changes=page, next_cursor=page[-1].seq, more=False))


def changes(services, entity: str) -> list[dict]:
    with services.store.read() as s:
        return [c.payload for c in s.scalars(select(ChangeRow).where(ChangeRow.entity == entity).order_by(ChangeRow.seq))]


@pytest.fixture
def kamla(services, admin):
    return services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                         allergies="Penicillin, sulfa drugs"))


def queued(services, admin, patient, speciality: str | None = None):
    case = services.cases.open_case(admin, patient.id)
    services.cases.save(admin, case.id, CaseForm(complaints=("Headache",)),
                        vitals=Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118))
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, patient.name, ConsentMethod.VERBAL)
    services.cases.transition(admin, case.id, CaseStatus.READY)
    return services.cases.transition(admin, case.id, CaseStatus.QUEUED, speciality=speciality)


# --- 1. drug allergies -------------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, kept", [
    ("", ()),
    (" penicillin ,  sulfa   drugs,,", ("penicillin", "sulfa drugs")),
    ("Penicillin; penicillin\nAspirin", ("Penicillin", "Aspirin")),
    ("NKDA", (NKDA,)),
    ("none known", (NKDA,)),
    ("No known drug allergies.", (NKDA,)),
])
def test_allergies_are_read_as_a_list_of_trimmed_items(typed, kept):
    assert parse_allergies(typed) == kept


@pytest.mark.parametrize("typed, words", [
    (", ".join(f"drug {i}" for i in range(21)), "At most 20"),
    ("x" * 101, "100 characters"),
    ("NKDA, penicillin", "not both"),
])
def test_a_wrong_allergy_list_is_refused_on_its_field(typed, words, today):
    with pytest.raises(ValidationFailed) as refused:
        validate_patient(PatientForm(name="Kamla Devi", sex="female", age_years=60, allergies=typed), today)
    [problem] = refused.value.problems
    assert problem.field == "allergies" and words in problem.message


def test_allergies_are_kept_on_the_patient_and_in_the_change_log(services, admin, kamla):
    assert kamla.allergies == ("Penicillin", "sulfa drugs")
    assert services.patients.get(admin, kamla.id).allergies == ("Penicillin", "sulfa drugs")
    [registered] = changes(services, "patient")
    assert registered["allergies"] == ["Penicillin", "sulfa drugs"] and "allergies" in registered["_fields"]
    form = PatientForm(name="Kamla Devi", sex="female", birth_date=kamla.birth_date, birth_date_approximate=True,
                       village="Rampur", allergies="Penicillin, sulfa drugs, ibuprofen")
    edited = services.patients.update(admin, kamla.id, form, kamla.version)
    assert edited.allergies == ("Penicillin", "sulfa drugs", "ibuprofen")
    assert edited.birth_date == kamla.birth_date and edited.birth_date_approximate, "the estimate is kept as it was"
    first, second = changes(services, "patient")
    assert second["allergies"][-1] == "ibuprofen"
    assert second["_fields"]["allergies"][0] > first["_fields"]["allergies"][0], "only the allergies moved"
    assert second["_fields"]["name"] == first["_fields"]["name"]


def test_allergies_pulled_from_the_hub_are_applied(services, admin, kamla):
    pull(services, ("patient", "p-hub", records.patient("p-hub", name="Ravi Kumar", sex="male",
                                                         allergies=["Cotrimoxazole"])))
    [hit] = services.patients.search("ravi kumar")
    assert hit.patient.allergies == ("Cotrimoxazole",)


# --- 2. the speciality asked for --------------------------------------------------------------------------
def test_the_speciality_list_is_the_one_the_issue_names():
    assert SPECIALITIES == ("", "General medicine", "Paediatrics", "Obstetrics and gynaecology", "Dermatology",
                            "Cardiology", "Orthopaedics", "ENT", "Ophthalmology", "Psychiatry")
    assert specialities()[""] == "Any doctor"


def test_sending_to_the_hub_names_the_speciality_and_the_case_change_carries_it(services, admin, kamla):
    case = queued(services, admin, kamla, "Cardiology")
    assert case.speciality == "Cardiology" and case.status == CaseStatus.QUEUED
    assert changes(services, "case")[-1]["speciality"] == "Cardiology"
    services.cases.transition(admin, case.id, CaseStatus.READY)
    assert services.cases.get(case.id).speciality == "Cardiology", "taking it back keeps what was asked"


def test_a_speciality_not_on_the_list_or_not_on_sending_is_refused(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    with pytest.raises(ValidationFailed) as refused:
        services.cases.transition(admin, case.id, CaseStatus.QUEUED, speciality="Astrology")
    assert refused.value.for_field("speciality")
    with pytest.raises(ValidationFailed):
        services.cases.transition(admin, case.id, CaseStatus.READY, speciality="Cardiology")
    assert services.cases.get(case.id).speciality == "" and services.cases.get(case.id).status == CaseStatus.DRAFT


# --- 3. the red flags travel with the vitals ---------------------------------------------------------------
def test_recorded_vitals_keep_and_send_their_assessment(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    record = services.cases.record_vitals(admin, case.id, Vitals(systolic_mmhg=186, diastolic_mmhg=122,
                                                                 pulse_per_min=118, spo2_pct=93))
    assert record.assessment["level"] == 3 and record.assessment["lang"] == "en"
    codes = [f["code"] for f in record.assessment["flags"]]
    assert codes[0] == "hypertensive_crisis" and "low_spo2" in codes
    [sent] = changes(services, "vitals")
    assert sent["assessment"] == record.assessment
    assert validate("vitals", sent).assessment.flags[0].message.startswith("Hypertensive crisis")
    assert services.cases.get(case.id).vitals[0].assessment == record.assessment


def test_the_assessment_is_in_the_language_of_the_screen(services, admin):
    ravi = services.patients.register(admin, PatientForm(name="Ravi", sex="male", age_years=0, age_months=11))
    case = services.cases.open_case(admin, ravi.id)
    i18n.set_language("hi")
    try:
        record = services.cases.record_vitals(admin, case.id, Vitals(respiratory_rate_per_min=54, weight_kg=8.0))
    finally:
        i18n.set_language(None)
    assert record.assessment["lang"] == "hi"
    assert "आयु के अनुसार तेज़ साँस" in record.assessment["flags"][0]["message"]
    assert record.assessment["news2"] is None and "16" in record.assessment["note"]


def test_a_correction_and_the_set_it_replaces_keep_their_own_assessments(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    first = services.cases.record_vitals(admin, case.id, Vitals(systolic_mmhg=130, diastolic_mmhg=80))
    services.cases.correct_vitals(admin, first.id, Vitals(systolic_mmhg=190, diastolic_mmhg=80))
    sent = changes(services, "vitals")
    assert [c["assessment"]["level"] for c in sent] == [0, 0, 3]   # recorded; marked in error; the correction
    assert sent[1]["status"] == "entered-in-error"


def test_seeded_vitals_carry_their_assessment(services, admin):
    facility = services.auth.facility()
    seed_demo(services.store, admin, facility.id, patients=20, cases=10)
    sent = changes(services, "vitals")
    assert len(sent) == 10 and all(c["assessment"]["lang"] == "en" for c in sent)
    assert all(validate("vitals", c).assessment is not None for c in sent)


# --- 4. questions and answers ------------------------------------------------------------------------------
def test_a_pulled_question_asks_for_more_and_the_answer_sends_the_case_back(services, admin, paramedic, kamla):
    case = queued(services, admin, kamla)
    pull(services, ("question", "q-1", records.question("q-1", case.id)))
    assert services.cases.get(case.id).status == CaseStatus.INFO_REQUESTED
    [q] = services.consultation.questions(case.id)
    assert q.waiting and q.text.startswith("A photo of the rash") and q.asked_by == "Dr Anil Mehta"
    assert [c.case_id for c in services.cases.home().info_requested] == [case.id]
    # While the doctor waits: new vitals and a photo, not new complaints.
    services.cases.record_vitals(paramedic, case.id, Vitals(systolic_mmhg=170, diastolic_mmhg=104))
    services.attachments.attach(paramedic, case.id, AttachmentKind.PHOTO, _jpeg(), "image/jpeg", "rash, daylight")
    with pytest.raises(InvalidTransition, match="complaints stay"):
        services.cases.save(paramedic, case.id, CaseForm(complaints=("Fever",)))
    with pytest.raises(ValidationFailed):
        services.cases.answer(paramedic, "q-1", "   ")
    answered = services.cases.answer(paramedic, "q-1", "Photo added. The rash itches at night.")
    assert answered.status == CaseStatus.QUEUED
    [sent] = changes(services, "answer")
    assert sent == validate("answer", sent).wire()
    assert (sent["question_id"], sent["case_id"], sent["answered_by"]) == ("q-1", case.id, "Sunita Yadav")
    assert changes(services, "case")[-1]["status"] == "queued"
    [q] = services.consultation.questions(case.id)
    assert not q.waiting and q.answers[0].text == "Photo added. The rash itches at night."
    with pytest.raises(InvalidTransition):
        services.cases.answer(paramedic, "q-1", "Once more")
    assert services.cases.home().info_requested == []


def test_the_case_waits_for_every_open_question(services, admin, kamla):
    case = queued(services, admin, kamla)
    pull(services, ("question", "q-1", records.question("q-1", case.id)),
         ("question", "q-2", records.question("q-2", case.id, text="Is she pregnant?")))
    services.cases.answer(admin, "q-1", "Photo added.")
    assert services.cases.get(case.id).status == CaseStatus.INFO_REQUESTED
    assert services.cases.answer(admin, "q-2", "No.").status == CaseStatus.QUEUED


def test_the_hubs_older_info_request_does_not_undo_an_answer_given_here(services, admin, kamla):
    case = queued(services, admin, kamla)
    pull(services, ("case", case.id, records.case(case.id, kamla.id, status="info_requested")),
         ("question", "q-1", records.question("q-1", case.id)))
    assert services.cases.get(case.id).status == CaseStatus.INFO_REQUESTED
    services.cases.answer(admin, "q-1", "Photo added.")
    # The hub changed the case (a note) before it saw the answer: the case stays queued here.
    pull(services, ("case", case.id, records.case(case.id, kamla.id, status="info_requested", doctor_note="Waiting")))
    assert services.cases.get(case.id).status == CaseStatus.QUEUED
    # A new question asks again.
    pull(services, ("question", "q-2", records.question("q-2", case.id, text="And her BP now?")))
    assert services.cases.get(case.id).status == CaseStatus.INFO_REQUESTED


def test_another_pcs_answer_sends_the_case_back_here_too(services, admin, kamla):
    case = queued(services, admin, kamla)
    pull(services, ("question", "q-1", records.question("q-1", case.id)))
    pull(services, ("answer", "a-1", records.answer("a-1", "q-1", case.id)), device="pc-2")
    assert services.cases.get(case.id).status == CaseStatus.QUEUED
    [q] = services.consultation.questions(case.id)
    assert q.answers[0].answered_by == "Sunita Yadav"


def test_a_question_on_a_case_prescribed_meanwhile_does_not_move_it(services, admin, kamla):
    case = queued(services, admin, kamla)
    pull(services, ("case", case.id, records.case(case.id, kamla.id, status="prescribed")))
    pull(services, ("question", "q-1", records.question("q-1", case.id)))
    assert services.cases.get(case.id).status == CaseStatus.PRESCRIBED
    pull(services, ("question", "q-1", records.question("q-1", case.id, status="withdrawn")), version=2)
    [q] = services.consultation.questions(case.id)
    assert q.status == QuestionStatus.WITHDRAWN and not q.waiting


def test_a_question_before_its_case_waits_for_it(services, admin, kamla):
    pull(services, ("question", "q-1", records.question("q-1", "c-elsewhere")))
    with services.store.read() as s:
        assert s.scalars(select(InboxRow.waiting_for)).all() == ["case:c-elsewhere"]
    assert services.consultation.questions("c-elsewhere") == []


# --- 5. prescriptions ---------------------------------------------------------------------------------------
@pytest.fixture
def hub_key(services):
    key = Ed25519PrivateKey.generate()
    services.store.set_setting("hub_public_key", records.public_key_b64(key))
    return key


def test_a_signed_prescription_is_checked_and_shown_with_everything_the_doctor_wrote(services, admin, kamla, hub_key):
    case = queued(services, admin, kamla)
    pull(services, ("prescription", "rx-1", records.prescription("rx-1", case.id, kamla.id, hub_key)))
    [rx] = services.consultation.prescriptions(case.id)
    assert rx.signature_ok and rx.status == PrescriptionStatus.ISSUED
    assert rx.prescriber.registration_number == "UPMC-48213" and rx.diagnosis == "Hypertensive urgency"
    assert (rx.medicines[0].name, rx.medicines[0].frequency, rx.medicines[0].duration_days) == ("AMLODIPINE", "OD", 30)
    assert rx.referral.to == "CHC Sidhauli" and rx.follow_up.isoformat() == "2026-12-08"
    [line] = services.cases.home().prescriptions
    assert (line.case_id, line.patient.name, line.doctor, line.medicines, line.signature_ok) == (
        case.id, "Kamla Devi", "Dr Anil Mehta", 1, True)
    with services.store.read() as s:
        stored = s.get(PrescriptionRow, "rx-1").payload
    assert stored == records.prescription("rx-1", case.id, kamla.id, hub_key) | {"signature": stored["signature"]}


def test_a_tampered_prescription_is_kept_and_marked_as_failing(services, admin, kamla, hub_key):
    case = queued(services, admin, kamla)
    payload = records.prescription("rx-1", case.id, kamla.id, hub_key)
    payload["medicines"][0]["strength"] = "6 mg"    # one byte of a medicine
    pull(services, ("prescription", "rx-1", payload))
    [rx] = services.consultation.prescriptions(case.id)
    assert not rx.signature_ok and rx.medicines[0].strength == "6 mg"
    assert services.cases.home().prescriptions[0].signature_ok is False


def test_without_the_hubs_key_a_prescription_is_never_taken_for_checked(services, admin, kamla):
    case = queued(services, admin, kamla)
    pull(services, ("prescription", "rx-1", records.prescription("rx-1", case.id, kamla.id)))
    assert not services.consultation.prescriptions(case.id)[0].signature_ok
    services.store.set_setting("hub_public_key", records.public_key_b64(Ed25519PrivateKey.generate()))
    pull(services, ("prescription", "rx-2", records.prescription("rx-2", case.id, kamla.id)))
    assert [p.signature_ok for p in services.consultation.prescriptions(case.id)] == [False, False], "another key"


def test_a_cancellation_replaces_the_status_and_the_signature_still_holds(services, admin, kamla, hub_key):
    case = queued(services, admin, kamla)
    issued = records.prescription("rx-1", case.id, kamla.id, hub_key)
    pull(services, ("prescription", "rx-1", issued))
    cancelled = issued | {"status": "cancelled", "cancelled_reason": "Dose: once a day",
                          "cancelled_at": "2026-12-01T09:00:00+00:00"}
    pull(services, ("prescription", "rx-1", cancelled), version=2)
    pull(services, ("prescription", "rx-1", issued))      # the older version again (a resync): changes nothing
    [rx] = services.consultation.prescriptions(case.id)
    assert (rx.status, rx.cancelled_reason, rx.signature_ok) == (PrescriptionStatus.CANCELLED, "Dose: once a day", True)


def test_a_prescription_from_a_device_is_refused(services, admin, kamla, hub_key):
    case = queued(services, admin, kamla)
    pull(services, ("prescription", "rx-1", records.prescription("rx-1", case.id, kamla.id, hub_key)), device="pc-9")
    assert services.consultation.prescriptions(case.id) == []
    [held] = [r for r in LocalSync(services.store).refused() if r.kind == "pulled"]
    assert "only by the hub" in held.reason and "Prescription for Kamla Devi" in held.what


def test_a_prescription_before_its_case_is_applied_when_the_case_comes(services, admin, kamla, hub_key):
    pull(services, ("prescription", "rx-1", records.prescription("rx-1", "c-2", kamla.id, hub_key)))
    assert services.consultation.received() == []
    pull(services, ("case", "c-2", records.case("c-2", kamla.id)), device="pc-2")
    [rx] = services.consultation.received()
    assert rx.case_id == "c-2" and rx.signature_ok


def test_the_newest_prescription_is_listed_first(services, admin, kamla, hub_key):
    case = queued(services, admin, kamla)
    pull(services, ("prescription", "rx-old", records.prescription("rx-old", case.id, kamla.id, hub_key,
                                                                   issued_at="2026-11-01T08:00:00+00:00")),
         ("prescription", "rx-new", records.prescription("rx-new", case.id, kamla.id, hub_key)))
    assert [p.prescription_id for p in services.cases.home().prescriptions] == ["rx-new", "rx-old"]


def _jpeg() -> bytes:
    import cv2
    import numpy as np

    img = np.zeros((48, 64, 3), np.uint8)
    cv2.circle(img, (32, 24), 12, (40, 80, 200), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


def test_every_case_state_has_its_words_its_moves_and_its_fhir_status():
    from spoke_client.services.cases import TRANSITIONS, status_label
    from spoke_client.services.fhir import ENCOUNTER_STATUS

    for status in CaseStatus:
        assert status_label(status) and status in TRANSITIONS and status in ENCOUNTER_STATUS
    assert TRANSITIONS[CaseStatus.INFO_REQUESTED] == {CaseStatus.QUEUED, CaseStatus.CLOSED, CaseStatus.CANCELLED}
