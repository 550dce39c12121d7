"""The reference hub over real HTTP on loopback: enrolment, signatures, exactly-once push, paged pull."""

from __future__ import annotations

import http.server
import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from sync.hub.models import HubChangeRow
from sync.protocol import PushBatch, encode
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable
from tests.sync import records
from tests.sync.conftest import ADMIN_TOKEN, free_port


def count_changes(hub) -> int:
    with hub.session() as s:
        return s.scalar(select(func.count()).select_from(HubChangeRow))


def pull_all(spoke, after: int = 0, limit: int = 500) -> tuple[list, int]:
    out = []
    while True:
        page = spoke.client.pull(after, limit)
        out.extend(page.changes)
        after = page.next_cursor
        if not page.more:
            return out, after


def test_health_and_openapi(hub_server):
    assert HubClient(hub_server.url).health().status == "ok"
    paths = requests.get(hub_server.url + "/openapi.json", timeout=5).json()["paths"]
    assert {"/v1/push", "/v1/pull", "/v1/enroll", "/v1/health"} <= set(paths)


def test_an_enrolment_code_works_once(hub, hub_server, facilities, spoke_factory):
    code = hub.enroll_code(facilities[0])
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    client = HubClient(hub_server.url)
    assert client.enroll(code.lower(), Ed25519PrivateKey.generate(), str(uuid.uuid4()), "PC-1").facility_name == "HWC Rampur"
    with pytest.raises(HubRefused) as e:
        client.enroll(code, Ed25519PrivateKey.generate(), str(uuid.uuid4()), "PC-2")
    assert e.value.status == 403 and "used or expired" in e.value.message
    with pytest.raises(HubRefused):
        client.enroll("0000-0000-0000", Ed25519PrivateKey.generate(), str(uuid.uuid4()), "PC-3")


def test_full_round_and_facilities_never_see_each_other(hub, facilities, spoke_factory):
    rampur_1, rampur_2 = spoke_factory(facilities[0], "PC-1"), spoke_factory(facilities[0], "PC-2")
    kultali = spoke_factory(facilities[1], "PC-K")
    patient = rampur_1.change("patient", "p-1", records.patient("p-1"))
    case = rampur_1.change("case", "c-1", records.case("c-1", "p-1"))
    result = rampur_1.client.push(rampur_1.batch([patient, case]))
    assert result.accepted == [patient.change_id, case.change_id] and not result.duplicates and not result.rejected
    pulled, _ = pull_all(rampur_2)
    assert [(c.entity, c.entity_id) for c in pulled] == [("patient", "p-1"), ("case", "c-1")]
    assert pull_all(rampur_1)[0] == [], "a device is not sent its own changes back"
    assert pull_all(kultali)[0] == []
    intrusion = kultali.change("patient", "p-1", records.patient("p-1", name="Someone Else"), version=2)
    result = kultali.client.push(kultali.batch([intrusion]))
    assert result.rejected[0].reason == "This record belongs to another facility."
    assert hub.record("patient", "p-1").payload["name"] == "Kamla Devi"


def test_the_same_batch_twice_is_applied_once(hub, facilities, spoke_factory):
    """Also the case of a response lost after the hub committed: the retry gets 'duplicates'."""
    spoke = spoke_factory(facilities[0])
    batch = spoke.batch([spoke.change("patient", f"p-{i}", records.patient(f"p-{i}", name=f"Patient {i}")) for i in range(50)])
    first = spoke.client.push(batch)
    again = spoke.client.push(batch)
    assert len(first.accepted) == 50 and again.accepted == [] and len(again.duplicates) == 50
    assert count_changes(hub) == 50


def test_one_bad_change_does_not_block_the_rest(hub, facilities, spoke_factory):
    spoke = spoke_factory(facilities[0])
    good = spoke.change("patient", "p-1", records.patient("p-1"))
    unknown = spoke.change("spaceship", "s-1", {"x": 1})
    result = spoke.client.push(spoke.batch([good, unknown]))
    assert result.accepted == [good.change_id]
    assert [r.change_id for r in result.rejected] == [unknown.change_id] and "does not know" in result.rejected[0].reason


def test_pull_in_pages_resumes_from_the_cursor(hub, facilities, spoke_factory):
    writer, reader = spoke_factory(facilities[0], "PC-1"), spoke_factory(facilities[0], "PC-2")
    writer.client.push(writer.batch([writer.change("vitals", f"v-{i}", records.vitals(f"v-{i}", "c-1", pulse_per_min=60 + i)) for i in range(25)]))
    page = reader.client.pull(0, 10)
    assert len(page.changes) == 10 and page.more
    cursor = page.next_cursor  # the spoke stores this with the data; then the link drops
    rest, end = pull_all(reader, cursor, 10)
    ids = [c.entity_id for c in page.changes + rest]
    assert sorted(ids) == sorted(f"v-{i}" for i in range(25)) and len(set(ids)) == 25
    seqs = [c.seq for c in page.changes + rest]
    assert seqs == sorted(seqs) and end == seqs[-1]
    assert reader.client.pull(end).changes == []


def test_the_hub_acts_on_a_case_and_the_spoke_pulls_it(hub, hub_server, facilities, spoke_factory):
    spoke = spoke_factory(facilities[0])
    spoke.client.push(spoke.batch([spoke.change("case", "c-1", records.case("c-1", "p-1"))]))
    r = requests.post(f"{hub_server.url}/v1/hub/cases/c-1", json={"status": "prescribed", "doctor_note": "BP recheck"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert r.status_code == 200, r.text
    [change] = pull_all(spoke)[0]
    assert change.device_id == "hub" and change.payload == records.case("c-1", "p-1", status="prescribed", doctor_note="BP recheck")
    denied = requests.post(f"{hub_server.url}/v1/hub/cases/c-1", json={"status": "closed"}, timeout=10)
    assert denied.status_code == 401 and denied.json()["code"] == "not_hub_staff"


def test_signatures_counters_and_revocation(hub, hub_server, facilities, spoke_factory):
    spoke = spoke_factory(facilities[0])
    body = encode(spoke.batch([]))
    unsigned = requests.post(hub_server.url + "/v1/push", data=body, headers={"Content-Encoding": "gzip"}, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "unsigned"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    impostor = HubClient(hub_server.url, device_id=spoke.device_id, key=Ed25519PrivateKey.generate(),
                         next_counter=itertools.count(1000).__next__)
    with pytest.raises(HubRefused) as e:
        impostor.pull(0)
    assert e.value.code == "bad_signature"
    replay = HubClient(hub_server.url, device_id=spoke.device_id, key=spoke.key, next_counter=lambda: 1)
    replay.pull(0)
    with pytest.raises(HubRefused) as e:
        replay.pull(0)
    assert e.value.code == "replayed"
    hub.revoke(spoke.device_id, "PC stolen")
    with pytest.raises(HubRefused) as e:
        spoke.client.pull(10_000)
    assert e.value.status == 403 and "revoked on" in e.value.message and "PC stolen" in e.value.message


def test_malformed_bodies_get_4xx_and_apply_nothing(hub, hub_server, facilities, spoke_factory):
    spoke = spoke_factory(facilities[0])
    good = spoke.change("patient", "p-1", records.patient("p-1"))
    raw = encode(spoke.batch([good]))[:-6]  # cut off mid-stream, as by a cable pulled during upload
    from sync.protocol import b64, signing_text

    counter = 10_000
    sig = b64(spoke.key.sign(signing_text("POST", "/v1/push", counter, raw)))
    r = requests.post(hub_server.url + "/v1/push", data=raw, timeout=10,
                      headers={"Content-Encoding": "gzip", "Spoke-Device": spoke.device_id, "Spoke-Counter": str(counter),
                               "Spoke-Signature": sig})
    assert 400 <= r.status_code < 500 and set(r.json()) == {"code", "message"}
    assert count_changes(hub) == 0
    with pytest.raises(HubRefused) as e:
        spoke.client.pull(-1)
    assert e.value.status == 400


def test_a_captive_portal_is_not_the_hub():
    class Portal(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<html><body>Login to FreeWifi</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(HubGarbage):
            HubClient(f"http://127.0.0.1:{server.server_address[1]}").health()
    finally:
        server.shutdown()


def test_no_hub_is_unreachable_never_success():
    with pytest.raises(HubUnreachable):
        HubClient(f"http://127.0.0.1:{free_port()}").health()


def test_plain_http_only_to_loopback():
    with pytest.raises(ValueError, match="https"):
        HubClient("http://hub.example.org")
    assert HubClient("https://hub.example.org/").base_url == "https://hub.example.org"


def test_concurrent_pushes_are_each_pulled_exactly_once_in_order(hub, facilities, spoke_factory):
    writers = [spoke_factory(facilities[0], f"PC-{i}") for i in range(4)]
    reader = spoke_factory(facilities[0], "PC-R")

    def push_rounds(spoke):  # one sync job per device at a time, as the engine runs them; devices in parallel
        accepted = 0
        for round_ in range(5):
            batch = PushBatch(batch_id=uuid.uuid4(), changes=[
                spoke.change("vitals", f"{spoke.device_id}-{round_}-{j}", records.vitals(f"{spoke.device_id}-{round_}-{j}", "c-1")) for j in range(20)])
            accepted += len(spoke.client.push(batch).accepted)
        return accepted

    seen, cursor = [], 0
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(push_rounds, w) for w in writers]
        while not all(f.done() for f in futures):  # pull while others push: a late commit must not be skipped
            page = reader.client.pull(cursor, 50)
            seen.extend(page.changes)
            cursor = page.next_cursor
        assert sum(f.result() for f in futures) == 400
    rest, _ = pull_all(reader, cursor)
    seen.extend(rest)
    ids = [c.change_id for c in seen]
    assert len(ids) == 400 and len(set(ids)) == 400
    assert [c.seq for c in seen] == sorted(c.seq for c in seen)


def test_the_hub_schema_comes_from_its_migrations(hub):
    from sqlalchemy import inspect

    from sync.hub.models import HubBase

    tables = set(inspect(hub.engine).get_table_names())
    assert set(HubBase.metadata.tables) | {"hub_alembic_version"} == tables
    hub.create_schema()  # again: nothing to do, nothing lost
    with hub.engine.connect() as c:
        from alembic.script import ScriptDirectory

        from sync.hub.migrate import config

        head = ScriptDirectory.from_config(config()).get_current_head()
        assert c.exec_driver_sql("SELECT version_num FROM hub_alembic_version").scalar() == head
        # The models and the migrations say the same thing, column by column, index by index.
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        context = MigrationContext.configure(c, opts={"version_table": "hub_alembic_version"})
        assert compare_metadata(context, HubBase.metadata) == []


def test_a_spoke_of_protocol_1_and_this_hub_still_talk(hub, hub_server, facilities, spoke_factory):
    """Release 0.1's wire (gzip JSON, strict answer models, no revision header) against this hub, both ways,
    with a refusal in the answer, while a current spoke of the same facility uses columns."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.sync.protocol1 import Protocol1Spoke

    key = Ed25519PrivateKey.generate()
    device = HubClient(hub_server.url).enroll(hub.enroll_code(facilities[0]), key, str(uuid.uuid4()), "old PC").device_id
    old = Protocol1Spoke(hub_server.url, device, key)
    new = spoke_factory(facilities[0], "new PC")
    stamp = lambda: new.clock.now(int(__import__("time").time() * 1000)).encode()  # noqa: E731
    good = dict(change_id=str(uuid.uuid4()), entity="patient", entity_id="p-old", version=1, op="upsert", hlc=stamp(),
                device_id=device, payload=records.patient("p-old", name="Phoolmati"))
    bad = dict(good, change_id=str(uuid.uuid4()), entity_id="p-bad", payload={"id": "p-bad", "name": "x"})
    result = old.push([good, bad])
    assert [str(i) for i in result.accepted] == [good["change_id"]] and result.rejected[0].reason
    new.client.push(new.batch([new.change("case", "c-new", records.case("c-new", "p-old"))]))
    assert new.client.columns, "the current spoke learnt from the hub's answers that it speaks columns"
    columns = new.change("vitals", "v-new", records.vitals("v-new", "c-new"))
    assert new.client.encode_push(new.batch([columns]))[1] == "application/vnd.spoke.changes+zstd"
    assert new.client.push(new.batch([columns])).accepted == [columns.change_id]
    page = old.pull(0)
    assert [(c.entity, c.entity_id) for c in page.changes] == [("case", "c-new"), ("vitals", "v-new")]
    mine = pull_all(new)[0]
    assert [(c.entity, c.entity_id) for c in mine] == [("patient", "p-old")]
    assert mine[0].payload == hub.record("patient", "p-old").payload
