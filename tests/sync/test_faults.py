"""Faults on a real link: answers lost after the hub committed, requests cut mid-body, the hub killed mid-push.
Afterwards both ends hold every record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import func, select

from spoke_client.db.models import ChangeRow
from spoke_client.services.sync_local import HUB_URL, LocalSync, enroll, make_engine, sync_once
from sync.hub.models import HubChangeRow
from tests.sync.conftest import free_port
from tests.sync.faults import FaultyProxy
from tests.sync.test_engine import queued_case


def hub_counts(hub) -> tuple[int, int]:
    with hub.session() as s:
        return (s.scalar(select(func.count()).select_from(HubChangeRow)),
                s.scalar(select(func.count(func.distinct(HubChangeRow.change_id)))))


def local_changes(services) -> int:
    with services.store.read() as s:
        return s.scalar(select(func.count()).select_from(ChangeRow))


@pytest.fixture
def proxied(hub, hub_server, facilities, spoke):
    services, admin, paths = spoke("pc1")
    proxy = FaultyProxy(hub_server.port)
    enroll(services.store, paths, proxy.url, hub.enroll_code(facilities[0]), "PC-1")
    yield services, admin, paths, proxy
    proxy.close()


def test_an_answer_lost_after_the_hub_committed(hub, proxied):
    services, admin, paths, proxy = proxied
    queued_case(services, admin)
    waiting = LocalSync(services.store).pending()
    proxy.mode = "lose_answer"
    report = sync_once(services.store, paths)
    assert report.error_kind == "unreachable" and report.pending == waiting, "a lost answer is never success"
    assert hub_counts(hub)[0] == waiting, "the hub did commit the batch"
    proxy.mode = "pass"
    report = sync_once(services.store, paths)
    assert report.ok and report.pushed == 0 and report.already_there == waiting and report.pending == 0
    assert hub_counts(hub) == (waiting, waiting) == (local_changes(services), local_changes(services))


def test_a_request_cut_mid_body_applies_nothing(hub, proxied):
    services, admin, paths, proxy = proxied
    queued_case(services, admin)
    waiting = LocalSync(services.store).pending()
    proxy.mode = "cut_request"
    report = sync_once(services.store, paths)
    assert report.error is not None and report.pending == waiting
    assert hub_counts(hub)[0] == 0
    proxy.mode = "pass"
    assert sync_once(services.store, paths).pushed == waiting
    assert hub_counts(hub) == (waiting, waiting)


def test_pull_cut_between_pages_resumes_without_gaps_or_doubles(hub, hub_server, facilities, spoke):
    from spoke_client.services.seed import seed_demo

    writer, admin1, paths1 = spoke("writer")
    enroll(writer.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    seed_demo(writer.store, admin1, writer.auth.facility().id, 150, 50)
    sent = sync_once(writer.store, paths1).pushed

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
    assert report.error_kind == "unreachable" and report.pulled == 120
    proxy.mode = "pass"
    engine, local = make_engine(reader.store, paths2)
    engine.page_size = 60
    report = engine.run_once()
    assert report.ok
    with reader.store.read() as s:
        from spoke_client.db.models import InboxRow, PatientRow

        inbox = s.scalar(select(func.count()).select_from(InboxRow))
        distinct = s.scalar(select(func.count(func.distinct(InboxRow.change_id))))
        patients = s.scalar(select(func.count()).select_from(PatientRow))
    assert inbox == distinct == sent and patients == 150
    proxy.close()


def test_the_hub_process_killed_mid_push(tmp_path, spoke):
    """A real hub process, SIGKILLed while it receives a large push; restarted on the same database."""
    from spoke_client.services.seed import seed_demo

    db = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    port = free_port()
    cmd = [sys.executable, "-m", "sync.hub", "--db", db]

    def start():
        proc = subprocess.Popen(cmd + ["serve", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                return proc
            except requests.RequestException:
                time.sleep(0.1)
        proc.kill()
        pytest.fail("the hub did not start")

    hub_proc = start()
    facility = subprocess.run(cmd + ["create-facility", "--name", "HWC Rampur", "--hwc-id", "HWC-K1"],
                              capture_output=True, text=True, check=True).stdout.strip()
    code = subprocess.run(cmd + ["enroll-code", "--facility", facility], capture_output=True, text=True, check=True).stdout.strip()
    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, f"http://127.0.0.1:{port}", code, "PC-1")
    seed_demo(services.store, admin, services.auth.facility().id, 3000, 1000)
    total = LocalSync(services.store).pending()
    engine, _local = make_engine(services.store, paths)
    engine.batch_size = 500

    def kill_on_third_batch(stage, done, total_):
        if stage == "push" and done >= 1000:
            os.kill(hub_proc.pid, signal.SIGKILL)

    try:
        report = engine.run_once(progress=kill_on_third_batch)
        assert report.error_kind == "unreachable" and 0 < report.pending < total
        hub_proc.wait(10)
        hub_proc = start()
        report = sync_once(services.store, paths)
        assert report.ok and report.pending == 0
        from sync.hub.service import Hub, make_hub_engine

        hub = Hub(make_hub_engine(db))
        counts = hub_counts(hub)
        hub.engine.dispose()
        assert counts == (local_changes(services), local_changes(services))
    finally:
        hub_proc.kill()
        hub_proc.wait(10)
