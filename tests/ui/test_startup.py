"""Start-up: an encrypted database opens at the sign-in, set-up shows the recovery key once, and a damaged database
is reported at the sign-in that opens it, with the last good copy offered and the damaged file kept."""

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from spoke_client.app import AppController
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import take_good_copy
from spoke_client.ui.login import LoginDialog, RecoveryKeyDialog, SetupDialog
from tests.conftest import ADMIN_PASSWORD
from tests.services.test_runtime import corrupt


def shut_down(controller: AppController) -> None:
    """The controller and the main window it opened (its timers would run on into the next test)."""
    window = controller.window
    controller.shutdown()
    if window is not None:
        window.close()
        window.deleteLater()


def answer_boxes(choices: list[str], seen: list[str], sign_in: tuple[str, str] | None = None,
                 dialogs: list | None = None) -> QTimer:
    """Clicks, in each message box that opens, the button whose text starts with the next choice; signs in as
    `sign_in` on each sign-in screen; notes each dialog seen in `dialogs`."""
    timer = QTimer()
    filled: set[int] = set()

    def tick() -> None:
        box = QApplication.activeModalWidget()
        if dialogs is not None and box is not None and (not dialogs or dialogs[-1] is not box):
            dialogs.append(box)
        if isinstance(box, LoginDialog) and sign_in and id(box) not in filled and box.buttons.isEnabled():
            filled.add(id(box))
            box.username.setText(sign_in[0])
            box.password.setText(sign_in[1])
            box.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
            return
        if isinstance(box, QMessageBox) and choices:
            seen.append(box.text())
            wanted = choices.pop(0)
            for b in box.buttons():
                if b.text().replace("&", "").startswith(wanted):
                    b.click()
                    return

    timer.timeout.connect(tick)
    timer.start(50)
    return timer


def test_damaged_database_is_reported_and_the_good_copy_restored(qtbot, paths, services, admin):
    services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    take_good_copy(paths, key=services.key)
    services.close()
    corrupt(paths.database)
    seen: list[str] = []
    timer = answer_boxes(["Restore the last good copy", "OK"], seen, sign_in=("admin", ADMIN_PASSWORD))
    controller = AppController(paths)
    try:
        assert controller.open_store() and controller.services is None, "encrypted: it opens at the sign-in"
        assert controller.sign_in()
        assert "integrity check" in seen[0] and "last good copy" in seen[0]
        assert "damaged file is kept" in seen[1]
        assert list(paths.quarantine.glob("spoke-damaged-*.sqlite"))
        assert [h.patient.name for h in controller.services.patients.search("kamla")] == ["Kamla Devi"]
    finally:
        timer.stop()
        shut_down(controller)


def test_declining_the_restore_changes_nothing(qtbot, paths, services, admin):
    take_good_copy(paths, key=services.key)
    services.close()
    corrupt(paths.database)
    damaged = paths.database.read_bytes()
    seen: list[str] = []
    timer = answer_boxes(["Quit"], seen, sign_in=("admin", ADMIN_PASSWORD))
    controller = AppController(paths)
    try:
        assert controller.open_store()
        assert not controller.sign_in()
        assert paths.database.read_bytes() == damaged
    finally:
        timer.stop()
        shut_down(controller)


def test_the_locked_data_opens_at_the_sign_in_and_a_wrong_password_opens_nothing(qtbot, paths, services, admin):
    services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    services.close()
    seen: dict[str, object] = {}
    controller = AppController(paths)

    def drive() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, LoginDialog) or not box.buttons.isEnabled():
            return
        if "intro" not in seen:
            seen["intro"], seen["recover"] = box.intro.text(), box.recover_button is not None
            box.username.setText("admin")
            box.password.setText("not-the-password")
            box.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        elif "refused" not in seen and box.message.text():
            seen["refused"], seen["open_then"] = box.message.text(), controller.services is not None
            box.password.setText(ADMIN_PASSWORD)
            box.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    timer = QTimer()
    timer.timeout.connect(drive)
    timer.start(50)
    try:
        assert controller.open_store() and controller.services is None
        assert controller.sign_in()
        assert "encrypted" in seen["intro"] and seen["recover"]
        assert "not right" in seen["refused"] and seen["open_then"] is False
        assert [h.patient.name for h in controller.services.patients.search("kamla")] == ["Kamla Devi"]
    finally:
        timer.stop()
        shut_down(controller)


def test_set_up_shows_the_recovery_key_once_before_the_first_sign_in(qtbot, paths):
    dialogs: list = []
    shown: list[str] = []

    def drive() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, SetupDialog) and box.buttons.isEnabled() and box not in dialogs:
            dialogs.append(box)
            for field, value in (("name", "HWC Rampur"), ("hwc_id", "HWC-UP-0042"), ("district", "Sitapur"),
                                 ("state", "Uttar Pradesh"), ("username", "admin"), ("full_name", "Asha Admin"),
                                 ("password", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)):
                getattr(box, field).setText(value)
            box.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        elif isinstance(box, RecoveryKeyDialog) and box not in dialogs:
            dialogs.append(box)
            ok = box.buttons.button(QDialogButtonBox.StandardButton.Ok)
            assert not ok.isEnabled(), "OK waits until the key is written down"
            shown.append(box.key_label.text())
            box.written.setChecked(True)
            ok.click()
        elif isinstance(box, LoginDialog) and box not in dialogs:
            dialogs.append(box)
            box.reject()

    timer = QTimer()
    timer.timeout.connect(drive)
    timer.start(50)
    controller = AppController(paths)
    try:
        assert not controller.start()       # the sign-in screen was closed
        assert [type(d).__name__ for d in dialogs] == ["SetupDialog", "RecoveryKeyDialog", "LoginDialog"]
        assert len(shown[0].replace("-", "")) == 32
        assert controller.services.auth.take_recovery_key() is None, "shown once"
        from spoke_client.services.keyslots import KeySlots

        assert KeySlots(paths.keyslots).unlock_recovery(shown[0]) == controller.services.key
    finally:
        timer.stop()
        shut_down(controller)


def test_the_administrators_sign_in_that_encrypts_the_data_says_how_far_it_has_come(qtbot, tmp_path, monkeypatch):
    """After the update that brings encryption, the first administrator's sign-in converts the database, which on
    a large store takes a while: the sign-in screen says what is happening and how far it has come, then the app
    opens on the encrypted data. (The conversion is held back half a second here, as a slow disk would.)"""
    import shutil
    import time as _time

    from spoke_client.db.engine import database_kind
    from spoke_client.paths import DataPaths
    from spoke_client.services import vault

    paths = DataPaths(tmp_path / "data")
    paths.ensure()
    shutil.copy(sorted((Path(__file__).resolve().parent.parent / "fixtures" / "db").glob("schema-*.sqlite"))[-1],
                paths.database)
    real = vault.encrypt_clear_database

    def slow_disk(p, key):
        _time.sleep(0.7)
        real(p, key)

    monkeypatch.setattr(vault, "encrypt_clear_database", slow_disk)
    said: list[str] = []
    controller = AppController(paths)

    def watch() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, LoginDialog) and box.message.text() and "Encrypting" in box.message.text():
            said.append(box.message.text())
        elif isinstance(box, RecoveryKeyDialog):    # shown once after the conversion, as at set-up
            box.written.setChecked(True)
            box.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    watcher = QTimer()
    watcher.timeout.connect(watch)
    watcher.start(50)
    timer = answer_boxes([], [], sign_in=("admin", "golden-password"))
    try:
        assert controller.open_store()
        assert controller.sign_in()
        assert said and "% done" in said[0] and "Keep the computer on" in said[0], said
        assert database_kind(paths.database) == "encrypted"
    finally:
        timer.stop()
        watcher.stop()
        shut_down(controller)
