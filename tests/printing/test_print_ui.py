"""Printing from the screen, with real widgets (pytest-qt, offscreen), a real hub's prescription and a real CUPS
server: Print on the case sends the paper, the queue shows the job, a second print says DUPLICATE, a stopped
printer leaves the job waiting where the user sees it; screenshots of the case with its prescription in English
and Hindi (artifacts/screenshots)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from spoke_client import i18n
from spoke_client.services.printers import JobState
from spoke_client.ui.case_editor import CaseEditor
from spoke_client.ui.printing import PrintQueueDialog
from tests.ui.conftest import runner, screenshot  # noqa: F401 - fixtures

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def editor_for(qtbot, runner, services, user, case_id: str) -> CaseEditor:  # noqa: F811
    editor = CaseEditor(runner, services.cases, services.drafts, user, case_id, consultation=services.consultation,
                        printing=services.printing)
    qtbot.addWidget(editor)
    editor.resize(1280, 1000)
    editor.show()
    qtbot.waitUntil(editor.is_loaded, timeout=10_000)
    qtbot.waitUntil(lambda: bool(editor.prescriptions.views), timeout=10_000)
    return editor


def test_print_from_the_case_the_queue_and_a_duplicate(qtbot, runner, printing, screenshot):  # noqa: F811
    services, admin, case_id = printing
    editor = editor_for(qtbot, runner, services, admin, case_id)
    [view] = editor.prescriptions.views
    assert view.print_button.isEnabled()
    screenshot(editor, "rx-case-en")
    with qtbot.waitSignal(editor.printed, timeout=20_000) as first:
        qtbot.mouseClick(view.print_button, Qt.MouseButton.LeftButton)
    assert first.args[0].copy == 1
    queue = PrintQueueDialog(runner, services.printing, admin)
    qtbot.addWidget(queue)
    queue.show()
    qtbot.waitUntil(lambda: queue.model.rowCount() == 1 and queue.model.jobs[0].state == JobState.PRINTED,
                    timeout=20_000)
    assert queue.model.data(queue.model.index(0, 3)) == "Printed"
    with qtbot.waitSignal(editor.printed, timeout=20_000) as second:
        qtbot.mouseClick(view.print_button, Qt.MouseButton.LeftButton)
    assert second.args[0].duplicate
    qtbot.waitUntil(lambda: "DUPLICATE" in view.print_status.text(), timeout=5_000)
    queue.refresh()
    qtbot.waitUntil(lambda: queue.model.rowCount() == 2, timeout=10_000)
    assert queue.model.data(queue.model.index(0, 1)).startswith("DUPLICATE (copy 2)")
    screenshot(queue, "rx-print-queue")


def test_a_stopped_printer_shows_as_waiting_and_try_again_is_for_failed_jobs(qtbot, runner, printing, cups_server):  # noqa: F811
    services, admin, case_id = printing
    editor = editor_for(qtbot, runner, services, admin, case_id)
    [view] = editor.prescriptions.views
    cups_server.disable("out of paper")
    try:
        with qtbot.waitSignal(editor.printed, timeout=20_000) as sent:
            qtbot.mouseClick(view.print_button, Qt.MouseButton.LeftButton)
        queue = PrintQueueDialog(runner, services.printing, admin)
        qtbot.addWidget(queue)
        queue.show()
        qtbot.waitUntil(lambda: queue.model.rowCount() == 1 and queue.model.jobs[0].state == JobState.WAITING,
                        timeout=20_000)
        assert queue.model.data(queue.model.index(0, 3)) == "Waiting"
        assert "stopped" in queue.model.data(queue.model.index(0, 4))
        queue.table.selectRow(0)
        assert not queue.retry.isEnabled()   # a waiting job is not tried again: the printer holds it
        assert sent.args[0].state in (JobState.WAITING, JobState.PRINTING)
    finally:
        cups_server.enable()
    qtbot.waitUntil(lambda: queue.model.rowCount() == 1 and queue.model.jobs[0].state == JobState.PRINTED,
                    timeout=20_000)


def test_the_case_with_its_prescription_in_hindi(qtbot, runner, printing, screenshot):  # noqa: F811
    services, admin, case_id = printing
    i18n.set_language("hi")
    try:
        editor = editor_for(qtbot, runner, services, admin, case_id)
        [view] = editor.prescriptions.views
        assert view.print_button.text() == i18n._("Print") != "Print"
        screenshot(editor, "rx-case-hi")
    finally:
        i18n.set_language(None)
