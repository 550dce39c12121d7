"""The case editor: complaints, vitals with live red flags, vitals history and corrections, consent, status, and
what the hub's doctor sent back (a question to answer, prescriptions).

It opens on the write lane (opening a case is audited, and a database held by another program must not freeze
the window); until the case is there the editor says so and its form is disabled."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from spoke_client.domain.errors import SpokeError, ValidationFailed
from spoke_client.domain.model import Case, CaseStatus, ConsentGiver, ConsentMethod, Patient, User, VitalsStatus
from spoke_client.domain.redflags import Assessment
from spoke_client.domain.vitals import Vitals
from spoke_client.i18n import N_, _, when_text
from spoke_client.services.cases import EDITABLE, VITALS_OPEN, CaseForm, CaseService, specialities, status_label
from spoke_client.services.consultation import ConsultationService
from spoke_client.services.drafts import DraftService
from spoke_client.services.patients import NKDA
from spoke_client.ui.case_hub import PrescriptionsBox, QuestionsBox, call_line
from spoke_client.ui.case_parts import ComplaintsBox, ConsentBox, NotesBox
from spoke_client.ui.models import relative_text
from spoke_client.ui.patients import sex_label
from spoke_client.ui.tasks import Task, TaskRunner
from spoke_client.ui.vitals_form import RedFlagBanner, VitalsBox, VitalsHistoryBox
from spoke_client.ui.widgets import ErrorLabel

log = logging.getLogger(__name__)

AUTOSAVE_MS = 700
# A call with the hub is for a case at the hub, still open there.
CALLABLE = (CaseStatus.QUEUED, CaseStatus.IN_CONSULTATION, CaseStatus.INFO_REQUESTED)
LOAD_WAIT_S = 60   # how long a caller acting before the case is on screen waits for it (twice the busy timeout)
VITALS_WRONG = N_("Some vital signs are not right (shown in red). Correct them, or clear them, and save again.")
ALLERGY_STYLE = "color: #ffffff; background: #c62828; font-size: 15px; font-weight: bold; padding: 4px;"
NKDA_STYLE = "color: #1b5e20; font-weight: bold;"
NOT_ASKED_STYLE = "color: #6b6b6b;"


def allergies_line(allergies: tuple[str, ...]) -> tuple[str, str]:
    """What the case header says of the patient's drug allergies, and its style."""
    if not allergies:
        return _("Drug allergies: not recorded (ask, and record them in the patient's details)"), NOT_ASKED_STYLE
    if allergies == (NKDA,):
        return _("No known drug allergies (NKDA)"), NKDA_STYLE
    return _("ALLERGIC TO: {list}").format(list=", ".join(a for a in allergies if a != NKDA)), ALLERGY_STYLE


class CaseEditor(QWidget):
    changed = Signal()            # the case was saved or moved: lists elsewhere should refresh
    draft_saved = Signal()
    saved = Signal(object)        # Case
    loaded = Signal()             # the case is on screen and can be edited
    answer_sent = Signal(object)  # Case, after the doctor's question was answered
    hub_refreshed = Signal()      # what a sync brought is on screen
    printed = Signal(object)      # PrintJob, after Print on one of the case's prescriptions

    def __init__(self, runner: TaskRunner, cases: CaseService, drafts: DraftService, user: User, case_id: str,
                 parent: QWidget | None = None, attachments=None, devices=None,
                 consultation: ConsultationService | None = None, printing=None, call_starter=None) -> None:
        super().__init__(parent)
        # call_starter(case_id, events) -> a started call (spoke_client.services.call), or None without a hub.
        self.call_starter = call_starter
        self.call_window = None
        self.runner, self.cases, self.drafts, self.user = runner, cases, drafts, user
        self.consultation = consultation or ConsultationService(cases.store)
        self.printing = printing         # PrintService, or None where the editor is shown without printing
        self.attachments = attachments   # AttachmentService, or None where the editor is shown without files
        self.devices = devices           # DeviceService, or None where no Bluetooth devices are used
        self.case_id = case_id
        self.case: Case | None = None    # None until loaded
        self.patient: Patient | None = None
        self.draft_key = f"case:{case_id}"
        self.correcting: str | None = None
        self._vitals_dirty = False
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_MS)
        self._autosave.timeout.connect(self._save_draft)
        self._build()
        self._connect_parts()
        self._load_task: Task | None = None
        self._load()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setObjectName("header")
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setStyleSheet("font-size: 15px; font-weight: bold;")
        outer.addWidget(self.header)
        self.allergies = QLabel()
        self.allergies.setObjectName("allergies")
        self.allergies.setTextFormat(Qt.TextFormat.PlainText)
        self.allergies.setWordWrap(True)
        self.allergies.hide()   # until the patient is known
        outer.addWidget(self.allergies)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setStyleSheet("color: #1a4d8f;")
        self.notice.hide()
        outer.addWidget(self.notice)
        self.banner = RedFlagBanner()
        outer.addWidget(self.banner)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        self.body = QWidget()
        cols = QHBoxLayout(self.body)
        scroll.setWidget(self.body)
        outer.addWidget(scroll, 1)
        left = QVBoxLayout()
        # What the hub's doctor sent back comes first: a question waits for the paramedic.
        self.questions = QuestionsBox()
        self.prescriptions = PrescriptionsBox()
        self.prescriptions.print_requested.connect(self.print_prescription)
        self.prescriptions.save_requested.connect(self.save_prescription_pdf)
        left.addWidget(self.questions)
        left.addWidget(self.prescriptions)
        self.calls_label = QLabel()
        self.calls_label.setObjectName("calls")
        self.calls_label.setTextFormat(Qt.TextFormat.PlainText)
        self.calls_label.setWordWrap(True)
        self.calls_label.hide()
        left.addWidget(self.calls_label)
        self.complaints = ComplaintsBox()
        self.notes = NotesBox()
        left.addWidget(self.complaints)
        left.addWidget(self.notes)
        self.attachments_panel = None
        if self.attachments is not None:
            from spoke_client.ui.attachments import AttachmentsPanel

            self.attachments_panel = AttachmentsPanel(self.runner, self.attachments, self.user, self.case_id, self)
            left.addWidget(self.attachments_panel)
        cols.addLayout(left, 1)
        right = QVBoxLayout()
        self.vitals = VitalsBox(with_device=self.devices is not None)
        self.vitals_history = VitalsHistoryBox()
        self.consent = ConsentBox()
        for part in (self.vitals, self.vitals_history, self.consent):
            right.addWidget(part)
        right.addStretch(1)
        cols.addLayout(right, 1)
        # The vitals inputs and the device controls, for callers that fill them as a user would.
        self.vital_inputs = self.vitals.inputs
        self.device_button, self.device_label = self.vitals.device_button, self.vitals.device_label

        self.message = ErrorLabel()
        self.message.setObjectName("message")
        outer.addWidget(self.message)
        self.actions = QWidget()
        buttons = QHBoxLayout(self.actions)
        buttons.setContentsMargins(0, 0, 0, 0)
        self.status_label = QLabel()
        self.status_label.setObjectName("status")
        buttons.addWidget(self.status_label)
        buttons.addStretch(1)
        self.save_button = QPushButton(_("Save"))
        self.save_button.setObjectName("save")
        self.save_button.setToolTip(_("Saves the case and records the vitals typed (Ctrl+S, or Enter in a field)."))
        self.ready_button = QPushButton(_("Ready for consultation"))
        self.ready_button.setObjectName("mark_ready")
        self.speciality = QComboBox()
        self.speciality.setObjectName("speciality")
        self.speciality.setToolTip(_("The kind of doctor the case is for; the hub offers it to them first."))
        for value, label in specialities().items():
            self.speciality.addItem(label, value)
        self.queue_button = QPushButton(_("Send to the hub"))
        self.queue_button.setObjectName("queue")
        self.cancel_button = QPushButton(_("Cancel case"))
        self.cancel_button.setObjectName("cancel_case")
        self.call_button = QPushButton(_("Call hub"))
        self.call_button.setObjectName("call_hub")
        self.call_button.setToolTip(_("A video call with a doctor on duty at the hub about this case. If nobody "
                                      "answers, the case stays in the queue."))
        self.call_button.clicked.connect(self.call_hub)
        for b in (self.save_button, self.ready_button, self.speciality, self.queue_button, self.call_button,
                  self.cancel_button):
            buttons.addWidget(b)
        outer.addWidget(self.actions)
        self.save_button.clicked.connect(lambda: self.save())
        self.ready_button.clicked.connect(lambda: self.save(then=CaseStatus.READY))
        self.queue_button.clicked.connect(lambda: self.save(then=CaseStatus.QUEUED))
        self.cancel_button.clicked.connect(lambda: self.move_to(CaseStatus.CANCELLED))
        QShortcut(QKeySequence.StandardKey.Save, self, activated=self._save_if_loaded)

    def _connect_parts(self) -> None:
        for part in (self.complaints, self.notes, self.consent):
            part.changed.connect(self._touched)
        self.vitals.changed.connect(self._vitals_touched)
        self.vitals.assessed.connect(self._assessed)
        self.notes.pregnant_changed.connect(self.vitals.set_pregnant)
        self.complaints.submitted.connect(self._save_if_loaded)
        self.vitals.submitted.connect(self._save_if_loaded)
        self.vitals.device_requested.connect(self.take_from_device)
        self.vitals_history.correct_requested.connect(self.start_correction)
        self.consent.record_requested.connect(self.record_consent)
        self.questions.answer_requested.connect(self.answer)

    # --- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        self.header.setText(_("Opening the case…"))
        self.body.setEnabled(False)
        self.actions.setEnabled(False)
        cases, drafts, user, case_id, key = self.cases, self.drafts, self.user, self.case_id, self.draft_key
        hub = self._hub_fetcher()

        def fetch() -> tuple[Case, Patient, dict | None, tuple]:
            # On the write lane, so a draft saved by a tab closed just before is read back here.
            case = cases.view(user, case_id)
            return case, cases.patient_of(case), drafts.load(key), hub()

        self._load_task = self.runner.run(fetch, self._loaded, self._load_failed)

    def is_loaded(self) -> bool:
        return self.case is not None

    def _ensure_loaded(self) -> bool:
        """For code that acts on the editor before the case is on screen (a caller, a test): waits for the load
        already queued. The user cannot get here early: the form stays disabled until then."""
        task = self._load_task
        if self.case is not None or task is None:
            return self.case is not None
        if not task.wait(LOAD_WAIT_S):
            return False
        if task.error is not None:
            self._load_failed(task.error)
        else:
            self._loaded(task.result)
        return self.case is not None

    def _loaded(self, result: tuple[Case, Patient, dict | None, tuple]) -> None:
        if self._load_task is None:
            return   # taken already by _ensure_loaded
        self._load_task = None
        self.case, self.patient, draft, hub = result
        for part in (self.notes, self.consent, self.vitals):
            part.set_patient(self.patient)
        self._show_case()
        self._show_hub(hub)
        if draft and self.case.status in EDITABLE:
            self._restore_draft(draft)
        self.body.setEnabled(True)
        self.actions.setEnabled(True)
        self.loaded.emit()

    def _load_failed(self, exc: Exception) -> None:
        if self._load_task is None:
            return
        self._load_task = None
        self.header.setText(_("This case could not be opened. Close this tab and open it again."))
        self.message.show_message(exc.message if isinstance(exc, SpokeError) else str(exc))

    def _show_case(self) -> None:
        c, p = self.case, self.patient
        rel = relative_text(p)
        self.header.setText(f"{p.name} — {p.age_text()} {sex_label(p.sex)}" + (f", {rel}" if rel else "")
                            + (f", {p.village}" if p.village else ""))
        text, style = allergies_line(p.allergies)
        self.allergies.setText(text)
        self.allergies.setStyleSheet(style)
        self.allergies.show()
        self.complaints.set_values(c.complaints, c.complaint_text, c.duration)
        self.notes.set_values(c.history, c.examination, c.pregnant)
        self.vitals_history.set_records(c.vitals)
        latest = next((r for r in reversed(c.vitals) if r.status == VitalsStatus.FINAL), None)
        self.vitals.set_vitals(latest.vitals if latest else Vitals())
        self.consent.show_consent(c.consent)
        self._apply_status()
        self._vitals_dirty = False
        self.correcting = None

    def _apply_status(self) -> None:
        status = self.case.status
        editable = status in EDITABLE
        self.status_label.setText(_("Status: {s}").format(s=status_label(status)))
        for part in (self.complaints, self.notes):
            part.set_editable(editable)
        for part in (self.vitals, self.vitals_history):   # the doctor may have asked for new vitals
            part.set_editable(status in VITALS_OPEN)
        self.save_button.setEnabled(status in VITALS_OPEN)
        self.ready_button.setVisible(status == CaseStatus.DRAFT)
        sendable = status in (CaseStatus.DRAFT, CaseStatus.READY)
        self.queue_button.setVisible(sendable)
        self.call_button.setVisible(self.call_starter is not None and status in CALLABLE)
        self.speciality.setVisible(sendable)
        if sendable:
            index = self.speciality.findData(self.case.speciality)
            self.speciality.setCurrentIndex(max(index, 0))
        self.cancel_button.setVisible(status in (CaseStatus.DRAFT, CaseStatus.READY, CaseStatus.QUEUED,
                                                 CaseStatus.INFO_REQUESTED))

    # --- what the hub's doctor sent back -------------------------------------------------------------
    def _hub_fetcher(self):
        consultation, case_id = self.consultation, self.case_id
        return lambda: (consultation.questions(case_id), consultation.prescriptions(case_id),
                        consultation.calls(case_id))

    def call_hub(self):
        """Opens the call window and rings the hub (the window stays open beside the case: a photo or vitals
        taken meanwhile reach the doctor by sync)."""
        from spoke_client.ui.call_window import CallWindow

        if self.call_starter is None or self.case is None:
            return None
        if self.call_window is not None and self.call_window.last_state not in ("ended", "refused", "unreachable",
                                                                               "lost", "failed"):
            self.call_window.raise_()
            return self.call_window
        title = self.patient.name if self.patient is not None else self.case_id
        self.call_window = CallWindow(self.call_starter, self.case_id, title, parent=self)
        self.call_window.finished_call.connect(lambda _code: self.refresh_from_hub())
        self.call_window.show()
        return self.call_window

    def print_prescription(self, prescription_id: str) -> None:
        from spoke_client.ui.printing import job_sentence, print_prescription

        if self.printing is None:
            return
        box = self.prescriptions
        box.show_print_status(prescription_id, _("Preparing the paper…"))
        print_prescription(self.runner, self.printing, self.user, prescription_id,
                           lambda job: (box.show_print_status(prescription_id, job_sentence(job),
                                                              error=job.state.value == "failed"),
                                        self.printed.emit(job)),
                           lambda exc: box.show_print_status(
                               prescription_id, exc.message if isinstance(exc, SpokeError) else str(exc), error=True))

    def save_prescription_pdf(self, prescription_id: str, path: str | None = None) -> None:
        """The paper as a PDF file (to print on another PC, or where this one has no printer)."""
        from pathlib import Path

        from PySide6.QtWidgets import QFileDialog

        if self.printing is None:
            return
        if path is None:
            path, _filter = QFileDialog.getSaveFileName(self, _("Save the prescription as PDF"),
                                                        f"prescription-{prescription_id[:8]}.pdf", "PDF (*.pdf)")
            if not path:
                return
        box, printing, user = self.prescriptions, self.printing, self.user
        self.runner.run(lambda: printing.save_pdf(user, prescription_id, Path(path)),
                        lambda out: box.show_print_status(prescription_id, _("Saved as {file}").format(file=out.name)),
                        lambda exc: box.show_print_status(
                            prescription_id, exc.message if isinstance(exc, SpokeError) else str(exc), error=True))

    def _show_hub(self, hub: tuple) -> None:
        questions, prescriptions, calls = hub
        self.questions.set_questions(questions, self.case.status)
        self.prescriptions.set_prescriptions(prescriptions)
        self.calls_label.setText("\n".join(call_line(c) for c in calls[:5]))
        self.calls_label.setVisible(bool(calls))

    def refresh_from_hub(self) -> None:
        """After a sync brought something: the case's status, questions and prescriptions, without touching what
        is being typed."""
        if self.case is None:
            return
        cases, case_id, hub = self.cases, self.case_id, self._hub_fetcher()
        self.runner.run(lambda: (cases.get(case_id), hub()), self._refreshed, self._failed, lane="read")

    def _refreshed(self, result: tuple[Case, tuple]) -> None:
        case, hub = result
        if self.case is None:
            return
        self.case = case
        self._apply_status()
        self._show_hub(hub)
        self.hub_refreshed.emit()

    def answer(self, question_id: str, text: str) -> None:
        if not self._ensure_loaded():
            return
        cases, actor, hub = self.cases, self.user, self._hub_fetcher()
        self.questions.send.setEnabled(False)
        self.runner.run(lambda: (cases.answer(actor, question_id, text), hub()), self._answered, self._answer_failed)

    def _answered(self, result: tuple[Case, tuple]) -> None:
        case, hub = result
        self.case = case
        self.questions.answered()
        self._apply_status()
        self._show_hub(hub)
        self.notice.setText(_("Answer saved: it goes to the hub's doctor with the next sync."))
        self.notice.show()
        self.changed.emit()
        self.answer_sent.emit(case)

    def _answer_failed(self, exc: Exception) -> None:
        self.questions.send.setEnabled(True)
        if isinstance(exc, ValidationFailed):
            self.questions.show_error(" ".join(p.message for p in exc.problems))
        elif isinstance(exc, SpokeError):
            self.questions.show_error(exc.message)
        else:
            self._failed(exc)

    # --- drafts ---------------------------------------------------------------------------------
    def form_state(self) -> dict:
        complaints = self.complaints.values()
        return {
            **complaints, "complaints": list(complaints["complaints"]), **self.notes.values(), **self.vitals.state(),
            "vitals_dirty": self._vitals_dirty, "correcting": self.correcting, "consent": self.consent.values(),
            "case_version": self.case.version if self.case else None,
        }

    def _restore_draft(self, d: dict) -> None:
        self.complaints.set_values(d.get("complaints", []), d.get("complaint_text", ""), d.get("duration", ""))
        self.notes.set_values(d.get("history", ""), d.get("examination", ""), bool(d.get("pregnant")))
        self.vitals.set_state(d)
        self.consent.set_values(d.get("consent", {}))
        self._vitals_dirty = bool(d.get("vitals_dirty"))
        self.correcting = d.get("correcting")
        self.notice.setText(_("Unsaved changes from your last session were restored. Save to keep them."))
        self.notice.show()

    def _touched(self) -> None:
        if self.case is not None:
            self._autosave.start()

    def _vitals_touched(self) -> None:
        if self.case is not None:
            self._vitals_dirty = True
            self._autosave.start()

    def _save_draft(self) -> None:
        state, drafts, user_id, key = self.form_state(), self.drafts, self.user.id, self.draft_key
        self.runner.run(lambda: drafts.save(user_id, key, "case", state), self._draft_done, self._failed)

    def _draft_done(self, _result: object) -> None:
        self.draft_saved.emit()

    def save_pending_draft(self) -> bool:
        """Saves at once what waits for the autosave: the tab is closing, the user signs out or Spoke quits.
        The save is queued on the write lane, so it is done before Spoke closes its database."""
        if not self._autosave.isActive():
            return False
        self._autosave.stop()
        self._save_draft()
        log.info("draft of case %s saved before the editor went", self.case_id)
        return True

    # --- vitals and red flags -------------------------------------------------------------------
    @property
    def assessment(self) -> Assessment | None:
        return self.vitals.assessment

    def update_assessment(self) -> Assessment | None:
        return self.vitals.assess()

    def _assessed(self, a: Assessment | None) -> None:
        self.banner.show_assessment(a, self.vitals.has_values())
        if self.vitals.error is None and self.message.text() == _(VITALS_WRONG):
            self.message.show_message(None)

    def start_correction(self) -> None:
        if not self._ensure_loaded():
            return
        rec = self.vitals_history.selected()
        if rec is None:
            self.message.show_message(_("Select the set of vitals to correct."))
            return
        if rec.status == VitalsStatus.ENTERED_IN_ERROR:
            self.message.show_message(_("That set was already corrected."))
            return
        self.vitals.set_vitals(rec.vitals)
        self.correcting = rec.id
        self._vitals_dirty = True
        self._autosave.start()
        self.notice.setText(_("Correcting the vitals of {when}: change the values and save. The old set stays in "
                              "the history, marked 'entered in error'.").format(
                                  when=when_text(rec.recorded_at)))
        self.notice.show()

    # --- saving ---------------------------------------------------------------------------------
    def case_form(self) -> CaseForm:
        c, n = self.complaints.values(), self.notes.values()
        return CaseForm(complaints=c["complaints"], complaint_text=c["complaint_text"], duration=c["duration"],
                        history=n["history"], examination=n["examination"], pregnant=n["pregnant"])

    def _save_if_loaded(self) -> None:
        if self.case is not None:   # Enter or Ctrl+S while the case is still opening does nothing
            self.save()

    def save(self, then: CaseStatus | None = None) -> None:
        if not self._ensure_loaded():
            return
        self.message.show_message(None)
        self.complaints.show_error(None)
        if self.case.status not in VITALS_OPEN:
            if then is not None:
                self.move_to(then)
            return
        vitals, error = self.vitals.parse()
        record = self._vitals_dirty and self.vitals.has_values()
        if record and error is not None:
            self.message.show_message(_(VITALS_WRONG))
            return
        # While the doctor waits for an answer, only new vitals are saved; the details stay as sent.
        form = self.case_form() if self.case.status in EDITABLE else None
        correcting, case_id, actor = self.correcting, self.case.id, self.user
        device = self.vitals.device_mark() if record else None
        cases, draft_key = self.cases, self.draft_key
        speciality = self.speciality.currentData() if then == CaseStatus.QUEUED else None

        def work() -> tuple[Case, Exception | None]:
            case = cases.save(actor, case_id, form, vitals=vitals if record else None,
                              correcting=correcting if record else None, draft_key=draft_key, device=device)
            if then is None:
                return case, None
            try:  # a separate step: a refused move (no consent yet) must not undo the save
                if then == CaseStatus.QUEUED and case.status == CaseStatus.DRAFT:
                    cases.transition(actor, case_id, CaseStatus.READY)  # the state machine passes through ready
                return cases.transition(actor, case_id, then, speciality=speciality), None
            except SpokeError as exc:
                return cases.get(case_id), exc

        self._autosave.stop()
        self.save_button.setEnabled(False)
        self.runner.run(work, self._saved, self._failed)

    # --- readings from a Bluetooth device ---------------------------------------------------------
    def take_from_device(self) -> None:
        from spoke_client.ui.devices import TakeReadingDialog

        if not self._ensure_loaded():
            return
        dialog = TakeReadingDialog(self.runner, self.devices, self)
        if dialog.exec() and dialog.reading is not None:
            self.use_reading(dialog.reading)

    def use_reading(self, reading) -> None:
        """Fills the vitals from a device; they count as device-measured while they stay as the device gave them."""
        if not self._ensure_loaded():
            return
        self.vitals.use_reading(reading)
        self._vitals_dirty = True

    def device_mark(self):
        """The device that measured the vitals being saved, if they are still what it gave."""
        return self.vitals.device_mark()

    def _saved(self, result: Case | tuple[Case, Exception | None]) -> None:
        case, refused = result if isinstance(result, tuple) else (result, None)
        self.case = case
        self.vitals.clear_device()
        self._show_case()
        self.notice.setText(_("Saved."))
        self.notice.show()
        self.changed.emit()
        self.saved.emit(case)
        if refused is not None:
            self._failed(refused)

    def move_to(self, status: CaseStatus) -> None:
        if not self._ensure_loaded():
            return
        cases, case_id, actor = self.cases, self.case.id, self.user
        self.runner.run(lambda: (cases.transition(actor, case_id, status), cases.get(case_id))[1],
                        self._saved, self._failed)

    def record_consent(self) -> None:
        if not self._ensure_loaded():
            return
        self.consent.show_error(None)
        v = self.consent.values()
        giver, method = ConsentGiver(v["giver"]), ConsentMethod(v["method"])
        cases, case_id, actor = self.cases, self.case.id, self.user
        self.runner.run(lambda: (cases.record_consent(actor, case_id, giver, v["name"], method, v["relation"]),
                                 cases.get(case_id))[1], self._consent_saved, self._consent_failed)

    def _consent_saved(self, case: Case) -> None:
        self.case = case
        self.consent.show_consent(case.consent)
        self.changed.emit()

    def _consent_failed(self, exc: Exception) -> None:
        if isinstance(exc, ValidationFailed):
            self.consent.show_error(" ".join(p.message for p in exc.problems))
        else:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.save_button.setEnabled(self.case is not None and self.case.status in VITALS_OPEN)
        if isinstance(exc, ValidationFailed):
            msgs = []
            for p in exc.problems:
                if self.vitals.show_problem(p.field, p.message):
                    continue
                if p.field == "complaints":
                    self.complaints.show_error(p.message)
                elif p.field in ConsentBox.FIELDS:
                    self.consent.show_error(p.message)
                else:
                    msgs.append(p.message)
            self.message.show_message("\n".join(msgs) or _("Please correct the fields shown in red."))
        elif isinstance(exc, SpokeError):
            self.message.show_message(exc.message)
        else:
            self.message.show_message(_("The case could not be saved: {e}. Nothing typed is lost; it is kept as a "
                                        "draft.").format(e=exc))
