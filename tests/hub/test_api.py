"""The staff's JSON API over real HTTP: sessions (bearer or cookie with CSRF), the queue, a case, a question and a
prescription refused and issued; and the command line that makes the first administrator."""

from __future__ import annotations

import os
import subprocess
import sys

import requests

from tests.hub.test_clinic import queued


def signed(url: str, username: str, password: str) -> dict[str, str]:
    r = requests.post(f"{url}/v1/hub/session", json={"username": username, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_whole_consultation_through_the_api(clinic, hub_server, facilities, spoke_factory, small_formulary):
    hub, _org, _admin, mehta, _rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1", priority=2, allergies=["Sulfa drugs"])
    url = hub_server.url
    assert requests.get(f"{url}/v1/hub/queue", timeout=10).status_code == 401
    me = signed(url, "dr.mehta", "mehta-pass-12")
    [item] = requests.get(f"{url}/v1/hub/queue", headers=me, timeout=10).json()
    assert item["case_id"] == "c-1" and item["priority"] == 2 and item["facility"] == "HWC Rampur"
    assert requests.post(f"{url}/v1/hub/cases/c-1/take", headers=me, timeout=10).status_code == 200
    view = requests.get(f"{url}/v1/hub/cases/c-1/view", headers=me, timeout=10).json()
    assert view["patient"]["allergies"] == ["Sulfa drugs"] and view["taken_by_me"]
    found = requests.get(f"{url}/v1/hub/formulary", params={"q": "para 500"}, headers=me, timeout=10).json()
    assert [f["generic"] for f in found] == ["PARACETAMOL"]
    icd = requests.get(f"{url}/v1/hub/icd10", params={"q": "essential hypertension"}, headers=me, timeout=10).json()
    assert {"code": "I10", "title": "Essential (primary) hypertension"} in icd
    refused = requests.post(f"{url}/v1/hub/cases/c-1/prescriptions", headers=me, timeout=10, json={
        "diagnosis": "Pain", "medicines": [{"formulary_id": small_formulary["Morphine"], "dose": "1 tablet",
                                            "frequency": "BD", "duration_days": 2}]})
    assert refused.status_code == 400 and refused.json()["problems"][0]["field"] == "medicines.0"
    issued = requests.post(f"{url}/v1/hub/cases/c-1/prescriptions", headers=me, timeout=10, json={
        "diagnosis": "Hypertensive urgency", "icd10_code": "I10",
        "medicines": [{"formulary_id": small_formulary["Paracetamol"], "dose": "1 tablet", "frequency": "1-0-1",
                       "duration_days": 3}]})
    assert issued.status_code == 200, issued.text
    from sync import prescriptions

    key = requests.get(f"{url}/v1/hub/key", timeout=10).json()["key"]
    prescriptions.verify(issued.json(), key)
    assert issued.json()["medicines"][0]["quantity"] == "6 tablets"


def test_a_cookie_session_needs_the_csrf_token_for_changes(clinic, hub_server, facilities, spoke_factory):
    hub, *_ = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-1", "p-1")
    r = requests.post(f"{hub_server.url}/v1/hub/session", json={"username": "dr.mehta", "password": "mehta-pass-12"},
                      timeout=10)
    token, csrf = r.json()["token"], r.json()["csrf"]
    cookies = {"spoke_hub_session": token}
    assert requests.get(f"{hub_server.url}/v1/hub/queue", cookies=cookies, timeout=10).status_code == 200
    forged = requests.post(f"{hub_server.url}/v1/hub/cases/c-1/take", cookies=cookies, timeout=10)
    assert forged.status_code == 403 and forged.json()["code"] == "csrf"
    ok = requests.post(f"{hub_server.url}/v1/hub/cases/c-1/take", cookies=cookies, headers={"X-CSRF-Token": csrf},
                       timeout=10)
    assert ok.status_code == 200
    assert requests.delete(f"{hub_server.url}/v1/hub/session", cookies=cookies, timeout=10).status_code == 200
    assert requests.get(f"{hub_server.url}/v1/hub/queue", cookies=cookies, timeout=10).status_code == 401


def test_the_first_administrator_comes_from_the_command_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "sync.hub", "--log-dir", str(tmp_path / "logs"),  # noqa: E731
                                           "--db", db, *a], capture_output=True, text=True, timeout=60, **kw)
    hub_id = run("create-hub", "--name", "District Hospital Sitapur").stdout.strip()
    out = run("create-admin", "--hub", hub_id, "--username", "anita", "--name", "Anita Sharma", input="long-pass-word\n")
    assert out.returncode == 0, out.stderr
    short = run("create-admin", "--hub", hub_id, "--username", "ravi", "--name", "Ravi K", input="short\n")
    assert short.returncode == 1 and "password" in short.stderr and "Traceback" not in short.stderr


def test_a_doctor_from_the_command_line_signs_in_and_the_demo_setup_can_run_again(tmp_path):
    """What `./dev.sh run` does for its demo hub, twice: the same hub, administrator and doctor, nothing doubled."""
    from sync.hub.service import Hub, make_hub_engine

    db = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "sync.hub", "--log-dir", str(tmp_path / "logs"),  # noqa: E731
                                           "--db", db, *a], capture_output=True, text=True, timeout=60, **kw)
    doctor = ("add-doctor", "--username", "dr.mehta", "--name", "Dr Rajesh Mehta", "--qualification", "MBBS, MD",
              "--registration-number", "UPMC 45678", "--speciality", "Cardiology", "--if-missing")
    for _ in range(2):
        facility = run("create-facility", "--name", "HWC Rampur", "--hwc-id", "HWC-UP-0042").stdout.strip()
        hub_id = run("create-hub", "--name", "District Hospital Sitapur").stdout.strip()
        assert run("create-admin", "--hub", hub_id, "--username", "anita", "--name", "Anita Sharma", "--if-missing",
                   input="long-pass-word\n").returncode == 0
        out = run(*doctor[:1], "--hub", hub_id, *doctor[1:], input="mehta-pass-12\n")
        assert out.returncode == 0, out.stderr
        assert run("assign", "--facility", facility, "--hub", hub_id).returncode == 0
    taken = run(*doctor[:1], "--hub", hub_id, *doctor[1:-1], input="mehta-pass-12\n")
    assert taken.returncode == 1 and "taken" in taken.stderr, "without --if-missing a second one is refused"
    unknown = run("add-doctor", "--hub", hub_id, "--username", "dr.x", "--name", "Dr X Y", "--qualification", "MBBS",
                  "--registration-number", "1", "--speciality", "Astrology", input="long-pass-word\n")
    assert unknown.returncode == 1 and "specialities" in unknown.stderr and "Traceback" not in unknown.stderr
    hub = Hub(make_hub_engine(db))
    try:
        [(only_hub, _name)] = hub.hubs()
        people = {(p.username, p.role, p.registration_number, p.specialities) for p in hub.staff(only_hub)}
        assert people == {("anita", "admin", "", ()), ("dr.mehta", "doctor", "UPMC 45678", ("Cardiology",))}
        mehta = hub.sign_in("dr.mehta", "mehta-pass-12")
        assert hub.queue(mehta.staff) == [], "a doctor of the hub that serves HWC Rampur, with nothing waiting yet"
    finally:
        hub.engine.dispose()


def test_a_hub_without_its_formulary_refuses_to_start(tmp_path):
    """Started without resources/formulary, the hub says so and exits, instead of letting every medicine through."""
    resources = tmp_path / "resources"
    resources.mkdir()
    env = dict(os.environ, SPOKE_RESOURCES=str(resources))
    out = subprocess.run([sys.executable, "-m", "sync.hub", "--log-dir", str(tmp_path / "logs"), "--db",
                          f"sqlite:///{tmp_path / 'hub.sqlite'}", "serve", "--port", "1"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode != 0 and "the formulary is missing" in out.stderr, out.stderr[-2000:]


def test_sessions_and_who_took_a_case_hold_across_two_workers(clinic, facilities, spoke_factory, hub_db_url, tmp_path):
    """`spoke-hub serve --workers 2`: a doctor's session, the CSRF token, who took a case and a signed-out session
    are in the database, so every request, on a new connection each and so on either worker, sees the same."""
    from tests.sync.hub_process import HubProcess

    queued(spoke_factory(facilities[0]), "c-1", "p-1")
    with HubProcess(hub_db_url, tmp_path, workers=2).start() as process:
        url = process.url
        signed = lambda who, pw: requests.post(f"{url}/v1/hub/session", json={"username": who, "password": pw},  # noqa: E731
                                               timeout=10).json()
        mehta, rao = signed("dr.mehta", "mehta-pass-12"), signed("dr.rao", "rao-pass-1234")
        as_mehta = {"Authorization": f"Bearer {mehta['token']}"}
        as_rao = {"Authorization": f"Bearer {rao['token']}"}
        for _ in range(8):    # requests has no pool here: a new connection each time, spread over both workers
            r = requests.get(f"{url}/v1/hub/queue", headers={**as_mehta, "Connection": "close"}, timeout=10)
            assert r.status_code == 200 and [c["case_id"] for c in r.json()] == ["c-1"], r.text
        assert requests.post(f"{url}/v1/hub/cases/c-1/take", headers=as_mehta, timeout=10).status_code == 200
        for _ in range(4):
            taken = requests.post(f"{url}/v1/hub/cases/c-1/take", headers={**as_rao, "Connection": "close"}, timeout=10)
            assert taken.status_code == 409 and taken.json()["code"] == "taken", taken.text
        assert requests.delete(f"{url}/v1/hub/session", headers=as_mehta, timeout=10).status_code == 200
        for _ in range(4):
            assert requests.get(f"{url}/v1/hub/queue", headers={**as_mehta, "Connection": "close"},
                                timeout=10).status_code == 401
