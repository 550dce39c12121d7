"""The window stays responsive while another program holds the database's write lock: opening a case and the
sync bar's status run on the lanes, and the case shows itself loading until the lock goes."""

from __future__ import annotations

import threading

import pytest
from spoke_client.db.engine import connect
from spoke_client.services.patients import PatientForm
from spoke_client.ui.main_window import MainWindow
from tests.ui.heartbeat import Heartbeat

HOLD_S = 1.0          # how long the test keeps the lock
GIVE_UP_S = 5.0       # the holder lets go by itself after this, should the window have frozen (the bug)
MAX_GAP_S = 0.2       # a 10 ms timer must never wait longer than this

pytestmark = pytest.mark.solo   # it measures time: nothing else runs beside it


class WriteLock:
    """BEGIN IMMEDIATE on the same database file from another connection, as another program (a backup, a
    second copy of Spoke) would: every writer waits on the busy timeout while it is held."""

    def __init__(self, database, key: bytes | None = None) -> None:
        self.database, self.key = database, key
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, name="lock-holder")

    def _hold(self) -> None:
        con = connect(self.database, self.key, timeout=5)    # keyed: the database is encrypted
        con.isolation_level = None
        try:
            con.execute("BEGIN IMMEDIATE")
            self.taken.set()
            self.release.wait(GIVE_UP_S)
            con.execute("ROLLBACK")
        finally:
            con.close()

    def __enter__(self) -> "WriteLock":
        self.thread.start()
        assert self.taken.wait(5), "could not take the write lock"
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(10)


def test_a_held_write_lock_does_not_freeze_the_window(qtbot, runner, paths, services, admin, screenshot):
    import spoke_client.ui.attachments  # noqa: F401 - the editor's first, one-off import (numpy) is not measured here

    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    case = services.cases.open_case(admin, kamla.id)
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.sync_bar.label.text() != "", timeout=5_000)
    statuses = []
    window.sync.status_changed.connect(lambda status, _report: statuses.append(status))
    heartbeat = Heartbeat(overdue_s=MAX_GAP_S / 2)

    with WriteLock(paths.database, services.key):
        heartbeat.start()
        editor = window.open_case(case.id)        # opening a case is audited: a write
        window.sync.refresh()                     # the sync bar's status
        window.sync.sync_now()                    # a round (none: no hub yet), on the network lane
        qtbot.wait(int(HOLD_S * 1000))
        longest = heartbeat.stop()
        assert longest < MAX_GAP_S, f"the event loop stood still for {longest:.2f} s{heartbeat.why()}"
        assert not editor.is_loaded(), "the lock is held: the case cannot have been opened"
        assert editor.header.text() == "Opening the case…" and not editor.body.isEnabled()
        assert not editor.actions.isEnabled(), "nothing can be saved before the case is there"
        assert statuses and not window.sync.running, "the status and the round did not wait for the lock"
        screenshot(window, "15-case-opening")

    heartbeat.start()
    qtbot.waitUntil(editor.is_loaded, timeout=10_000)
    assert heartbeat.stop() < MAX_GAP_S, heartbeat.why()
    assert editor.header.text().startswith("Kamla Devi") and editor.body.isEnabled()
    assert window.tabs.tabText(window.tabs.indexOf(editor)) == "Kamla Devi"
    assert editor.complaints.other.isEnabled() and editor.save_button.isEnabled()
