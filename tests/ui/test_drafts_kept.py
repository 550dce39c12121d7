"""Nothing typed is lost: closing a case tab, signing out or quitting within the autosave wait keeps the draft."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QPushButton

from spoke_client.services.patients import PatientForm
from spoke_client.services.vault import Gate
from spoke_client.ui.login import LoginDialog
from spoke_client.ui.main_window import MainWindow
from tests.conftest import ADMIN_PASSWORD

TYPED = "swelling of both feet"


def a_case(services, admin):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    return services.cases.open_case(admin, kamla.id)


def type_without_waiting(qtbot, editor) -> None:
    """Types into the case; no event loop runs, so the autosave (700 ms after the last key) cannot have fired."""
    qtbot.waitUntil(editor.is_loaded, timeout=10_000)
    editor.complaints.other.setFocus()
    qtbot.keyClicks(editor.complaints.other, TYPED)
    qtbot.keyClicks(editor.vitals.inputs["pulse_per_min"], "104")


def draft_on_disk(paths, key: str) -> dict | None:
    """Read back through services of its own on the same data folder, as Spoke does when started again."""
    gate = Gate(paths)
    gate.login("admin", ADMIN_PASSWORD)     # the data is encrypted: it opens with a sign-in, as at a new start
    try:
        return gate.services.drafts.load(key)
    finally:
        gate.services.close()


def test_closing_a_case_tab_within_the_autosave_wait_keeps_the_draft(qtbot, runner, paths, services, admin):
    case = a_case(services, admin)
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.show()
    editor = window.open_case(case.id)
    type_without_waiting(qtbot, editor)
    assert services.drafts.load(editor.draft_key) is None, "the autosave has not run yet"
    window.tabs.tabCloseRequested.emit(window.tabs.indexOf(editor))
    assert window.open_case_editors() == []
    assert runner.wait(10_000)
    draft = draft_on_disk(paths, f"case:{case.id}")
    assert draft is not None and draft["complaint_text"] == TYPED and draft["vitals"]["pulse_per_min"] == "104"

    again = window.open_case(case.id)   # opened again at once: the draft was written before the case is read
    qtbot.waitUntil(again.is_loaded, timeout=10_000)
    assert again.complaints.values()["complaint_text"] == TYPED
    assert again.notice.text().startswith("Unsaved changes")


class Login:
    """Answers the sign-in dialogs the app opens with exec(): signs in as admin, then declines the next one."""

    def __init__(self) -> None:
        self.answers = ["sign in", "decline"]
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(20)

    def tick(self) -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, LoginDialog) or not dialog.buttons.isEnabled() or not self.answers:
            return
        if self.answers.pop(0) == "sign in":
            dialog.username.setText("admin")
            dialog.password.setText(ADMIN_PASSWORD)
            dialog.submit()
        else:
            dialog.reject()

    def stop(self) -> None:
        self.timer.stop()


@pytest.fixture
def app(qtbot, paths, services, admin):
    """The app itself (its own services and runner) on the data folder, signed in as admin."""
    from spoke_client.app import AppController

    login = Login()
    controller = AppController(paths)
    try:
        assert controller.start()
        yield controller, login
    finally:
        login.stop()
        window = controller.window
        controller.shutdown()
        if window is not None:
            window.close()
            window.deleteLater()


def test_signing_out_within_the_autosave_wait_keeps_the_draft(qtbot, paths, services, admin, app):
    controller, login = app
    case = a_case(services, admin)
    editor = controller.window.open_case(case.id)
    type_without_waiting(qtbot, editor)
    assert services.drafts.load(editor.draft_key) is None, "the autosave has not run yet"
    qtbot.mouseClick(controller.window.findChild(QPushButton, "sign_out"), Qt.MouseButton.LeftButton)
    assert controller.window is None and not login.answers, "signed out, and the next sign-in was declined"
    assert controller.runner.wait(10_000)
    draft = draft_on_disk(paths, f"case:{case.id}")
    assert draft is not None and draft["complaint_text"] == TYPED and draft["vitals"]["pulse_per_min"] == "104"


@pytest.mark.parametrize("how", ["closing the window", "the app quitting"])
def test_quitting_within_the_autosave_wait_keeps_the_draft(qtbot, paths, services, admin, app, how):
    controller, _login = app
    case = a_case(services, admin)
    editor = controller.window.open_case(case.id)
    type_without_waiting(qtbot, editor)
    assert services.drafts.load(editor.draft_key) is None, "the autosave has not run yet"
    if how == "closing the window":
        controller.window.close()   # the last window: Qt then quits, and aboutToQuit runs shutdown
    controller.shutdown()           # what aboutToQuit runs; it closes the app's database
    draft = draft_on_disk(paths, f"case:{case.id}")
    assert draft is not None and draft["complaint_text"] == TYPED and draft["vitals"]["pulse_per_min"] == "104"
