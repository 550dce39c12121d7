"""Parts of the case editor for what the hub's doctor sent back: the questions (with the box to answer the one
that waits) and the prescriptions, each with the result of its signature check. Text from the hub is shown as
plain text, never as markup."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from spoke_client.domain import dosage
from spoke_client.domain.consultation import Prescription, PrescriptionStatus, Question, QuestionStatus
from spoke_client.domain.model import CaseStatus
from spoke_client.i18n import MONTHS, _, ngettext, when_text
from spoke_client.ui.widgets import ErrorLabel

WAITING_STYLE = "QFrame#waiting_question { background: #fff3cd; border: 2px solid #b36b00; border-radius: 6px; }"
CHECKED_STYLE = "color: #1b5e20; font-weight: bold;"
WARNING_STYLE = "color: #ffffff; background: #c62828; font-weight: bold; padding: 4px; border-radius: 4px;"
CANCELLED_STYLE = "color: #b00020; font-weight: bold;"


def _label(text: str = "", name: str = "", style: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    if style:
        label.setStyleSheet(style)
    return label


def _when(moment) -> str:
    return when_text(moment, year=True)


def call_line(c) -> str:
    """One call with the hub, as the case shows it: when, with whom, how, how long, how it ended."""
    mode = {"video": _("video"), "audio": _("audio only"), "none": ""}.get(c.mode_used, c.mode_used)
    outcome = {"completed": _("call"), "missed": _("missed call"), "cancelled": _("call stopped before an answer"),
               "failed": _("call cut off")}.get(c.outcome, c.outcome)
    minutes = _("{m} min {s} s").format(m=c.duration_s // 60, s=c.duration_s % 60) if c.answered_at else ""
    parts = [p for p in (_when(c.started_at), outcome, c.doctor, mode, minutes) if p]
    return " · ".join(parts)


def _clear(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().hide()
            item.widget().deleteLater()


class QuestionsBox(QGroupBox):
    """The doctor's questions on the case. The one that waits is shown first, where nobody can miss it, with the
    answer box; earlier ones below, with the answers given."""

    answer_requested = Signal(str, str)   # question id, answer text

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_("Questions from the hub's doctor"), parent)
        self.setObjectName("questions")
        self.waiting: Question | None = None
        lay = QVBoxLayout(self)
        self.frame = QFrame()
        self.frame.setObjectName("waiting_question")
        self.frame.setStyleSheet(WAITING_STYLE)
        fl = QVBoxLayout(self.frame)
        self.asks = _label(name="question_text", style="font-size: 14px; font-weight: bold; color: #5c3b00;")
        self.asked = _label(name="question_asked")
        self.hint = _label(_("You may add vitals, photos or documents to the case before you answer; the doctor "
                             "sees them with the answer."), style="color: #5c3b00;")
        self.answer = QPlainTextEdit()
        self.answer.setObjectName("answer_text")
        self.answer.setTabChangesFocus(True)
        self.answer.setPlaceholderText(_("Your answer to the doctor"))
        self.answer.setMaximumHeight(90)
        self.send = QPushButton(_("Send the answer"))
        self.send.setObjectName("send_answer")
        self.error = ErrorLabel()
        self.error.setObjectName("error_answer")
        for w in (self.asks, self.asked, self.hint, self.answer, self.send, self.error):
            fl.addWidget(w)
        lay.addWidget(self.frame)
        self.history = QVBoxLayout()
        lay.addLayout(self.history)
        self.send.clicked.connect(self._send)
        self.hide()

    def set_questions(self, questions: list[Question], status: CaseStatus) -> None:
        waiting = [q for q in questions if q.waiting]
        self.waiting = waiting[0] if waiting else None
        _clear(self.history)
        if self.waiting is not None:
            q = self.waiting
            self.asks.setText(_("The doctor asks: {text}").format(text=q.text))
            self.asked.setText(_("Asked by {who} on {when}").format(who=q.asked_by, when=_when(q.asked_at)))
            self.answer.setEnabled(True)
            self.send.setEnabled(True)
        elif status == CaseStatus.INFO_REQUESTED:
            self.asks.setText(_("The hub's doctor has asked for more information; the question has not arrived on "
                                "this computer yet. Sync, then answer it here."))
            self.asked.setText("")
        self.answer.setVisible(self.waiting is not None)
        self.send.setVisible(self.waiting is not None)
        self.hint.setVisible(self.waiting is not None)
        self.frame.setVisible(self.waiting is not None or status == CaseStatus.INFO_REQUESTED)
        for q in questions:
            if q is self.waiting:
                continue
            self.history.addWidget(_label(_("{when}, {who} asked: {text}").format(
                when=_when(q.asked_at), who=q.asked_by, text=q.text), style="font-weight: bold;"))
            for a in q.answers:
                self.history.addWidget(_label(_("{when}, {who} answered: {text}").format(
                    when=_when(a.answered_at), who=a.answered_by or "-", text=a.text)))
            if not q.answers:
                self.history.addWidget(_label(_("Withdrawn by the doctor.") if q.status == QuestionStatus.WITHDRAWN
                                              else _("Answered at the hub.")))
        self.setVisible(bool(questions) or status == CaseStatus.INFO_REQUESTED)

    def _send(self) -> None:
        if self.waiting is None:
            return
        self.error.show_message(None)
        self.answer_requested.emit(self.waiting.id, self.answer.toPlainText())

    def answered(self) -> None:
        self.answer.clear()

    def show_error(self, message: str | None) -> None:
        self.error.show_message(message)


class PrescriptionView(QFrame):
    """One prescription as the hub issued it, with whether its signature was checked, and Print (a prescription
    whose signature failed is not printed)."""

    print_requested = Signal(str)   # prescription id
    save_requested = Signal(str)    # prescription id: the paper as a PDF file

    def __init__(self, p: Prescription, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prescription = p
        self.setObjectName(f"prescription_{p.id}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        cancelled = p.status == PrescriptionStatus.CANCELLED
        self.title = _label(_("Prescription of {when}, {hub}").format(when=_when(p.issued_at), hub=p.hub_name),
                            "prescription_title", "font-weight: bold; font-size: 14px;"
                            + (" text-decoration: line-through;" if cancelled else ""))
        lay.addWidget(self.title)
        if cancelled:
            when = _when(p.cancelled_at) if p.cancelled_at else "-"
            self.cancelled = _label(_("CANCELLED by the hub on {when}: {reason}").format(
                when=when, reason=p.cancelled_reason or _("no reason given")), "prescription_cancelled", CANCELLED_STYLE)
            lay.addWidget(self.cancelled)
        if p.signature_ok:
            self.signature = _label(_("Signature checked: issued by the hub, unchanged."), "signature", CHECKED_STYLE)
        else:
            self.signature = _label(_(
                "WARNING: the signature of this prescription could not be checked. It may have been changed on the "
                "way, or this computer does not know the hub's key. Do not give medicines from it before you have "
                "confirmed it with the hub."), "signature", WARNING_STYLE)
        lay.addWidget(self.signature)
        row = QHBoxLayout()
        self.print_button = QPushButton(_("Print (with CANCELLED mark)") if cancelled else _("Print"))
        self.print_button.setObjectName("print_prescription")
        self.print_button.setEnabled(p.signature_ok)
        if not p.signature_ok:
            self.print_button.setToolTip(_("A prescription whose signature could not be checked is not printed."))
        self.print_button.clicked.connect(lambda: self.print_requested.emit(p.id))
        self.save_button = QPushButton(_("Save as PDF…"))
        self.save_button.setObjectName("save_prescription_pdf")
        self.save_button.setEnabled(p.signature_ok)
        self.save_button.clicked.connect(lambda: self.save_requested.emit(p.id))
        self.print_status = _label(name="print_status")
        row.addWidget(self.print_button)
        row.addWidget(self.save_button)
        row.addWidget(self.print_status, 1)
        lay.addLayout(row)
        doctor = p.prescriber
        self.doctor = _label(_("Doctor: {name}, {qualification}; registration no. {number}").format(
            name=doctor.name, qualification=doctor.qualification, number=doctor.registration_number)
            + (f" ({doctor.council})" if doctor.council else ""), "prescriber")
        lay.addWidget(self.doctor)
        diagnosis = p.diagnosis + (f" [{p.icd10_code}{' ' + p.icd10_title if p.icd10_title else ''}]"
                                   if p.icd10_code else "")
        lay.addWidget(_label(_("Diagnosis: {text}").format(text=diagnosis), "diagnosis"))
        if p.allergies_noted:
            lay.addWidget(_label(_("Allergies noted by the doctor: {list}").format(list=", ".join(p.allergies_noted)),
                                 "allergies_noted", CANCELLED_STYLE))
        for override in p.allergy_overrides:
            lay.addWidget(_label(_("Allergy override: {text}").format(text=override), style=CANCELLED_STYLE))
        self.medicines = _label("\n".join(medicine_line(i, m) for i, m in enumerate(p.medicines, 1))
                                or _("No medicines."), "medicines")
        lay.addWidget(_label(_("Medicines"), style="font-weight: bold;"))
        lay.addWidget(self.medicines)
        if p.investigations:
            lay.addWidget(_label(_("Investigations: {list}").format(list=", ".join(p.investigations)), "investigations"))
        if p.advice:
            lay.addWidget(_label(_("Advice: {text}").format(text=p.advice), "advice"))
        if p.follow_up:
            lay.addWidget(_label(_("Follow-up on {day}").format(
                day=f"{p.follow_up.day:02d} {_(MONTHS[p.follow_up.month - 1])} {p.follow_up.year}"), "follow_up"))
        if p.referral is not None:
            r = p.referral
            text = _("Referred to {to}").format(to=r.to) + (f" ({r.speciality})" if r.speciality else "")
            text += ", " + {"routine": _("routine"), "urgent": _("urgent"), "emergency": _("EMERGENCY")}.get(
                r.urgency, r.urgency)
            if r.reason:
                text += ": " + r.reason
            lay.addWidget(_label(text, "referral", CANCELLED_STYLE if r.urgency != "routine" else ""))


def medicine_line(number: int, m) -> str:
    """'1. PARACETAMOL 500 mg tablet: 1 tablet twice a day after food, for 3 days (oral); 6 tablets', in the
    language of the screen."""
    what = " ".join(x for x in (m.name, m.strength, m.form) if x)
    how = dosage.sentence(m.dose, m.frequency, m.duration_days, m.instructions,
                          SimpleNamespace(gettext=_, ngettext=ngettext))
    line = f"{number}. {what}: {how} ({m.frequency})" + (f" ({m.route})" if m.route and m.route != "oral" else "")
    if m.quantity:
        line += f"; {m.quantity}"
    return line


class PrescriptionsBox(QGroupBox):
    """The case's prescriptions, newest first; hidden while there are none."""

    print_requested = Signal(str)   # prescription id
    save_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_("Prescriptions from the hub"), parent)
        self.setObjectName("prescriptions")
        self.views: list[PrescriptionView] = []
        self.lay = QVBoxLayout(self)
        self.hide()

    def show_print_status(self, prescription_id: str, text: str, error: bool = False) -> None:
        for v in self.views:
            if v.prescription.id == prescription_id:
                v.print_status.setStyleSheet(CANCELLED_STYLE if error else "")
                v.print_status.setText(text)

    def set_prescriptions(self, prescriptions: list[Prescription]) -> None:
        _clear(self.lay)
        self.views = [PrescriptionView(p) for p in prescriptions]
        for v in self.views:
            v.print_requested.connect(self.print_requested)
            v.save_requested.connect(self.save_requested)
            self.lay.addWidget(v)
        self.setVisible(bool(self.views))
