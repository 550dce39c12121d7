"""USB bundles on screen, all real: widgets offscreen, a SQLite store, a PC enrolled with a hub on 127.0.0.1, and
folders standing in for USB drives (SPOKE_DRIVES, the one stand-in for hardware). "Send by USB drive" writes a
bundle the hub accepts, saying it is safe to remove the drive only once it was read back and checked; a drive too
small is told plainly and offered a split, whose parts that do not fit wait on this PC for another day; "Import
from USB drive" finds the hub's return bundle on a drive and imports it (and refuses a damaged one with its
sentence); the main window notices a plugged drive holding one, and stays responsive while a bundle is written."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from spoke_client.domain.model import AttachmentKind
from spoke_client.services import bundles, drives
from spoke_client.services.drives import Drive
from spoke_client.services.sync_local import LocalSync, enroll, sync_once
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.usb import MB, ImportDialog, SendDialog, plan_split
from sync import bundle
from tests.sync.conftest import facilities, hub, hub_db_url, hub_server  # noqa: F401 - fixtures
from tests.sync.test_engine import queued_case

SQLITE = pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)


def attach(services, admin, case_id, data: bytes, label="rash, left forearm"):
    return services.attachments.attach(admin, case_id, AttachmentKind.PHOTO, data, "image/jpeg", label,
                                       width_px=1600, height_px=1200)


@pytest.fixture
def pc(hub, hub_server, facilities, services, paths, admin):  # noqa: F811 - fixtures
    """This PC (the `services` of tests/conftest.py), enrolled with the hub on loopback."""
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "pc1", allow_http=True)
    return services


@pytest.fixture
def drive(tmp_path, monkeypatch) -> Path:
    """A USB drive plugged in: a folder, listed in SPOKE_DRIVES."""
    folder = tmp_path / "KINGSTON"
    folder.mkdir()
    monkeypatch.setenv(drives.ENV, str(folder))
    return folder


def opened(qtbot, dialog):
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def send_dialog(qtbot, runner, services) -> SendDialog:
    dialog = opened(qtbot, SendDialog(runner, services))
    # Both come from the read lane: what is to be sent, and the drives (the button is off while they are listed).
    qtbot.waitUntil(lambda: dialog.estimate is not None and dialog.refresh_button.isEnabled(), timeout=5_000)
    return dialog


# --- the drives ------------------------------------------------------------------------------------------
def test_spoke_drives_replaces_the_detection_and_bundles_are_found_at_the_top_and_one_folder_below(
        tmp_path, monkeypatch):
    stick, card, unplugged = tmp_path / "STICK", tmp_path / "CARD", tmp_path / "GONE"
    stick.mkdir()
    card.mkdir()
    monkeypatch.setenv(drives.ENV, os.pathsep.join(map(str, (stick, unplugged, card))))
    found = drives.removable_drives()
    assert [(d.label, d.mount) for d in found] == [("STICK", stick), ("CARD", card)]
    assert all(0 < d.free <= d.total for d in found), "sizes from the filesystem"
    assert [d.free for d in drives.removable_drives(sizes=False)] == [0, 0]
    monkeypatch.setenv(drives.ENV, "")
    assert drives.removable_drives() == []

    # A return bundle at the top, one a folder below, one two folders below (not looked at), a PC's own bundle,
    # and a file that only looks like one.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    signing, box = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()

    def made(path: Path, kind: str) -> bundle.Header:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = bundle.new_header(kind=kind, sender="hub", facility_id="f1", facility_name="HWC Rampur", hub="h1",
                                   recipient="r1", sequence=1, changes=3, files=1)
        with bundle.BundleWriter(path, header, signing, box.public_key()) as w:
            w.frame(b"M", b"{}")
            w.finish()
        return bundle.read_header(path)

    top = made(stick / "a.spokebundle", "hub")
    below = made(stick / "back" / "b.spokebundle", "hub")
    made(stick / "x" / "y" / "deep.spokebundle", "hub")
    made(stick / "mine.spokebundle", "spoke")
    (stick / "notes.spokebundle").write_bytes(b"not a bundle at all")
    assert {f.header.bundle_id for f in drives.bundles_on(stick)} == {top.bundle_id, below.bundle_id}
    assert [f.path for f in drives.bundles_on(stick, depth=0)] == [stick / "a.spokebundle"]
    assert [f.path.name for f in drives.bundles_on(stick, kind="spoke")] == ["mine.spokebundle"]


def test_the_mount_table_gives_the_drives_under_the_media_folders_and_nothing_else(tmp_path):
    media = tmp_path / "media"
    (media / "asha" / "MY STICK").mkdir(parents=True)
    (media / "ram").mkdir()
    table = tmp_path / "mounts"
    table.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        f"/dev/sdb1 {media}/asha/MY\\040STICK vfat rw 0 0\n"
        f"tmpfs {media}/ram tmpfs rw 0 0\n"          # not a device: never a drive
        "/dev/sdz9 /srv/data ext4 rw 0 0\n"        # a fixed disk outside the media folders
        f"/dev/sdb1 {media}/asha/MY\\040STICK vfat rw 0 0\n")
    found = drives._linux(True, str(table), (str(media),))
    assert [(d.mount, d.filesystem, d.fat) for d in found] == [(media / "asha" / "MY STICK", "vfat", True)]
    assert found[0].label == "MY STICK" and found[0].total > 0


# --- sending ---------------------------------------------------------------------------------------------
@SQLITE
def test_send_writes_a_bundle_the_hub_accepts_and_says_safe_to_remove_only_at_the_end(
        qtbot, runner, services, admin, pc, hub, drive, screenshot):  # noqa: F811 - fixtures
    _kamla, case = queued_case(services, admin)
    attach(services, admin, case.id, os.urandom(3_000_000))
    pending = LocalSync(services.store).pending()
    dialog = send_dialog(qtbot, runner, services)
    assert dialog.what.text() == "To send: 1 case's changes, 1 file, about 3 MB."
    assert dialog.drive_list.count() == 1 and dialog.drive_list.item(0).text().startswith(f"KINGSTON ({drive}): ")
    assert not dialog.no_drive.isVisible()
    assert dialog.fit.text() == "It fits on this drive." and not dialog.split.isChecked()
    assert dialog.write_button.isEnabled()
    screenshot(dialog, "usb-01-send")

    seen = []   # at every progress report: the bar shown, the result not, and what it says
    dialog.bridge.progress.connect(lambda stage, done, total: seen.append(
        (stage, done, total, dialog.progress.isVisible(), dialog.outcome.isVisible(), dialog.outcome.text())))
    with qtbot.waitSignal(dialog.written, timeout=20_000) as written:
        qtbot.mouseClick(dialog.write_button, Qt.MouseButton.LeftButton)
        assert dialog.busy and not dialog.write_button.isEnabled()
        dialog.reject()
        assert dialog.isVisible(), "the dialog does not close while the drive is written"
    report = written.args[0]
    assert len(seen) >= 3 and seen[-1][1] == seen[-1][2]
    assert all(stage == "write" and bar and not shown and "safe to remove" not in text
               for stage, _d, _t, bar, shown, text in seen), "nothing says 'safe' before the read-back"
    [path] = report.on_drive
    assert report.waiting == () and path.parent == drive and sorted(drive.iterdir()) == [path]
    text = dialog.outcome.text()
    assert dialog.outcome.isVisible() and not dialog.progress.isVisible() and not dialog.error.isVisible()
    assert text.startswith(f"Written and checked: {pending} changes and 1 file, about 3 MB. It is safe to remove "
                           "the drive now.")
    assert path.name in text
    assert not dialog.write_button.isEnabled(), "written once: not a second bundle of the same work by a double press"
    screenshot(dialog, "usb-02-sent")

    accepted = hub.import_bundle(path)
    assert (accepted.accepted, accepted.rejected, accepted.files_new) == (pending, 0, 1)
    assert hub.record("case", case.id).payload["status"] == "queued"


def test_without_a_drive_it_says_plug_one_in_and_an_unenrolled_pc_is_told_so(qtbot, runner, services, admin,
                                                                             tmp_path, monkeypatch):
    monkeypatch.setenv(drives.ENV, "")
    queued_case(services, admin)
    dialog = send_dialog(qtbot, runner, services)
    assert dialog.no_drive.isVisible() and dialog.no_drive.text() == "No USB drive found: plug one in."
    assert dialog.drive_list.count() == 0 and not dialog.write_button.isEnabled()

    stick = tmp_path / "STICK"
    stick.mkdir()
    monkeypatch.setenv(drives.ENV, str(stick))
    with qtbot.waitSignal(dialog.drives_listed, timeout=5_000):
        qtbot.mouseClick(dialog.refresh_button, Qt.MouseButton.LeftButton)
    assert not dialog.no_drive.isVisible() and dialog.write_button.isEnabled()
    qtbot.mouseClick(dialog.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.error.text().startswith("This computer is not enrolled with a hub yet: enrol it first")
    assert not dialog.outcome.isVisible() and list(stick.iterdir()) == []


def test_the_sizing_says_a_drive_is_too_small_and_offers_parts_that_fit():
    fits = plan_split(Drive("BIG", Path("/media/big"), free=100 * MB, total=128 * MB), 45 * MB)
    assert fits.fits and fits.sentence == "It fits on this drive."
    small = plan_split(Drive("SMALL", Path("/media/small"), free=30 * MB, total=32 * MB), 45 * MB)
    assert not small.fits and (small.part_mb, small.parts) == (29, 2)
    assert small.sentence.startswith("This drive is too small: it has 30 MB free and the bundle needs about 45 MB. "
                                     "Split it into parts of at most 29 MB (about 2 parts)")
    assert "carried on other days" in small.sentence and "Every part must reach the hub" in small.sentence
    full = plan_split(Drive("FULL", Path("/media/full"), free=300_000, total=32 * MB), 45 * MB)
    assert (full.fits, full.part_mb) == (False, 0) and full.sentence.startswith("This drive is full")
    fat = plan_split(Drive("FAT", Path("/media/fat"), free=60 * 2**30, total=64 * 2**30, filesystem="vfat"),
                     5 * 2**30)
    assert (fat.fits, fat.part_mb, fat.parts) == (False, 4095, 2) and "all on this drive" in fat.sentence


@SQLITE
def test_the_dialog_offers_a_split_for_a_small_drive_and_a_split_bundle_reaches_the_hub_whole(
        qtbot, runner, services, admin, pc, hub, drive, tmp_path, screenshot):  # noqa: F811 - fixtures
    _kamla, case = queued_case(services, admin)
    photo = os.urandom(2_500_000)
    attach(services, admin, case.id, photo)
    dialog = send_dialog(qtbot, runner, services)
    need = dialog.estimate.bytes

    # The dialog's sizing, for a drive described with too little room.
    plan = dialog.plan_for(Drive("TINY", drive, free=need // 2, total=need))
    assert not plan.fits and plan.part_mb == 1
    assert dialog.fit.text() == plan.sentence and "too small" in dialog.fit.text()
    assert dialog.split.isChecked() and dialog.part_mb.value() == 1 and dialog.part_mb.maximum() == 1
    assert dialog.split_note.isVisible() and "different days" in dialog.split_note.text()
    assert "Every part must reach the hub" in dialog.split_note.text()
    assert dialog.parts_text.text() == "about 3 parts: 1 on this drive now, the others wait on this computer"
    assert dialog.write_button.isEnabled()
    screenshot(dialog, "usb-03-too-small")
    dialog.split.setChecked(False)
    assert not dialog.write_button.isEnabled(), "unsplit, it cannot go on that drive"

    # The real drive has room: split into parts of 1 MB anyway, all written there, and the hub takes them whole.
    dialog._update_plan()
    assert dialog.fit.text() == "It fits on this drive."
    dialog.split.setChecked(True)
    dialog.part_mb.setValue(1)
    assert dialog.parts_text.text() == "about 3 parts, all on this drive"
    with qtbot.waitSignal(dialog.written, timeout=20_000) as written:
        qtbot.mouseClick(dialog.write_button, Qt.MouseButton.LeftButton)
    report = written.args[0]
    assert len(report.on_drive) == 3 and report.waiting == ()
    assert all(p.stat().st_size <= MB for p in report.on_drive)
    assert [bundle.read_header(p).part for p in report.on_drive] == [1, 2, 3]
    assert all(p.name in dialog.outcome.text() for p in report.on_drive)
    assert "It is safe to remove the drive now." in dialog.outcome.text()
    assert "Take every part to the hub" in dialog.outcome.text()
    done = hub.import_bundle(report.on_drive[1])
    assert done.files_new == 1 and done.rejected == 0
    assert hub.blob_path(hashlib.sha256(photo).hexdigest()).read_bytes() == photo


@SQLITE
def test_parts_that_do_not_fit_wait_on_this_pc_and_are_carried_another_day(
        qtbot, runner, services, admin, paths, pc, hub, drive, tmp_path, monkeypatch):  # noqa: F811 - fixtures
    """A 2.2 MB drive for a 3 MB bundle: its free space is the one thing faked (the drive's size, hardware)."""
    real = shutil.disk_usage
    capacity = int(2.2 * MB)

    def usage(path):
        if Path(path) == drive:
            used = sum(p.stat().st_size for p in drive.iterdir())
            return type(real(path))(capacity, used, max(0, capacity - used))
        return real(path)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    _kamla, case = queued_case(services, admin)
    attach(services, admin, case.id, os.urandom(3_000_000))
    dialog = send_dialog(qtbot, runner, services)
    assert dialog.drive_list.item(0).text() == f"KINGSTON ({drive}): 2 MB free of 2 MB"
    assert "too small" in dialog.fit.text() and dialog.split.isChecked()
    dialog.part_mb.setValue(1)
    with qtbot.waitSignal(dialog.written, timeout=20_000) as written:
        qtbot.mouseClick(dialog.write_button, Qt.MouseButton.LeftButton)
    first = written.args[0]
    assert [p.parent for p in first.on_drive] == [drive, drive] and len(first.waiting) == 1
    assert "It is safe to remove the drive now." in dialog.outcome.text()
    assert "1 more part waits on this computer: carry it on another day" in dialog.outcome.text()
    assert bundles.waiting_parts(paths) == list(first.waiting)
    assert dialog.carry_button.isVisible() and first.waiting[0].name in dialog.waiting_text.text()

    # Monday's parts reach the hub; on Tuesday the same drive, empty again, takes the last one.
    at_hub = tmp_path / "hub-inbox"
    at_hub.mkdir()
    for p in first.on_drive:
        p.rename(at_hub / p.name)
    dialog.refresh_drives()
    qtbot.waitUntil(lambda: dialog.refresh_button.isEnabled(), timeout=5_000)
    with qtbot.waitSignal(dialog.written, timeout=20_000) as carried:
        qtbot.mouseClick(dialog.carry_button, Qt.MouseButton.LeftButton)
    [last] = carried.args[0].copied
    assert carried.args[0].left == () and bundles.waiting_parts(paths) == []
    assert "It is safe to remove the drive now." in dialog.outcome.text() and last.name in dialog.outcome.text()
    assert not dialog.carry_button.isVisible()
    last.rename(at_hub / last.name)
    done = hub.import_bundle(at_hub / first.on_drive[0].name)
    assert done.accepted == LocalSync(services.store).pending() and done.files_new == 1


# --- importing -------------------------------------------------------------------------------------------
@SQLITE
def test_import_finds_the_return_bundle_on_a_drive_imports_it_and_refuses_a_damaged_one(
        qtbot, runner, services, admin, paths, pc, hub, drive, tmp_path, monkeypatch, screenshot):  # noqa: F811 - fixtures
    _kamla, case = queued_case(services, admin)
    assert sync_once(services.store, paths).ok
    hub.update_case(case.id, {"status": "in_consultation", "doctor_note": "Please send a photo of the rash"})
    back = drive / "back"   # one folder below the top, as the hub's operator may put it
    back.mkdir()
    returned = hub.export_return_bundle(services.store.device_id, back / "for-pc1.spokebundle").paths[0]
    other = tmp_path / "SANDISK"   # a second drive, with a copy damaged on the way
    other.mkdir()
    data = bytearray(returned.read_bytes())
    data[bundle.PREFIX_BYTES + 5] ^= 1
    (other / "for-pc1.spokebundle").write_bytes(bytes(data))
    monkeypatch.setenv(drives.ENV, os.pathsep.join((str(drive), str(other))))

    dialog = opened(qtbot, ImportDialog(runner, services))
    qtbot.waitUntil(lambda: dialog.list.count() == 2, timeout=5_000)
    texts = [dialog.list.item(i).text() for i in range(2)]
    assert all(t.startswith("Made by the hub on ") and ": 1 change, 0 files · on " in t for t in texts)
    damaged_row = next(i for i, t in enumerate(texts) if "on SANDISK: for-pc1.spokebundle" in t)
    assert any("on KINGSTON: for-pc1.spokebundle" in t for t in texts)

    dialog.list.setCurrentRow(damaged_row)
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.error.text() == ("This bundle is damaged (a byte changed on the way): it cannot be trusted, and "
                                   "nothing of it was applied. Copy it again from the drive it came on.")
    assert not dialog.outcome.isVisible() and not dialog.busy
    assert services.cases.get(case.id).status == "queued"

    dialog.list.setCurrentRow(1 - damaged_row)
    with qtbot.waitSignal(dialog.imported, timeout=10_000) as got:
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    report = got.args[0]
    assert report.received >= 1 and dialog.outcome.text() == report.sentence()
    assert dialog.outcome.text().startswith("Imported: ") and not dialog.error.isVisible()
    screenshot(dialog, "usb-05-imported")
    assert services.cases.get(case.id).status == "in_consultation"
    qtbot.waitUntil(lambda: any("already imported" in dialog.list.item(i).text()
                                for i in range(dialog.list.count())), timeout=5_000)


# --- the main window -------------------------------------------------------------------------------------
@SQLITE
def test_the_window_notices_a_drive_with_a_return_bundle_and_its_import_refreshes_home(
        qtbot, runner, services, admin, paths, pc, hub, tmp_path, monkeypatch, screenshot):  # noqa: F811
    _kamla, case = queued_case(services, admin)
    assert sync_once(services.store, paths).ok
    hub.update_case(case.id, {"status": "in_consultation"})
    stick = tmp_path / "STICK"
    stick.mkdir()
    hub.export_return_bundle(services.store.device_id, stick / "for-pc1.spokebundle")
    monkeypatch.setenv(drives.ENV, "")
    window = MainWindow(services, runner, admin, services.auth.facility())
    window.sync.stop()   # no network round in this test: the drive brings the hub's answer
    qtbot.addWidget(window)
    window.usb.timer.setInterval(100)
    window.show()
    qtbot.waitUntil(lambda: window.usb.isVisible() and window.usb.enrolled, timeout=5_000)
    with qtbot.waitSignal(window.usb.checked, timeout=5_000):
        pass
    assert not window.usb.notice.isVisible()
    assert window.home.models["waiting_for_hub"].rowCount() == 1

    monkeypatch.setenv(drives.ENV, str(stick))   # the drive is plugged in
    qtbot.waitUntil(lambda: window.usb.notice.isVisible(), timeout=5_000)
    assert window.usb.notice.text() == "A return bundle from the hub is on the USB drive: Import"
    window.resize(1366, 700)   # an HWC's usual screen
    screenshot(window.statusBar(), "usb-04-notice")
    qtbot.mouseClick(window.usb.notice, Qt.MouseButton.LeftButton)
    dialog = window.usb.dialog
    assert isinstance(dialog, ImportDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=5_000)
    with qtbot.waitSignal(dialog.imported, timeout=10_000):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert not window.usb.notice.isVisible()
    qtbot.waitUntil(lambda: window.home.models["waiting_for_hub"].rowCount() == 0, timeout=5_000)
    dialog.accept()
    # The drive stays plugged in, its bundle imported: no notice again.
    with qtbot.waitSignal(window.usb.checked, timeout=5_000):
        pass
    assert not window.usb.notice.isVisible() and window.usb.dialog is None

    # Both actions are offered beside sync.
    assert window.usb.send_action.text() == "Send by USB drive…"
    assert window.usb.import_action.text() == "Import from USB drive…"
    window.close()


def test_no_usb_actions_on_a_pc_not_enrolled(qtbot, runner, services, admin):
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.sync_bar.label.text() == "Hub: not connected yet", timeout=5_000)
    assert not window.usb.isVisible() and not window.usb.timer.isActive()
    window.close()


@SQLITE
def test_the_window_stays_responsive_while_a_large_bundle_is_written(
        qtbot, runner, services, admin, pc, hub, drive):  # noqa: F811 - fixtures
    _kamla, case = queued_case(services, admin)
    for n in range(2):
        attach(services, admin, case.id, os.urandom(16 * MB), label=f"scan {n}")
    window = MainWindow(services, runner, admin, services.auth.facility())
    window.sync.stop()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.usb.isVisible(), timeout=5_000)
    dialog = window.usb.open_send()
    qtbot.waitUntil(lambda: dialog.write_button.isEnabled(), timeout=5_000)

    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(time.monotonic()))
    started = time.monotonic()
    heartbeat.start()
    with qtbot.waitSignal(dialog.written, timeout=60_000) as written:
        qtbot.mouseClick(dialog.write_button, Qt.MouseButton.LeftButton)
    heartbeat.stop()
    ended = time.monotonic()
    took = ended - started
    beats = [started, *ticks, ended]
    gap = max(b - a for a, b in zip(beats, beats[1:]))
    assert written.args[0].bundle.files == 2 and written.args[0].bundle.size > 32 * MB
    assert len(ticks) >= took / 0.05, f"the event loop stalled: {len(ticks)} ticks in {took:.2f} s"
    assert gap < 0.25, f"the window froze for {gap:.2f} s while the bundle was written"
    dialog.accept()
    window.close()
