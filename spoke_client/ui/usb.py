"""USB drives on screen: "Send by USB drive" (this PC's unsent work, sealed for the hub, written and checked on a
drive, split into parts when the drive is too small), "Import from USB drive" (the hub's return bundle), and the
status-bar panel that offers both beside sync and notices a plugged drive holding a return bundle for this PC.

Every drive and bundle is touched off the UI thread (a slow or failing drive must not freeze the window): listing
and header reading on the read lane, writing and importing on the network lane, where they never run beside a
sync round (an import applies the hub's changes as a sync's pull does).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _, ngettext, when_text
from spoke_client.services import bundles, drives
from spoke_client.services.bundles import BundleError, user_message
from spoke_client.services.drives import Drive
from spoke_client.services.runtime import Services
from spoke_client.ui.tasks import TaskRunner, details_of
from spoke_client.ui.widgets import ErrorLabel

log = logging.getLogger(__name__)

MB = 2**20
DRIVE_POLL_MS = 3000          # how often the main window looks for a plugged drive
PROGRESS_STEPS = 1000


# --- words -------------------------------------------------------------------------------------------------
def size_text(n: int) -> str:
    """'730 MB', '14.6 GB'."""
    if n >= 2**30:
        return _("{n:.1f} GB").format(n=n / 2**30)
    return _("{n} MB").format(n=n // MB)


def about_text(n: int) -> str:
    if n < MB:
        return _("less than 1 MB")
    if n >= 2**30:
        return _("about {n:.1f} GB").format(n=n / 2**30)
    return _("about {n} MB").format(n=math.ceil(n / MB))   # rounded up: what a drive must have room for


def estimate_text(estimate: bundles.Estimate) -> str:
    """'To send: 12 cases' changes, 3 files, about 45 MB.'"""
    if not estimate.changes and not estimate.files:
        return _("Nothing waits for the hub. A bundle now only tells the hub what this computer has already "
                 "received, so that the hub's return bundle brings what is new.")
    parts = []
    if estimate.cases:
        parts.append(ngettext("{n} case's changes", "{n} cases' changes", estimate.cases).format(n=estimate.cases))
    elif estimate.changes:
        parts.append(ngettext("{n} change", "{n} changes", estimate.changes).format(n=estimate.changes))
    parts.append(ngettext("{n} file", "{n} files", estimate.files).format(n=estimate.files))
    return _("To send: {what}, {size}.").format(what=", ".join(parts), size=about_text(estimate.bytes))


def drive_text(drive: Drive) -> str:
    return _("{label} ({mount}): {free} free of {total}").format(label=drive.label, mount=drive.mount,
                                                                 free=size_text(drive.free),
                                                                 total=size_text(drive.total))


def failure_text(exc: Exception) -> str:
    """What went wrong, in the user's words: a refused bundle's own sentence, never a traceback."""
    if isinstance(exc, BundleError):
        return user_message(exc)
    if isinstance(exc, SpokeError):
        return exc.message
    if isinstance(exc, OSError):
        return _("The drive could not be read or written ({reason}): was it removed? Plug it in and try "
                 "again.").format(reason=exc.strerror or type(exc).__name__)
    if isinstance(exc, ValueError):   # a part size below what a part must hold
        return _("A part must be allowed at least 1 MB.")
    return _("Something went wrong, and Spoke shows the details in a moment; everything is still saved on this "
             "computer.")


# --- will it fit -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitPlan:
    fits: bool            # the bundle fits on this drive in one file
    part_mb: int          # when it does not: the largest part size that fits (0: the drive is full)
    parts: int            # about how many parts of part_mb it makes
    sentence: str


def room_of(drive: Drive) -> int:
    """What a bundle may take on the drive (as bundles.room_on says of a folder)."""
    return max(0, drive.free - min(bundles.HEADROOM, drive.free // 20))


def plan_split(drive: Drive, need: int) -> SplitPlan:
    """Whether `need` bytes fit on the drive; when not, the part size to offer and what that means."""
    room = room_of(drive)
    too_big_for_fat = drive.fat and need > drives.FAT_MAX_FILE
    if need <= room and not too_big_for_fat:
        return SplitPlan(True, 0, 1, _("It fits on this drive."))
    cap = min(room, drives.FAT_MAX_FILE) if drive.fat else room
    part_mb = cap // MB
    if part_mb < 1:
        return SplitPlan(False, 0, 0, _("This drive is full ({free} free): free some space on it, or use another "
                                        "drive.").format(free=size_text(drive.free)))
    parts = max(2, math.ceil(need / (part_mb * MB)))
    if need <= room:
        return SplitPlan(False, part_mb, parts, _(
            "This drive takes files of at most 4 GB (FAT32), and the bundle needs {need}: it is split into {n} parts "
            "of at most {part} MB, all on this drive. Every part must reach the hub.").format(
            need=about_text(need), n=parts, part=part_mb))
    return SplitPlan(False, part_mb, parts, _(
        "This drive is too small: it has {free} free and the bundle needs {need}. Split it into parts of at most "
        "{part} MB (about {n} parts): the parts that fit go on this drive now, and the others wait on this "
        "computer, to be carried on other days (on this drive again, or on another). Every part must reach the "
        "hub: it imports the bundle once it has them all.").format(
        free=size_text(drive.free), need=about_text(need), part=part_mb, n=parts))


class _Bridge(QObject):
    """Progress from a worker thread, delivered on the UI thread (a queued signal)."""

    progress = Signal(str, object, object)   # stage, done, total (bytes: beyond a C int)


def _emitter(bridge: _Bridge):
    def tell(stage: str, done: int, total: int) -> None:
        try:
            bridge.progress.emit(stage, done, total)
        except RuntimeError:   # the dialog is gone: the work goes on, unwatched
            pass
    return tell


def _set_progress(bar: QProgressBar, stage: str, done: int, total: int) -> None:
    bar.setRange(0, PROGRESS_STEPS)
    bar.setValue(min(PROGRESS_STEPS, done * PROGRESS_STEPS // max(total, 1)))
    bar.setFormat({"write": _("Writing the bundle… %p%"), "copy": _("Copying to the drive… %p%"),
                   "import": _("Checking and importing… %p%")}.get(stage, "%p%"))


class _BusyDialog(QDialog):
    """What both USB dialogs are: an explanation, a list with "Look again", a progress bar, the outcome or the
    error, and no closing while the drive work runs (a half-written drive is worse than a wait)."""

    def __init__(self, parent: QWidget | None, title: str, name: str, size: tuple[int, int], intro: str) -> None:
        super().__init__(parent)
        self.busy = False
        self.bridge = _Bridge(self)
        self.bridge.progress.connect(self._progress)
        self.setWindowTitle(title)
        self.setObjectName(name)
        self.resize(*size)
        self.lay = QVBoxLayout(self)
        text = QLabel(intro)
        text.setWordWrap(True)
        self.lay.addWidget(text)

    def _list_heading(self, label: str, refresh) -> None:
        row = QHBoxLayout()
        row.addWidget(QLabel(label), 1)
        self.refresh_button = QPushButton(_("Look again"))
        self.refresh_button.setObjectName("usb_refresh")
        self.refresh_button.clicked.connect(refresh)
        row.addWidget(self.refresh_button)
        self.lay.addLayout(row)

    def _add_outcome(self) -> None:
        """The progress bar, the outcome (green) and the error, in that order, above the buttons."""
        self.progress = QProgressBar()
        self.progress.setObjectName("usb_progress")
        self.progress.hide()
        self.lay.addWidget(self.progress)
        self.outcome = QLabel()
        self.outcome.setObjectName("usb_result")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.outcome.setStyleSheet("color: #1b5e20;")
        self.outcome.hide()
        self.lay.addWidget(self.outcome)
        self.error = ErrorLabel()
        self.error.setObjectName("usb_error")
        self.lay.addWidget(self.error)

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self.busy:
            _set_progress(self.progress, stage, done, total)

    def _failed(self, exc: Exception) -> None:
        self._stop()
        self.error.show_message(failure_text(exc))
        if not isinstance(exc, (BundleError, SpokeError, OSError, ValueError)):
            self.runner.unexpected.emit(details_of(exc))

    def _stop(self) -> None:
        raise NotImplementedError

    def reject(self) -> None:   # Escape, Close, and the window's close button (QDialog's closeEvent asks reject)
        if not self.busy:
            super().reject()


# --- Send by USB drive -------------------------------------------------------------------------------------
class SendDialog(_BusyDialog):
    written = Signal(object)     # a bundles.SendReport or CarryReport, once on the drive and checked
    drives_listed = Signal()
    estimated = Signal()

    def __init__(self, runner: TaskRunner, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent, _("Send by USB drive"), "usb_send", (620, 480), _(
            "This computer's work that has not reached the hub is written to the USB drive, sealed for the hub: "
            "nobody else can read it. Take the drive to the hub, or to a computer with a network; the hub's "
            "answers come back the same way."))
        self.runner, self.services = runner, services
        lay = self.lay
        self.estimate: bundles.Estimate | None = None
        self.drives: list[Drive] = []
        self.waiting: list[Path] = []
        self._plan: SplitPlan | None = None
        self._planned_drive: Drive | None = None
        self._auto_split = False   # split was ticked for a drive too small, not by the user
        self.written_once = False   # (not "done": QDialog.done is a virtual, and PySide would call it)
        self.what = QLabel(_("Counting what waits for the hub…"))
        self.what.setObjectName("usb_what")
        self.what.setWordWrap(True)
        self.what.setStyleSheet("font-weight: bold;")
        lay.addWidget(self.what)
        self._list_heading(_("USB drive:"), self.refresh_drives)
        self.drive_list = QListWidget()
        self.drive_list.setObjectName("usb_drives")
        self.drive_list.setMaximumHeight(110)
        self.drive_list.currentRowChanged.connect(self._update_plan)
        lay.addWidget(self.drive_list)
        self.no_drive = QLabel(_("No USB drive found: plug one in."))
        self.no_drive.setObjectName("usb_no_drive")
        self.no_drive.setStyleSheet("color: #8a5a00;")
        self.no_drive.hide()
        lay.addWidget(self.no_drive)
        self.fit = QLabel()
        self.fit.setObjectName("usb_fit")
        self.fit.setWordWrap(True)
        lay.addWidget(self.fit)
        split_row = QHBoxLayout()
        self.split = QCheckBox(_("Split into parts of at most"))
        self.split.setObjectName("usb_split")
        self.split.toggled.connect(self._update_parts)
        self.part_mb = QSpinBox()
        self.part_mb.setObjectName("usb_part_mb")
        self.part_mb.setRange(1, 4095)
        self.part_mb.setValue(4095)
        self.part_mb.setSuffix(_(" MB"))
        self.part_mb.valueChanged.connect(self._update_parts)
        self.parts_text = QLabel()
        self.parts_text.setObjectName("usb_parts")
        split_row.addWidget(self.split)
        split_row.addWidget(self.part_mb)
        split_row.addWidget(self.parts_text, 1)
        lay.addLayout(split_row)
        self.split_note = QLabel(_("The parts can travel on different days: those that do not fit on the drive "
                                   "wait on this computer until a drive is plugged in again. Every part must reach "
                                   "the hub; it imports the bundle once it has them all."))
        self.split_note.setObjectName("usb_split_note")
        self.split_note.setWordWrap(True)
        self.split_note.hide()
        lay.addWidget(self.split_note)
        waiting_row = QHBoxLayout()
        self.waiting_text = QLabel()
        self.waiting_text.setObjectName("usb_waiting")
        self.waiting_text.setWordWrap(True)
        self.carry_button = QPushButton(_("Copy waiting parts to the drive"))
        self.carry_button.setObjectName("usb_carry")
        self.carry_button.clicked.connect(self.carry)
        waiting_row.addWidget(self.waiting_text, 1)
        waiting_row.addWidget(self.carry_button)
        self.waiting_text.hide()
        self.carry_button.hide()
        lay.addLayout(waiting_row)
        self._add_outcome()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.write_button = self.buttons.addButton(_("Write to the drive"), QDialogButtonBox.ButtonRole.ActionRole)
        self.write_button.setObjectName("usb_write")
        self.write_button.setEnabled(False)
        self.write_button.clicked.connect(self.write)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._load_estimate()
        self.refresh_drives()

    # loading
    def _load_estimate(self) -> None:
        store, paths = self.services.store, self.services.paths
        self.runner.run(lambda: (bundles.estimate(store, paths), bundles.waiting_parts(paths)), self._estimated,
                        self._failed_quietly, lane="read")

    def _estimated(self, result) -> None:
        self.estimate, self.waiting = result
        self.what.setText(estimate_text(self.estimate))
        self._show_waiting()
        self._update_plan()
        self.estimated.emit()

    def refresh_drives(self) -> None:
        self.refresh_button.setEnabled(False)
        self.runner.run(drives.removable_drives, self._listed, self._failed_quietly, lane="read")

    def _listed(self, found: list[Drive]) -> None:
        chosen = self.drive.mount if self.drive else None
        self.drives = list(found)
        self.drive_list.blockSignals(True)
        self.drive_list.clear()
        for d in self.drives:
            self.drive_list.addItem(QListWidgetItem(drive_text(d)))
        self.drive_list.blockSignals(False)
        mounts = [d.mount for d in self.drives]
        if self.drives:
            self.drive_list.setCurrentRow(mounts.index(chosen) if chosen in mounts else 0)
        self.no_drive.setVisible(not self.drives)
        self.refresh_button.setEnabled(True)
        self._update_plan()
        self.drives_listed.emit()

    def _failed_quietly(self, exc: Exception) -> None:
        self.refresh_button.setEnabled(True)
        self.error.show_message(failure_text(exc))

    @property
    def drive(self) -> Drive | None:
        row = self.drive_list.currentRow()
        return self.drives[row] if 0 <= row < len(self.drives) else None

    # sizing
    def plan_for(self, drive: Drive) -> SplitPlan | None:
        """The dialog's sizing of this drive against what is to be sent, shown on screen (also for a drive the test
        or the user describes)."""
        if self.estimate is None:
            return None
        plan = plan_split(drive, self.estimate.bytes)
        self.fit.setText(plan.sentence)
        self.fit.setStyleSheet("" if plan.fits else "color: #8a5a00;")
        self._plan, self._planned_drive = plan, drive
        if plan.fits:
            self.part_mb.setMaximum(max(1, min(room_of(drive), drives.FAT_MAX_FILE if drive.fat else 2**40) // MB))
            if self._auto_split:
                self._auto_split = False
                self.split.setChecked(False)
        elif plan.part_mb:
            self.part_mb.setMaximum(plan.part_mb)
            self.part_mb.setValue(plan.part_mb)
            if not self.split.isChecked():
                self._auto_split = True
                self.split.setChecked(True)
        self._update_parts()
        return plan

    def _update_plan(self, *_a) -> None:
        drive = self.drive
        if drive is None or self.estimate is None:
            self.fit.setText("")
            self._plan = self._planned_drive = None
            self._update_parts()
            return
        self.plan_for(drive)

    def _update_parts(self, *_a) -> None:
        plan, drive = self._plan, self._planned_drive
        split = self.split.isChecked()
        self.part_mb.setEnabled(split and not self.busy)
        self.split_note.setVisible(split)
        if split and self.estimate is not None and drive is not None:
            part = self.part_mb.value() * MB
            n = max(1, math.ceil(self.estimate.bytes / part))
            now = n if self.estimate.bytes <= room_of(drive) else max(1, room_of(drive) // part)
            if now >= n:
                self.parts_text.setText(ngettext("about {n} part, on this drive", "about {n} parts, all on this "
                                                 "drive", n).format(n=n))
            else:
                self.parts_text.setText(_("about {n} parts: {k} on this drive now, the others wait on this "
                                          "computer").format(n=n, k=now))
        else:
            self.parts_text.setText("")
        can = (not self.busy and not self.written_once and self.estimate is not None and drive is not None
               and plan is not None and (plan.fits or (split and plan.part_mb > 0)))
        self.write_button.setEnabled(bool(can))

    def _show_waiting(self) -> None:
        names = ", ".join(p.name for p in self.waiting)
        self.waiting_text.setText(ngettext(
            "{n} part of an earlier bundle waits on this computer ({names}): plug in a drive and copy it.",
            "{n} parts of an earlier bundle wait on this computer ({names}): plug in a drive and copy them.",
            len(self.waiting)).format(n=len(self.waiting), names=names))
        self.waiting_text.setVisible(bool(self.waiting))
        self.carry_button.setVisible(bool(self.waiting))
        self.carry_button.setEnabled(bool(self.waiting) and not self.busy)

    # writing
    def _start(self) -> None:
        self.busy = True
        for w in (self.write_button, self.carry_button, self.refresh_button, self.drive_list, self.split,
                  self.part_mb, self.buttons.button(QDialogButtonBox.StandardButton.Close)):
            w.setEnabled(False)
        self.error.show_message(None)
        self.outcome.hide()
        self.progress.setRange(0, 0)   # until the first progress: a sync round may finish first
        self.progress.setFormat(_("Waiting…"))
        self.progress.show()

    def _stop(self) -> None:
        self.busy = False
        self.progress.hide()
        for w in (self.refresh_button, self.drive_list, self.split, self.buttons.button(
                QDialogButtonBox.StandardButton.Close)):
            w.setEnabled(True)
        self._update_parts()
        self._show_waiting()

    def write(self) -> None:
        drive = self.drive
        if drive is None or self.busy:
            return
        max_size = self.part_mb.value() * MB if self.split.isChecked() else None
        store, paths, tell = self.services.store, self.services.paths, _emitter(self.bridge)
        self._start()
        self.runner.run(lambda: bundles.send(store, paths, drive.mount, max_size, progress=tell), self._written,
                        self._failed, lane="network")

    def carry(self) -> None:
        drive = self.drive
        if drive is None or self.busy:
            return
        paths, tell = self.services.paths, _emitter(self.bridge)
        self._start()
        self.runner.run(lambda: bundles.carry(paths, drive.mount, progress=tell), self._carried, self._failed,
                        lane="network")

    def _written(self, report: bundles.SendReport) -> None:
        # Only now: export and the copy read every part back from the drive and checked it.
        b = report.bundle
        first = _("Written and checked: {changes} and {files}, {size}.").format(
            changes=ngettext("{n} change", "{n} changes", b.changes).format(n=b.changes),
            files=ngettext("{n} file", "{n} files", b.files).format(n=b.files), size=about_text(b.size))
        self.written_once = True   # written once: another press would write the same work again
        self.waiting = list(report.waiting)
        self._finish(first, report.on_drive, report.waiting, b.skipped_files)
        self.written.emit(report)

    def _carried(self, report: bundles.CarryReport) -> None:
        self.waiting = list(report.left)
        self._finish(_("Copied and checked."), report.copied, report.left, 0)
        self.written.emit(report)

    def _finish(self, first: str, on_drive, waiting, skipped: int) -> None:
        lines = [first + " " + _("It is safe to remove the drive now.")]
        lines.append(_("On the drive:"))
        lines += [f"  {p.name}" for p in on_drive]
        if waiting:
            lines.append(ngettext(
                "{n} more part waits on this computer: carry it on another day (plug in a drive, then 'Copy "
                "waiting parts'). Every part must reach the hub.",
                "{n} more parts wait on this computer: carry them on other days (plug in a drive, then 'Copy "
                "waiting parts'). Every part must reach the hub.", len(waiting)).format(n=len(waiting)))
        elif len(on_drive) > 1:
            lines.append(_("Take every part to the hub; it imports the bundle once it has them all."))
        if skipped:
            lines.append(ngettext("{n} file on this computer is damaged or missing and was left out.",
                                  "{n} files on this computer are damaged or missing and were left out.",
                                  skipped).format(n=skipped))
        self.outcome.setText("\n".join(lines))
        self.outcome.show()
        self._stop()
        self.refresh_drives()   # the free space shown is less now


# --- Import from USB drive ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundReturn:
    drive: Drive
    found: bundles.ReturnOnDrive


def find_returns(store, paths, depth: int = 1) -> tuple[list[Drive], list[FoundReturn]]:
    """On a worker: the drives, and the return bundles at their top (and one folder below), this PC's first."""
    listed = drives.removable_drives(sizes=False)
    out = []
    for d in listed:
        found = drives.bundles_on(d, "hub", depth)
        out += [FoundReturn(d, r) for r in bundles.returns_for_this_pc(store, paths, found)]
    out.sort(key=lambda f: (not f.found.waiting, not f.found.for_this_pc))
    return listed, out


def return_text(found: FoundReturn) -> str:
    r, h = found.found, found.found.header
    text = _("Made by the hub on {when}: {changes}, {files}").format(
        when=when_text(h.created, year=True), changes=ngettext("{n} change", "{n} changes", h.changes).format(
            n=h.changes), files=ngettext("{n} file", "{n} files", h.files).format(n=h.files))
    if h.parts > 1:
        text += " " + _("({n} parts)").format(n=h.parts)
    text += " · " + _("on {drive}: {name}").format(drive=found.drive.label, name=r.path.name)
    if not r.for_this_pc:
        text += " · " + _("for another computer")
    elif r.imported:
        text += " · " + _("already imported")
    return text


class ImportDialog(_BusyDialog):
    imported = Signal(object)    # the ImportReport
    listed = Signal()

    def __init__(self, runner: TaskRunner, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent, _("Import from USB drive"), "usb_import", (640, 400), _(
            "The hub's return bundle brings its answers: prescriptions, the doctors' questions, the cases' status, "
            "the other computers' work, and which of this computer's changes reached the hub."))
        self.runner, self.services = runner, services
        lay = self.lay
        self.found: list[FoundReturn] = []
        self._list_heading(_("Return bundles on the USB drives:"), self.refresh)
        self.list = QListWidget()
        self.list.setObjectName("usb_returns")
        self.list.currentRowChanged.connect(self._selected)
        lay.addWidget(self.list, 1)
        self.empty = QLabel()
        self.empty.setObjectName("usb_none")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #8a5a00;")
        self.empty.hide()
        lay.addWidget(self.empty)
        self._add_outcome()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.choose_button = self.buttons.addButton(_("Choose a file…"), QDialogButtonBox.ButtonRole.ActionRole)
        self.choose_button.setObjectName("usb_choose")
        self.choose_button.clicked.connect(self.choose_file)
        self.import_button = self.buttons.addButton(_("Import"), QDialogButtonBox.ButtonRole.ActionRole)
        self.import_button.setObjectName("usb_do_import")
        self.import_button.setEnabled(False)
        self.import_button.clicked.connect(self.import_selected)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.refresh()

    def refresh(self) -> None:
        self.refresh_button.setEnabled(False)
        store, paths = self.services.store, self.services.paths
        self.runner.run(lambda: find_returns(store, paths), self._listed, self._failed_listing, lane="read")

    def _listed(self, result) -> None:
        listed, self.found = result
        self.list.clear()
        for f in self.found:
            item = QListWidgetItem(return_text(f))
            if not f.found.waiting:
                item.setForeground(Qt.GlobalColor.gray)
            self.list.addItem(item)
        if self.found:
            self.list.setCurrentRow(0)
        if not listed:
            self.empty.setText(_("No USB drive found: plug one in, or choose the file."))
        elif not self.found:
            self.empty.setText(_("No return bundle from the hub on the USB drive. Ask at the hub for this "
                                 "computer's return bundle, or choose the file if it is elsewhere."))
        self.empty.setVisible(not self.found)
        self.refresh_button.setEnabled(not self.busy)
        self._selected()
        self.listed.emit()

    def _failed_listing(self, exc: Exception) -> None:
        self.refresh_button.setEnabled(True)
        self.error.show_message(failure_text(exc))

    def _selected(self, *_a) -> None:
        self.import_button.setEnabled(not self.busy and 0 <= self.list.currentRow() < len(self.found))

    def import_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.found):
            self.import_file(self.found[row].found.path)

    def choose_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, _("Choose the return bundle"), "",
                                                    _("Spoke bundles (*{suffix})").format(suffix=bundles.bundle.SUFFIX))
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        if self.busy:
            return
        store, paths, tell = self.services.store, self.services.paths, _emitter(self.bridge)
        self.busy = True
        for w in (self.import_button, self.choose_button, self.refresh_button, self.list,
                  self.buttons.button(QDialogButtonBox.StandardButton.Close)):
            w.setEnabled(False)
        self.error.show_message(None)
        self.outcome.hide()
        self.progress.setRange(0, 0)
        self.progress.setFormat(_("Waiting…"))
        self.progress.show()
        self.runner.run(lambda: bundles.import_return(store, paths, Path(path),
                                                      progress=lambda d, t: tell("import", d, t)),
                        self._imported, self._failed, lane="network")

    def _stop(self) -> None:
        self.busy = False
        self.progress.hide()
        for w in (self.choose_button, self.refresh_button, self.list,
                  self.buttons.button(QDialogButtonBox.StandardButton.Close)):
            w.setEnabled(True)
        self._selected()

    def _imported(self, report: bundles.ImportReport) -> None:
        self._stop()
        self.outcome.setText(report.sentence())
        self.outcome.show()
        self.imported.emit(report)
        self.refresh()   # the list says "already imported" now


# --- beside sync in the status bar -------------------------------------------------------------------------
def waiting_returns(store, paths) -> list[FoundReturn]:
    """On a worker, every few seconds: the return bundles for this PC, not imported yet, at the top of a drive
    (the mount table and one directory listing a drive; headers are read once per file)."""
    return [f for f in find_returns(store, paths, depth=0)[1] if f.found.waiting]


class UsbPanel(QWidget):
    """'USB drive…' (send, import) and the notice of a return bundle on a plugged drive; shown on an enrolled PC."""

    imported = Signal(object)    # an ImportReport: what a sync's pull would refresh, refresh
    checked = Signal()           # a look at the drives came back

    def __init__(self, runner: TaskRunner, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.services = runner, services
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.notice = QPushButton(_("A return bundle from the hub is on the USB drive: Import"))
        self.notice.setObjectName("usb_notice")
        self.notice.setStyleSheet("color: #1a4d8f; font-weight: bold;")
        self.notice.clicked.connect(self.open_import)
        self.notice.ensurePolished()   # measured in its bold face, and never cut short in a crowded status bar
        self.notice.setMinimumWidth(self.notice.sizeHint().width())
        self.notice.hide()
        self.menu_button = QPushButton(_("USB drive…"))
        self.menu_button.setObjectName("usb_menu")
        self.menu_button.setToolTip(_("No network? Send this computer's work to the hub on a USB drive, and import "
                                      "the hub's answers from one."))
        menu = QMenu(self.menu_button)
        self.send_action = menu.addAction(_("Send by USB drive…"))
        self.send_action.triggered.connect(self.open_send)
        self.import_action = menu.addAction(_("Import from USB drive…"))
        self.import_action.triggered.connect(self.open_import)
        self.menu_button.setMenu(menu)
        lay.addWidget(self.notice)
        lay.addWidget(self.menu_button)
        self.timer = QTimer(self)
        self.timer.setInterval(DRIVE_POLL_MS)
        self.timer.timeout.connect(self.check_drives)
        self.enrolled = False
        self.checking = False
        self.dialog: QDialog | None = None
        self.waiting: list[FoundReturn] = []
        self.hide()

    def set_enrolled(self, enrolled: bool) -> None:
        was, self.enrolled = self.enrolled, enrolled
        self.setVisible(enrolled)
        if enrolled and not was:
            self.timer.start()
            self.check_drives()
        elif not enrolled:
            self.timer.stop()
            self.notice.hide()

    def check_drives(self) -> None:
        if not self.enrolled or self.checking or self.dialog is not None:
            return
        self.checking = True
        store, paths = self.services.store, self.services.paths
        self.runner.run(lambda: waiting_returns(store, paths), self._checked, self._check_failed, lane="read")

    def _checked(self, found: list[FoundReturn]) -> None:
        self.checking = False
        self.waiting = found
        if found and not self.notice.isVisible():
            log.info("a return bundle for this PC is on a USB drive")
        self.notice.setVisible(bool(found) and self.enrolled)
        self.notice.setToolTip("\n".join(return_text(f) for f in found))
        self.checked.emit()

    def _check_failed(self, exc: Exception) -> None:
        self.checking = False   # a drive pulled while it was read: looked at again at the next tick
        log.info("looking for USB drives failed: %s", type(exc).__name__)

    def open_send(self) -> QDialog:
        return self._open(SendDialog)

    def open_import(self) -> QDialog:
        return self._open(ImportDialog)

    def _open(self, kind: type[_BusyDialog]) -> QDialog:
        current = self.dialog
        if current is not None:
            if isinstance(current, kind) or current.busy:   # one at a time: a drive is written or read by one
                current.raise_()
                current.activateWindow()
                return current
            current.close()
        dialog = kind(self.runner, self.services, self.window())
        if isinstance(dialog, ImportDialog):
            dialog.imported.connect(self._imported)
        self.dialog = dialog
        dialog.finished.connect(self._closed)
        dialog.open()   # window-modal, and the event loop goes on: the timers, the sync bar
        return dialog

    def _closed(self, _result: int = 0) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()
        self.check_drives()

    def _imported(self, report) -> None:
        self.notice.hide()
        self.waiting = []
        self.imported.emit(report)

    def stop(self) -> None:
        self.timer.stop()
