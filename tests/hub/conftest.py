"""A hub with a hub organisation, its doctors, a served facility and an enrolled spoke device (real database:
SQLite and PostgreSQL, from tests/sync/conftest.py), and a small formulary of real NLEM rows."""

from __future__ import annotations

import csv
import re

import pytest
import requests

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


# --- the doctors' console over HTTP -----------------------------------------------------------------------------
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of a console page's forms (every form of a page carries the same one)."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def set_cookies(response) -> dict[str, str]:
    """Each Set-Cookie header of a response, by cookie name (requests joins them into one string otherwise)."""
    return {h.split("=", 1)[0]: h for h in response.raw.headers.getlist("set-cookie")}


class Console:
    """A browser-less user of the console: a requests session signed in through the sign-in form."""

    def __init__(self, url: str, username: str, password: str, **headers: str) -> None:
        self.url, self.http = url, requests.Session()
        self.http.headers.update(headers)
        page = self.http.get(f"{url}/console/login", timeout=10)
        self.signed = self.http.post(f"{url}/console/login", data={"csrf": csrf_of(page.text), "username": username,
                                                                    "password": password}, allow_redirects=False,
                                     timeout=10)
        assert self.signed.status_code == 303, self.signed.text
        self.csrf = csrf_of(self.get("/console/").text)

    def get(self, path: str, **kw):
        return self.http.get(f"{self.url}{path}", timeout=10, allow_redirects=False, **kw)

    def post(self, path: str, data: dict | list | None = None, *, csrf: bool = True, **kw):
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        return self.http.post(f"{self.url}{path}", data=fields + ([("csrf", self.csrf)] if csrf else []), timeout=10,
                              allow_redirects=False, **kw)


@pytest.fixture
def console(hub_server):
    """console("dr.mehta", "mehta-pass-12") -> a Console signed in at the test hub."""
    return lambda username, password, **headers: Console(hub_server.url, username, password, **headers)
