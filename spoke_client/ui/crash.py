"""An unexpected error, as the user sees it: one dialog in plain words, with the details to copy for a technician."""

from __future__ import annotations

import logging
import platform
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from spoke_client import __version__
from spoke_client.i18n import _

log = logging.getLogger(__name__)

MAX_TRACEBACKS = 20   # in one dialog


class CrashDialog(QDialog):
    """Says that something went wrong and that saved work is kept; 'Copy details' puts the report on the clipboard."""

    def __init__(self, details: str, log_file: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crash_dialog")
        self.setWindowTitle(_("Spoke ran into a problem"))
        self.resize(560, 360)
        lay = QVBoxLayout(self)
        text = [_("Something went wrong inside Spoke. It is a fault in Spoke, not something you did."),
                _("Work that was already saved is kept. You can go on working; if this happens again, press "
                  "'Copy details' and send what is copied to your technician.")]
        if log_file is not None:
            text.append(_("The details are also written to {log}.").format(log=log_file))
        self.message = QLabel("\n\n".join(text))
        self.message.setObjectName("crash_message")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        lay.addWidget(self.message)
        self.details_view = QPlainTextEdit()
        self.details_view.setObjectName("crash_details")
        self.details_view.setReadOnly(True)
        self.details_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details_view.setPlainText(details)
        lay.addWidget(self.details_view, 1)
        buttons = QDialogButtonBox()
        self.copy_button = buttons.addButton(_("Copy details"), QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setObjectName("copy_details")
        self.close_button = buttons.addButton(_("Close"), QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button.setObjectName("close")
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.close_button.setFocus()
        self.added = 0

    def details(self) -> str:
        return self.details_view.toPlainText()

    def add(self, details: str) -> None:
        """A further error while this one is open: one dialog, the tracebacks in it (the first few: an error
        repeated by every repaint would otherwise grow it without end; the log has them all)."""
        self.added += 1
        if self.added < MAX_TRACEBACKS:
            self.details_view.appendPlainText("\n" + "-" * 40 + "\n" + details)
        elif self.added == MAX_TRACEBACKS:
            self.details_view.appendPlainText("\n" + "-" * 40 + "\n(more errors followed; they are in the log)")

    def report_text(self) -> str:
        return (f"Spoke {__version__}, Python {platform.python_version()}, Qt {qVersion()}, {platform.platform()}\n\n"
                + self.details())

    def copy_details(self) -> None:
        QApplication.clipboard().setText(self.report_text())
        self.copy_button.setText(_("Copied"))


class CrashReporter(QObject):
    """Shows unexpected errors, never more than one dialog at a time. `report` may be called from any thread."""

    _arrived = Signal(str)

    def __init__(self, log_file: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self.dialog: CrashDialog | None = None
        self._arrived.connect(self._show)   # queued to the main thread when reported from a worker

    def report(self, details: str) -> None:
        self._arrived.emit(details)

    def _show(self, details: str) -> None:
        if self.dialog is not None:
            self.dialog.add(details)
            return
        self.dialog = CrashDialog(details, self.log_file)
        self.dialog.finished.connect(self._closed)
        self.dialog.show()   # a new window comes to the front; raise_() is not needed (and offscreen has none)
        self.dialog.activateWindow()

    def _closed(self, _result: int) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
            self.dialog = None


def install_excepthook(reporter: CrashReporter) -> Callable[[], None]:
    """Errors nothing caught (in a slot, an event handler, a thread of ours) are logged and shown instead of
    vanishing on a terminal nobody sees. Returns what puts the previous hooks back."""
    previous, previous_thread = sys.excepthook, threading.excepthook

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        log.error("unexpected error in the app", exc_info=(exc_type, exc, tb))
        reporter.report("".join(traceback.format_exception(exc_type, exc, tb)))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        log.error("unexpected error in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        reporter.report("".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))

    sys.excepthook, threading.excepthook = hook, thread_hook

    def restore() -> None:
        if sys.excepthook is hook:
            sys.excepthook = previous
        if threading.excepthook is thread_hook:
            threading.excepthook = previous_thread

    return restore
