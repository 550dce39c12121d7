"""FHIR R4 export, validated with fhir.resources' R4B models (R4B equals R4 for these resources)."""

from datetime import date, datetime, timezone

from fhir.resources.R4B.bundle import Bundle

from spoke_client.domain.abha import make_abha_number
from spoke_client.domain.model import (
    Case,
    CaseStatus,
    Consent,
    ConsentGiver,
    ConsentMethod,
    Facility,
    Patient,
    Relation,
    Sex,
    VitalsRecord,
    VitalsStatus,
)
from spoke_client.domain.vitals import GlucoseKind, Vitals
from spoke_client.services.fhir import bundle_json, case_bundle

T0 = datetime(2026, 11, 24, 5, 30, tzinfo=timezone.utc)
FACILITY = Facility("f-1", "HWC Rampur", "HWC-UP-0042", "Sitapur", "Uttar Pradesh")
ABHA = make_abha_number("9112345678901")


def kamla() -> Patient:
    return Patient(id="p-1", name="Kamla Devi", sex=Sex.FEMALE, birth_date=date(1966, 11, 24), birth_date_approximate=True,
                   relative_name="Ramesh Yadav", relative_relation=Relation.WIFE_OF, phone="9876543210", village="Rampur",
                   abha_number=ABHA, abha_address="kamla.devi@abdm")


def full_case() -> Case:
    wrong = VitalsRecord("v-1", "c-1", T0, "u-1", Vitals(systolic_mmhg=168, diastolic_mmhg=122),
                         status=VitalsStatus.ENTERED_IN_ERROR)
    right = VitalsRecord("v-2", "c-1", T0, "u-1", Vitals(
        systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118, respiratory_rate_per_min=22, temperature_c=37.2,
        spo2_pct=93, weight_kg=52.0, height_cm=150.0, glucose_mg_dl=142, glucose_kind=GlucoseKind.RANDOM),
        replaces_id="v-1", source="BP monitor, room 1")
    consent = Consent("k-1", "c-1", ConsentGiver.PATIENT, "Kamla Devi", "", ConsentMethod.VERBAL, T0, "u-1")
    return Case(id="c-1", patient_id="p-1", status=CaseStatus.QUEUED, complaints=("Headache",), complaint_text="giddiness",
                created_at=T0, updated_at=T0, vitals=(wrong, right), consent=consent)


def entries(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_code(bundle: dict, code: str, status: str = "final") -> dict:
    [obs] = [o for o in entries(bundle, "Observation") if o["code"]["coding"][0]["code"] == code and o["status"] == status]
    return obs


def test_full_case_validates_as_r4_and_carries_the_right_codes():
    b = case_bundle(FACILITY, kamla(), full_case())
    model = Bundle.model_validate(b)
    assert model.type == "collection" and len(model.entry) == len(b["entry"])
    [patient] = entries(b, "Patient")
    hin = [i for i in patient["identifier"] if i["type"]["coding"][0]["code"] == "HIN"][0]
    assert hin["value"] == f"{ABHA[:2]}-{ABHA[2:6]}-{ABHA[6:10]}-{ABHA[10:]}"
    assert hin["type"]["coding"][0]["system"] == "https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code"
    assert patient["_birthDate"]["extension"][0]["valueBoolean"] is True and patient["gender"] == "female"
    [enc] = entries(b, "Encounter")
    assert enc["class"]["code"] == "VR" and enc["status"] == "planned"
    assert [r["text"] for r in enc["reasonCode"]] == ["Headache", "giddiness"]

    bp = by_code(b, "85354-9")
    comps = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert comps["8480-6"] == {"value": 186, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    assert comps["8462-4"]["value"] == 122
    assert bp["device"] == {"display": "BP monitor, room 1"}
    assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
    spo2 = by_code(b, "2708-6")
    assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5"] and spo2["valueQuantity"]["code"] == "%"
    assert by_code(b, "8310-5")["valueQuantity"]["code"] == "Cel"
    assert by_code(b, "8867-4")["valueQuantity"]["value"] == 118
    assert by_code(b, "9279-1")["valueQuantity"]["code"] == "/min"
    assert by_code(b, "39156-5")["valueQuantity"]["value"] == 23.1
    glucose = by_code(b, "41653-7")
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory" and glucose["note"][0]["text"] == "random"
    wrong_bp = by_code(b, "85354-9", status="entered-in-error")
    assert wrong_bp["component"][0]["valueQuantity"]["value"] == 168
    [consent] = entries(b, "Consent")
    assert "verbal" in consent["policyRule"]["text"]
    refs = {e["fullUrl"] for e in b["entry"]}
    for o in entries(b, "Observation"):
        assert o["subject"]["reference"] in refs and o["encounter"]["reference"] in refs


def test_export_is_deterministic():
    assert bundle_json(case_bundle(FACILITY, kamla(), full_case())) == bundle_json(case_bundle(FACILITY, kamla(), full_case()))


def test_minimal_case_validates():
    p = Patient(id="p-2", name="Ravi", sex=Sex.MALE, birth_date=date(2026, 1, 1), birth_date_approximate=False)
    c = Case(id="c-2", patient_id="p-2", status=CaseStatus.DRAFT, created_at=T0, updated_at=T0)
    b = case_bundle(FACILITY, p, c)
    Bundle.model_validate(b)
    assert [e["resource"]["resourceType"] for e in b["entry"]] == ["Patient", "Organization", "Encounter"]
    assert "identifier" not in b["entry"][0]["resource"]
