"""The spoke's sync engine against a real hub on loopback: a full round, quarantine, a dead hub, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import requests
from sqlalchemy import func, select

from spoke_client.db.models import ChangeRow, InboxRow
from spoke_client.domain.model import CaseStatus, ConsentGiver, ConsentMethod
from spoke_client.services.auth import FacilityForm
from spoke_client.services.cases import CaseForm
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import open_services
from spoke_client.services.sync_local import EnrolmentFailed, LocalSync, NotEnrolled, enroll, sync_once
from spoke_client.domain.vitals import Vitals
from spoke_client.paths import DataPaths
from tests.sync import records
from tests.sync.conftest import ADMIN_TOKEN, ServerThread, free_port


def queued_case(services, admin, name="Kamla Devi"):
    kamla = services.patients.register(admin, PatientForm(name=name, sex="female", age_years=60, village="Rampur"))
    case = services.cases.open_case(admin, kamla.id)
    services.cases.save(admin, case.id, CaseForm(complaints=("Headache",)),
                        vitals=Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118))
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, name, ConsentMethod.VERBAL)
    services.cases.transition(admin, case.id, CaseStatus.READY)
    services.cases.transition(admin, case.id, CaseStatus.QUEUED)
    return kamla, case


def unsent(services) -> int:
    return LocalSync(services.store).pending()


def test_full_round_push_then_the_hub_prescribes_and_the_spoke_pulls(hub, hub_server, facilities, spoke):
    services, admin, paths = spoke("pc1")
    assert enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1") == "HWC Rampur"
    kamla, case = queued_case(services, admin)
    waiting = unsent(services)
    report = sync_once(services.store, paths)
    assert report.ok and report.pushed == waiting and report.pending == 0
    assert hub.record("patient", kamla.id).payload["name"] == "Kamla Devi"
    assert hub.record("case", case.id).payload["status"] == "queued"
    r = requests.post(f"{hub_server.url}/v1/hub/cases/{case.id}", json={"status": "prescribed", "doctor_note": "Amlodipine 5 mg"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert r.status_code == 200
    report = sync_once(services.store, paths)
    assert report.ok and report.pulled == 1 and report.pushed == 0
    local = services.cases.get(case.id)
    assert local.status == CaseStatus.PRESCRIBED
    assert [c.case_id for c in services.cases.home().prescribed] == [case.id]
    again = sync_once(services.store, paths)
    assert (again.pushed, again.pulled) == (0, 0), "nothing twice"


def test_a_refused_change_is_quarantined_and_does_not_block_the_rest(hub, hub_server, facilities, spoke):
    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    with services.store.write(admin.id) as w:
        records.raw_change(w, "spaceship", "s-1", {"x": 1})
    queued_case(services, admin)
    report = sync_once(services.store, paths)
    assert report.quarantined == 1 and report.pending == 0 and report.pushed > 5
    [(entity, _id, reason)] = LocalSync(services.store).outbox.quarantined()
    assert entity == "spaceship" and "does not know" in reason
    assert not report.ok


def test_a_dead_hub_marks_nothing_sent_and_the_next_round_sends_everything_once(hub, facilities, spoke):
    from sync.hub.app import create_app

    server = ServerThread(create_app(hub, ADMIN_TOKEN)).start()
    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, server.url, hub.enroll_code(facilities[0]), "PC-1")
    server.stop()
    queued_case(services, admin)
    waiting = unsent(services)
    report = sync_once(services.store, paths)
    assert report.error_kind == "unreachable" and report.pending == waiting
    server = ServerThread(create_app(hub, ADMIN_TOKEN))
    server.port = int(services.store.get_setting("hub_url").rsplit(":", 1)[1])
    server.server.config.port = server.port
    server.start()
    try:
        report = sync_once(services.store, paths)
        assert report.ok and report.pushed == waiting
        with hub.session() as s:
            from sync.hub.models import HubChangeRow

            assert s.scalar(select(func.count()).select_from(HubChangeRow)) == waiting
    finally:
        server.stop()


def test_facilities_stay_apart(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = spoke("pc1")
    other, _admin3, paths3 = spoke("pc3", hwc="HWC-WB-0007")
    enroll(pc1.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    enroll(other.store, paths3, hub_server.url, hub.enroll_code(facilities[1]), "PC-K")
    queued_case(pc1, admin1)
    assert sync_once(pc1.store, paths1).pushed > 0
    assert sync_once(other.store, paths3).pulled == 0
    assert other.patients.search("kamla") == []


def test_a_replacement_pc_rebuilds_the_facility_from_the_hub(hub, hub_server, facilities, spoke):
    """Journey 9: the centre's PC dies; a new one, enrolled for the same facility, gets its patients and cases."""
    from spoke_client.services.seed import seed_demo

    old_pc, admin1, paths1 = spoke("old")
    enroll(old_pc.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-OLD")
    kamla, case = queued_case(old_pc, admin1)
    first = old_pc.cases.get(case.id).vitals[0]
    old_pc.cases.transition(admin1, case.id, CaseStatus.READY)
    old_pc.cases.correct_vitals(admin1, first.id, Vitals(systolic_mmhg=180, diastolic_mmhg=110))
    seed_demo(old_pc.store, admin1, old_pc.auth.facility().id, 120, 60)
    sent = sync_once(old_pc.store, paths1).pushed

    new_pc, admin2, paths2 = spoke("new")
    enroll(new_pc.store, paths2, hub_server.url, hub.enroll_code(facilities[0]), "PC-NEW")
    from spoke_client.services.sync_local import make_engine

    engine, _local = make_engine(new_pc.store, paths2)
    engine.page_size = 100
    checked_on = set()
    real_prepare = engine.inbox.prepare

    def prepare(page):   # the real one, noting its thread
        checked_on.add(threading.current_thread().name)
        return real_prepare(page)

    engine.inbox.prepare = prepare
    seen = []
    report = engine.run_once(progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert report.ok and report.pulled == sent
    assert checked_on == {"sync-pull"}, "payloads are checked on the thread that fetches, not the one that applies"
    pulls = [(done, total) for stage, done, total in seen if stage == "pull"]
    assert len(pulls) >= 3 and pulls[0][1] == sent, "the first page already knows the total, for a time estimate"
    assert pulls[-1] == (sent, sent)

    assert [h.patient.id for h in new_pc.patients.search("kamla devi rampur")] == [kamla.id]
    copy = new_pc.cases.get(case.id)
    assert copy.status == CaseStatus.READY and copy.complaints == ("Headache",)
    assert [v.vitals.systolic_mmhg for v in copy.vitals] == [186, 180]
    assert copy.vitals[0].status.value == "entered-in-error" and copy.consent.giver_name == "Kamla Devi"
    from sync.hub.models import HubChangeRow

    with hub.session() as s:
        hub_log = {str(c.change_id): c for c in s.scalars(select(HubChangeRow))}
    with new_pc.store.read() as s:
        unapplied = s.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.applied_at.is_(None)))
        kept = list(s.scalars(select(InboxRow)))
    assert len(kept) == sent
    for row in kept:   # each applied change's envelope, as the hub sent it; its payload is in its record now
        change = hub_log[row.change_id]
        assert (row.seq, row.entity, row.entity_id, row.version, row.op, row.hlc, row.device_id) == (
            change.seq, change.entity, change.entity_id, change.version, change.op, change.hlc, change.device_id)
        assert row.payload is None and row.waiting_for is None and row.failed_reason is None
        assert row.applied_at >= row.received_at and row.applied_at.tzinfo is not None
        assert s.scalar(select(func.count()).select_from(ChangeRow).where(ChangeRow.entity == "patient")) == 0, \
            "pulled records are not echoed back into the outbox"
    assert unapplied == 0
    from spoke_client.db.models import PatientRow

    with new_pc.store.read() as s:
        assert s.scalar(select(func.count()).select_from(PatientRow)) == 121
    assert sync_once(new_pc.store, paths2).pushed == 0


def test_enrolment_refusals_are_plain(hub, hub_server, facilities, spoke):
    services, _admin, paths = spoke("pc1")
    with pytest.raises(EnrolmentFailed, match="wrong, used or expired"):
        enroll(services.store, paths, hub_server.url, "0000-0000-0000", "PC-1")
    with pytest.raises(EnrolmentFailed, match="https"):
        enroll(services.store, paths, "http://hub.example.org", "X", "PC-1")
    with pytest.raises(NotEnrolled):
        sync_once(services.store, paths)
    assert not (paths.root / "device-key.pem").exists()


def test_cli_enroll_and_sync(hub, hub_server, facilities, tmp_path):
    data = tmp_path / "cli"
    demo = {**os.environ, "SPOKE_USER": "admin", "SPOKE_PASSWORD": "spoke-demo"}   # seed-demo's administrator
    run = lambda *a: subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(data), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120, env=demo)
    assert run("seed-demo", "--patients", "20", "--cases", "5").returncode == 0
    not_yet = run("sync")
    assert not_yet.returncode == 1 and "not enrolled" in not_yet.stderr
    out = run("enroll", "--hub", hub_server.url, "--code", hub.enroll_code(facilities[0]), "--name", "PC-1")
    assert out.returncode == 0 and "HWC Rampur" in out.stdout, out.stderr
    out = run("sync")
    assert out.returncode == 0, out.stderr
    assert "received 0; 0 still waiting" in out.stdout
    with hub.session() as s:
        from sync.hub.models import HubRecord

        assert s.scalar(select(func.count()).select_from(HubRecord).where(HubRecord.entity == "patient")) == 20
    dead = free_port()   # a port nobody listens on: the same data folder, pointed at a dead hub, reports it
    from spoke_client.services.vault import Gate

    gate = Gate(DataPaths(data))
    gate.login("admin", "spoke-demo")
    services = gate.services
    try:
        with services.store.write(None) as w:
            w.session.execute(ChangeRow.__table__.update().values(pushed_at=None))
            w.set_setting("hub_url", f"http://127.0.0.1:{dead}")
    finally:
        services.close()
    out = run("sync")
    assert out.returncode == 1 and "cannot be reached" in out.stderr
    assert "Traceback" not in out.stderr and "20 still waiting" not in out.stdout


def test_a_pc_whose_clock_is_days_ahead_is_told_and_sends_everything_once_the_date_is_right(hub, hub_server,
                                                                                             facilities, spoke):
    from datetime import timedelta

    from spoke_client.services.sync_local import sync_status
    from spoke_client.services.store import utcnow
    from sync.hlc import MAX_AHEAD_MS, Stamp

    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    assert sync_once(services.store, paths).ok
    services.store.clock = lambda: utcnow() + timedelta(days=10)     # the CMOS date typed wrong
    kamla, case = queued_case(services, admin)
    report = sync_once(services.store, paths)
    assert report.clock_refused > 0 and report.quarantined == 0 and report.pending == report.clock_refused
    assert not report.ok and hub.record("patient", kamla.id) is None
    status = sync_status(services.store)
    assert "10 days ahead" in status.clock_warning and "date and time" in status.clock_warning
    assert LocalSync(services.store).refused() == [], "not held aside: they wait for the date to be put right"

    services.store.clock = utcnow                                     # the date is put right
    report = sync_once(services.store, paths)
    assert report.ok and report.pending == 0 and report.pushed > 0
    assert sync_status(services.store).clock_warning == ""
    record = hub.record("patient", kamla.id)
    assert record is not None and record.payload["name"] == kamla.name
    now_ms = int(utcnow().timestamp() * 1000)
    assert Stamp.decode(record.hlc).wall_ms < now_ms + MAX_AHEAD_MS
    assert all(Stamp.decode(pair[0]).wall_ms < now_ms + 60_000 for pair in record.payload["_fields"].values()), \
        "the field stamps were re-stamped with the change"
    assert hub.record("case", case.id).payload["status"] == "queued"
