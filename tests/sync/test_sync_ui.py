"""The sync bar with real widgets and a real hub: connect, sync, the hub vanishes, the device is revoked."""

from __future__ import annotations

import random

import pytest
from PySide6.QtWidgets import QLabel

from spoke_client.services.auth import FacilityForm
from spoke_client.services.runtime import open_services
from spoke_client.paths import DataPaths
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.sync_bar import INTERVAL_S, MAX_BACKOFF_S, EnrollDialog, backoff_seconds
from spoke_client.ui.tasks import TaskRunner
from tests.sync import records
from tests.sync.test_engine import queued_case
from tests.ui.conftest import SCREENSHOTS


def test_time_estimate_goes_by_the_recent_rate_of_the_stage():
    from spoke_client.services.progress import Estimate
    from spoke_client.ui.sync_bar import eta_text

    clock = [0.0]
    est = Estimate(window_s=20, clock=lambda: clock[0])
    assert est.update("push", 100, 1000) is None, "no rate yet"
    clock[0] = 10
    assert est.update("push", 600, 1000) == 8, "500 in 10 s: 400 more in 8 s"
    clock[0] = 100                      # the pull starts after a long push: the push's time is not the pull's
    assert est.update("pull", 2000, 850_000) is None
    clock[0] = 130                      # the first page was slow (the hub counted); it weighs only while recent
    for t in range(131, 191):
        clock[0] = t
        left = est.update("pull", 2000 + (t - 130) * 6000, 850_000)
    done = 2000 + 60 * 6000
    assert left == (850_000 - done) / 6000, "the last 20 s at 6,000 a second, not the slow start"
    clock[0] = 191
    assert est.update("pull", 850_000, 850_000) is None, "done"
    assert eta_text(None) == ""
    assert eta_text(30) == "less than a minute left"
    assert eta_text(600) == "about 10 min left"


def test_backoff_grows_with_jitter_and_is_capped():
    rng = random.Random(1)
    assert backoff_seconds(0, rng) == INTERVAL_S
    waits = [backoff_seconds(n, rng) for n in range(1, 12)]
    assert all(INTERVAL_S / 2 <= w <= MAX_BACKOFF_S for w in waits)
    assert len({round(w) for w in waits}) > 5, "jittered, not a fixed schedule"


def test_sync_bar_through_connect_sync_offline_and_revoked(qtbot, hub, hub_server, facilities, tmp_path):
    from spoke_client.services.sync_local import sync_status

    services = open_services(DataPaths(tmp_path / "pc"))
    _f, admin = services.auth.setup(FacilityForm("HWC Rampur", "HWC-UP-0042", "Sitapur", "UP"), "admin", "Asha", "pass-word-1")
    runner = TaskRunner()
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.show()
    bar = window.sync_bar
    label = window.findChild(QLabel, "sync_status")
    back = None
    try:
        qtbot.waitUntil(lambda: label.text() == "Hub: not connected yet", timeout=5_000)
        assert bar.enroll_button.isVisible() and not bar.sync_button.isVisible()

        dialog = EnrollDialog(runner, services, window)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.hub_url.setText(hub_server.url)
        dialog.code.setText("0000-0000-0000")
        dialog.submit()
        qtbot.waitUntil(lambda: dialog.message.isVisible(), timeout=10_000)
        assert "wrong, used or expired" in dialog.message.text()
        dialog.code.setText(hub.enroll_code(facilities[0]))
        with qtbot.waitSignal(dialog.accepted, timeout=10_000):
            dialog.submit()
        window.sync.start()

        queued_case(services, admin)
        window.sync.refresh()
        qtbot.waitUntil(lambda: "1 case, " in label.text(), timeout=5_000)
        window.sync.sync_now()
        qtbot.waitUntil(lambda: label.text().startswith("Hub: online · nothing waiting · last sync"), timeout=20_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        window.statusBar().grab().save(str(SCREENSHOTS / "10-sync-online.png"))

        hub_server.stop()
        queued_case(services, admin, name="Savitri Kushwaha")
        window.sync.sync_now()
        qtbot.waitUntil(lambda: label.text().startswith("Hub: offline"), timeout=30_000)
        assert "1 case, " in label.text() and "Everything is saved on this computer" in label.toolTip()
        window.statusBar().grab().save(str(SCREENSHOTS / "11-sync-offline.png"))

        # While it was away, the hub revoked this PC; it comes back at the same address and refuses it.
        hub.revoke(services.store.device_id, "PC replaced")
        back = _serve_again(hub, hub_server.port)
        window.sync.sync_now()
        qtbot.waitUntil(lambda: "revoked" in label.text(), timeout=30_000)
        assert label.text().startswith("The hub refused this device: it was revoked on ")
        assert "(PC replaced)" in label.text()
        assert "#b00020" in label.styleSheet()
        assert sync_status(services.store).pending_cases == 1, "the refused work stays on this computer"
    finally:
        window.sync.stop()
        assert runner.wait(30_000)
        services.close()
        if back is not None:
            back.stop()


def _serve_again(hub, port: int):
    """The same hub served again at the port it had (the spoke keeps the hub's address)."""
    from sync.hub.app import create_app
    from tests.sync.conftest import ADMIN_TOKEN, ServerThread

    server = ServerThread(create_app(hub, ADMIN_TOKEN))
    server.port = server.server.config.port = port
    return server.start()


def test_a_revoked_device_is_told_so(qtbot, hub, hub_server, facilities, tmp_path):
    from spoke_client.services.sync_local import enroll, sync_once

    services = open_services(DataPaths(tmp_path / "pc"))
    _f, admin = services.auth.setup(FacilityForm("HWC Rampur", "HWC-UP-0042", "Sitapur", "UP"), "admin", "Asha", "pass-word-1")
    try:
        enroll(services.store, services.paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
        hub.revoke(services.store.device_id, "PC replaced")
        report = sync_once(services.store, services.paths)
        assert report.error_kind == "refused"
        from spoke_client.services.sync_local import sync_status
        from spoke_client.ui.sync_bar import describe

        text, _tip, _colour = describe(sync_status(services.store), report, running=False)
        assert text.startswith("The hub refused this device: it was revoked on") and "PC replaced" in text
    finally:
        services.close()


def test_the_next_round_honours_retry_after():
    from spoke_client.ui.sync_bar import MAX_RETRY_AFTER_S, next_round_seconds

    rng = random.Random(3)
    assert next_round_seconds(1, 600, rng) == 600, "never sooner than the hub asked"
    assert next_round_seconds(1, 10**9, rng) == MAX_RETRY_AFTER_S
    assert INTERVAL_S / 2 <= next_round_seconds(1, None, rng) <= INTERVAL_S * 2


def test_a_busy_hub_says_when_to_come_back(hub, hub_server, facilities, spoke):
    from spoke_client.services.sync_local import enroll, sync_status, sync_once
    from spoke_client.ui.sync_bar import describe

    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    queued_case(services, admin)
    hub.max_concurrent_writes = 0          # every write is over the limit
    report = sync_once(services.store, paths)
    assert (report.error_kind, report.retry_after) == ("busy", 30)
    assert report.pending > 0, "nothing was marked sent"
    text, tip, _colour = describe(sync_status(services.store), report, running=False)
    assert text.startswith("Hub: busy") and "wait" in tip
    hub.max_concurrent_writes = 32
    assert sync_once(services.store, paths).ok


def test_refused_items_are_listed_with_reasons_and_can_be_sent_again(qtbot, hub, hub_server, facilities, spoke):
    import hashlib
    import os

    from spoke_client.domain.model import AttachmentKind
    from spoke_client.services.sync_local import LocalSync, enroll, sync_once
    from spoke_client.ui.sync_bar import RefusedDialog, SyncBar, SyncController

    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    kamla, case = queued_case(services, admin)
    with services.store.write(admin.id) as w:     # a record type this hub does not know yet (a newer spoke)
        records.raw_change(w, "referral", kamla.id, {"patient_id": kamla.id, "to": "CHC Sitapur"})
    photo = os.urandom(4000)
    services.attachments.attach(admin, case.id, AttachmentKind.PHOTO, photo, "image/jpeg", "wound")
    path = services.attachments.files.path(hashlib.sha256(photo).hexdigest())
    path.write_bytes(b"not the photo")            # damaged on disk before it could be sent
    report = sync_once(services.store, paths)
    assert report.quarantined == 1 and report.files_refused == 1 and report.pending == 0

    runner = TaskRunner()
    controller = SyncController(runner, services)
    bar = SyncBar(controller, can_enroll=False)
    qtbot.addWidget(bar)
    bar.show()
    controller.refresh()
    qtbot.waitUntil(lambda: "2 items refused by the hub" in bar.label.text(), timeout=5_000)
    assert bar.details_button.isVisible()
    dialog = RefusedDialog(controller, bar)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.table.topLevelItemCount() == 2, timeout=5_000)   # read on the read lane
    rows = {dialog.table.topLevelItem(i).text(0): dialog.table.topLevelItem(i).text(2)
            for i in range(dialog.table.topLevelItemCount())}
    assert rows == {"A referral record": "The hub does not know records of type 'referral' from a device.",
                    "File 'wound'": "A file on this computer is damaged or missing; it cannot be sent."}
    dialog.show()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialog.grab().save(str(SCREENSHOTS / "12-sync-refused.png"))

    path.write_bytes(photo)                        # put right (restored from a copy)
    file_row = [i for i in range(dialog.table.topLevelItemCount()) if dialog.table.topLevelItem(i).text(0) == "File 'wound'"][0]
    dialog.table.topLevelItem(file_row).setSelected(True)
    with qtbot.waitSignal(controller.status_changed, timeout=20_000, check_params_cb=lambda st, rep: rep is not None):
        qtbot.mouseClick(dialog.retry, __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.MouseButton.LeftButton)
    assert hub.blob_path(hashlib.sha256(photo).hexdigest()).read_bytes() == photo
    assert [i.what for i in LocalSync(services.store).refused()] == ["A referral record"]
    controller.stop()
    assert runner.wait(30_000)


@pytest.mark.solo
def test_try_again_waits_for_a_locked_database_on_its_lane(qtbot, hub, hub_server, facilities, spoke):
    """'Try again' is a write: with another program holding the database, the window keeps working and the
    refused file goes once the lock is released."""
    import hashlib
    import os

    from PySide6.QtCore import Qt

    from spoke_client.domain.model import AttachmentKind
    from spoke_client.services.sync_local import LocalSync, enroll, sync_once
    from spoke_client.ui.sync_bar import RefusedDialog, SyncBar, SyncController
    from tests.ui.heartbeat import Heartbeat
    from tests.ui.test_responsive import MAX_GAP_S, WriteLock

    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    _kamla, case = queued_case(services, admin)
    photo = os.urandom(4000)
    services.attachments.attach(admin, case.id, AttachmentKind.PHOTO, photo, "image/jpeg", "wound")
    path = services.attachments.files.path(hashlib.sha256(photo).hexdigest())
    path.write_bytes(b"not the photo")            # damaged on disk before it could be sent
    assert sync_once(services.store, paths).files_refused == 1

    runner = TaskRunner()
    controller = SyncController(runner, services)
    bar = SyncBar(controller, can_enroll=False)
    qtbot.addWidget(bar)
    dialog = RefusedDialog(controller, bar)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.loaded, timeout=5_000):
        pass
    assert dialog.table.topLevelItemCount() == 1 and dialog.retry.isEnabled()
    path.write_bytes(photo)                        # put right
    heartbeat = Heartbeat(overdue_s=MAX_GAP_S / 2)
    round_done = qtbot.waitSignal(controller.status_changed, timeout=20_000, check_params_cb=lambda st, rep: rep is not None)
    try:
        with WriteLock(paths.database, services.key):
            heartbeat.start()
            qtbot.mouseClick(dialog.retry, Qt.MouseButton.LeftButton)
            qtbot.wait(500)
            longest = heartbeat.stop()
            assert longest < MAX_GAP_S, f"the event loop stood still for {longest:.2f} s{heartbeat.why()}"
            assert not dialog.retry.isEnabled(), "pressed once: it waits for the database"
            assert [i.what for i in LocalSync(services.store).refused()] == ["File 'wound'"], "not yet written"
            assert not round_done.signal_triggered
        round_done.wait()   # the lock is gone: the file is queued again and a round sends it
    finally:
        controller.stop()
        assert runner.wait(30_000)
    assert hub.blob_path(hashlib.sha256(photo).hexdigest()).read_bytes() == photo
    assert LocalSync(services.store).refused() == []
