"""The sync bar with real widgets and a real hub: connect, sync, the hub vanishes, the device is revoked."""

from __future__ import annotations

import random

from PySide6.QtWidgets import QLabel

from spoke_client.services.auth import FacilityForm
from spoke_client.services.runtime import open_services
from spoke_client.paths import DataPaths
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.sync_bar import INTERVAL_S, MAX_BACKOFF_S, EnrollDialog, backoff_seconds
from spoke_client.ui.tasks import TaskRunner
from tests.sync.test_engine import queued_case
from tests.ui.conftest import SCREENSHOTS


def test_time_estimate():
    from spoke_client.ui.sync_bar import eta_text

    assert eta_text(0, 1000, 5) == ""
    assert eta_text(500, 1000, 30) == "less than a minute left"
    assert eta_text(1000, 61000, 10) == "about 10 min left"
    assert eta_text(1000, 1000, 10) == ""


def test_backoff_grows_with_jitter_and_is_capped():
    rng = random.Random(1)
    assert backoff_seconds(0, rng) == INTERVAL_S
    waits = [backoff_seconds(n, rng) for n in range(1, 12)]
    assert all(INTERVAL_S / 2 <= w <= MAX_BACKOFF_S for w in waits)
    assert len({round(w) for w in waits}) > 5, "jittered, not a fixed schedule"


def test_sync_bar_through_connect_sync_offline_and_revoked(qtbot, hub, hub_server, facilities, tmp_path):
    services = open_services(DataPaths(tmp_path / "pc"))
    _f, admin = services.auth.setup(FacilityForm("HWC Rampur", "HWC-UP-0042", "Sitapur", "UP"), "admin", "Asha", "pass-word-1")
    runner = TaskRunner()
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.show()
    bar = window.sync_bar
    label = window.findChild(QLabel, "sync_status")
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
    finally:
        window.sync.stop()
        assert runner.wait(30_000)
        services.close()


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
