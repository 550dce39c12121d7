"""Find a patient as you type, register a new one (with the duplicate check), and list a patient's cases."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.abha import abha_advisories, normalize_abha_number
from spoke_client.domain.errors import SpokeError, ValidationFailed
from spoke_client.domain.model import Patient, Relation, Sex, User, age_in_months
from spoke_client.i18n import _
from spoke_client.services.patients import LikelyDuplicate, PatientForm, PatientService, allergies_text
from spoke_client.ui.models import PatientTableModel, relation_label, relative_text
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel, FieldForm

SEARCH_DELAY_MS = 150


def sex_label(sex: Sex) -> str:
    return {Sex.FEMALE: _("Female"), Sex.MALE: _("Male"), Sex.OTHER: _("Other")}[sex]


class PatientsPage(QWidget):
    """One search box (name, phone, ABHA number or village); results as you type."""

    open_patient = Signal(object)      # Patient
    new_case_for = Signal(object)      # Patient

    def __init__(self, runner: TaskRunner, patients: PatientService, user: User, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.patients, self.user = runner, patients, user
        self._generation = 0
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setPlaceholderText(_("Search by name, phone, ABHA number or village (e.g. 'kamla ramp')"))
        self.search.setClearButtonEnabled(True)
        top.addWidget(self.search, 1)
        self.register_button = QPushButton(_("Register new patient"))
        self.register_button.setObjectName("register")
        top.addWidget(self.register_button)
        lay.addLayout(top)
        self.hint = QLabel(_("Type at least 3 letters or digits."))
        self.hint.setObjectName("hint")
        lay.addWidget(self.hint)
        self.model = PatientTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("results")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.edit_button = QPushButton(_("Edit patient details"))
        self.edit_button.setObjectName("edit_patient")
        self.new_case_button = QPushButton(_("New case for this patient"))
        self.new_case_button.setObjectName("new_case")
        buttons.addStretch(1)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.new_case_button)
        lay.addLayout(buttons)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(SEARCH_DELAY_MS)
        self.timer.timeout.connect(self.run_search)
        self.search.textChanged.connect(lambda _t: self.timer.start())
        self.search.returnPressed.connect(self.run_search)
        self.table.doubleClicked.connect(lambda idx: self.new_case_for.emit(self.model.item(idx.row()).patient))
        self.new_case_button.clicked.connect(self._new_case)
        self.edit_button.clicked.connect(self.edit)
        self.register_button.clicked.connect(self.register)

    def selected(self) -> Patient | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.item(rows[0].row()).patient if rows else None

    def _new_case(self) -> None:
        p = self.selected()
        if p is None:
            self.hint.setText(_("Select a patient first, or register a new one."))
            return
        self.new_case_for.emit(p)

    def run_search(self) -> None:
        self.timer.stop()
        query = self.search.text().strip()
        self._generation += 1
        generation = self._generation
        if len(query.replace(" ", "")) < 3:
            self.model.set_items([])
            self.hint.setText(_("Type at least 3 letters or digits."))
            return

        def show(hits) -> None:
            if generation != self._generation:  # a newer query is on its way: drop stale results
                return
            self.model.set_items(hits)
            self.hint.setText(_("{n} found").format(n=len(hits)) if hits else
                              _("No patient found. Check the spelling, or register a new patient."))
            if hits:
                self.table.selectRow(0)

        self.runner.run(lambda: self.patients.search(query), show, self._failed, lane="read")

    def _failed(self, exc: Exception) -> None:
        self.hint.setText(exc.message if isinstance(exc, SpokeError) else _("Search failed: {e}").format(e=exc))

    def edit(self) -> None:
        """Corrects the selected patient's details (a phone number, the drug allergies learnt at this visit)."""
        p = self.selected()
        if p is None:
            self.hint.setText(_("Select a patient first."))
            return
        dialog = PatientDialog(self.runner, self.patients, self.user, self, patient=p)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.patient is not None:
            self.run_search()

    def register(self) -> None:
        dialog = PatientDialog(self.runner, self.patients, self.user, self, initial_name=self.search.text())
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.patient is not None:
            self.search.setText(dialog.patient.name)
            self.run_search()
            self.open_patient.emit(dialog.patient)


class PatientDialog(QDialog):
    """Registration form, and the same form to edit a registered patient (`patient`). Refuses wrong fields in place,
    warns on a failed ABHA check digit, shows likely duplicates of a new patient."""

    def __init__(self, runner: TaskRunner, patients: PatientService, user: User, parent: QWidget | None = None,
                 initial_name: str = "", patient: Patient | None = None) -> None:
        super().__init__(parent)
        self.runner, self.patients, self.user = runner, patients, user
        self.editing = patient             # the patient as registered, when editing
        self.patient: Patient | None = None
        self._age_touched = False          # editing: an estimated birth date is kept unless the age is changed
        self.setWindowTitle(_("Edit patient details") if patient else _("Register a patient"))
        lay = QVBoxLayout(self)
        f = self.fields = FieldForm(self)
        self.name = f.add("name", _("Name"), QLineEdit(initial_name if not any(c.isdigit() for c in initial_name) else ""))
        self.sex = f.add("sex", _("Sex"), QComboBox())
        self.sex.addItem(_("— choose —"), "")
        for s in Sex:
            self.sex.addItem(sex_label(s), s.value)
        self.dob_known = QCheckBox(_("Date of birth is known"))
        self.dob_known.setObjectName("dob_known")
        f.form.addRow("", self.dob_known)
        self.birth_date = f.add("birth_date", _("Date of birth"), QDateEdit())
        self.birth_date.setDisplayFormat("dd-MM-yyyy")
        self.birth_date.setCalendarPopup(True)
        self.birth_date.setMaximumDate(QDate.currentDate())
        self.birth_date.setDate(QDate.currentDate().addYears(-30))
        age_box = QWidget()
        age_lay = QHBoxLayout(age_box)
        age_lay.setContentsMargins(0, 0, 0, 0)
        self.age_years = QSpinBox()
        self.age_years.setObjectName("age_years_spin")
        self.age_years.setRange(-1, 120)
        self.age_years.setSpecialValueText(" ")
        self.age_years.setValue(-1)
        self.age_years.setSuffix(_(" years"))
        self.age_months = QSpinBox()
        self.age_months.setObjectName("age_months")
        self.age_months.setRange(0, 24)
        self.age_months.setSuffix(_(" months"))
        age_lay.addWidget(self.age_years)
        age_lay.addWidget(self.age_months)
        age_lay.addWidget(QLabel(_("(approximate)")))
        f.add("age_years", _("Age"), age_box)
        relative = QWidget()
        rel_lay = QHBoxLayout(relative)
        rel_lay.setContentsMargins(0, 0, 0, 0)
        self.relation = QComboBox()
        self.relation.setObjectName("relative_relation_combo")
        self.relation.addItem("", "")
        for r in Relation:
            self.relation.addItem(relation_label(r), r.value)
        self.relative_name = QLineEdit()
        self.relative_name.setObjectName("relative_name_edit")
        self.relative_name.setPlaceholderText(_("father's or husband's name"))
        rel_lay.addWidget(self.relation)
        rel_lay.addWidget(self.relative_name, 1)
        f.add("relative_name", _("Relative"), relative)
        self.phone = f.add("phone", _("Phone"), QLineEdit())
        self.village = f.add("village", _("Village"), QLineEdit())
        self.address = f.add("address", _("Address"), QLineEdit())
        self.abha_number = f.add("abha_number", _("ABHA number"), QLineEdit())
        self.abha_number.setPlaceholderText("91-xxxx-xxxx-xxxx")
        self.abha_address = f.add("abha_address", _("ABHA address"), QLineEdit())
        self.abha_address.setPlaceholderText("name@abdm")
        self.allergies = f.add("allergies", _("Drug allergies"), QLineEdit())
        self.allergies.setPlaceholderText(_("e.g. penicillin, sulfa drugs; or NKDA (no known drug allergies)"))
        self.allergies.setToolTip(_("Known drug allergies, separated by commas. Write NKDA if the patient knows of "
                                    "none; leave empty only if nobody asked."))
        lay.addWidget(f)
        self.message = ErrorLabel(self)
        self.message.setObjectName("message")
        lay.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(lambda: self.save(confirmed_new=False))
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.dob_known.toggled.connect(self._dob_mode)
        self._dob_mode(False)
        self.abha_number.editingFinished.connect(self._check_abha)
        if patient is not None:
            self._fill(patient)
        for spin in (self.age_years, self.age_months):
            spin.valueChanged.connect(self._age_changed)

    def _fill(self, p: Patient) -> None:
        self.name.setText(p.name)
        self.sex.setCurrentIndex(max(self.sex.findData(p.sex.value), 0))
        self.dob_known.setChecked(not p.birth_date_approximate)
        self.birth_date.setDate(QDate(p.birth_date.year, p.birth_date.month, p.birth_date.day))
        if p.birth_date_approximate:
            years = p.age_years()
            self.age_years.setValue(years)
            self.age_months.setValue(0 if years else min(age_in_months(p.birth_date, date.today()), 24))
        self.relation.setCurrentIndex(max(self.relation.findData(p.relative_relation.value if p.relative_relation
                                                                  else ""), 0))
        self.relative_name.setText(p.relative_name)
        self.phone.setText(p.phone)
        self.village.setText(p.village)
        self.address.setText(p.address)
        self.abha_number.setText(p.abha_number)
        self.abha_address.setText(p.abha_address)
        self.allergies.setText(allergies_text(p.allergies))

    def _age_changed(self, _value: int) -> None:
        self._age_touched = True

    def _dob_mode(self, known: bool) -> None:
        self.birth_date.setEnabled(known)
        self.age_years.setEnabled(not known)
        self.age_months.setEnabled(not known)

    def _check_abha(self) -> None:
        text = self.abha_number.text().strip()
        err = self.fields.errors["abha_number"]
        if not text:
            err.show_message(None)
            return
        try:
            digits = normalize_abha_number(text)
        except ValidationFailed as exc:
            err.show_message(exc.problems[0].message)
            return
        advisories = abha_advisories(digits)
        err.show_message(" ".join(a.message for a in advisories) or None, warning=True)

    def form(self) -> PatientForm:
        known = self.dob_known.isChecked()
        qd = self.birth_date.date()
        years = self.age_years.value()
        common = dict(
            name=self.name.text(), sex=self.sex.currentData() or "",
            relative_name=self.relative_name.text(), relative_relation=self.relation.currentData() or "",
            phone=self.phone.text(), village=self.village.text(), address=self.address.text(),
            abha_number=self.abha_number.text(), abha_address=self.abha_address.text(),
            allergies=self.allergies.text(),
        )
        kept = self.editing
        if kept is not None and kept.birth_date_approximate and not known and not self._age_touched:
            # The estimate made at registration stays as it was (an age typed again would move it).
            return PatientForm(birth_date=kept.birth_date, birth_date_approximate=True, **common)
        return PatientForm(
            birth_date=date(qd.year(), qd.month(), qd.day()) if known else None,
            age_years=None if known or (years < 0 and not self.age_months.value()) else max(years, 0),
            age_months=None if known else self.age_months.value(), **common,
        )

    def save(self, confirmed_new: bool) -> None:
        self.buttons.setEnabled(False)
        form, patients, user, editing = self.form(), self.patients, self.user, self.editing
        if editing is not None:
            self.runner.run(lambda: patients.update(user, editing.id, form, editing.version), self._saved,
                            self._failed)
            return
        self.runner.run(lambda: patients.register(user, form, confirmed_new=confirmed_new),
                        self._saved, self._failed)

    def _saved(self, patient: Patient) -> None:
        self.buttons.setEnabled(True)
        self.patient = patient
        self.accept()

    def _failed(self, exc: Exception) -> None:
        self.buttons.setEnabled(True)
        if isinstance(exc, LikelyDuplicate):
            choice = DuplicateDialog(exc, self)
            if choice.exec() == QDialog.DialogCode.Accepted:
                if choice.chosen is not None:
                    self.patient = choice.chosen
                    self.accept()
                else:
                    self.save(confirmed_new=True)
            return
        if isinstance(exc, ValidationFailed):
            rest = self.fields.show_errors(exc)
            self.message.show_message("\n".join(rest) if rest else None)
        elif isinstance(exc, SpokeError):
            self.message.show_message(exc.message)
        else:
            self.message.show_message(_("The patient could not be saved: {e}").format(e=exc))


class DuplicateDialog(QDialog):
    """Likely duplicates, best first: open one of them, or go on and register a new patient."""

    def __init__(self, exc: LikelyDuplicate, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("Is this the same person?"))
        self.chosen: Patient | None = None
        lay = QVBoxLayout(self)
        label = QLabel(exc.message)
        label.setWordWrap(True)
        lay.addWidget(label)
        self.list = QListWidget()
        self.list.setObjectName("candidates")
        for c in exc.candidates:
            p = c.patient
            text = f"{p.name}, {p.age_text()} {sex_label(p.sex)}, {relative_text(p)}, {p.village or '-'}"
            if p.phone:
                text += f", {p.phone}"
            text += "  —  " + ", ".join(c.reasons)
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, p)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        lay.addWidget(self.list)
        buttons = QDialogButtonBox()
        self.use_button = buttons.addButton(_("Use the selected patient"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.new_button = buttons.addButton(_("None of these: register new"), QDialogButtonBox.ButtonRole.YesRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.use_button.setObjectName("use_existing")
        self.new_button.setObjectName("register_new")
        self.use_button.clicked.connect(self._use)
        self.new_button.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.list.itemDoubleClicked.connect(lambda _i: self._use())

    def _use(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.chosen = item.data(Qt.ItemDataRole.UserRole)
            self.accept()
