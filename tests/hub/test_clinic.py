"""The doctor's work at the hub, at the service layer: sign-in, the queue, taking a case, asking the spoke, and the
e-prescription with the Telemedicine Practice Guidelines' rules and the hub's signature."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sync import prescriptions
from sync.hub.clinic import MedicineDraft, PrescriptionDraft, PrescriptionRefused, per_day, quantity
from sync.hub.errors import HubError
from sync.hub.staff import LOCK_FOR, SESSION_IDLE
from tests.sync import records


def queued(spoke, case_id: str, patient_id: str, *, priority: int = 0, speciality: str = "", allergies=(),
           name: str = "Kamla Devi", birth: str = "1966-01-01"):
    changes = [spoke.change("patient", patient_id, records.patient(patient_id, name=name, birth_date=birth,
                                                                   allergies=list(allergies))),
               spoke.change("case", case_id, records.case(case_id, patient_id, priority=priority, speciality=speciality)),
               spoke.change("vitals", f"v-{case_id}", records.vitals(f"v-{case_id}", case_id, pulse_per_min=118) | {
                   "assessment": {"level": 2, "news2": 5, "flags": [
                       {"code": "hypertensive_crisis", "severity": 3, "message": "Hypertensive crisis (> 180/120)"}]}})]
    result = spoke.client.push(spoke.batch(changes))
    assert len(result.accepted) == 3, result


def draft(*medicines: MedicineDraft, diagnosis="Hypertensive urgency", icd10="I10") -> PrescriptionDraft:
    return PrescriptionDraft(diagnosis=diagnosis, icd10_code=icd10, medicines=list(medicines), advice="Low salt diet",
                             follow_up=date.today() + timedelta(days=7))


def test_sign_in_lock_out_and_session_end(clinic, monkeypatch):
    hub, _org, _admin, mehta, _rao = clinic
    signed = hub.sign_in("Dr.Mehta", "mehta-pass-12")
    assert signed.staff.id == mehta.id and hub.session_of(signed.token)[1] == signed.csrf
    for _ in range(5):
        with pytest.raises(HubError) as wrong:
            hub.sign_in("dr.mehta", "wrong-password")
        assert wrong.value.status == 401
    with pytest.raises(HubError) as locked:
        hub.sign_in("dr.mehta", "mehta-pass-12")
    assert locked.value.status == 423, "locked even with the right password"
    with pytest.raises(HubError) as unknown:
        hub.sign_in("nobody", "whatever-it-is")
    assert unknown.value.code == "bad_login"

    import sync.hub.staff as staff

    later = staff.utcnow() + LOCK_FOR + timedelta(minutes=1)
    monkeypatch.setattr(staff, "utcnow", lambda: later)
    assert hub.sign_in("dr.mehta", "mehta-pass-12").staff.id == mehta.id, "the lock ends"
    idle = later + SESSION_IDLE + timedelta(minutes=1)
    monkeypatch.setattr(staff, "utcnow", lambda: idle)
    with pytest.raises(HubError) as ended:
        hub.session_of(signed.token)
    assert ended.value.code in ("session_ended", "not_signed_in")
    hub.sign_out(signed.token)


def test_the_queue_red_flags_first_then_the_longest_waiting_with_filters(clinic, facilities, spoke_factory):
    hub, _org, _admin, mehta, rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-calm", "p-1", priority=0)
    queued(pc, "c-urgent", "p-2", priority=2, speciality="Cardiology")
    queued(pc, "c-child", "p-3", priority=1, speciality="Paediatrics", birth=(date.today() - timedelta(days=330)).isoformat())
    other = spoke_factory(facilities[1])          # a facility this hub does not serve
    queued(other, "c-elsewhere", "p-9", priority=3)
    order = [q.case_id for q in hub.queue(mehta)]
    assert order == ["c-urgent", "c-child", "c-calm"]
    assert [q.case_id for q in hub.queue(mehta, speciality="Paediatrics")] == ["c-child", "c-calm"], \
        "a case for any doctor shows under every speciality"
    child = next(q for q in hub.queue(rao) if q.case_id == "c-child")
    assert child.age == "10 m" and child.facility == "HWC Rampur" and child.complaints == "Fever"
    assert hub.queue(mehta, facility_id=facilities[1]) == []


def test_two_doctors_never_answer_the_same_case(clinic, facilities, spoke_factory):
    hub, _org, _admin, mehta, rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1")
    hub.take(mehta, "c-1")
    with pytest.raises(HubError) as taken:
        hub.take(rao, "c-1")
    assert taken.value.status == 409 and "Dr Rajesh Mehta" in taken.value.message
    assert hub.record("case", "c-1").payload["status"] == "in_consultation"
    with pytest.raises(HubError):
        hub.release(rao, "c-1")
    hub.release(mehta, "c-1")
    assert hub.record("case", "c-1").payload["status"] == "queued"
    hub.take(rao, "c-1")


def test_asking_the_spoke_and_its_answer_brings_the_case_back_to_the_queue(clinic, facilities, spoke_factory):
    hub, _org, _admin, mehta, _rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1")
    hub.take(mehta, "c-1")
    question = hub.ask(mehta, "c-1", "A photo of the rash in daylight, please")
    assert hub.record("case", "c-1").payload["status"] == "info_requested"
    [pulled] = [c for c in pc.client.pull(0).changes if c.entity == "question"]
    assert pulled.payload["text"].startswith("A photo of the rash")
    answer = {"id": "a-1", "question_id": question["id"], "case_id": "c-1", "text": "Photo attached, taken at noon",
              "answered_at": "2026-12-01T09:00:00+00:00", "answered_by": "Sunita"}
    assert pc.client.push(pc.batch([pc.change("answer", "a-1", answer)])).accepted
    assert hub.record("question", question["id"]).payload["status"] == "answered"
    assert hub.record("case", "c-1").payload["status"] == "queued"
    view = hub.case_view(mehta, "c-1")
    assert [a["text"] for a in view.answers] == ["Photo attached, taken at noon"]


def test_the_rules_refuse_prohibited_list_b_on_a_first_consult_and_list_a_without_video(clinic, facilities,
                                                                                       spoke_factory, small_formulary):
    hub, _org, _admin, mehta, _rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1")
    hub.take(mehta, "c-1")
    cases = [
        (MedicineDraft(formulary_id=small_formulary["Morphine"], dose="1 tablet", frequency="BD", duration_days=3),
         "Morphine may not be prescribed by telemedicine"),
        (MedicineDraft(formulary_id=small_formulary["Clopidogrel"], dose="1 tablet", frequency="OD", duration_days=30),
         "Clopidogrel is on list B: it may be added only on a follow-up consultation"),
        (MedicineDraft(formulary_id=small_formulary["Amlodipine"], dose="1 tablet", frequency="OD", duration_days=30),
         "Amlodipine is on list A: it may be prescribed only in a video consultation"),
        (MedicineDraft(name="", dose="", frequency=""), "This line has no medicine"),
    ]
    for medicine, sentence in cases:
        with pytest.raises(PrescriptionRefused) as refused:
            hub.issue(mehta, "c-1", draft(medicine))
        assert refused.value.problems[0][0] == "medicines.0" and sentence in refused.value.problems[0][1]
    twice = MedicineDraft(formulary_id=small_formulary["Paracetamol"], dose="1 tablet", frequency="TDS", duration_days=3)
    with pytest.raises(PrescriptionRefused) as refused:
        hub.issue(mehta, "c-1", draft(twice, twice))
    assert "already on line 1" in refused.value.problems[0][1]
    assert hub.record("case", "c-1").payload["status"] == "in_consultation", "nothing was issued"


def test_a_prescription_is_signed_final_and_a_correction_cancels_it(clinic, facilities, spoke_factory, small_formulary):
    hub, _org, _admin, mehta, _rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1")
    hub.take(mehta, "c-1")
    issued = hub.issue(mehta, "c-1", draft(
        MedicineDraft(formulary_id=small_formulary["Paracetamol"], dose="1 tablet", frequency="TDS", duration_days=5,
                      instructions="after food"),
        MedicineDraft(name="Oral rehydration salts", dose="1 sachet", frequency="SOS", duration_days=0)))
    assert issued["prescriber"]["registration_number"] == "UPMC 45678"
    assert issued["consultation_type"] == "first" and issued["consultation_mode"] == "store_and_forward"
    assert issued["medicines"][0]["name"] == "PARACETAMOL" and issued["medicines"][0]["quantity"] == "15 tablets"
    assert issued["icd10_title"] == "Essential (primary) hypertension"
    prescriptions.verify(issued, hub.public_key())
    tampered = {**issued, "medicines": [{**issued["medicines"][0], "dose": "2 tablets"}, issued["medicines"][1]]}
    with pytest.raises(prescriptions.SignatureInvalid):
        prescriptions.verify(tampered, hub.public_key())
    assert hub.record("case", "c-1").payload["status"] == "prescribed"
    pulled = [c for c in pc.client.pull(0).changes if c.entity == "prescription"]
    assert [c.payload["id"] for c in pulled] == [issued["id"]]
    prescriptions.verify(pulled[0].payload, hub.public_key())

    cancelled = hub.cancel(mehta, issued["id"], "Wrong dose of paracetamol")
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_reason"] == "Wrong dose of paracetamol"
    prescriptions.verify(cancelled, hub.public_key()), "the cancellation does not touch what was signed"
    again = hub.issue(mehta, "c-1", draft(MedicineDraft(formulary_id=small_formulary["Paracetamol"], dose="1 tablet",
                                                        frequency="BD", duration_days=5)), replaces=issued["id"])
    assert again["replaces_id"] == issued["id"]
    view = hub.case_view(mehta, "c-1")
    assert [(p["id"], p["status"]) for p in view.prescriptions] == [(issued["id"], "cancelled"), (again["id"], "issued")]


def test_a_follow_up_with_the_same_doctor_allows_list_b_and_an_allergy_needs_an_override(clinic, facilities,
                                                                                        spoke_factory, small_formulary):
    hub, _org, _admin, mehta, rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1", allergies=["Amoxicillin"])
    hub.take(mehta, "c-1")
    hub.issue(mehta, "c-1", draft(MedicineDraft(formulary_id=small_formulary["Paracetamol"], dose="1 tablet",
                                                frequency="TDS", duration_days=3)))
    pc.client.push(pc.batch([pc.change("case", "c-2", records.case("c-2", "p-1"))]))   # the patient comes back
    hub.take(mehta, "c-2")
    clopidogrel = MedicineDraft(formulary_id=small_formulary["Clopidogrel"], dose="1 tablet", frequency="OD",
                                duration_days=30)
    issued = hub.issue(mehta, "c-2", draft(clopidogrel))
    assert issued["consultation_type"] == "follow_up", "same doctor, same condition, within 6 months"
    amoxicillin = MedicineDraft(formulary_id=small_formulary["Amoxicillin"], dose="1 capsule", frequency="TDS",
                                duration_days=5)
    pc.client.push(pc.batch([pc.change("case", "c-3", records.case("c-3", "p-1"))]))
    hub.take(rao, "c-3")
    with pytest.raises(PrescriptionRefused) as refused:
        hub.issue(rao, "c-3", draft(amoxicillin, diagnosis="Pharyngitis", icd10="J02.9"))
    assert "allergic to Amoxicillin" in refused.value.problems[0][1]
    amoxicillin.allergy_override = "Tolerated a full course in 2025; the reaction recorded was a rash to another drug"
    issued = hub.issue(rao, "c-3", draft(amoxicillin, diagnosis="Pharyngitis", icd10="J02.9"))
    assert issued["allergy_overrides"] and issued["allergies_noted"] == ["Amoxicillin"]
    assert issued["consultation_type"] == "first", "another doctor: a first consultation"


def test_every_view_of_a_case_is_audited_and_other_hubs_see_nothing(clinic, facilities, spoke_factory):
    hub, org, admin, mehta, _rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1", allergies=["Sulfa drugs"])
    view = hub.case_view(mehta, "c-1")
    assert view.patient["allergies"] == ["Sulfa drugs"] and view.facility == "HWC Rampur"
    assert view.vitals[0]["assessment"]["flags"][0]["code"] == "hypertensive_crisis"
    from sqlalchemy import select

    from sync.hub.models import HubAudit

    with hub.session() as s:
        assert s.scalars(select(HubAudit.action).where(HubAudit.staff_id == mehta.id, HubAudit.entity_id == "c-1")).all() \
            == ["view"]
    elsewhere = hub.create_hub("Medical College Lucknow")
    stranger = hub.add_staff(None, elsewhere, "dr.x", "Dr X Y", "x-password-12", "doctor", qualification="MBBS",
                             registration_number="UPMC 1")
    with pytest.raises(HubError) as hidden:
        hub.case_view(stranger, "c-1")
    assert hidden.value.status == 404


def test_quantities_and_frequencies():
    assert per_day("1-0-1") == 2 and per_day("bd") == 2 and per_day("SOS") == 0 and per_day("weekly") is None
    assert quantity("1 tablet", "BD", 5) == "10 tablets" and quantity("5 mL", "TDS", 5) == "75 mL"
    assert quantity("1/2 tablet", "OD", 10) == "5 tablets" and quantity("1 tablet", "SOS", 3) == ""
