"""The printing tests' private CUPS server (tests/printing/cups.py), and a prescription made the real way: a case
synced to a real hub on loopback, prescribed by the hub's doctor through the staff's API, pulled by the spoke."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

import pytest
import requests

from spoke_client.domain.model import CaseStatus, ConsentGiver, ConsentMethod
from spoke_client.domain.vitals import Vitals
from spoke_client.services.cases import CaseForm
from spoke_client.services.patients import PatientForm
from spoke_client.services.sync_local import enroll, sync_once
from tests.hub.conftest import small_formulary  # noqa: F401 - fixtures
from tests.printing.cups import cups_server_fixture
from tests.sync.conftest import facilities, hub, hub_server, spoke  # noqa: F401 - fixtures

cups_server = cups_server_fixture()
T = TypeVar("T")


def wait_until(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Polls `probe` until `done` holds for its answer; fails with the last answer after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(0.05)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is missing: ./dev.sh installs the Debian package poppler-utils")
    return path


def signed_in(url: str) -> dict[str, str]:
    r = requests.post(f"{url}/v1/hub/session", json={"username": "dr.mehta", "password": "mehta-pass-12"}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def hub_db_url(tmp_path):
    """The paper does not depend on the hub's database: SQLite only here (the sync tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path}/hub.sqlite"


@pytest.fixture
def prescribed(hub, hub_server, facilities, spoke, small_formulary):  # noqa: F811
    """(spoke services, admin, paths, case id, the issued prescription, the doctor's headers): a case from HWC
    Rampur, prescribed by the hub's doctor through the API and pulled by the spoke."""
    org = hub.create_hub("District Hospital Sitapur", "district hospital")
    hub_admin = hub.add_staff(None, org, "admin", "Anita Sharma", "admin-pass-12", "admin")
    hub.add_staff(hub_admin, org, "dr.mehta", "Dr Rajesh Mehta", "mehta-pass-12", "doctor",
                  qualification="MBBS, MD (Medicine)", registration_number="UPMC 45678",
                  council="Uttar Pradesh Medical Council", specialities=("General medicine",))
    hub.assign_facility(hub_admin, facilities[0], org)
    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "pc1", allow_http=True)
    sunita = services.patients.register(admin, PatientForm(
        name="Sunita Devi", sex="female", age_years=34, village="Rampur", phone="9876543210",
        abha_number="91-1234-5678-9012", allergies="Sulfa drugs"))
    case = services.cases.open_case(admin, sunita.id)
    services.cases.save(admin, case.id, CaseForm(complaints=("Fever", "Cough"), complaint_text="body ache",
                                                 duration="3 days", examination="Throat congested"),
                        vitals=Vitals(systolic_mmhg=128, diastolic_mmhg=84, pulse_per_min=96, temperature_c=38.6,
                                      spo2_pct=97, weight_kg=52))
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, "Sunita Devi", ConsentMethod.VERBAL)
    services.cases.transition(admin, case.id, CaseStatus.READY)
    services.cases.transition(admin, case.id, CaseStatus.QUEUED)
    assert sync_once(services.store, paths).error is None
    me = signed_in(hub_server.url)
    assert requests.post(f"{hub_server.url}/v1/hub/cases/{case.id}/take", headers=me, timeout=10).status_code == 200
    issued = requests.post(f"{hub_server.url}/v1/hub/cases/{case.id}/prescriptions", headers=me, timeout=10, json={
        "diagnosis": "Acute febrile illness, likely viral", "icd10_code": "R50.9",
        "medicines": [
            {"formulary_id": "1:Tablet:500 mg", "dose": "1 tablet", "frequency": "BD",
             "duration_days": 5, "instructions": "after food"},
            {"formulary_id": small_formulary["Oral rehydration salts"], "dose": "1 sachet", "frequency": "SOS",
             "duration_days": 3}],
        "investigations": ["Malaria rapid test"], "advice": "Drink plenty of fluids.",
        "follow_up": (date.today() + timedelta(days=5)).isoformat()})
    assert issued.status_code == 200, issued.text
    assert sync_once(services.store, paths).error is None
    return services, admin, paths, case.id, issued.json(), me




@pytest.fixture
def printing(prescribed, cups_server, monkeypatch):
    """(services, admin, case id): the prescribed case's PC set to print on the private CUPS server's cups-pdf
    printer, in Hindi on A5."""
    for key, value in cups_server.env.items():
        monkeypatch.setenv(key, value)
    services, admin, _paths, case_id, _issued, _me = prescribed
    services.printing.choose(admin, printer=cups_server.printer, language="hi", paper="A5")
    return services, admin, case_id
