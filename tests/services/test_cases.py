"""Cases: vitals never overwritten, consent rules, the state machine, priority from red flags, home lists."""

import re
from datetime import date

import pytest
from sqlalchemy import select

from spoke_client.db.models import ChangeRow
from spoke_client.domain.errors import InvalidTransition, NotFound, ValidationFailed
from spoke_client.domain.model import CaseStatus, ConsentGiver, ConsentMethod, VitalsStatus
from spoke_client.domain.redflags import Severity
from spoke_client.domain.vitals import Vitals
from spoke_client.services.cases import CaseForm, status_label
from spoke_client.services.patients import PatientForm


@pytest.fixture
def kamla(services, admin):
    return services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))


@pytest.fixture
def ravi(services, admin):
    return services.patients.register(admin, PatientForm(name="Ravi", sex="male", age_years=0, age_months=11,
                                                         relative_name="Geeta Devi", relative_relation="S/o"))


def test_kamla_crisis_goes_to_the_top_of_home(services, admin, kamla, ravi):
    calm = services.cases.open_case(admin, ravi.id)
    services.cases.record_vitals(admin, calm.id, Vitals(pulse_per_min=110, respiratory_rate_per_min=30, weight_kg=8.5))
    case = services.cases.open_case(admin, kamla.id)
    services.cases.save_details(admin, case.id, CaseForm(complaints=("Headache", "Dizziness")))
    services.cases.record_vitals(admin, case.id, Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118,
                                                        spo2_pct=93))
    home = services.cases.home()
    assert [c.case_id for c in home.today] == [case.id, calm.id]
    assert home.today[0].priority == Severity.EMERGENCY
    assert home.today[0].complaints == "Headache, Dizziness"


def test_impossible_vitals_are_refused_and_nothing_is_written(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    with pytest.raises(ValidationFailed) as e:
        services.cases.record_vitals(admin, case.id, Vitals(pulse_per_min=811))
    assert e.value.for_field("pulse_per_min")
    assert services.cases.get(case.id).vitals == ()


def test_correction_keeps_both_sets(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    first = services.cases.record_vitals(admin, case.id, Vitals(systolic_mmhg=168, diastolic_mmhg=122))
    second = services.cases.correct_vitals(admin, first.id, Vitals(systolic_mmhg=186, diastolic_mmhg=122))
    vitals = services.cases.get(case.id).vitals
    assert [(v.id, v.status) for v in vitals] == [(first.id, VitalsStatus.ENTERED_IN_ERROR), (second.id, VitalsStatus.FINAL)]
    assert vitals[1].replaces_id == first.id and vitals[0].vitals.systolic_mmhg == 168
    with pytest.raises(InvalidTransition):
        services.cases.correct_vitals(admin, first.id, Vitals(systolic_mmhg=150, diastolic_mmhg=90))
    with services.store.read() as s:
        versions = [(c.entity_id, c.version) for c in s.scalars(select(ChangeRow).where(ChangeRow.entity == "vitals"))]
    assert (first.id, 1) in versions and (first.id, 2) in versions and (second.id, 1) in versions


def test_queue_needs_complaint_and_consent(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    with pytest.raises(ValidationFailed, match="complaint"):
        services.cases.transition(admin, case.id, CaseStatus.READY)
    services.cases.save_details(admin, case.id, CaseForm(complaints=("Fever",), duration="3 days"))
    services.cases.transition(admin, case.id, CaseStatus.READY)
    with pytest.raises(ValidationFailed, match="consent"):
        services.cases.transition(admin, case.id, CaseStatus.QUEUED)
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, "Kamla Devi", ConsentMethod.VERBAL)
    queued = services.cases.transition(admin, case.id, CaseStatus.QUEUED)
    assert queued.status == CaseStatus.QUEUED and queued.consent.method == ConsentMethod.VERBAL
    assert [c.case_id for c in services.cases.home().waiting_for_hub] == [case.id]
    with pytest.raises(InvalidTransition, match="gone to the hub"):
        services.cases.save_details(admin, case.id, CaseForm(complaints=("Cough",)))


def test_a_minor_needs_an_adults_consent(services, admin, ravi):
    case = services.cases.open_case(admin, ravi.id)
    with pytest.raises(ValidationFailed) as e:
        services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, "Ravi", ConsentMethod.VERBAL)
    assert "minor" in e.value.for_field("giver")
    c = services.cases.record_consent(admin, case.id, ConsentGiver.GUARDIAN, "Geeta Devi", ConsentMethod.VERBAL, "mother")
    assert c.giver == ConsentGiver.GUARDIAN and c.giver_relation == "mother"


@pytest.mark.parametrize("target", [CaseStatus.PRESCRIBED, CaseStatus.CLOSED, CaseStatus.QUEUED])
def test_transitions_outside_the_state_machine_are_refused(services, admin, kamla, target):
    case = services.cases.open_case(admin, kamla.id)
    services.cases.save_details(admin, case.id, CaseForm(complaints=("Fever",)))
    # Complaint and consent are there: what refuses the move is the state machine, not a missing field.
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, "Kamla Devi", ConsentMethod.VERBAL)
    with services.store.read() as s:
        logged = len(s.scalars(select(ChangeRow.change_id)).all())
    refused = f"A case that is 'Draft' cannot become '{status_label(target)}'."
    with pytest.raises(InvalidTransition, match=re.escape(refused)):
        services.cases.transition(admin, case.id, target)
    assert services.cases.get(case.id).status == CaseStatus.DRAFT
    with services.store.read() as s:
        assert len(s.scalars(select(ChangeRow.change_id)).all()) == logged, "a refused move writes nothing"
    if target == CaseStatus.QUEUED:
        # draft -> queued goes through ready (the editor's "send" does both), and that way it is allowed
        services.cases.transition(admin, case.id, CaseStatus.READY)
        assert services.cases.transition(admin, case.id, CaseStatus.QUEUED).status == CaseStatus.QUEUED


def test_cancelled_is_final(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    services.cases.transition(admin, case.id, CaseStatus.CANCELLED)
    with pytest.raises(InvalidTransition):
        services.cases.transition(admin, case.id, CaseStatus.DRAFT)


def test_pregnancy_suppresses_news2_but_not_the_crisis_flag(services, admin, kamla):
    young = services.patients.register(admin, PatientForm(name="Pooja Verma", sex="female", age_years=24))
    case = services.cases.open_case(admin, young.id)
    services.cases.save_details(admin, case.id, CaseForm(complaints=("Pregnancy check-up",), pregnant=True))
    services.cases.record_vitals(admin, case.id, Vitals(systolic_mmhg=182, diastolic_mmhg=112, pulse_per_min=90,
                                                        respiratory_rate_per_min=18, spo2_pct=98, temperature_c=36.8))
    c = services.cases.get(case.id)
    a = services.cases.assessment(c, young, date.today())
    assert a.news2 is None and a.news2_note
    assert any(f.code == "hypertensive_crisis" for f in a.flags)
    assert c.priority == Severity.EMERGENCY


def test_drafts_round_trip_and_stay_out_of_the_change_log(services, admin):
    services.drafts.save(admin.id, "case:x", "case", {"complaint_text": "bukhar"})
    assert services.drafts.load("case:x") == {"complaint_text": "bukhar"}
    with services.store.read() as s:
        assert not s.scalars(select(ChangeRow).where(ChangeRow.entity == "draft")).first()
    services.drafts.discard("case:x")
    assert services.drafts.load("case:x") is None


def test_viewing_a_case_is_audited(services, admin, paramedic, kamla):
    case = services.cases.open_case(admin, kamla.id)
    services.cases.view(paramedic, case.id)
    entries = services.audit.entries(admin, entity="case", entity_id=case.id)
    assert [(e.action, e.user_id) for e in entries][:1] == [("view", paramedic.id)]
    assert ("create", admin.id) in [(e.action, e.user_id) for e in entries]


def test_save_is_one_transaction_with_the_draft(services, admin, kamla):
    case = services.cases.open_case(admin, kamla.id)
    key = f"case:{case.id}"
    services.drafts.save(admin.id, key, "case", {"complaint_text": "bukhar"})
    with pytest.raises(NotFound, match="^The vitals being corrected are not part of this case.$"):
        # a correction of a vitals set that does not exist fails half-way through the save
        services.cases.save(admin, case.id, CaseForm(complaints=("Fever",)), vitals=Vitals(pulse_per_min=90),
                            correcting="no-such-vitals", draft_key=key)
    unchanged = services.cases.get(case.id)
    assert unchanged.complaints == () and unchanged.vitals == () and services.drafts.load(key) is not None
    saved = services.cases.save(admin, case.id, CaseForm(complaints=("Fever",)), vitals=Vitals(pulse_per_min=90),
                                draft_key=key)
    assert saved.complaints == ("Fever",) and len(saved.vitals) == 1 and services.drafts.load(key) is None
    assert saved.version == 2, "one save, one new version"
