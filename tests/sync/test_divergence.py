"""The divergence check: a digest of what each side holds for the facility; where they differ, a full resync
that loses nothing, including unsent local work. Two real failures: a hub restored from an older backup, and
a spoke PC restored from an older copy of its database."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select

from spoke_client.db.engine import backup_to
from spoke_client.db.models import PatientRow
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import open_services
from spoke_client.services.sync_local import LocalSync, enroll, sync_once
from sync.hub.models import HubChangeRow, HubRecord
from tests.sync.ledger import (
    assert_pulled_exactly_once,
    assert_pushed_exactly_once,
    assert_same,
    at_hub,
    made_here,
    pulled_here,
)


def register(services, admin, name):
    return services.patients.register(admin, PatientForm(name=name, sex="female", age_years=40, village="Rampur"),
                                      confirmed_new=True)


def names(services) -> set[str]:
    with services.store.read() as s:
        return set(s.scalars(select(PatientRow.name)))


def hub_names(hub, facility_id) -> set[str]:
    with hub.session() as s:
        return {r.payload["name"] for r in s.scalars(select(HubRecord).where(
            HubRecord.entity == "patient", HubRecord.facility_id == facility_id))}


def own_pulled(services) -> list[str]:
    """This PC's own changes that a full resync pulled back from the hub."""
    from spoke_client.db.models import InboxRow

    with services.store.read() as s:
        return list(s.scalars(select(InboxRow.change_id).where(InboxRow.device_id == services.store.device_id)))


def snapshot(hub):
    with hub.session() as s:
        return (s.scalar(select(func.max(HubChangeRow.seq))),
                [{c.name: getattr(r, c.name) for c in HubRecord.__table__.columns} for r in s.scalars(select(HubRecord))])


def restore(hub, snap):
    """What restoring the hub database from that backup does to its data (SQLite even reuses the seq numbers)."""
    max_seq, records = snap
    with hub.session.begin() as s:
        s.execute(delete(HubChangeRow).where(HubChangeRow.seq > max_seq))
        s.execute(delete(HubRecord))
        s.execute(insert(HubRecord), records)


def test_ends_that_agree_check_clean(hub, hub_server, facilities, spoke):
    pc, admin, paths = spoke("pc1")
    enroll(pc.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    register(pc, admin, "Kamla Devi")
    report = sync_once(pc.store, paths, verify=True)
    assert report.ok and report.checked and report.resynced == "" and not report.diverged
    assert sync_once(pc.store, paths).checked is False, "the next check is hours away"


def test_a_hub_restored_from_an_older_backup_gets_everything_back(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = spoke("pc1")
    pc2, admin2, paths2 = spoke("pc2")
    for s, p, n in ((pc1, paths1, "PC-1"), (pc2, paths2, "PC-2")):
        enroll(s.store, p, hub_server.url, hub.enroll_code(facilities[0]), n)
    register(pc1, admin1, "Asha Kumari")
    assert sync_once(pc1.store, paths1).ok and sync_once(pc2.store, paths2).ok
    backup = snapshot(hub)
    register(pc1, admin1, "Bimla Devi")
    assert sync_once(pc1.store, paths1).ok and sync_once(pc2.store, paths2).ok
    assert "Bimla Devi" in names(pc2)

    restore(hub, backup)                                  # Bimla's record is gone from the hub
    register(pc1, admin1, "Chanda Yadav")                 # unsent work on PC-1 meanwhile
    register(pc2, admin2, "Durga Prasad")
    report2 = sync_once(pc2.store, paths2, verify=True)
    assert report2.checked and "pull" in report2.resynced and report2.error is None
    assert "Bimla Devi" in names(pc2), "what PC-2 had applied stays"

    report1 = sync_once(pc1.store, paths1, verify=True)
    assert report1.checked and "push" in report1.resynced and not report1.diverged, report1
    assert report1.already_there > 0 and report1.pushed > 0, "what the hub kept is acknowledged, what it lost is sent"
    assert hub_names(hub, facilities[0]) == {"Asha Kumari", "Bimla Devi", "Chanda Yadav", "Durga Prasad"}

    report2 = sync_once(pc2.store, paths2, verify=True)
    assert report2.ok and report2.resynced == "", report2
    assert names(pc1) == names(pc2) == {"Asha Kumari", "Bimla Devi", "Chanda Yadav", "Durga Prasad"}
    # What the hub lost came back, once: each PC's changes are all at the hub, and each PC holds the other's.
    for pc in (pc1, pc2):
        assert_pushed_exactly_once(pc, hub)
        assert_pulled_exactly_once(pc, hub)
    assert_same(pulled_here(pc2), made_here(pc1), "PC-2 holds every change PC-1 made")


def test_a_pc_restored_from_an_older_copy_gets_back_what_it_had_sent(hub, hub_server, facilities, tmp_path, monkeypatch):
    from spoke_client.paths import DataPaths
    from spoke_client.services.auth import FacilityForm
    from spoke_client.services.hub_link import HubLink

    # Request numbers are reserved in blocks; one at a time here, so that the copy's counter is surely behind
    # what the hub saw after the copy was taken (with blocks, only a PC that sent a block's worth after it is).
    monkeypatch.setattr(HubLink, "BLOCK", 1)

    paths = DataPaths(tmp_path / "pc1")
    pc = open_services(paths)
    _f, admin = pc.auth.setup(FacilityForm("HWC Rampur", "HWC-UP-0042", "Sitapur", "UP"), "admin", "Asha", "pass-word-1")
    enroll(pc.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    register(pc, admin, "Asha Kumari")
    assert sync_once(pc.store, paths).ok
    copy = tmp_path / "copy.sqlite"
    key = pc.key
    backup_to(paths.database, copy, key)
    register(pc, admin, "Bimla Devi")
    assert sync_once(pc.store, paths).ok
    before_restore = at_hub(hub, device_id=pc.store.device_id)
    assert_pushed_exactly_once(pc, hub)
    pc.close()

    backup_to(copy, paths.database, key)                # the PC restored from its older copy (the same key)
    pc = open_services(paths, key=key)
    try:
        assert "Bimla Devi" not in names(pc)
        register(pc, admin, "Chanda Yadav")
        report = sync_once(pc.store, paths, verify=True)  # its request counter went back too: it recovers
        assert report.error is None and "pull" in report.resynced and not report.diverged, report
        assert names(pc) == {"Asha Kumari", "Bimla Devi", "Chanda Yadav"}
        from spoke_client.db.models import AuditRow

        with pc.store.read() as s:
            raised = s.scalars(select(AuditRow.detail).where(AuditRow.action == "sync_counter")).all()
        assert len(raised) == 1, "the hub told it the last request number it had seen, and it went on above"
        assert pc.patients.search("bimla"), "restored records are searchable"
        # The hub holds what the PC has in its (older) change log, what it made since, and what it had sent
        # after the copy was taken, which came back by the pull; each once.
        here, pulled_back = made_here(pc), own_pulled(pc)
        at_the_hub = at_hub(hub, device_id=pc.store.device_id)
        sent_after_the_copy = set(before_restore) - set(here)
        assert sent_after_the_copy and sent_after_the_copy <= set(pulled_back), "what it had sent came back"
        assert_same(sorted(set(here) | set(pulled_back)), at_the_hub,
                    "the PC's change log and its own changes pulled back, against the hub's from it")
        made_since = set(at_the_hub) - set(before_restore)
        assert made_since and made_since <= set(here), "what it made after the restore was sent"
        assert LocalSync(pc.store).pending() == 0
        assert sync_once(pc.store, paths, verify=True).resynced == ""
    finally:
        pc.close()
