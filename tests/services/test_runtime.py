"""Start-up: a damaged database is reported and the last good copy offered, never silently replaced."""

from datetime import datetime, timedelta, timezone

import pytest

from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import (
    DamagedDatabase,
    good_copies,
    open_services,
    restore_good_copy,
    take_good_copy,
)


def corrupt(path):
    data = bytearray(path.read_bytes())
    for offset in range(4096, min(len(data), 4096 * 6), 97):  # scribble over b-tree pages, keep the header
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_damaged_database_offers_the_last_good_copy_and_restores_it(paths, services, admin):
    key = services.key
    services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    copy = take_good_copy(paths, key=key)
    assert copy is not None and good_copies(paths) == [copy]
    assert b"Kamla" not in copy.read_bytes(), "the day's copy is encrypted as the database is"
    services.patients.register(admin, PatientForm(name="Later Patient", sex="male", age_years=30))
    services.close()
    corrupt(paths.database)
    with pytest.raises(DamagedDatabase) as e:
        open_services(paths, key=key)
    assert e.value.last_good == copy and "integrity" in e.value.message
    assert paths.database.exists(), "a damaged database is never deleted or replaced silently"
    kept = restore_good_copy(paths, copy, key=key)
    assert kept.exists() and kept.parent == paths.quarantine
    assert b"Kamla" not in paths.database.read_bytes()
    again = open_services(paths, key=key)
    try:
        assert [h.patient.name for h in again.patients.search("kamla")] == ["Kamla Devi"]
    finally:
        again.close()


def test_no_good_copy_says_so(paths, services, admin):
    key = services.key
    services.close()
    corrupt(paths.database)
    with pytest.raises(DamagedDatabase) as e:
        open_services(paths, key=key)
    assert e.value.last_good is None and "technician" in e.value.message


def test_good_copies_are_daily_and_bounded(paths, services, admin):
    t0 = datetime(2026, 11, 1, 8, tzinfo=timezone.utc)
    assert take_good_copy(paths, now=t0, key=services.key)
    assert take_good_copy(paths, now=t0 + timedelta(hours=2), key=services.key) is None
    for day in range(1, 10):
        take_good_copy(paths, now=t0 + timedelta(days=day), key=services.key)
    assert len(good_copies(paths)) == 7
