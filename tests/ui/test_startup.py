"""Start-up with a damaged database: the app says so, offers the last good copy, and keeps the damaged file."""

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from spoke_client.app import AppController
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import take_good_copy
from tests.services.test_runtime import corrupt


def answer_boxes(choices: list[str], seen: list[str]) -> QTimer:
    """Clicks, in each message box that opens, the button whose text starts with the next choice."""
    timer = QTimer()

    def tick() -> None:
        box = QApplication.activeModalWidget()
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
    take_good_copy(paths)
    services.close()
    corrupt(paths.database)
    seen: list[str] = []
    timer = answer_boxes(["Restore the last good copy", "OK"], seen)
    controller = AppController(paths)
    try:
        assert controller.open_store()
        assert "integrity check" in seen[0] and "last good copy" in seen[0]
        assert "damaged file is kept" in seen[1]
        assert list(paths.quarantine.glob("spoke-damaged-*.sqlite"))
        assert [h.patient.name for h in controller.services.patients.search("kamla")] == ["Kamla Devi"]
    finally:
        timer.stop()
        controller.shutdown()


def test_declining_the_restore_changes_nothing(qtbot, paths, services, admin):
    take_good_copy(paths)
    services.close()
    corrupt(paths.database)
    damaged = paths.database.read_bytes()
    seen: list[str] = []
    timer = answer_boxes(["Quit"], seen)
    controller = AppController(paths)
    try:
        assert not controller.open_store()
        assert paths.database.read_bytes() == damaged
    finally:
        timer.stop()
        controller.shutdown()
