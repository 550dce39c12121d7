"""Parts of the case editor, one per part of the record: complaints, history and examination, consent. Each takes
its values in, gives them out, and says when the user changed them."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.model import Consent, ConsentGiver, ConsentMethod, Patient
from spoke_client.i18n import _, when_text
from spoke_client.services.cases import COMMON_COMPLAINTS
from spoke_client.ui.widgets import ErrorLabel


class ComplaintsBox(QGroupBox):
    """The common complaints to tick, others in the patient's words, and since when."""

    changed = Signal()
    submitted = Signal()   # Enter in a field

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_("Complaints"), parent)
        self._filling = False
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setObjectName("complaints")
        for c in COMMON_COMPLAINTS:
            item = QListWidgetItem(_(c))
            item.setData(Qt.ItemDataRole.UserRole, c)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.setMaximumHeight(160)
        lay.addWidget(self.list)
        form = QFormLayout()
        self.other = QLineEdit()
        self.other.setObjectName("complaint_text")
        self.other.setPlaceholderText(_("other complaints, in the patient's words"))
        self.duration = QLineEdit()
        self.duration.setObjectName("duration")
        self.duration.setPlaceholderText(_("e.g. 3 days"))
        form.addRow(_("Other"), self.other)
        form.addRow(_("Since"), self.duration)
        lay.addLayout(form)
        self.error = ErrorLabel()
        self.error.setObjectName("error_complaints")
        lay.addWidget(self.error)
        self.list.itemChanged.connect(self._touched)
        for edit in (self.other, self.duration):
            edit.textChanged.connect(self._touched)
            edit.returnPressed.connect(self.submitted)

    def _touched(self, *_a) -> None:
        if not self._filling:
            self.changed.emit()

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def set_values(self, complaints: Iterable[str] = (), complaint_text: str = "", duration: str = "") -> None:
        """Ticks the common complaints given; any other one is written in 'Other', before the text."""
        complaints = list(complaints)
        self._filling = True
        try:
            for item in self._items():
                item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in complaints
                                   else Qt.CheckState.Unchecked)
            extra = [c for c in complaints if c not in COMMON_COMPLAINTS]
            self.other.setText(", ".join(extra + ([complaint_text] if complaint_text else [])))
            self.duration.setText(duration)
        finally:
            self._filling = False

    def check(self, complaint: str, checked: bool = True) -> None:
        """Ticks one of the common complaints, as the user does."""
        for item in self._items():
            if item.data(Qt.ItemDataRole.UserRole) == complaint:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                return
        raise KeyError(complaint)

    def checked(self) -> tuple[str, ...]:
        return tuple(item.data(Qt.ItemDataRole.UserRole) for item in self._items()
                     if item.checkState() == Qt.CheckState.Checked)

    def values(self) -> dict:
        return {"complaints": self.checked(), "complaint_text": self.other.text(), "duration": self.duration.text()}

    def show_error(self, message: str | None) -> None:
        self.error.show_message(message)

    def set_editable(self, editable: bool) -> None:
        for w in (self.list, self.other, self.duration):
            w.setEnabled(editable)


class NotesBox(QGroupBox):
    """History and examination in free text, and pregnancy where it can be."""

    changed = Signal()
    pregnant_changed = Signal(bool)   # also when filled: the red flags depend on it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_("History and examination"), parent)
        self._filling = False
        form = QFormLayout(self)
        self.history = QPlainTextEdit()
        self.history.setObjectName("history")
        self.examination = QPlainTextEdit()
        self.examination.setObjectName("examination")
        for edit in (self.history, self.examination):
            edit.setTabChangesFocus(True)
            edit.setMaximumHeight(130)   # room below for the photos and recordings on a 768-pixel screen
            edit.textChanged.connect(self._touched)
        self.pregnant = QCheckBox(_("Pregnant"))
        self.pregnant.setObjectName("pregnant")
        self.pregnant.hide()   # until the patient is known: shown where it can be
        self.pregnant.toggled.connect(self._touched)
        self.pregnant.toggled.connect(self.pregnant_changed)
        form.addRow(_("History"), self.history)
        form.addRow(_("Examination"), self.examination)
        form.addRow("", self.pregnant)

    def _touched(self, *_a) -> None:
        if not self._filling:
            self.changed.emit()

    def set_patient(self, patient: Patient) -> None:
        self.pregnant.setVisible(patient.sex.value == "female" and 10 <= patient.age_years() <= 55)

    def set_values(self, history: str = "", examination: str = "", pregnant: bool = False) -> None:
        self._filling = True
        try:
            self.history.setPlainText(history)
            self.examination.setPlainText(examination)
            self.pregnant.setChecked(bool(pregnant))
        finally:
            self._filling = False

    def values(self) -> dict:
        return {"history": self.history.toPlainText(), "examination": self.examination.toPlainText(),
                "pregnant": self.pregnant.isChecked()}

    def set_editable(self, editable: bool) -> None:
        for w in (self.history, self.examination, self.pregnant):
            w.setEnabled(editable)


class ConsentBox(QGroupBox):
    """Who consents to the teleconsultation, and how; 'Record consent' asks the editor to record it."""

    changed = Signal()
    record_requested = Signal()
    FIELDS = ("consent", "giver", "giver_name", "giver_relation")   # the service's names for what is shown here

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_("Consent to teleconsultation"), parent)
        self._filling = False
        form = QFormLayout(self)
        self.giver = QComboBox()
        self.giver.setObjectName("consent_giver")
        self.giver.addItem(_("the patient"), ConsentGiver.PATIENT.value)
        self.giver.addItem(_("the accompanying adult"), ConsentGiver.GUARDIAN.value)
        self.name = QLineEdit()
        self.name.setObjectName("consent_name")
        self.relation = QLineEdit()
        self.relation.setObjectName("consent_relation")
        self.relation.setPlaceholderText(_("mother, father, husband..."))
        self.method = QComboBox()
        self.method.setObjectName("consent_method")
        self.method.addItem(_("verbal"), ConsentMethod.VERBAL.value)
        self.method.addItem(_("written"), ConsentMethod.WRITTEN.value)
        self.method.addItem(_("recorded (audio/video)"), ConsentMethod.RECORDED.value)
        self.button = QPushButton(_("Record consent"))
        self.button.setObjectName("record_consent")
        self.status = QLabel()
        self.status.setObjectName("consent_status")
        self.status.setWordWrap(True)
        self.error = ErrorLabel()
        self.error.setObjectName("error_consent")
        form.addRow(_("Given by"), self.giver)
        form.addRow(_("Name"), self.name)
        form.addRow(_("Relation"), self.relation)
        form.addRow(_("How"), self.method)
        form.addRow("", self.button)
        form.addRow("", self.status)
        form.addRow("", self.error)
        self.button.clicked.connect(self.record_requested)
        for edit in (self.name, self.relation):
            edit.textChanged.connect(self._touched)
        for combo in (self.giver, self.method):
            combo.currentIndexChanged.connect(self._touched)

    def _touched(self, *_a) -> None:
        if not self._filling:
            self.changed.emit()

    def set_patient(self, patient: Patient) -> None:
        """A child's consent comes from the accompanying adult; an adult's from the patient, by name."""
        self._filling = True
        try:
            if patient.age_years() < 18:
                self.giver.setCurrentIndex(1)
            else:
                self.name.setText(patient.name)
        finally:
            self._filling = False

    def set_values(self, values: dict) -> None:
        """Fills the form from `values()` as a draft kept it; what is missing stays as it is."""
        self._filling = True
        try:
            for combo, key in ((self.giver, "giver"), (self.method, "method")):
                idx = combo.findData(values.get(key))
                if idx >= 0:
                    combo.setCurrentIndex(idx)
            self.name.setText(values.get("name", self.name.text()))
            self.relation.setText(values.get("relation", ""))
        finally:
            self._filling = False

    def values(self) -> dict:
        return {"giver": self.giver.currentData(), "name": self.name.text(), "relation": self.relation.text(),
                "method": self.method.currentData()}

    def show_consent(self, consent: Consent | None) -> None:
        if consent is None:
            self.status.setText(_("No consent recorded yet."))
            return
        self.status.setText(_("Consent given by {who} ({how}) on {when}.").format(
            who=consent.giver_name + (f" ({consent.giver_relation})" if consent.giver_relation else ""),
            how=_(consent.method.value), when=when_text(consent.given_at, year=True)))

    def show_error(self, message: str | None) -> None:
        self.error.show_message(message)
