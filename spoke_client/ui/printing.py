"""Printing on screen: the print queue (waiting, printing, printed, failed, with "Try again"), the printer chosen
once for the PC with the paper size and the patient's language of the paper, and the one call that prints a
prescription from anywhere in the app (the case and "Prescriptions received")."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import User
from spoke_client.i18n import _, when_text
from spoke_client.services.printers import JobState, PrinterInfo
from spoke_client.services.printing import PrintJob, PrintService
from spoke_client.services.rx_pdf import languages
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel

REFRESH_MS = 2000
LANGUAGE_NAMES = {"en": "English", "hi": "हिन्दी", "ta": "தமிழ்", "bn": "বাংলা", "mr": "मराठी"}


def state_text(job: PrintJob) -> str:
    return {JobState.WAITING: _("Waiting"), JobState.PRINTING: _("Printing"), JobState.PRINTED: _("Printed"),
            JobState.FAILED: _("Failed")}[job.state]


STATE_COLOURS = {JobState.WAITING: "#8a5a00", JobState.FAILED: "#b00020", JobState.PRINTED: "#1b5e20"}


class PrintQueueModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.jobs: list[PrintJob] = []
        self.headers = [_("Patient"), _("Paper"), _("Printer"), _("State"), _("Details"), _("Sent")]

    def set_jobs(self, jobs: list[PrintJob]) -> None:
        self.beginResetModel()
        self.jobs = list(jobs)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        return len(self.headers)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt override
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        job = self.jobs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            paper = f"{job.paper}, {LANGUAGE_NAMES.get(job.language, job.language)}"
            if job.duplicate:
                paper = _("DUPLICATE (copy {n})").format(n=job.copy) + ", " + paper
            return [job.patient_name, paper, job.printer or _("PDF file"), state_text(job), job.detail,
                    when_text(job.created_at)][index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and job.state in STATE_COLOURS:
            return QBrush(QColor(STATE_COLOURS[job.state]))
        return None


class PrinterSettings(QGroupBox):
    """The printer, the paper and the language of the paper, chosen once for this PC (an administrator's or any
    user's choice: it is where the printer stands, not a clinical setting)."""

    saved = Signal()

    def __init__(self, runner: TaskRunner, printing: PrintService, user: User, parent: QWidget | None = None) -> None:
        super().__init__(_("Printer for prescriptions"), parent)
        self.runner, self.printing, self.user = runner, printing, user
        form = QFormLayout(self)
        self.printer = QComboBox()
        self.printer.setObjectName("printer")
        self.paper = QComboBox()
        self.paper.setObjectName("paper")
        for size in ("A5", "A4"):
            self.paper.addItem(size, size)
        self.language = QComboBox()
        self.language.setObjectName("print_language")
        for code in languages():
            self.language.addItem(LANGUAGE_NAMES.get(code, code) + ("" if code == "en" else " + English"), code)
        form.addRow(_("Printer"), self.printer)
        form.addRow(_("Paper"), self.paper)
        form.addRow(_("Language of the paper"), self.language)
        row = QHBoxLayout()
        self.save = QPushButton(_("Save printer settings"))
        self.save.setObjectName("save_printer")
        self.save.clicked.connect(self._save)
        self.status = QLabel()
        self.status.setObjectName("printer_status")
        self.status.setWordWrap(True)
        row.addWidget(self.save)
        row.addWidget(self.status, 1)
        form.addRow(row)
        self.error = ErrorLabel()
        form.addRow(self.error)
        self.load()

    def load(self) -> None:
        printing = self.printing
        self.runner.run(lambda: (printing.printers(), printing.printer(), printing.paper(), printing.language()),
                        self._show, self._failed, lane="read")

    def _show(self, found: tuple[list[PrinterInfo], str | None, str, str]) -> None:
        printers, chosen, paper, language = found
        self.printer.clear()
        for p in printers:
            self.printer.addItem(p.name + ("" if p.ready else f" ({p.detail})"), p.name)
        if chosen and self.printer.findData(chosen) < 0:
            self.printer.addItem(_("{name} (not found on this computer)").format(name=chosen), chosen)
        if chosen:
            self.printer.setCurrentIndex(self.printer.findData(chosen))
        self.paper.setCurrentIndex(max(self.paper.findData(paper), 0))
        self.language.setCurrentIndex(max(self.language.findData(language), 0))
        self.status.setText(_("No printer found on this computer.") if not printers else "")

    def _failed(self, exc: Exception) -> None:
        self.error.show_message(exc.message if isinstance(exc, SpokeError) else str(exc))
        self.status.setText(_("The printers could not be listed."))

    def _save(self) -> None:
        printer, paper, language = self.printer.currentData(), self.paper.currentData(), self.language.currentData()
        if not printer:
            self.error.show_message(_("Choose a printer first."))
            return
        self.error.show_message(None)
        self.runner.run(lambda: self.printing.choose(self.user, printer=printer, paper=paper, language=language),
                        lambda _r: (self.status.setText(_("Saved.")), self.saved.emit()), self._failed)


class PrintQueueDialog(QDialog):
    """The print queue: what waits and why, what printed, what failed (with "Try again")."""

    def __init__(self, runner: TaskRunner, printing: PrintService, user: User, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("Printing"))
        self.setObjectName("print_queue")
        self.resize(860, 480)
        self.runner, self.printing, self.user = runner, printing, user
        lay = QVBoxLayout(self)
        self.settings = PrinterSettings(runner, printing, user)
        lay.addWidget(self.settings)
        lay.addWidget(QLabel(_("Print queue")))
        self.model = PrintQueueModel(self)
        self.table = QTableView()
        self.table.setObjectName("jobs")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.retry = QPushButton(_("Try again"))
        self.retry.setObjectName("retry")
        self.retry.setEnabled(False)
        self.retry.clicked.connect(self._retry)
        row.addWidget(self.retry)
        row.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row.addWidget(buttons)
        lay.addLayout(row)
        self.error = ErrorLabel()
        lay.addWidget(self.error)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    def refresh(self) -> None:
        self.runner.run(self.printing.refresh, self._show, self._failed, lane="read")

    def _show(self, jobs: list[PrintJob]) -> None:
        selected = self.selected()
        self.model.set_jobs(jobs)
        if selected is not None:
            for i, job in enumerate(jobs):
                if job.id == selected.id:
                    self.table.selectRow(i)
        self._selected()

    def _failed(self, exc: Exception) -> None:
        self.error.show_message(exc.message if isinstance(exc, SpokeError) else str(exc))

    def selected(self) -> PrintJob | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.jobs[rows[0].row()] if rows and rows[0].row() < len(self.model.jobs) else None

    def _selected(self, *_a) -> None:
        job = self.selected()
        self.retry.setEnabled(job is not None and job.state == JobState.FAILED)

    def _retry(self) -> None:
        job = self.selected()
        if job is None:
            return
        self.error.show_message(None)
        self.runner.run(lambda: self.printing.retry(self.user, job.id), lambda _j: self.refresh(), self._failed)

    def done(self, result: int) -> None:
        self.timer.stop()
        super().done(result)


def print_prescription(runner: TaskRunner, printing: PrintService, user: User, prescription_id: str,
                       on_done, on_error) -> None:
    """Sends the prescription to the chosen printer in the background; `on_done(job)` says what became of it (a
    job that waits because the printer is off is not an error: the queue shows it)."""
    runner.run(lambda: printing.print(user, prescription_id), on_done, on_error)


def job_sentence(job: PrintJob) -> str:
    """What to tell the user after Print: 'Printing on PDF (DUPLICATE, copy 2): sent to the printer'."""
    where = job.printer or _("PDF file")
    what = _("DUPLICATE, copy {n}").format(n=job.copy) if job.duplicate else _("first copy")
    return _("{state} on {printer} ({what}): {detail}").format(state=state_text(job), printer=where, what=what,
                                                             detail=job.detail)
