"""Sync in the background, and what the user sees of it: online or not, what waits, when it last worked, why not."""

from __future__ import annotations

import random
import threading

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _, ngettext, when_text
from spoke_client.services.progress import Estimate
from spoke_client.services.runtime import Services
from spoke_client.services.sync_local import LocalSync, SyncStatus, enroll, sync_once, sync_status
from spoke_client.ui.login import _ServiceDialog
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel

INTERVAL_S = 60            # between rounds while the hub answers
MAX_BACKOFF_S = 15 * 60    # the longest wait after repeated failures
MAX_RETRY_AFTER_S = 6 * 3600  # a hub asking to wait longer than this is taken at this


def backoff_seconds(failures: int, rng: random.Random = random.Random()) -> float:
    """Exponential backoff with full jitter, so a district's spokes do not all retry at the same second."""
    if failures <= 0:
        return INTERVAL_S
    return rng.uniform(INTERVAL_S / 2, min(MAX_BACKOFF_S, INTERVAL_S * 2 ** failures))


def next_round_seconds(failures: int, retry_after: float | None, rng: random.Random = random.Random()) -> float:
    """The backoff, but never sooner than the hub asked (Retry-After on 429 or 503)."""
    wait = backoff_seconds(failures, rng)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER_S))
    return wait


class SyncController(QObject):
    status_changed = Signal(object, object)  # SyncStatus, SyncReport | None
    progress = Signal(str, int, int)
    started = Signal()

    def __init__(self, runner: TaskRunner, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner, self.services = runner, services
        self.cancel = threading.Event()
        self.failures = 0
        self.running = False
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.sync_now)

    # Results come back to bound methods, never lambdas over self: Qt drops those when the window is gone
    # (signed out), where a lambda would reach a deleted object.
    def start(self) -> None:
        store = self.services.store
        self.runner.run(lambda: sync_status(store), self._started_with, lane="read")

    def _started_with(self, status: SyncStatus) -> None:
        self.status_changed.emit(status, None)
        if status.enrolled and not self.cancel.is_set():
            self.timer.start(2_000)  # a first round soon after sign-in

    def status(self) -> SyncStatus:
        """On a worker: it reads the database."""
        return sync_status(self.services.store)

    def refresh(self, report=None) -> None:
        store = self.services.store
        self.runner.run(lambda: (sync_status(store), report), self._refreshed, lane="read")

    def _refreshed(self, result) -> None:
        self.status_changed.emit(*result)

    def sync_now(self) -> None:
        if self.running:
            return
        self.running = True
        self.timer.stop()
        store, paths, cancel = self.services.store, self.services.paths, self.cancel

        def progress(stage: str, done: int, total: int) -> None:
            if not cancel.is_set():   # stopped: the window, and this controller with it, may be gone
                self.progress.emit(stage, done, total)

        def work():
            if not sync_status(store).enrolled:
                return None   # no hub yet: nothing to do, and nothing to show
            self.started.emit()   # from the worker: queued to the bar, before the round's end
            return sync_once(store, paths, progress=progress, cancel=cancel)

        self.runner.run(work, self._done, self._failed, lane="network")

    def _done(self, report) -> None:
        self.running = False
        if report is None:
            self.refresh(None)
            return
        self.failures = 0 if report.error is None else self.failures + 1
        self.refresh(report)
        if not self.cancel.is_set():
            self.timer.start(int(next_round_seconds(self.failures, report.retry_after) * 1000))

    def _failed(self, exc: Exception) -> None:
        self.running = False
        self.failures += 1
        self.refresh(None)
        if not self.cancel.is_set():
            self.timer.start(int(backoff_seconds(self.failures) * 1000))

    def stop(self) -> None:
        self.cancel.set()
        self.timer.stop()


def describe(status: SyncStatus, report, running: bool) -> tuple[str, str, str]:
    """The status line, its tooltip and its colour, in the user's terms; nothing blames the user for the network."""
    if not status.enrolled:
        return _("Hub: not connected yet"), _("Everything is saved on this computer."), "#555"
    parts = []
    if status.pending:
        parts.append(ngettext("{c} case", "{c} cases", status.pending_cases).format(c=status.pending_cases) + ", " +
                     ngettext("{n} change waiting", "{n} changes waiting", status.pending).format(n=status.pending))
    if status.pending_files:
        parts.append(ngettext("{f} file waiting", "{f} files waiting", status.pending_files).format(f=status.pending_files))
    waiting = ", ".join(parts) if parts else _("nothing waiting")
    last = _("last sync {when}").format(when=when_text(status.last_sync)) \
        if status.last_sync else _("not synced yet")
    if running:
        return _("Hub: syncing… · {waiting}").format(waiting=waiting), "", "#1a4d8f"
    if status.last_error:
        if "revoked" in status.last_error:
            return status.last_error, status.last_error, "#b00020"
        if report is not None and report.error_kind == "busy":
            return (_("Hub: busy · {waiting} · {last}").format(waiting=waiting, last=last),
                    _("The hub asked Spoke to wait before trying again. Everything is saved on this computer."),
                    "#8a5a00")
        return (_("Hub: offline · {waiting} · {last}").format(waiting=waiting, last=last),
                _("The hub cannot be reached now. Everything is saved on this computer, and Spoke keeps trying."),
                "#8a5a00")
    text = _("Hub: online · {waiting} · {last}").format(waiting=waiting, last=last)
    if status.clock_warning:
        # Not the user's fault either: the date was set wrong, or the PC's clock battery is flat.
        return text + " · " + _("this computer's date or time is wrong"), status.clock_warning, "#8a5a00"
    if status.quarantined:
        text += " · " + ngettext("{q} item refused by the hub", "{q} items refused by the hub",
                                 status.quarantined).format(q=status.quarantined)
        return text, _("The hub refused some records or files; the rest went through. Press 'Details' to see why."), "#8a5a00"
    return text, "", "#1b5e20"


def eta_text(seconds: float | None) -> str:
    """'about 3 min left'; nothing until there is a rate to go by (None)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return _("less than a minute left")
    return ngettext("about {n} min left", "about {n} min left", round(seconds / 60)).format(n=round(seconds / 60))


class SyncBar(QWidget):
    """The status-bar part: the line, a progress bar for long transfers, 'Sync now', and 'Connect to hub'."""

    def __init__(self, controller: SyncController, can_enroll: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setObjectName("sync_status")
        self.progress = QProgressBar()
        self.progress.setObjectName("sync_progress")
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.sync_button = QPushButton(_("Sync now"))
        self.sync_button.setObjectName("sync_now")
        self.enroll_button = QPushButton(_("Connect to hub…"))
        self.enroll_button.setObjectName("connect_hub")
        self.details_button = QPushButton(_("Details…"))
        self.details_button.setObjectName("sync_details")
        self.details_button.hide()
        self.details_button.clicked.connect(self.open_refused)
        self.can_enroll = can_enroll
        lay.addWidget(self.label, 1)
        for w in (self.progress, self.details_button, self.sync_button, self.enroll_button):
            lay.addWidget(w)
        self.sync_button.clicked.connect(controller.sync_now)
        self.enroll_button.clicked.connect(self.open_enrolment)
        controller.status_changed.connect(self.show_status)
        controller.started.connect(self._started)
        controller.progress.connect(self._progress)
        self.last_status: SyncStatus | None = None
        self.estimate = Estimate()

    def _started(self) -> None:
        self.estimate = Estimate()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.sync_button.setEnabled(False)
        if self.last_status:
            self.show_status(self.last_status, None)

    def _progress(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            files = stage in ("upload", "fetch")
            scale = 1024 if files else 1          # files count in kB; records one by one
            self.progress.setRange(0, max(1, total // scale))
            self.progress.setValue(min(done, total) // scale)
            fmt = {"push": _("sending %v of %m"), "pull": _("receiving %v of %m"),
                   "upload": _("sending files: %v of %m kB"), "fetch": _("receiving files: %v of %m kB")}.get(stage, "%v / %m")
            left = eta_text(self.estimate.update(stage, done, total))
            self.progress.setFormat(f"{fmt} · {left}" if left else fmt)
            self.progress.setToolTip(self.progress.text())

    def show_status(self, status: SyncStatus, report) -> None:
        self.last_status = status
        running = self.controller.running
        if not running:
            self.progress.hide()
        text, tip, colour = describe(status, report, running)
        self.label.setText(text)
        self.label.setToolTip(tip)
        self.label.setStyleSheet(f"color: {colour};")
        self.sync_button.setVisible(status.enrolled)
        self.sync_button.setEnabled(not running)
        self.details_button.setVisible(status.quarantined > 0)
        self.enroll_button.setVisible(not status.enrolled and self.can_enroll)

    def open_refused(self) -> None:
        RefusedDialog(self.controller, self).exec()
        self.controller.refresh()

    def open_enrolment(self) -> None:
        dialog = EnrollDialog(self.controller.runner, self.controller.services, self)
        if dialog.exec():
            self.controller.start()


class EnrollDialog(_ServiceDialog):
    def __init__(self, runner: TaskRunner, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(runner, _("Connect this computer to the hub"), parent)
        self.services = services
        self.hub_url = self.fields.add("hub_url", _("Hub address"), QLineEdit("https://"))
        self.code = self.fields.add("code", _("One-time code from the hub"), QLineEdit())
        self.finish_layout(_("Ask the hub for a one-time enrolment code for this facility, then enter it here."))

    def submit(self) -> None:
        # On the network lane, not the write lane: enrolment waits on the hub, and drafts must not wait behind it.
        self.buttons.setEnabled(False)
        self.message.show_message(None)
        hub_url, code = self.hub_url.text().strip(), self.code.text()   # widgets are read here, on the main thread
        self.runner.run(lambda: self.call(hub_url, code), self.succeeded, self.failed, lane="network")

    def call(self, hub_url: str, code: str) -> str:
        import socket

        try:
            return enroll(self.services.store, self.services.paths, hub_url, code, socket.gethostname())
        except SpokeError:
            raise
        except ValueError as exc:
            raise SpokeError(str(exc)) from exc


class RefusedDialog(QDialog):
    """What the hub refused, with its reasons; selected items can be queued again once the cause is put right."""

    loaded = Signal()   # the list is filled

    def __init__(self, controller: SyncController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle(_("Refused by the hub"))
        self.resize(720, 360)
        lay = QVBoxLayout(self)
        intro = QLabel(_("These records or files did not go to the hub. Everything else did. They stay saved on this "
                         "computer; once the cause is put right, select them and press 'Try again'."))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.table = QTreeWidget()
        self.table.setObjectName("refused_list")
        self.table.setHeaderLabels([_("What"), _("When"), _("The hub's reason")])
        self.table.setWordWrap(True)
        self.table.setRootIsDecorated(False)
        self.table.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        lay.addWidget(self.table, 1)
        self.message = ErrorLabel()
        self.message.setObjectName("message")
        lay.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.retry = buttons.addButton(_("Try again"), QDialogButtonBox.ButtonRole.ActionRole)
        self.retry.setObjectName("try_again")
        self.retry.setEnabled(False)
        self.retry.clicked.connect(self._try_again)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.items = []
        self._load()

    def _local(self) -> LocalSync:
        return LocalSync(self.controller.services.store)

    def _load(self) -> None:
        local = self._local()
        self.controller.runner.run(local.refused, self._show, self._failed, lane="read")

    def _show(self, items) -> None:
        self.items = items
        self.table.clear()
        for item in self.items:
            when = when_text(item.when) if item.when else ""
            row = QTreeWidgetItem([item.what, when, item.reason])
            row.setToolTip(2, item.reason)
            self.table.addTopLevelItem(row)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)
        self.retry.setEnabled(bool(self.items))
        self.loaded.emit()

    def _try_again(self) -> None:
        chosen = [self.items[self.table.indexOfTopLevelItem(i)] for i in self.table.selectedItems()] or self.items
        local = self._local()
        self.retry.setEnabled(False)
        self.message.show_message(None)
        self.controller.runner.run(lambda: local.try_again(None, chosen), self._queued_again, self._failed)

    def _queued_again(self, _result: object) -> None:
        self._load()
        self.controller.sync_now()

    def _failed(self, exc: Exception) -> None:
        self.retry.setEnabled(bool(self.items))
        self.message.show_message(exc.message if isinstance(exc, SpokeError) else str(exc))
