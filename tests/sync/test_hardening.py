"""The hub against a broken or hostile peer: no device, value or clock stalls a facility; bad input is a 4xx.

One test per defect found by trying the sync as an attacker (issue "Hardening"); each failed on the code before
the fix and passes after it.
"""

from __future__ import annotations

import gzip
import itertools
import os
import json
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from sync.hlc import MAX_AHEAD_MS, Stamp
from sync.hub.models import HubChangeRow, HubMediaUpload
from sync.hub.service import Hub
from sync.protocol import Change, Op, PushBatch, b64, signing_text
from sync.transport.http import HubClient, HubRefused
from tests.sync import records
from tests.sync.conftest import ADMIN_TOKEN

STAFF = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def stamped(spoke, entity: str, entity_id: str, payload: dict | None, hlc: str, version: int = 1) -> dict:
    """A change as raw JSON, so that a test can send what the models on this side would not build."""
    return dict(change_id=str(uuid.uuid4()), entity=entity, entity_id=entity_id, version=version,
                op="upsert" if payload is not None else "delete", hlc=hlc, device_id=spoke.device_id, payload=payload)


def push_raw(spoke, changes: list[dict], revision: int = 2) -> requests.Response:
    body = gzip.compress(json.dumps({"protocol": 1, "batch_id": str(uuid.uuid4()), "changes": changes}).encode())
    return signed(spoke, "POST", "/v1/push", body, {"Content-Encoding": "gzip", "Spoke-Protocol": str(revision)})


def signed(spoke, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> requests.Response:
    counter = spoke.client.next_counter()
    signature = b64(spoke.key.sign(signing_text(method, path, counter, body)))
    return requests.request(method, spoke.client.base_url + path, data=body, timeout=30, headers={
        "Spoke-Device": spoke.device_id, "Spoke-Counter": str(counter), "Spoke-Signature": signature,
        **(headers or {})})


def now_stamp(spoke, ahead_ms: int = 0, counter: int = 0) -> str:
    return Stamp(int(time.time() * 1000) + ahead_ms, counter, spoke.device_id).encode()


# --- 1. one device's clock ----------------------------------------------------------------------------------
def test_a_clock_stamp_far_ahead_is_refused_and_cannot_poison_other_facilities(hub, hub_server, facilities,
                                                                               spoke_factory):
    rogue, other = spoke_factory(facilities[0], "rogue"), spoke_factory(facilities[1], "Kultali PC")
    poison = [stamped(rogue, "patient", "p-1", records.patient("p-1"), "999999999999999-99990-C1"),
              stamped(rogue, "patient", "p-2", records.patient("p-2"), "999999999999999-99998-C1")]
    result = push_raw(rogue, poison).json()
    assert result["accepted"] == [] and [r["code"] for r in result["rejected"]] == ["clock_ahead", "clock_ahead"]
    assert "clock" in result["rejected"][0]["reason"] and "date and time" in result["rejected"][0]["reason"]
    # A PC a few days fast is not stranded.
    honest = stamped(rogue, "patient", "p-3", records.patient("p-3"), now_stamp(rogue, ahead_ms=3 * 86_400_000))
    assert push_raw(rogue, [honest]).json()["accepted"] == [honest["change_id"]]
    # Staff writes keep working and stay near the hub's own time; the other facility keeps pushing.
    other.client.push(other.batch([other.change("patient", "k-1", records.patient("k-1"))]))
    for _ in range(3):
        r = requests.post(f"{hub_server.url}/v1/hub/patients/k-1", json={"village": "Kultali"}, headers=STAFF, timeout=10)
        assert r.status_code == 200, r.text
        assert Stamp.decode(r.json()["hlc"]).wall_ms < int(time.time() * 1000) + MAX_AHEAD_MS
    later = other.change("patient", "k-2", records.patient("k-2"))
    assert other.client.push(other.batch([later])).accepted == [later.change_id]


def test_a_stamp_with_non_ascii_digits_is_refused_alone(hub, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    arabic = stamped(pc, "patient", "p-1", records.patient("p-1"), "١٧٩٦٠٠٠٠٠٠٠٠٠٠٠-٠٠٠٠٠-C1")
    fine = stamped(pc, "patient", "p-2", records.patient("p-2"), now_stamp(pc))
    result = push_raw(pc, [arabic, fine]).json()
    assert result["accepted"] == [fine["change_id"]]
    assert [r["change_id"] for r in result["rejected"]] == [arabic["change_id"]]
    assert "hlc" in result["rejected"][0]["reason"]


def test_the_hub_clock_starts_above_its_database_and_every_worker_stamps_after_the_record(hub, hub_db_url, tmp_path,
                                                                                         facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    ahead = now_stamp(pc, ahead_ms=2 * 86_400_000)      # a PC two days fast (inside the bound)
    push_raw(pc, [stamped(pc, "case", "c-1", records.case("c-1", "p-1"), ahead)])
    from sync.hub.service import make_hub_engine

    restarted = Hub(make_hub_engine(hub_db_url), media_dir=tmp_path / "m")   # a new worker, or the hub restarted
    try:
        assert restarted.clock().last >= Stamp.decode(ahead), "seeded from the database"
        change = restarted.update_case("c-1", {"status": "in_consultation"})
        assert change.hlc > ahead, "a hub write sorts after the record it changes"
        again = hub.update_case("c-1", {"doctor_note": "seen"})   # the first worker, which did not see that write
        assert again.hlc > change.hlc
    finally:
        restarted.engine.dispose()


# --- 2. one bad value --------------------------------------------------------------------------------------
def test_a_bad_staff_edit_is_refused_with_the_field_and_the_reason(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    pc.client.push(pc.batch([pc.change("patient", "p-1", records.patient("p-1"))]))
    r = requests.post(f"{hub_server.url}/v1/hub/patients/p-1", json={"birth_date": "31/12/1990"}, headers=STAFF,
                      timeout=10)
    assert r.status_code == 400 and "birth_date" in r.json()["message"] and "YYYY-MM-DD" in r.json()["message"]
    assert hub.record("patient", "p-1").payload["birth_date"] == "1966-01-01"


def test_a_device_pushing_a_patient_without_name_is_refused_and_the_rest_goes_on(hub, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    nameless = records.patient("p-1")
    del nameless["name"]
    bad = pc.change("patient", "p-1", nameless)
    nan = stamped(pc, "vitals", "v-1", records.vitals("v-1", "c-1") | {"vitals": {"pulse_per_min": float("nan")}},
                  now_stamp(pc))
    good = pc.change("patient", "p-2", records.patient("p-2"))
    result = pc.client.push(pc.batch([bad, good]))
    assert result.accepted == [good.change_id] and "name: this field is required" in result.rejected[0].reason
    body = gzip.compress(json.dumps({"protocol": 1, "batch_id": str(uuid.uuid4()), "changes": [nan]}).encode())
    assert b"NaN" in gzip.decompress(body)   # what Python's json writes for it, and a lax parser takes
    r = signed(pc, "POST", "/v1/push", body, {"Content-Encoding": "gzip"})
    assert r.status_code == 200 and "NaN" in r.json()["rejected"][0]["reason"]
    assert hub.record("vitals", "v-1") is None and hub.record("patient", "p-1") is None


def test_a_spoke_holds_back_a_record_it_cannot_apply_and_its_pulls_go_on(hub, hub_server, facilities, spoke):
    """As a hub that stored a bad value before it checked payloads: the spoke holds that record, visibly, and
    keeps pulling; the cursor moves past it."""
    from datetime import datetime, timezone

    from spoke_client.services.sync_local import LocalSync, enroll, sync_once

    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    with hub.session.begin() as s:
        for payload in ({"id": "p-bad", "name": "Kamla Devi", "sex": "female", "birth_date": "31/12/1990"},
                        {"id": "p-nameless", "sex": "female", "birth_date": "1990-12-31"},
                        records.patient("p-good", name="Ravi Kumar", sex="male")):
            stamp = hub.clock().now(int(time.time() * 1000)).encode()
            s.add(HubChangeRow(change_id=str(uuid.uuid4()), facility_id=facilities[0], entity="patient",
                               entity_id=payload["id"], version=1, op="upsert", hlc=stamp, device_id="hub",
                               payload=payload, received_at=datetime.now(timezone.utc)))
    report = sync_once(services.store, paths)
    assert report.error is None and report.pulled == 3
    assert [h.patient.name for h in services.patients.search("ravi")] == ["Ravi Kumar"]
    assert not services.patients.search("kamla")
    held = [item for item in LocalSync(services.store).refused() if item.kind == "pulled"]
    assert len(held) == 2
    assert any("birth_date" in item.reason and "YYYY-MM-DD" in item.reason for item in held)
    assert any("name: this field is required" in item.reason for item in held)
    cursor = LocalSync(services.store).inbox.cursor()
    assert cursor >= 3
    # The next syncs go on as usual: nothing stalls.
    assert sync_once(services.store, paths).error is None and LocalSync(services.store).inbox.cursor() == cursor


# --- 3. reading before checking ----------------------------------------------------------------------------
def test_an_unsigned_or_oversized_body_is_refused_before_it_is_read(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    fifty_mb = 50 * 1024 * 1024
    started = time.monotonic()
    r = requests.post(hub_server.url + "/v1/push", headers={"Content-Length": str(fifty_mb)},
                      data=iter([b"x" * 1024] * 4), timeout=30)
    assert r.status_code == 401 and r.json()["code"] == "unsigned"
    assert time.monotonic() - started < 5
    r = requests.post(hub_server.url + "/v1/push", data=b"{}", timeout=10,
                      headers={"Spoke-Device": pc.device_id, "Spoke-Counter": "12", "Spoke-Signature": "nope"})
    assert r.status_code == 401 and r.json()["code"] == "bad_signature_headers"

    def endless():   # a chunked body with no declared length, much larger than a push may be
        for _ in range(40 * 1024):
            yield b"0" * 1024

    counter = pc.client.next_counter()
    r = requests.post(hub_server.url + "/v1/push", data=endless(), timeout=60, headers={
        "Spoke-Device": pc.device_id, "Spoke-Counter": str(counter),
        "Spoke-Signature": b64(pc.key.sign(signing_text("POST", "/v1/push", counter, b"")))})
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_a_50_mb_unsigned_post_does_not_grow_the_hub_process(tmp_path):
    """The hub in its own process: its resident memory after a 50 MB unsigned POST stays where it was."""
    import subprocess
    import sys

    from tests.sync.conftest import free_port

    port = free_port()
    env = {"SPOKE_HUB_LOG_DIR": str(tmp_path / "logs"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", f"sqlite:///{tmp_path / 'hub.sqlite'}", "serve",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(url + "/v1/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)

        def rss_mb() -> float:
            with open(f"/proc/{proc.pid}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

        requests.post(url + "/v1/push", data=b"{}", timeout=10)   # warm up the request path
        before = rss_mb()
        r = requests.post(url + "/v1/push", data=b"\0" * (50 * 1024 * 1024), timeout=60)
        assert r.status_code == 401
        assert rss_mb() - before < 20, f"{before:.0f} MB -> {rss_mb():.0f} MB"
    finally:
        proc.terminate()
        proc.wait(10)


# --- 4. bad input is a 4xx ---------------------------------------------------------------------------------
@pytest.mark.parametrize("counter", ["²", "9" * 5000, "-1", "0", str(2**63), "12 ", "0x1F", "١٢"])
def test_a_malformed_counter_is_a_4xx_with_the_hubs_error_body(hub, hub_server, facilities, spoke_factory, counter):
    pc = spoke_factory(facilities[0])
    try:
        raw = counter.encode("latin-1")   # what a server decodes headers as: "²" arrives as "²"
    except UnicodeEncodeError:
        raw = counter.encode("utf-8")
    r = requests.get(hub_server.url + "/v1/pull", timeout=10, headers={
        "Spoke-Device": pc.device_id, "Spoke-Counter": raw, "Spoke-Signature": b64(b"\0" * 64)})
    assert r.status_code == 401 and set(r.json()) == {"code", "message"} and "Retry-After" not in r.headers


def test_out_of_range_numbers_are_a_4xx_never_a_retry(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    huge = stamped(pc, "patient", "p-1", records.patient("p-1"), now_stamp(pc), version=2**63)
    result = push_raw(pc, [huge]).json()
    assert result["accepted"] == [] and "version" in result["rejected"][0]["reason"]
    for path in (f"/v1/pull?after={2**70}", f"/v1/digest?cursor={2**70}", "/v1/pull?limit=0"):
        r = signed(pc, "GET", path)
        assert r.status_code == 400 and "Retry-After" not in r.headers and set(r.json()) == {"code", "message"}, path
    r = requests.post(f"{hub_server.url}/v1/hub/cases/c-1", json={"status": "closed"}, timeout=10,
                      headers={"Authorization": "Bearer t\u00f6ken-\u0928".encode()})
    assert r.status_code == 401 and r.json()["code"] == "not_hub_staff"


def test_a_device_at_the_top_counter_is_refused_and_can_still_sync(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    top = HubClient(hub_server.url, device_id=pc.device_id, key=pc.key, next_counter=lambda: 2**63 - 1)
    with pytest.raises(HubRefused) as refused:
        top.pull(0)
    assert refused.value.status == 400 and refused.value.code == "counter_jump"
    pc.client.pull(0)   # its own counter goes on where it was


def test_a_bad_range_gets_the_hubs_error_format(hub, facilities, spoke_factory):
    import hashlib

    pc = spoke_factory(facilities[0])
    data = b"a photo" * 100
    sha = hashlib.sha256(data).hexdigest()
    pc.client.media_put(sha, 0, len(data), data)
    for value in ("bytes=5000-", "bytes=0-10", "lines=1-", "bytes=-5"):
        r = signed(pc, "GET", f"/v1/media/{sha}", headers={"Range": value})
        assert r.status_code == 416 and set(r.json()) == {"code", "message"}, value
    r = signed(pc, "GET", f"/v1/media/{sha}", headers={"Range": "bytes=10-"})
    assert r.status_code == 206 and r.content == data[10:]


# --- 5. enrolling before setup -----------------------------------------------------------------------------
def test_a_pc_that_is_not_set_up_cannot_enrol_or_sync_and_says_why(hub, hub_server, facilities, tmp_path):
    import subprocess
    import sys

    code = hub.enroll_code(facilities[0])
    data = tmp_path / "new-pc"
    out = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(data), "enroll", "--hub",
                          hub_server.url, "--code", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Set up this computer first" in out.stderr and "Traceback" not in out.stderr
    # The code was not used up: the same PC, once set up, enrols with it.
    out = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(data), "setup", "--facility-name",
                          "HWC Rampur", "--hwc-id", "HWC-UP-0042", "--district", "Sitapur", "--state", "Uttar Pradesh",
                          "--admin-user", "admin", "--admin-name", "Asha", "--password-stdin"],
                         input="pass-word-1\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(data), "--user", "admin", "enroll",
                          "--hub", hub_server.url, "--code", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SPOKE_PASSWORD": "pass-word-1"})
    assert out.returncode == 0, out.stderr


# --- 6. smaller ---------------------------------------------------------------------------------------------
def test_wrong_enrolment_codes_and_bad_signatures_are_limited(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[1])   # enrolled before the guessing starts (enrolments from here then wait)
    client = HubClient(hub_server.url)
    codes = []
    for _ in range(12):
        try:
            client.enroll("0000-0000-0000", Ed25519PrivateKey.generate(), str(uuid.uuid4()), "guess")
        except HubRefused as exc:
            codes.append(exc.status)
    assert codes[:10] == [403] * 10 and codes[10:] == [429, 429]
    with pytest.raises(HubRefused) as refused:   # even the right code waits now, from this address
        client.enroll(hub.enroll_code(facilities[0]), Ed25519PrivateKey.generate(), str(uuid.uuid4()), "late")
    assert refused.value.status == 429 and refused.value.retry_after and refused.value.retry_after > 60

    impostor = HubClient(hub_server.url, device_id=pc.device_id, key=Ed25519PrivateKey.generate(),
                         next_counter=itertools.count(5).__next__)
    statuses = []
    for _ in range(22):
        try:
            impostor.pull(0)
        except HubRefused as exc:
            statuses.append(exc.status)
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]


def test_a_revoked_devices_reason_is_told_only_to_that_device(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    hub.revoke(pc.device_id, "PC stolen from HWC Rampur")
    stranger = HubClient(hub_server.url, device_id=pc.device_id, key=Ed25519PrivateKey.generate(),
                         next_counter=itertools.count(100).__next__)
    with pytest.raises(HubRefused) as refused:
        stranger.pull(0)
    assert refused.value.code == "bad_signature" and "stolen" not in refused.value.message
    with pytest.raises(HubRefused) as refused:
        pc.client.pull(0)
    assert refused.value.code == "revoked" and "PC stolen" in refused.value.message


def test_uploads_that_never_finish_are_forgotten(hub, facilities, spoke_factory):
    from datetime import datetime, timedelta, timezone

    pc = spoke_factory(facilities[0])
    sha = "ab" * 32
    pc.client.media_put(sha, 0, 1000, b"x" * 100)
    partial = hub._partial_path(facilities[0], sha)
    assert partial.exists()
    assert hub.expire_uploads(now=datetime.now(timezone.utc) + timedelta(days=6)) == 0
    assert hub.expire_uploads(now=datetime.now(timezone.utc) + timedelta(days=8)) == 1
    assert not partial.exists()
    with hub.session() as s:
        assert s.scalars(select(HubMediaUpload)).all() == []
    assert pc.client.media_status(sha, 1000).received == 0, "a spoke that comes back starts the file again"


def test_the_staff_token_needs_bearer_and_only_case_states_are_taken(hub, hub_server, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    pc.client.push(pc.batch([pc.change("case", "c-1", records.case("c-1", "p-1"))]))
    bare = requests.post(f"{hub_server.url}/v1/hub/cases/c-1", json={"status": "closed"}, timeout=10,
                         headers={"Authorization": ADMIN_TOKEN})
    assert bare.status_code == 401
    for status in ("pwned", "draft", "cancelled", ""):
        r = requests.post(f"{hub_server.url}/v1/hub/cases/c-1", json={"status": status}, headers=STAFF, timeout=10)
        assert r.status_code == 400 and "status" in r.json()["message"], status
    assert hub.record("case", "c-1").payload["status"] == "queued"
    big = requests.post(f"{hub_server.url}/v1/hub/cases/c-1", data=b"{" + b" " * (64 * 1024) + b"}", headers=STAFF,
                        timeout=10)
    assert big.status_code == 413


def test_a_spoke_of_protocol_1_gets_answers_it_can_read(hub, facilities, spoke_factory):
    """A refusal's code is new in revision 2: a spoke that does not say it reads revision 2 is not sent it."""
    pc = spoke_factory(facilities[0])
    far = stamped(pc, "patient", "p-1", records.patient("p-1"), "999999999999999-00000-C1")
    old = push_raw(pc, [far], revision=1).json()
    assert old["rejected"] and "code" not in old["rejected"][0]
    new = push_raw(pc, [dict(far, change_id=str(uuid.uuid4()))]).json()
    assert new["rejected"][0]["code"] == "clock_ahead"


def test_two_hub_workers_count_failures_together_and_stamp_in_one_order(hub_db_url, tmp_path):
    """`spoke-hub serve --workers 2`: state is in the database, so guessing limits and the clock hold across
    workers, whichever one a request lands on."""
    from tests.sync.hub_process import HubProcess

    from sync.hub.service import make_hub_engine

    hub = Hub(make_hub_engine(hub_db_url), media_dir=tmp_path / "m")
    hub.create_schema()
    facility = hub.create_facility("HWC Rampur", "HWC-UP-0042")
    with HubProcess(hub_db_url, tmp_path, workers=2, env={"SPOKE_HUB_ADMIN_TOKEN": ADMIN_TOKEN}).start() as process:
        url = process.url
        key = Ed25519PrivateKey.generate()
        device = HubClient(url).enroll(hub.enroll_code(facility), key, str(uuid.uuid4()), "PC-1").device_id
        pc = HubClient(url, device_id=device, key=key, next_counter=itertools.count(1).__next__)
        ahead = Stamp(int(time.time() * 1000) + 2 * 86_400_000, 0, device).encode()
        case = Change(change_id=uuid.uuid4(), entity="case", entity_id="c-1", version=1, op=Op.UPSERT, hlc=ahead,
                      device_id=device, payload=records.case("c-1", "p-1"))
        assert pc.push(PushBatch(batch_id=uuid.uuid4(), changes=[case])).accepted == [case.change_id]
        stamps = []
        for i in range(8):    # new connections each time: they spread over both workers
            r = requests.post(f"{url}/v1/hub/cases/c-1", json={"doctor_note": f"note {i}"}, headers=STAFF, timeout=10)
            assert r.status_code == 200, r.text
            stamps.append(r.json()["hlc"])
        assert stamps[0] > ahead and stamps == sorted(stamps) and len(set(stamps)) == 8

        statuses = []
        for _ in range(12):
            try:
                HubClient(url).enroll("0000-0000-0000", Ed25519PrivateKey.generate(), str(uuid.uuid4()), "guess")
            except HubRefused as exc:
                statuses.append(exc.status)
        assert statuses == [403] * 10 + [429] * 2
    hub.engine.dispose()

