"""A case as a FHIR R4 (4.0.1) Bundle: Patient, Organization, Encounter, vital-sign Observations, Consent."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from spoke_client.domain.abha import format_abha_number
from spoke_client.domain.model import Case, CaseStatus, Consent, Facility, Patient, VitalsRecord, VitalsStatus
from spoke_client.domain.vitals import GlucoseKind, bmi

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
NDHM_ID_TYPE = "https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code"
ABHA_SYSTEM = "https://healthid.ndhm.gov.in"     # the ABHA number and address namespace used in NRCeS examples
APPROXIMATE_BIRTH_DATE = "urn:spoke:birth-date-approximate"

ENCOUNTER_STATUS = {
    CaseStatus.DRAFT: "planned", CaseStatus.READY: "planned", CaseStatus.QUEUED: "planned",
    CaseStatus.IN_CONSULTATION: "in-progress", CaseStatus.INFO_REQUESTED: "in-progress",
    CaseStatus.PRESCRIBED: "finished", CaseStatus.CLOSED: "finished",
    CaseStatus.CANCELLED: "cancelled",
}

# (Vitals field, LOINC code, display, UCUM unit, unit display)
SIMPLE_VITALS = [
    ("pulse_per_min", "8867-4", "Heart rate", "/min", "beats/minute"),
    ("respiratory_rate_per_min", "9279-1", "Respiratory rate", "/min", "breaths/minute"),
    ("temperature_c", "8310-5", "Body temperature", "Cel", "C"),
    ("height_cm", "8302-2", "Body height", "cm", "cm"),
    ("weight_kg", "29463-7", "Body weight", "kg", "kg"),
]


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat(timespec="seconds")


def _ref(resource_id: str) -> dict:
    return {"reference": f"urn:uuid:{resource_id}"}


def _obs_id(record_id: str, code: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:spoke:vitals:{record_id}:{code}"))


def _quantity(value: float | int, code: str, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _concept(code: str, display: str, system: str = LOINC) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def patient_resource(p: Patient) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Patient", "id": p.id,
        "name": [{"text": p.name}],
        "gender": p.sex.value,
        "birthDate": p.birth_date.isoformat(),
    }
    if p.birth_date_approximate:
        # FHIR has no "approximate" flag on birthDate; a named extension keeps the fact.
        r["_birthDate"] = {"extension": [{"url": APPROXIMATE_BIRTH_DATE, "valueBoolean": True}]}
    identifiers = []
    if p.abha_number:
        identifiers.append({"type": {"coding": [{"system": NDHM_ID_TYPE, "code": "HIN", "display": "Health Insurance Number"}],
                                     "text": "ABHA number"},
                            "system": ABHA_SYSTEM, "value": format_abha_number(p.abha_number)})
    if p.abha_address:
        identifiers.append({"type": {"coding": [{"system": NDHM_ID_TYPE, "code": "ABHA", "display": "ABHA address"}],
                                     "text": "ABHA address"},
                            "system": ABHA_SYSTEM, "value": p.abha_address})
    if identifiers:
        r["identifier"] = identifiers
    if p.phone:
        r["telecom"] = [{"system": "phone", "value": p.phone, "use": "mobile"}]
    if p.village or p.address:
        address: dict[str, Any] = {"text": ", ".join(x for x in (p.address, p.village) if x)}
        if p.village:
            address["city"] = p.village
        r["address"] = [address]
    if p.relative_name:
        r["contact"] = [{"relationship": [{"text": p.relative_relation.value if p.relative_relation else "relative"}],
                         "name": {"text": p.relative_name}}]
    return r


def organization_resource(f: Facility) -> dict:
    return {"resourceType": "Organization", "id": f.id, "name": f.name,
            "identifier": [{"system": "urn:spoke:hwc-id", "value": f.hwc_id}],
            "address": [{"district": f.district, "state": f.state, "country": "IN"}]}


def encounter_resource(case: Case, patient: Patient, facility: Facility) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Encounter", "id": case.id, "status": ENCOUNTER_STATUS[case.status],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"},
        "subject": _ref(patient.id), "serviceProvider": _ref(facility.id),
    }
    if case.created_at:
        r["period"] = {"start": _iso(case.created_at)}
    reasons = list(case.complaints) + ([case.complaint_text] if case.complaint_text else [])
    if reasons:
        r["reasonCode"] = [{"text": x} for x in reasons]
    return r


def vitals_observations(rec: VitalsRecord, patient: Patient, case: Case) -> list[dict]:
    v = rec.vitals
    status = "entered-in-error" if rec.status == VitalsStatus.ENTERED_IN_ERROR else "final"

    def obs(code: str, display: str, category: str = "vital-signs", **rest) -> dict:
        o: dict[str, Any] = {
            "resourceType": "Observation", "id": _obs_id(rec.id, code), "status": status,
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category,
                                      "display": "Vital Signs" if category == "vital-signs" else "Laboratory"}]}],
            "code": _concept(code, display), "subject": _ref(patient.id), "encounter": _ref(case.id),
            "effectiveDateTime": _iso(rec.measured_at or rec.recorded_at),
        }
        if rec.source != "manual":
            o["device"] = {"display": rec.source}
        if rec.device_status:
            o["note"] = [{"text": "Device reported: " + "; ".join(rec.device_status)}]
        o.update(rest)
        return o

    out = []
    if v.systolic_mmhg is not None and v.diastolic_mmhg is not None:
        out.append(obs("85354-9", "Blood pressure panel with all children optional", component=[
            {"code": _concept("8480-6", "Systolic blood pressure"), "valueQuantity": _quantity(v.systolic_mmhg, "mm[Hg]", "mmHg")},
            {"code": _concept("8462-4", "Diastolic blood pressure"), "valueQuantity": _quantity(v.diastolic_mmhg, "mm[Hg]", "mmHg")},
        ]))
    for name, code, display, ucum, unit in SIMPLE_VITALS:
        value = getattr(v, name)
        if value is not None:
            out.append(obs(code, display, valueQuantity=_quantity(value, ucum, unit)))
    if v.spo2_pct is not None:
        o = obs("2708-6", "Oxygen saturation in Arterial blood", valueQuantity=_quantity(v.spo2_pct, "%", "%"))
        o["code"]["coding"].append({"system": LOINC, "code": "59408-5",
                                    "display": "Oxygen saturation in Arterial blood by Pulse oximetry"})
        out.append(o)
    b = bmi(v.weight_kg, v.height_cm)
    if b is not None:
        out.append(obs("39156-5", "Body mass index (BMI) [Ratio]", valueQuantity=_quantity(b, "kg/m2", "kg/m2")))
    if v.glucose_mg_dl is not None:
        kind = "fasting" if v.glucose_kind == GlucoseKind.FASTING else "random"
        out.append(obs("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer", category="laboratory",
                       valueQuantity=_quantity(v.glucose_mg_dl, "mg/dL", "mg/dL"), note=[{"text": kind}]))
    return out


def consent_resource(c: Consent, patient: Patient) -> dict:
    return {
        "resourceType": "Consent", "id": c.id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment",
                              "display": "Treatment"}]},
        "category": [_concept("59284-0", "Patient Consent")],
        "patient": _ref(patient.id),
        "dateTime": _iso(c.given_at),
        "performer": [{"display": c.giver_name + (f" ({c.giver_relation})" if c.giver_relation else "")}],
        # How it was given (verbal/written/recorded), as India's Telemedicine Practice Guidelines ask to record.
        "policyRule": {"text": f"Teleconsultation consent, {c.method.value}, given by the {c.giver.value}"},
    }


def case_bundle(facility: Facility, patient: Patient, case: Case, *, generated_at: datetime | None = None) -> dict:
    resources = [patient_resource(patient), organization_resource(facility), encounter_resource(case, patient, facility)]
    for rec in case.vitals:
        resources.extend(vitals_observations(rec, patient, case))
    if case.consent is not None:
        resources.append(consent_resource(case.consent, patient))
    stamp = generated_at or case.updated_at or datetime.now(timezone.utc)
    return {
        "resourceType": "Bundle", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:spoke:case-bundle:{case.id}:{case.version}")),
        "identifier": {"system": "urn:spoke:case", "value": case.id},
        "type": "collection", "timestamp": _iso(stamp),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def bundle_json(bundle: dict) -> str:
    return json.dumps(bundle, ensure_ascii=False, indent=2, sort_keys=True)
