"""The one write path: change log and audit in the same transaction; UUIDv7 ids; HLC order; WAL pragmas."""

import uuid

import pytest
from sqlalchemy import func, select, text

from spoke_client.db.models import AuditRow, ChangeRow, PatientRow
from sync.hlc import HybridLogicalClock, Stamp
from spoke_client.services.patients import PatientForm
from spoke_client.services.store import new_id
from tests.sync import records


def test_ids_are_uuid7_and_time_ordered():
    ids = [new_id() for _ in range(50)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)


def test_connection_pragmas(services):
    with services.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_a_failed_write_leaves_neither_data_nor_log(services, admin):
    with services.store.read() as s:
        before = s.scalar(select(func.count()).select_from(ChangeRow))
    with pytest.raises(RuntimeError):
        with services.store.write(admin.id) as w:
            pid = new_id()
            w.change("patient", pid, 1, records.patient(pid))
            w.audit("create", "patient")
            raise RuntimeError("power cut")
    with services.store.read() as s:
        assert s.scalar(select(func.count()).select_from(ChangeRow)) == before


def test_a_change_is_written_only_in_the_form_its_entity_declares(services, admin):
    """The change log holds only what the hub would take: a bad value is refused at the write, not at sync."""
    from sync.payloads import PayloadInvalid

    with services.store.read() as s:
        before = s.scalar(select(func.count()).select_from(ChangeRow))
    pid = new_id()
    for bad in ({"birth_date": "31/12/1990"}, {"phone": "98765 43210"}, {"sex": "unknown"}):
        with pytest.raises(ValueError):
            with services.store.write(admin.id) as w:
                w.change("patient", pid, 1, records.patient(pid) | bad)
    with pytest.raises(KeyError):
        with services.store.write(admin.id) as w:
            w.change("spaceship", pid, 1, {"x": 1})
    with services.store.read() as s:
        assert s.scalar(select(func.count()).select_from(ChangeRow)) == before
    assert issubclass(PayloadInvalid, ValueError)


def test_register_writes_patient_change_and_audit_together(services, admin):
    p = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    with services.store.read() as s:
        change = s.scalars(select(ChangeRow).where(ChangeRow.entity_id == p.id)).one()
        assert change.entity == "patient" and change.version == 1 and change.user_id == admin.id
        assert change.device_id == services.store.device_id and change.pushed_at is None
        assert change.payload["name"] == "Kamla Devi" and change.payload["sex"] == "female"
        assert s.scalars(select(AuditRow).where(AuditRow.entity_id == p.id, AuditRow.action == "create")).one()


def test_audit_log_is_append_only(services, admin):
    with pytest.raises(Exception, match="append-only"):
        with services.store.write(None) as w:
            w.session.execute(text("DELETE FROM audit_log"))
    with pytest.raises(Exception, match="append-only"):
        with services.store.write(None) as w:
            w.session.execute(text("UPDATE audit_log SET action='x'"))


def test_hlc_is_monotonic_when_the_wall_clock_goes_back():
    clock = HybridLogicalClock("dev")
    a = clock.now(1_000_000)
    b = clock.now(500_000)  # clock set back by hours
    c = clock.now(500_001)
    assert a < b < c and b.encode() < c.encode()
    remote = Stamp(9_000_000, 3, "hub")
    d = clock.observe(remote, 600_000)
    assert d > remote and clock.now(600_001) > d
    assert Stamp.decode(d.encode()) == d


def test_hlc_survives_restart(paths, services, admin):
    services.patients.register(admin, PatientForm(name="Ravi Kumar", sex="male", age_years=1))
    with services.store.read() as s:
        last = s.scalar(select(func.max(ChangeRow.hlc)))
    from spoke_client.services.runtime import open_services

    services.close()
    again = open_services(paths, key=services.key)
    try:
        with again.store.write(None) as w:
            w.change("case", new_id(), 1, None, op="delete")
        with again.store.read() as s:
            assert s.scalar(select(func.max(ChangeRow.hlc))) > last
            assert s.scalar(select(func.count()).select_from(PatientRow)) == 1
    finally:
        again.close()


def test_a_full_disk_is_reported_in_plain_words_and_nothing_is_half_written(services, admin):
    """SQLite's own size cap (max_page_count) gives the real SQLITE_FULL path of a full disk."""
    from sqlalchemy import event

    from spoke_client.services.store import StorageFull

    services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    with services.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(services.engine, "connect", cap)
    services.engine.dispose()
    with services.store.read() as s:
        before = (s.scalar(select(func.count()).select_from(PatientRow)), s.scalar(select(func.count()).select_from(ChangeRow)))
    with pytest.raises(StorageFull, match="disk of this computer is full"):
        for i in range(500):  # enough rows to need a new page
            services.patients.register(admin, PatientForm(name=f"Patient {chr(65 + i % 26)}{'x' * (i % 7)}", sex="male",
                                                          age_years=30, address="Ward " + "y" * 200), confirmed_new=True)
    event.remove(services.engine, "connect", cap)
    services.engine.dispose()
    with services.store.read() as s:
        patients = s.scalar(select(func.count()).select_from(PatientRow))
        changes = s.scalar(select(func.count()).select_from(ChangeRow))
    # Every patient that was saved has its change-log entry, and the failed one has neither.
    assert patients - before[0] == changes - before[1]
    assert services.patients.search("kamla")


def test_seeded_and_service_written_changes_have_the_same_payload_shape(services, admin):
    from spoke_client.services.seed import seed_demo

    from spoke_client.domain.vitals import Vitals
    from spoke_client.services.cases import CaseForm

    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    case = services.cases.open_case(admin, kamla.id)
    services.cases.save(admin, case.id, CaseForm(complaints=("Fever",)), vitals=Vitals(pulse_per_min=90))
    seed_demo(services.store, admin, services.auth.facility().id, 5, 5)
    with services.store.read() as s:
        shapes: dict[str, set] = {}
        for c in s.scalars(select(ChangeRow).where(ChangeRow.entity.in_(["patient", "case", "vitals"]))):
            shapes.setdefault(c.entity, set()).add(tuple(sorted(c.payload)))
    assert set(shapes) == {"patient", "case", "vitals"}
    assert all(len(keys) == 1 for keys in shapes.values()), shapes
