"""Faults on a real link: answers lost after the hub committed, requests cut mid-body, the hub process killed
between batches, while a batch is arriving, and after it committed with its answer on the way.
Afterwards both ends hold every record exactly once: the same change ids, as many at one end as at the other."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import func, select

from spoke_client.services.sync_local import LocalSync, enroll, make_engine, sync_once
from tests.sync.faults import FaultyProxy, change_ids, message_json
from tests.sync.hub_process import HubProcess
from tests.sync.ledger import (
    acknowledged_here,
    assert_pulled_exactly_once,
    assert_pushed_exactly_once,
    assert_same,
    at_hub,
    made_here,
    pulled_here,
)
from tests.sync.test_engine import queued_case


@pytest.fixture
def proxied(hub, hub_server, facilities, spoke, monkeypatch):
    """A spoke behind a faulty proxy; a request on a closed connection is not sent a second time, so that each
    fault is one request (the retry itself: test_a_connection_closed_under_a_request_is_tried_once_more)."""
    from sync.transport.http import HubClient

    monkeypatch.setattr(HubClient, "retry_stale", False)
    services, admin, paths = spoke("pc1")
    proxy = FaultyProxy(hub_server.port)
    enroll(services.store, paths, proxy.url, hub.enroll_code(facilities[0]), "PC-1")
    yield services, admin, paths, proxy
    proxy.close()


def test_a_connection_closed_under_a_request_is_tried_once_more(hub, hub_server, facilities, spoke):
    """The keep-alive race (the hub closes an idle connection as a request goes out on it): the request goes once
    more on a new connection, and the sync succeeds; a second close is the hub being unreachable."""
    services, admin, paths = spoke("pc1")
    proxy = FaultyProxy(hub_server.port)
    enroll(services.store, paths, proxy.url, hub.enroll_code(facilities[0]), "PC-1")
    queued_case(services, admin)
    proxy.arm("kill_after_answer", lambda: None)      # one answer dropped, the hub left running: a closed connection
    report = sync_once(services.store, paths)
    assert report.ok and report.pending == 0, report
    first, again = [x for x in proxy.exchanges if x.path.startswith("/v1/push")][:2]
    assert first.answer == b"" and again.answer and change_ids(first.request) == change_ids(again.request)
    answer = message_json(again.answer)   # rows or columns, whichever the spoke sent
    duplicates = answer["outcome"].count("d") if "outcome" in answer else len(answer["duplicates"])
    assert duplicates == len(change_ids(first.request)), "the hub had committed the first: the second is all duplicates"
    assert_pushed_exactly_once(services, hub)
    proxy.mode = "lose_answer"                        # every request: unreachable, nothing marked sent
    queued_case(services, admin, "Ravi Kumar")
    waiting = LocalSync(services.store).pending()
    report = sync_once(services.store, paths)
    assert report.error_kind == "unreachable" and report.pending == waiting
    proxy.close()


def pushes(proxy: FaultyProxy):
    return [e for e in proxy.exchanges if e.path == "/v1/push"]


def test_an_answer_lost_after_the_hub_committed(hub, proxied):
    services, admin, paths, proxy = proxied
    queued_case(services, admin)
    waiting = LocalSync(services.store).pending()
    proxy.mode = "lose_answer"
    report = sync_once(services.store, paths)
    assert report.error_kind == "unreachable" and report.pending == waiting, "a lost answer is never success"
    [lost] = pushes(proxy)
    assert lost.answer_started and lost.answer == b""
    assert acknowledged_here(services) == []
    assert_same(change_ids(lost.request), at_hub(hub, device_id=services.store.device_id),
                "the hub did commit the batch whose answer was lost")
    proxy.mode = "pass"
    report = sync_once(services.store, paths)
    assert report.ok and report.pushed == 0 and report.already_there == waiting and report.pending == 0
    retried = message_json(pushes(proxy)[1].answer)
    assert_same(retried["duplicates"], change_ids(lost.request), "the batch sent again, acknowledged as duplicates")
    assert_pushed_exactly_once(services, hub)


def test_a_request_cut_mid_body_applies_nothing(hub, proxied):
    services, admin, paths, proxy = proxied
    queued_case(services, admin)
    waiting = LocalSync(services.store).pending()
    proxy.mode = "cut_request"
    report = sync_once(services.store, paths)
    assert report.error is not None and report.pending == waiting
    assert at_hub(hub, device_id=services.store.device_id) == []
    proxy.mode = "pass"
    report = sync_once(services.store, paths)
    assert report.pushed == waiting and report.already_there == 0
    assert_pushed_exactly_once(services, hub)


def test_pull_cut_between_pages_resumes_without_gaps_or_doubles(hub, hub_server, facilities, spoke):
    from spoke_client.services.seed import seed_demo

    writer, admin1, paths1 = spoke("writer")
    enroll(writer.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    seed_demo(writer.store, admin1, writer.auth.facility().id, 150, 50)
    assert sync_once(writer.store, paths1).ok
    assert_pushed_exactly_once(writer, hub)

    reader, _admin2, paths2 = spoke("reader")
    proxy = FaultyProxy(hub_server.port)
    enroll(reader.store, paths2, proxy.url, hub.enroll_code(facilities[0]), "PC-2")
    sync_once(reader.store, paths2)  # pushes its own set-up; the pull below is what is under test
    with reader.store.write(None) as w:
        w.set_setting("hub_cursor", "0")
        w.session.execute(__import__("sqlalchemy").text("DELETE FROM hub_inbox"))
    engine, local = make_engine(reader.store, paths2)
    engine.page_size = 60
    pages = []

    def cut_after_two_pages(stage, done, total):
        if stage == "pull":
            pages.append(done)
            if len(pages) == 2:
                proxy.mode = "lose_answer"

    report = engine.run_once(progress=cut_after_two_pages)
    # The next page is fetched while one is applied, so the link may drop a page or two later than the second;
    # what counts is that what was applied is exactly what was reported, in whole pages, and not everything.
    total = len(made_here(writer))
    assert report.error_kind == "unreachable" and report.pulled == len(pulled_here(reader))
    assert report.pulled % 60 == 0 and 120 <= report.pulled < total, (report.pulled, total)
    proxy.mode = "pass"
    engine, local = make_engine(reader.store, paths2)
    engine.page_size = 60
    report = engine.run_once()
    assert report.ok
    from spoke_client.db.models import PatientRow

    with reader.store.read() as s:
        patients = s.scalar(select(func.count()).select_from(PatientRow))
    assert_same(pulled_here(reader), made_here(writer), "the reader pulled every change the writer made")
    assert_pulled_exactly_once(reader, hub)
    assert patients == 150
    proxy.close()


def test_the_hub_process_killed_between_batches(tmp_path, spoke):
    """A real hub process, SIGKILLed between two batches of a large push; restarted on the same database."""
    from spoke_client.services.seed import seed_demo

    process = HubProcess(f"sqlite:///{tmp_path / 'hub.sqlite'}", tmp_path).start()
    hub = process.admin()
    services, admin, paths = spoke("pc1")
    try:
        enroll(services.store, paths, process.url, hub.enroll_code(hub.create_facility("HWC Rampur", "HWC-K1")), "PC-1")
        seed_demo(services.store, admin, services.auth.facility().id, 3000, 1000)
        total = LocalSync(services.store).pending()
        engine, _local = make_engine(services.store, paths)
        engine.batch_size = 500

        def kill_on_third_batch(stage, done, total_):
            if stage == "push" and done >= 1000 and process.alive:
                process.kill()
                process.wait_dead()

        report = engine.run_once(progress=kill_on_third_batch)
        assert report.error_kind == "unreachable" and 0 < report.pending < total
        assert_same(acknowledged_here(services), at_hub(hub, device_id=services.store.device_id),
                    "killed between requests: the hub holds exactly what it acknowledged")
        process.start()
        report = sync_once(services.store, paths)
        assert report.ok and report.pending == 0 and report.already_there == 0
        assert_pushed_exactly_once(services, hub)
    finally:
        process.stop()
        hub.engine.dispose()


# --- the hub process killed in the middle of a push (SQLite and PostgreSQL) ----------------------------------

@pytest.fixture
def hub_process(hub_db_url, tmp_path):
    process = HubProcess(hub_db_url, tmp_path).start()
    admin = process.admin()
    yield process, admin
    process.stop()
    admin.engine.dispose()


@pytest.fixture
def killable(hub_process, spoke, monkeypatch):
    """A spoke with four queued cases (about 30 changes) behind a proxy to a hub process, pushing 10 a batch,
    one batch on the way at a time, so that each request can be told apart (the property test in
    test_convergence.py kills hubs with two on the way)."""
    import sync.engine
    from sync.transport.http import HubClient

    monkeypatch.setattr(sync.engine, "PUSH_IN_FLIGHT", 1)
    monkeypatch.setattr(HubClient, "retry_stale", False)   # no second try on a closed connection: each one counted
    process, hub = hub_process
    services, admin, paths = spoke("pc1")
    proxy = FaultyProxy(process.port)
    enroll(services.store, paths, proxy.url, hub.enroll_code(hub.create_facility("HWC Rampur", "HWC-UP-0042")), "PC-1")
    cases = [queued_case(services, admin, name)[1].id for name in ("Kamla Devi", "Savitri Kushwaha", "Ravi Kumar",
                                                                   "Lakshmi Bai")]
    engine, _local = make_engine(services.store, paths)
    engine.batch_size = 10
    yield services, paths, proxy, process, hub, engine, cases
    proxy.close()


def test_the_hub_process_killed_with_two_batches_on_the_way(hub_process, spoke):
    """Two batches in flight when the hub dies: whatever it acknowledged is marked sent, the rest goes again,
    and the hub ends with every change once."""
    process, hub = hub_process
    services, admin, paths = spoke("pc1")
    proxy = FaultyProxy(process.port)
    enroll(services.store, paths, proxy.url, hub.enroll_code(hub.create_facility("HWC Rampur", "HWC-UP-0042")), "PC-1")
    for name in ("Kamla Devi", "Savitri Kushwaha", "Ravi Kumar", "Lakshmi Bai", "Phoolmati", "Ramvati"):
        queued_case(services, admin, name)
    engine, _local = make_engine(services.store, paths)
    engine.batch_size = 5
    assert engine.push_in_flight == 2
    proxy.arm("kill_mid_body", process.kill, after=2)
    report = engine.run_once()
    assert report.error_kind == "unreachable" and process.wait_dead() == -signal.SIGKILL
    acknowledged = set(acknowledged_here(services))
    assert acknowledged <= set(at_hub(hub, device_id=services.store.device_id)), "nothing marked sent that is not there"
    process.start()
    report = sync_once(services.store, paths)
    assert report.ok and report.pending == 0
    assert_pushed_exactly_once(services, hub)
    proxy.close()


def test_the_hub_process_killed_while_a_batch_is_arriving(killable):
    services, paths, proxy, process, hub, engine, cases = killable
    made = made_here(services)
    proxy.arm("kill_mid_body", process.kill, after=1)   # the first batch goes through, the second trickles in
    report = engine.run_once()
    assert report.error_kind == "unreachable"
    assert process.wait_dead() == -signal.SIGKILL
    first, cut = pushes(proxy)
    assert proxy.fired == [cut] and first.answer and cut.answer == b"" and not cut.answer_started
    assert len(cut.request.partition(b"\r\n\r\n")[0]) < cut.forwarded < len(cut.request), \
        "the hub was killed with part of the body in and the rest still to come"
    assert_same(acknowledged_here(services), change_ids(first.request), "only the first batch was acknowledged")
    assert_same(at_hub(hub, device_id=services.store.device_id), change_ids(first.request),
                "the hub holds the first batch, and nothing of the one it was receiving")
    assert report.pending == len(made) - len(change_ids(first.request))

    process.start()
    report = sync_once(services.store, paths)
    assert report.ok and report.pending == 0
    assert report.already_there == 0 and report.pushed == len(made) - len(change_ids(first.request))
    retried = message_json(pushes(proxy)[2].answer)
    assert set(change_ids(cut.request)) <= set(retried["accepted"]) and retried["duplicates"] == []
    assert_pushed_exactly_once(services, hub)
    assert [hub.record("case", c).payload["status"] for c in cases] == ["queued"] * 4


def test_the_hub_process_killed_after_it_committed_with_its_answer_lost(killable):
    services, paths, proxy, process, hub, engine, cases = killable
    made = made_here(services)
    proxy.arm("kill_after_answer", process.kill, after=1)
    report = engine.run_once()
    assert report.error_kind == "unreachable"
    assert process.wait_dead() == -signal.SIGKILL
    first, lost = pushes(proxy)
    assert proxy.fired == [lost] and lost.answer_started and lost.answer == b""
    sent_first, sent_lost = change_ids(first.request), change_ids(lost.request)
    assert_same(acknowledged_here(services), sent_first, "the lost answer acknowledged nothing")
    assert_same(at_hub(hub, device_id=services.store.device_id), sent_first + sent_lost,
                "the hub committed the batch before it was killed")

    process.start()
    report = sync_once(services.store, paths)
    assert report.ok and report.pending == 0
    assert report.already_there == len(sent_lost) and report.pushed == len(made) - len(sent_first) - len(sent_lost)
    retried = message_json(pushes(proxy)[2].answer)
    assert_same(retried["duplicates"], sent_lost, "the batch sent again, acknowledged as duplicates")
    assert_same(retried["accepted"], sorted(set(made) - set(sent_first) - set(sent_lost)), "the rest, applied")
    assert_pushed_exactly_once(services, hub)
    assert [hub.record("case", c).payload["status"] for c in cases] == ["queued"] * 4
