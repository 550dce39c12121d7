"""The client's own faults: a failed background job is logged; an unexpected error shows one dialog with
"Copy details" instead of vanishing, whether it came from a job nobody handles or from a slot on the main thread."""

from __future__ import annotations

import logging
import sys
import threading

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from spoke_client.domain.errors import NotFound
from spoke_client.ui.crash import CrashDialog, CrashReporter, install_excepthook
from spoke_client.ui.tasks import TaskRunner


class ABug(Exception):
    """Stands for a fault in Spoke's own code."""


def compute_the_dose(patient_name: str) -> None:
    raise ABug("the dose table has no row for this age")


@pytest.fixture
def bare_runner(qtbot):
    """A runner whose unexpected errors are the test's business (the shared fixture fails on them)."""
    r = TaskRunner()
    yield r
    assert r.wait(30_000)
    qtbot.wait(10)


@pytest.fixture
def reporter(qtbot):
    r = CrashReporter()
    yield r
    if r.dialog is not None:
        r.dialog.reject()
    qtbot.wait(10)


def crash_dialogs() -> list[CrashDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, CrashDialog) and w.isVisible()]


def test_an_unexpected_error_in_a_job_shows_one_dialog_and_copies_its_details(qtbot, bare_runner, reporter, caplog,
                                                                              screenshot):
    bare_runner.unexpected.connect(reporter.report)
    caplog.set_level(logging.ERROR, logger="spoke_client.ui.tasks")
    name = "Kamla Devi"
    bare_runner.run(lambda: compute_the_dose(name))
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=5_000)
    dialog = reporter.dialog
    assert "Something went wrong" in dialog.message.text() and "already saved is kept" in dialog.message.text()
    assert {dialog.copy_button.text(), dialog.close_button.text()} == {"Copy details", "Close"}
    screenshot(dialog, "14-crash-dialog")

    [record] = [r for r in caplog.records if r.name == "spoke_client.ui.tasks"]
    assert record.levelno == logging.ERROR and record.exc_info and record.exc_info[0] is ABug
    assert "test_an_unexpected_error_in_a_job" in record.getMessage() and "unexpected" in record.getMessage()
    assert name not in caplog.text, "a job's arguments are never logged"

    bare_runner.run(lambda: compute_the_dose(name))   # a second fault while the first is on screen
    qtbot.waitUntil(lambda: dialog.details().count("ABug: the dose table") == 2, timeout=5_000)
    assert crash_dialogs() == [dialog], "never more than one such dialog"

    QApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QApplication.clipboard().text()
    assert "Traceback (most recent call last)" in copied and "in compute_the_dose" in copied
    assert "ABug: the dose table has no row for this age" in copied

    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: reporter.dialog is None and not crash_dialogs(), timeout=5_000)
    bare_runner.run(lambda: compute_the_dose(name))
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=5_000)
    assert reporter.dialog is not dialog and reporter.dialog.details().count("ABug: the dose") == 1, "a fresh one after Close"


def test_an_expected_error_or_a_handled_one_shows_no_dialog_but_is_logged(qtbot, bare_runner, reporter, caplog):
    bare_runner.unexpected.connect(reporter.report)
    caplog.set_level(logging.INFO, logger="spoke_client.ui.tasks")

    def missing():
        raise NotFound("This case does not exist on this computer.")

    handled: list[Exception] = []
    bare_runner.run(missing)                                    # a sentence for the user, and no one to show it
    bare_runner.run(lambda: compute_the_dose("x"), None, handled.append)   # the caller explains it
    assert bare_runner.wait(5_000)
    qtbot.waitUntil(lambda: len(handled) == 1, timeout=5_000)
    qtbot.wait(50)
    assert isinstance(handled[0], ABug)
    assert reporter.dialog is None and not crash_dialogs()
    mine = [r for r in caplog.records if r.name == "spoke_client.ui.tasks"]
    assert [r.exc_info[0].__name__ for r in mine if r.levelno == logging.ERROR] == ["ABug"], "a bug with its traceback"
    expected = [r for r in mine if r.levelno == logging.INFO]
    assert len(expected) == 1 and "NotFound" in expected[0].getMessage() and not expected[0].exc_info
    assert "does not exist" not in expected[0].getMessage(), "an expected error's sentence may quote what was typed"


def test_an_error_raised_in_a_slot_on_the_main_thread_shows_the_dialog(qtbot, reporter, caplog):
    caplog.set_level(logging.ERROR, logger="spoke_client.ui.crash")
    before = sys.excepthook, threading.excepthook
    name = "Kamla Devi"
    restore = install_excepthook(reporter)
    try:
        QTimer.singleShot(0, lambda: compute_the_dose(name))   # as a button's handler would
        qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=5_000)
        worker = threading.Thread(target=compute_the_dose, args=(name,), name="a-worker-of-ours")
        worker.start()
        worker.join(5)
        qtbot.waitUntil(lambda: reporter.dialog.details().count("ABug: the dose") == 2, timeout=5_000)
    finally:
        restore()
    assert (sys.excepthook, threading.excepthook) == before, "the previous hooks are back"
    assert "in compute_the_dose" in reporter.dialog.details()
    assert crash_dialogs() == [reporter.dialog]
    messages = [r.getMessage() for r in caplog.records if r.name == "spoke_client.ui.crash"]
    assert messages == ["unexpected error in the app", "unexpected error in thread a-worker-of-ours"]
    assert all(r.exc_info and r.exc_info[0] is ABug for r in caplog.records if r.name == "spoke_client.ui.crash")
    assert name not in caplog.text


def test_the_app_installs_the_hook_and_restores_it_on_shutdown(qtbot, paths, monkeypatch):
    from spoke_client.app import AppController

    before = sys.excepthook
    controller = AppController(paths)
    monkeypatch.setattr(controller, "open_store", lambda: False)   # no windows: only the hook is under test
    try:
        assert not controller.start()
        assert sys.excepthook is not before
        controller.runner.run(lambda: compute_the_dose("x"))   # the app's own runner reports to the app's dialog
        qtbot.waitUntil(lambda: controller.crash.dialog is not None and controller.crash.dialog.isVisible(),
                        timeout=5_000)
        assert str(paths.logs / "spoke.log") in controller.crash.dialog.message.text()
    finally:
        controller.shutdown()
        if controller.crash.dialog is not None:
            controller.crash.dialog.reject()
    assert sys.excepthook is before
