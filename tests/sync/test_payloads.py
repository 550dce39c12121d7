"""Each entity's payload is declared once (sync/payloads.py): the spoke's domain, tables and forms agree with it."""

from dataclasses import fields

import pytest

import typing

from spoke_client.db.models import AnswerRow, AttachmentRow, CaseRow, ConsentRow, PatientRow, QuestionRow, VitalsRow
from spoke_client.domain import consultation, model, vitals
from sync import payloads
from sync.payloads import PayloadInvalid, validate
from tests.sync import records


@pytest.mark.parametrize("enum, vocabulary", [
    (model.CaseStatus, payloads.CASE_STATES), (model.Sex, payloads.SEXES), (model.Relation, payloads.RELATIONS),
    (model.Role, payloads.ROLES), (model.VitalsStatus, payloads.VITALS_STATES),
    (vitals.Consciousness, payloads.CONSCIOUSNESS), (vitals.GlucoseKind, payloads.GLUCOSE_KINDS),
    (model.ConsentGiver, payloads.CONSENT_GIVERS), (model.ConsentMethod, payloads.CONSENT_METHODS),
    (model.AttachmentKind, payloads.ATTACHMENT_KINDS), (model.AttachmentStatus, payloads.ATTACHMENT_STATES),
])
def test_the_domains_words_are_the_wires_words(enum, vocabulary):
    assert tuple(e.value for e in enum) == vocabulary


@pytest.mark.parametrize("enum, payload_model", [
    (consultation.QuestionStatus, payloads.QuestionPayload), (consultation.PrescriptionStatus, payloads.PrescriptionPayload),
])
def test_the_hubs_words_for_its_records_are_the_domains(enum, payload_model):
    assert tuple(e.value for e in enum) == typing.get_args(payload_model.model_fields["status"].annotation)


@pytest.mark.parametrize("domain, payload_model, not_kept", [
    (consultation.Prescription, payloads.PrescriptionPayload, {"key_id", "signature"}),   # kept in the payload
    (consultation.Medicine, payloads.Medicine, set()),
    (consultation.Prescriber, payloads.Prescriber, set()),
    (consultation.Referral, payloads.Referral, set()),
])
def test_a_received_prescription_reads_every_field_the_hub_sends(domain, payload_model, not_kept):
    assert set(payload_model.model_fields) - not_kept <= {f.name for f in fields(domain)}


def test_the_plausible_ranges_are_the_same_at_the_form_and_on_the_wire():
    assert vitals.PLAUSIBLE == payloads.VITALS_RANGES


@pytest.mark.parametrize("payload_model, row, not_stored", [
    (payloads.PatientPayload, PatientRow, {"field_stamps"}),
    (payloads.CasePayload, CaseRow, {"doctor_note"}),          # kept as hub_note
    (payloads.ConsentPayload, ConsentRow, set()),
    (payloads.AttachmentPayload, AttachmentRow, set()),
    (payloads.VitalsPayload, VitalsRow, {"vitals"}),            # flattened into the measurement columns
    (payloads.QuestionPayload, QuestionRow, set()),
    (payloads.AnswerPayload, AnswerRow, set()),
])
def test_every_field_of_a_payload_has_its_column(payload_model, row, not_stored):
    columns = set(row.__table__.columns.keys())
    assert set(payload_model.model_fields) - not_stored <= columns


def test_a_vitals_set_has_the_same_measurements_everywhere():
    measured = tuple(f.name for f in fields(vitals.Vitals))
    assert measured == tuple(payloads.VitalsValues.model_fields)
    assert set(measured) <= set(VitalsRow.__table__.columns.keys())


@pytest.mark.parametrize("entity, bad, field", [
    ("patient", {"birth_date": "31/12/1990"}, "birth_date"),
    ("patient", {"birth_date": 662601600}, "birth_date"),
    ("patient", {"abha_number": "91-1234-5678-9012"}, "abha_number"),
    ("patient", {"name": ""}, "name"),
    ("patient", {"_fields": {"name": ["१७९६०००००००००००-०००००-C1", ""]}}, "_fields.name.0"),
    ("case", {"status": "pwned"}, "status"),
    ("case", {"priority": 7}, "priority"),
    ("case", {"complaints": ["Fever"] * 51}, "complaints"),
    ("vitals", {"vitals": {"pulse_per_min": 811}}, "vitals.pulse_per_min"),
    ("vitals", {"vitals": {"temperature_c": float("inf")}}, "vitals.temperature_c"),
    ("vitals", {"recorded_at": "2026-12-01T08:30:00"}, "recorded_at"),
    ("consent", {"method": "telepathy"}, "method"),
    ("attachment", {"sha256": "A" * 64}, "sha256"),
    ("attachment", {"size_bytes": -1}, "size_bytes"),
    ("patient", {"address": "House 12\x00"}, "address"),        # PostgreSQL's text cannot hold NUL
    ("case", {"history": "Fever\x00 for 3 days"}, "history"),
])
def test_a_bad_value_is_refused_with_its_field(entity, bad, field):
    make = {"patient": lambda: records.patient("p-1"), "case": lambda: records.case("c-1", "p-1"),
            "vitals": lambda: records.vitals("v-1", "c-1"), "consent": lambda: records.consent("k-1", "c-1"),
            "attachment": lambda: records.attachment("a-1", "c-1")}[entity]
    payload = make() | bad
    with pytest.raises(PayloadInvalid) as refused:
        validate(entity, payload, strict_keys=True)
    assert refused.value.field == field and refused.value.reason


def test_text_may_hold_any_character_but_nul():
    kept = validate("case", records.case("c-1", "p-1", history="Fever\n3 days — बुखार\ttab"))
    assert kept.history == "Fever\n3 days — बुखार\ttab"
    with pytest.raises(PayloadInvalid) as refused:
        validate("case", records.case("c-1", "p-1") | {"history": "a\x00b"})
    assert (refused.value.field, refused.value.reason) == ("history", "must be text without a NUL character")


def test_unknown_keys_are_refused_by_the_hub_and_ignored_by_a_spoke():
    payload = records.patient("p-1") | {"blood_group": "B+"}
    with pytest.raises(PayloadInvalid, match="blood_group"):
        validate("patient", payload, strict_keys=True)
    assert validate("patient", payload).name == "Kamla Devi"
    legacy = records.case("c-1", "p-1") | {"vitals": [], "consent": None}   # what spokes of 0.1 sent
    assert "vitals" not in validate("case", legacy, strict_keys=True).wire()


def test_the_payload_id_must_be_the_records_id():
    with pytest.raises(PayloadInvalid, match="id"):
        validate("patient", records.patient("p-1"), entity_id="p-2")
