"""A hub with a hub organisation, its doctors, a served facility and an enrolled spoke device (real database:
SQLite and PostgreSQL, from tests/sync/conftest.py), and a small formulary of real NLEM rows."""

from __future__ import annotations

import csv

import pytest

from sync.hub import formulary
from tests.sync.conftest import ADMIN_TOKEN, PG, ServerThread, ensure_postgres, free_port, hub, hub_db_url  # noqa: F401
from tests.sync.conftest import facilities, hub_server, spoke_factory  # noqa: F401

ROWS = [  # medicine_no, medicine, section_code, section, dosage_form, strength, level, tpg_list
    (1, "Paracetamol", "2.1", "Non-opioid analgesics", "Tablet", "500 mg", "P,S,T", "O"),
    (1, "Paracetamol", "2.1", "Non-opioid analgesics", "Oral liquid", "125 mg/5 mL", "P,S,T", "O"),
    (2, "Amlodipine", "12.2", "Antihypertensives", "Tablet", "5 mg", "P,S,T", "A"),
    (3, "Clopidogrel", "12.5", "Antiplatelet medicines", "Tablet", "75 mg", "S,T", "B"),
    (4, "Morphine", "2.2", "Opioid analgesics", "Tablet", "10 mg", "S,T", "Prohibited"),
    (5, "Amoxicillin", "6.2.1", "Beta-lactam medicines", "Capsule", "500 mg", "P,S,T", "O"),
    (6, "Oral rehydration salts", "17.2", "Medicines used in diarrhoea", "Powder for solution", "as licensed", "P,S,T", "O"),
]


@pytest.fixture
def small_formulary(tmp_path, monkeypatch):
    path = tmp_path / "nlem2022.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["medicine_no", "medicine", "section_code", "section", "dosage_form", "strength", "level", "tpg_list",
                    "tpg_source"])
        for row in ROWS:
            w.writerow([*row, "test"])
    monkeypatch.setattr(formulary, "FORMULARY", path)
    formulary.items.cache_clear()
    formulary._by_id.cache_clear()
    yield {r[1]: f"{r[0]}:{r[4]}:{r[5]}" for r in ROWS}
    formulary.items.cache_clear()
    formulary._by_id.cache_clear()


@pytest.fixture
def clinic(hub, facilities, small_formulary):
    """(hub, hub org id, admin, doctor A, doctor B) with HWC Rampur served by the hub."""
    org = hub.create_hub("District Hospital Sitapur", "district hospital")
    admin = hub.add_staff(None, org, "admin", "Anita Sharma", "admin-pass-12", "admin")
    mehta = hub.add_staff(admin, org, "dr.mehta", "Dr Rajesh Mehta", "mehta-pass-12", "doctor", qualification="MBBS, MD",
                          registration_number="UPMC 45678", council="Uttar Pradesh Medical Council",
                          specialities=("Cardiology", "General medicine"))
    rao = hub.add_staff(admin, org, "dr.rao", "Dr Sunita Rao", "rao-pass-1234", "doctor", qualification="MBBS, DCH",
                        registration_number="UPMC 51234", specialities=("Paediatrics",))
    hub.assign_facility(admin, facilities[0], org)
    return hub, org, admin, mehta, rao
