"""The case editor: complaints, vitals with live red flags, vitals history and corrections, consent, status."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError, ValidationFailed
from spoke_client.domain.model import (
    Case,
    CaseStatus,
    ConsentGiver,
    ConsentMethod,
    Patient,
    User,
    VitalsRecord,
    VitalsStatus,
)
from spoke_client.domain.redflags import Assessment, Severity, assess
from spoke_client.domain.vitals import Consciousness, GlucoseKind, Vitals, bmi, vitals_from_form
from spoke_client.i18n import _
from spoke_client.services.cases import COMMON_COMPLAINTS, EDITABLE, CaseForm, CaseService, patient_context, status_label
from spoke_client.services.drafts import DraftService
from spoke_client.ui.models import relative_text
from spoke_client.ui.patients import sex_label
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel, severity_style

AUTOSAVE_MS = 700
VITALS_WRONG = _("Some vital signs are not right (shown in red). Correct them, or clear them, and save again.")

# (field, label, unit) for the numeric vitals inputs, in tab order.
VITAL_FIELDS = [
    ("systolic_mmhg", _("BP systolic"), "mmHg"),
    ("diastolic_mmhg", _("BP diastolic"), "mmHg"),
    ("pulse_per_min", _("Pulse"), "/min"),
    ("respiratory_rate_per_min", _("Respiratory rate"), "/min"),
    ("temperature_c", _("Temperature"), ""),
    ("spo2_pct", _("SpO2"), "%"),
    ("weight_kg", _("Weight"), "kg"),
    ("height_cm", _("Height"), "cm"),
    ("glucose_mg_dl", _("Blood glucose"), "mg/dL"),
]


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def vitals_summary(v: Vitals) -> str:
    parts = []
    if v.systolic_mmhg is not None and v.diastolic_mmhg is not None:
        parts.append(f"BP {v.systolic_mmhg}/{v.diastolic_mmhg}")
    for value, label in ((v.pulse_per_min, _("pulse")), (v.respiratory_rate_per_min, _("RR")), (v.spo2_pct, "SpO2")):
        if value is not None:
            parts.append(f"{label} {value}" + ("%" if label == "SpO2" else ""))
    if v.temperature_c is not None:
        parts.append(f"{v.temperature_c:.1f} °C")
    if v.weight_kg is not None:
        parts.append(f"{_fmt(v.weight_kg)} kg")
    if v.glucose_mg_dl is not None:
        parts.append(_("glucose {g} mg/dL").format(g=v.glucose_mg_dl))
    return ", ".join(parts)


class CaseEditor(QWidget):
    changed = Signal()            # the case was saved or moved: lists elsewhere should refresh
    draft_saved = Signal()
    saved = Signal(object)        # Case

    def __init__(self, runner: TaskRunner, cases: CaseService, drafts: DraftService, user: User, case_id: str,
                 parent: QWidget | None = None, attachments=None, devices=None) -> None:
        super().__init__(parent)
        self.runner, self.cases, self.drafts, self.user = runner, cases, drafts, user
        self.attachments = attachments   # AttachmentService, or None where the editor is shown without files
        self.devices = devices           # DeviceService, or None where no Bluetooth devices are used
        self.device_reading = None       # the reading taken from a device, while its values stand in the form
        self.device_texts: dict[str, str] = {}
        self.case: Case = cases.view(user, case_id)
        self.patient: Patient = cases.patient_of(self.case)
        self.draft_key = f"case:{case_id}"
        self.correcting: str | None = None
        self._loading = False
        self._vitals_dirty = False
        self._build()
        self._load_case()
        self._restore_draft()
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_MS)
        self._autosave.timeout.connect(self._save_draft)
        self._connect_changes()
        self.update_assessment()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        p = self.patient
        self.header = QLabel()
        self.header.setObjectName("header")
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setStyleSheet("font-size: 15px; font-weight: bold;")
        outer.addWidget(self.header)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setStyleSheet("color: #1a4d8f;")
        self.notice.hide()
        outer.addWidget(self.notice)
        self.banner = QLabel()
        self.banner.setObjectName("redflags")
        # One flag a line, no word wrap: a wrapped label beside a stretching sibling gets squeezed and clipped.
        self.banner.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        outer.addWidget(self.banner)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        body = QWidget()
        cols = QHBoxLayout(body)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        # Left: complaints and notes.
        left = QVBoxLayout()
        box = QGroupBox(_("Complaints"))
        bl = QVBoxLayout(box)
        self.complaints = QListWidget()
        self.complaints.setObjectName("complaints")
        for c in COMMON_COMPLAINTS:
            item = QListWidgetItem(_(c))
            item.setData(Qt.ItemDataRole.UserRole, c)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.complaints.addItem(item)
        self.complaints.setMaximumHeight(160)
        bl.addWidget(self.complaints)
        form = QFormLayout()
        self.complaint_text = QLineEdit()
        self.complaint_text.setObjectName("complaint_text")
        self.complaint_text.setPlaceholderText(_("other complaints, in the patient's words"))
        self.duration = QLineEdit()
        self.duration.setObjectName("duration")
        self.duration.setPlaceholderText(_("e.g. 3 days"))
        form.addRow(_("Other"), self.complaint_text)
        form.addRow(_("Since"), self.duration)
        bl.addLayout(form)
        self.complaints_error = ErrorLabel()
        self.complaints_error.setObjectName("error_complaints")
        bl.addWidget(self.complaints_error)
        left.addWidget(box)
        notes = QGroupBox(_("History and examination"))
        nl = QFormLayout(notes)
        self.history = QPlainTextEdit()
        self.history.setObjectName("history")
        self.history.setTabChangesFocus(True)
        self.examination = QPlainTextEdit()
        self.examination.setObjectName("examination")
        self.examination.setTabChangesFocus(True)
        for edit in (self.history, self.examination):
            edit.setMaximumHeight(130)   # room below for the photos and recordings on a 768-pixel screen
        self.pregnant = QCheckBox(_("Pregnant"))
        self.pregnant.setObjectName("pregnant")
        nl.addRow(_("History"), self.history)
        nl.addRow(_("Examination"), self.examination)
        nl.addRow("", self.pregnant)
        self.pregnant.setVisible(p.sex.value == "female" and 10 <= p.age_years() <= 55)
        left.addWidget(notes)
        self.attachments_panel = None
        if self.attachments is not None:
            from spoke_client.ui.attachments import AttachmentsPanel

            self.attachments_panel = AttachmentsPanel(self.runner, self.attachments, self.user, self.case.id, self)
            left.addWidget(self.attachments_panel)
        cols.addLayout(left, 1)

        # Right: vitals, history, consent.
        right = QVBoxLayout()
        vbox = QGroupBox(_("Vital signs"))
        grid = QGridLayout(vbox)
        self.vital_inputs: dict[str, QLineEdit] = {}
        self.vital_errors: dict[str, ErrorLabel] = {}
        for row, (name, label, unit) in enumerate(VITAL_FIELDS):
            edit = QLineEdit()
            edit.setObjectName(name)
            edit.setMaximumWidth(90)
            self.vital_inputs[name] = edit
            err = ErrorLabel()
            err.setObjectName(f"error_{name}")
            self.vital_errors[name] = err
            grid.addWidget(QLabel(label), row * 2, 0)
            grid.addWidget(edit, row * 2, 1)
            if name == "temperature_c":
                self.temp_unit = QComboBox()
                self.temp_unit.setObjectName("temperature_unit")
                self.temp_unit.addItem("°C", "C")
                self.temp_unit.addItem("°F", "F")
                grid.addWidget(self.temp_unit, row * 2, 2)
            elif name == "glucose_mg_dl":
                unit_box = QHBoxLayout()
                unit_box.addWidget(QLabel(unit))
                self.glucose_kind = QComboBox()
                self.glucose_kind.setObjectName("glucose_kind")
                self.glucose_kind.addItem(_("random"), GlucoseKind.RANDOM.value)
                self.glucose_kind.addItem(_("fasting"), GlucoseKind.FASTING.value)
                unit_box.addWidget(self.glucose_kind)
                grid.addLayout(unit_box, row * 2, 2)
            else:
                grid.addWidget(QLabel(unit), row * 2, 2)
            grid.addWidget(err, row * 2 + 1, 0, 1, 3)
        base = len(VITAL_FIELDS) * 2
        self.bmi_label = QLabel()
        self.bmi_label.setObjectName("bmi")
        grid.addWidget(QLabel(_("BMI")), base, 0)
        grid.addWidget(self.bmi_label, base, 1, 1, 2)
        self.consciousness = QComboBox()
        self.consciousness.setObjectName("consciousness")
        self.consciousness.addItem(_("Alert"), Consciousness.ALERT.value)
        self.consciousness.addItem(_("New confusion"), Consciousness.NEW_CONFUSION.value)
        self.consciousness.addItem(_("Responds to voice"), Consciousness.VOICE.value)
        self.consciousness.addItem(_("Responds to pain"), Consciousness.PAIN.value)
        self.consciousness.addItem(_("Unresponsive"), Consciousness.UNRESPONSIVE.value)
        grid.addWidget(QLabel(_("Consciousness")), base + 1, 0)
        grid.addWidget(self.consciousness, base + 1, 1, 1, 2)
        self.oxygen = QCheckBox(_("On supplemental oxygen"))
        self.oxygen.setObjectName("oxygen")
        grid.addWidget(self.oxygen, base + 2, 0, 1, 3)
        self.news2 = QLabel()
        self.news2.setObjectName("news2")
        self.news2.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        grid.addWidget(self.news2, base + 3, 0, 1, 3)
        self.device_button = QPushButton(_("Take from device…"))
        self.device_button.setObjectName("take_from_device")
        self.device_button.setVisible(self.devices is not None)
        self.device_button.clicked.connect(self.take_from_device)
        self.device_label = QLabel()
        self.device_label.setObjectName("device_mark")
        self.device_label.setWordWrap(True)
        self.device_label.hide()
        grid.addWidget(self.device_button, base + 4, 0, 1, 3)
        grid.addWidget(self.device_label, base + 5, 0, 1, 3)
        right.addWidget(vbox)

        hbox = QGroupBox(_("Vitals recorded"))
        hl = QVBoxLayout(hbox)
        self.history_list = QListWidget()
        self.history_list.setObjectName("vitals_history")
        self.history_list.setMaximumHeight(110)
        hl.addWidget(self.history_list)
        self.correct_button = QPushButton(_("Correct the selected set"))
        self.correct_button.setObjectName("correct")
        self.correct_button.clicked.connect(self.start_correction)
        hl.addWidget(self.correct_button)
        right.addWidget(hbox)

        cbox = QGroupBox(_("Consent to teleconsultation"))
        cl = QFormLayout(cbox)
        self.consent_giver = QComboBox()
        self.consent_giver.setObjectName("consent_giver")
        self.consent_giver.addItem(_("the patient"), ConsentGiver.PATIENT.value)
        self.consent_giver.addItem(_("the accompanying adult"), ConsentGiver.GUARDIAN.value)
        self.consent_name = QLineEdit()
        self.consent_name.setObjectName("consent_name")
        self.consent_relation = QLineEdit()
        self.consent_relation.setObjectName("consent_relation")
        self.consent_relation.setPlaceholderText(_("mother, father, husband..."))
        self.consent_method = QComboBox()
        self.consent_method.setObjectName("consent_method")
        self.consent_method.addItem(_("verbal"), ConsentMethod.VERBAL.value)
        self.consent_method.addItem(_("written"), ConsentMethod.WRITTEN.value)
        self.consent_method.addItem(_("recorded (audio/video)"), ConsentMethod.RECORDED.value)
        self.consent_button = QPushButton(_("Record consent"))
        self.consent_button.setObjectName("record_consent")
        self.consent_status = QLabel()
        self.consent_status.setObjectName("consent_status")
        self.consent_status.setWordWrap(True)
        self.consent_error = ErrorLabel()
        self.consent_error.setObjectName("error_consent")
        cl.addRow(_("Given by"), self.consent_giver)
        cl.addRow(_("Name"), self.consent_name)
        cl.addRow(_("Relation"), self.consent_relation)
        cl.addRow(_("How"), self.consent_method)
        cl.addRow("", self.consent_button)
        cl.addRow("", self.consent_status)
        cl.addRow("", self.consent_error)
        self.consent_button.clicked.connect(self.record_consent)
        if self.patient.age_years() < 18:
            self.consent_giver.setCurrentIndex(1)
        else:
            self.consent_name.setText(self.patient.name)
        right.addWidget(cbox)
        right.addStretch(1)
        cols.addLayout(right, 1)

        self.message = ErrorLabel()
        self.message.setObjectName("message")
        outer.addWidget(self.message)
        buttons = QHBoxLayout()
        self.status_label = QLabel()
        self.status_label.setObjectName("status")
        buttons.addWidget(self.status_label)
        buttons.addStretch(1)
        self.save_button = QPushButton(_("Save"))
        self.save_button.setObjectName("save")
        self.save_button.setToolTip(_("Saves the case and records the vitals typed (Ctrl+S, or Enter in a field)."))
        self.ready_button = QPushButton(_("Ready for consultation"))
        self.ready_button.setObjectName("mark_ready")
        self.queue_button = QPushButton(_("Send to the hub"))
        self.queue_button.setObjectName("queue")
        self.cancel_button = QPushButton(_("Cancel case"))
        self.cancel_button.setObjectName("cancel_case")
        for b in (self.save_button, self.ready_button, self.queue_button, self.cancel_button):
            buttons.addWidget(b)
        outer.addLayout(buttons)
        self.save_button.clicked.connect(lambda: self.save())
        self.ready_button.clicked.connect(lambda: self.save(then=CaseStatus.READY))
        self.queue_button.clicked.connect(lambda: self.save(then=CaseStatus.QUEUED))
        self.cancel_button.clicked.connect(lambda: self.move_to(CaseStatus.CANCELLED))
        QShortcut(QKeySequence.StandardKey.Save, self, activated=self.save)
        for edit in [self.complaint_text, self.duration, *self.vital_inputs.values()]:
            edit.returnPressed.connect(self.save)

    # --- loading --------------------------------------------------------------------------------
    def _load_case(self) -> None:
        self._loading = True
        c, p = self.case, self.patient
        rel = relative_text(p)
        self.header.setText(f"{p.name} — {p.age_text()} {sex_label(p.sex)}" + (f", {rel}" if rel else "")
                            + (f", {p.village}" if p.village else ""))
        for i in range(self.complaints.count()):
            item = self.complaints.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in c.complaints
                               else Qt.CheckState.Unchecked)
        known = set(COMMON_COMPLAINTS)
        extra = [x for x in c.complaints if x not in known]
        self.complaint_text.setText(", ".join(extra + ([c.complaint_text] if c.complaint_text else [])))
        self.duration.setText(c.duration)
        self.history.setPlainText(c.history)
        self.examination.setPlainText(c.examination)
        self.pregnant.setChecked(c.pregnant)
        self.history_list.clear()
        for rec in c.vitals:
            self._add_history(rec)
        latest = next((r for r in reversed(c.vitals) if r.status == VitalsStatus.FINAL), None)
        self._fill_vitals(latest.vitals if latest else Vitals())
        if c.consent:
            self.consent_status.setText(_("Consent given by {who} ({how}) on {when}.").format(
                who=c.consent.giver_name + (f" ({c.consent.giver_relation})" if c.consent.giver_relation else ""),
                how=_(c.consent.method.value), when=c.consent.given_at.astimezone().strftime("%d %b %Y %H:%M")))
        else:
            self.consent_status.setText(_("No consent recorded yet."))
        self._apply_status()
        self._vitals_dirty = False
        self.correcting = None
        self._loading = False

    def _add_history(self, rec: VitalsRecord) -> None:
        when = rec.recorded_at.astimezone().strftime("%d %b %H:%M")
        text = f"{when}  {vitals_summary(rec.vitals)}"
        if rec.source != "manual":
            text += "  " + _("(from {device})").format(device=rec.source)
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, rec)
        if rec.status == VitalsStatus.ENTERED_IN_ERROR:
            font = item.font()
            font.setStrikeOut(True)
            item.setFont(font)
            item.setText(text + "  " + _("[entered in error]"))
        self.history_list.addItem(item)

    def _fill_vitals(self, v: Vitals) -> None:
        for name, edit in self.vital_inputs.items():
            edit.setText(_fmt(getattr(v, name)))
        self.temp_unit.setCurrentIndex(0)
        self.glucose_kind.setCurrentIndex(max(0, self.glucose_kind.findData((v.glucose_kind or GlucoseKind.RANDOM).value)))
        self.consciousness.setCurrentIndex(max(0, self.consciousness.findData((v.consciousness or Consciousness.ALERT).value)))
        self.oxygen.setChecked(v.on_supplemental_oxygen)

    def _apply_status(self) -> None:
        status = self.case.status
        editable = status in EDITABLE
        self.status_label.setText(_("Status: {s}").format(s=status_label(status)))
        for w in [self.complaints, self.complaint_text, self.duration, self.history, self.examination, self.pregnant,
                  *self.vital_inputs.values(), self.temp_unit, self.glucose_kind, self.consciousness, self.oxygen,
                  self.correct_button, self.save_button]:
            w.setEnabled(editable)
        self.ready_button.setVisible(status == CaseStatus.DRAFT)
        self.queue_button.setVisible(status in (CaseStatus.DRAFT, CaseStatus.READY))
        self.cancel_button.setVisible(status in (CaseStatus.DRAFT, CaseStatus.READY, CaseStatus.QUEUED))

    # --- drafts ---------------------------------------------------------------------------------
    def form_state(self) -> dict:
        return {
            "complaints": [self.complaints.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.complaints.count())
                           if self.complaints.item(i).checkState() == Qt.CheckState.Checked],
            "complaint_text": self.complaint_text.text(), "duration": self.duration.text(),
            "history": self.history.toPlainText(), "examination": self.examination.toPlainText(),
            "pregnant": self.pregnant.isChecked(),
            "vitals": {name: e.text() for name, e in self.vital_inputs.items()},
            "temperature_unit": self.temp_unit.currentData(), "glucose_kind": self.glucose_kind.currentData(),
            "consciousness": self.consciousness.currentData(), "oxygen": self.oxygen.isChecked(),
            "vitals_dirty": self._vitals_dirty, "correcting": self.correcting,
            "consent": {"giver": self.consent_giver.currentData(), "name": self.consent_name.text(),
                        "relation": self.consent_relation.text(), "method": self.consent_method.currentData()},
            "case_version": self.case.version,
        }

    def _restore_draft(self) -> None:
        d = self.drafts.load(self.draft_key)
        if not d or self.case.status not in EDITABLE:
            return
        self._loading = True
        for i in range(self.complaints.count()):
            item = self.complaints.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in d.get("complaints", [])
                               else Qt.CheckState.Unchecked)
        self.complaint_text.setText(d.get("complaint_text", ""))
        self.duration.setText(d.get("duration", ""))
        self.history.setPlainText(d.get("history", ""))
        self.examination.setPlainText(d.get("examination", ""))
        self.pregnant.setChecked(bool(d.get("pregnant")))
        for name, text in d.get("vitals", {}).items():
            if name in self.vital_inputs:
                self.vital_inputs[name].setText(text)
        for combo, key in ((self.temp_unit, "temperature_unit"), (self.glucose_kind, "glucose_kind"),
                           (self.consciousness, "consciousness")):
            idx = combo.findData(d.get(key))
            if idx >= 0:
                combo.setCurrentIndex(idx)
        self.oxygen.setChecked(bool(d.get("oxygen")))
        consent = d.get("consent", {})
        idx = self.consent_giver.findData(consent.get("giver"))
        if idx >= 0:
            self.consent_giver.setCurrentIndex(idx)
        self.consent_name.setText(consent.get("name", self.consent_name.text()))
        self.consent_relation.setText(consent.get("relation", ""))
        self._vitals_dirty = bool(d.get("vitals_dirty"))
        self.correcting = d.get("correcting")
        self._loading = False
        self.notice.setText(_("Unsaved changes from your last session were restored. Save to keep them."))
        self.notice.show()

    def _connect_changes(self) -> None:
        def touched(*_a) -> None:
            if not self._loading:
                self._autosave.start()

        def vitals_touched(*_a) -> None:
            if not self._loading:
                self._vitals_dirty = True
                self._autosave.start()
            self.update_assessment()

        for w in (self.complaint_text, self.duration, self.consent_name, self.consent_relation):
            w.textChanged.connect(touched)
        for w in (self.history, self.examination):
            w.textChanged.connect(touched)
        self.complaints.itemChanged.connect(touched)
        self.pregnant.toggled.connect(touched)
        self.pregnant.toggled.connect(lambda _c: self.update_assessment())
        for e in self.vital_inputs.values():
            e.textChanged.connect(vitals_touched)
        for c in (self.temp_unit, self.glucose_kind, self.consciousness, self.consent_giver, self.consent_method):
            c.currentIndexChanged.connect(vitals_touched if c in (self.temp_unit, self.glucose_kind, self.consciousness) else touched)
        self.oxygen.toggled.connect(vitals_touched)

    def _save_draft(self) -> None:
        state = self.form_state()
        self.runner.run(lambda: self.drafts.save(self.user.id, self.draft_key, "case", state),
                        lambda _r: self.draft_saved.emit(), self._failed)

    # --- vitals and red flags -------------------------------------------------------------------
    def raw_vitals(self) -> dict[str, str]:
        fields = {name: e.text() for name, e in self.vital_inputs.items()}
        fields["glucose_kind"] = self.glucose_kind.currentData() if fields["glucose_mg_dl"].strip() else ""
        fields["consciousness"] = self.consciousness.currentData()
        fields["on_supplemental_oxygen"] = "1" if self.oxygen.isChecked() else ""
        return fields

    def _parse_vitals(self) -> tuple[Vitals, ValidationFailed | None]:
        """The vitals typed; wrong fields are shown and left out so the rest still raise their flags."""
        fields = self.raw_vitals()
        unit = self.temp_unit.currentData()
        try:
            return vitals_from_form(fields, unit), None
        except ValidationFailed as exc:
            bad = {p.field for p in exc.problems}
            if bad & {"systolic_mmhg", "diastolic_mmhg"}:
                bad |= {"systolic_mmhg", "diastolic_mmhg"}
            trimmed = {k: ("" if k in bad else v) for k, v in fields.items()}
            try:
                return vitals_from_form(trimmed, unit), exc
            except ValidationFailed:
                return Vitals(), exc

    def update_assessment(self) -> Assessment | None:
        vitals, error = self._parse_vitals()
        for name, err in self.vital_errors.items():
            err.show_message(error.for_field(name) if error else None)
        if error is None and self.message.text() == VITALS_WRONG:
            self.message.show_message(None)
        b = bmi(vitals.weight_kg, vitals.height_cm)
        self.bmi_label.setText(f"{b:.1f} kg/m²" if b else "—")
        if self.temp_unit.currentData() == "F" and vitals.temperature_c is not None:
            self.vital_errors["temperature_c"].show_message(
                _("= {c:.1f} °C").format(c=vitals.temperature_c), warning=True)
        ctx = patient_context(self.patient, self.pregnant.isChecked(), date.today())
        a = assess(vitals, ctx)
        flags = [f for f in a.flags if f.severity >= Severity.LOW or f.code == "weight_needed"]
        if flags:
            self.banner.setText("\n".join(f"• {f.message}" for f in flags))
            self.banner.setStyleSheet(severity_style(max(a.level, Severity.LOW)))
            self.banner.show()
        else:
            self.banner.setText(_("No red flags in the values entered."))
            self.banner.setStyleSheet(severity_style(Severity.INFO))
            self.banner.setVisible(any(e.text().strip() for e in self.vital_inputs.values()))
        if a.news2 is not None:
            band = Severity.EMERGENCY if a.news2 >= 7 else Severity.URGENT if a.news2 >= 5 else Severity.LOW if a.news2 else Severity.INFO
            self.news2.setText(_("NEWS2 score: {n}").format(n=a.news2))
            self.news2.setStyleSheet(severity_style(band))
        else:
            self.news2.setText(a.news2_note or "")
            self.news2.setStyleSheet("color: #555;")
        self.assessment = a
        return a

    def start_correction(self) -> None:
        item = self.history_list.currentItem()
        if item is None:
            self.message.show_message(_("Select the set of vitals to correct."))
            return
        rec: VitalsRecord = item.data(Qt.ItemDataRole.UserRole)
        if rec.status == VitalsStatus.ENTERED_IN_ERROR:
            self.message.show_message(_("That set was already corrected."))
            return
        self._fill_vitals(rec.vitals)
        self.correcting = rec.id
        self._vitals_dirty = True
        self.notice.setText(_("Correcting the vitals of {when}: change the values and save. The old set stays in "
                              "the history, marked 'entered in error'.").format(
                                  when=rec.recorded_at.astimezone().strftime("%d %b %H:%M")))
        self.notice.show()

    # --- saving ---------------------------------------------------------------------------------
    def case_form(self) -> CaseForm:
        complaints = tuple(self.complaints.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.complaints.count())
                           if self.complaints.item(i).checkState() == Qt.CheckState.Checked)
        return CaseForm(complaints=complaints, complaint_text=self.complaint_text.text(), duration=self.duration.text(),
                        history=self.history.toPlainText(), examination=self.examination.toPlainText(),
                        pregnant=self.pregnant.isChecked())

    def save(self, then: CaseStatus | None = None) -> None:
        self.message.show_message(None)
        self.complaints_error.show_message(None)
        if self.case.status not in EDITABLE:
            if then is not None:
                self.move_to(then)
            return
        vitals, error = self._parse_vitals()
        record = self._vitals_dirty and any(e.text().strip() for e in self.vital_inputs.values())
        if record and error is not None:
            self.message.show_message(VITALS_WRONG)
            return
        form, correcting, case_id, actor = self.case_form(), self.correcting, self.case.id, self.user
        device = self.device_mark() if record else None

        def work() -> tuple[Case, Exception | None]:
            case = self.cases.save(actor, case_id, form, vitals=vitals if record else None,
                                   correcting=correcting if record else None, draft_key=self.draft_key, device=device)
            if then is None:
                return case, None
            try:  # a separate step: a refused move (no consent yet) must not undo the save
                if then == CaseStatus.QUEUED and case.status == CaseStatus.DRAFT:
                    self.cases.transition(actor, case_id, CaseStatus.READY)  # the state machine passes through ready
                return self.cases.transition(actor, case_id, then), None
            except SpokeError as exc:
                return self.cases.get(case_id), exc

        self._autosave.stop()
        self.save_button.setEnabled(False)
        self.runner.run(work, self._saved, self._failed)

    # --- readings from a Bluetooth device ---------------------------------------------------------
    def take_from_device(self) -> None:
        from spoke_client.ui.devices import TakeReadingDialog

        dialog = TakeReadingDialog(self.runner, self.devices, self)
        if dialog.exec() and dialog.reading is not None:
            self.use_reading(dialog.reading)

    def use_reading(self, reading) -> None:
        """Fills the vitals from a device; they count as device-measured while they stay as the device gave them."""
        self.temp_unit.setCurrentIndex(0)   # devices are read in °C
        self.device_texts = {}
        for name, value in reading.vitals.items():
            if name in self.vital_inputs:
                text = _fmt(value)
                self.vital_inputs[name].setText(text)
                self.device_texts[name] = text
        self.device_reading = reading
        status = "; ".join(reading.status)
        when = reading.measured_at.astimezone().strftime("%d %b %H:%M") if reading.measured_at else ""
        self.device_label.setText(_("Measured by {device}{when}{status}").format(
            device=reading.device_name, when=f" ({when})" if when else "",
            status=(": " + status) if status else ""))
        self.device_label.setStyleSheet("color: #8a5a00;" if reading.status else "color: #1b5e20;")
        self.device_label.show()
        self._vitals_dirty = True
        self.update_assessment()

    def device_mark(self):
        """The device that measured the vitals being saved, if they are still what it gave."""
        from spoke_client.services.cases import DeviceMark

        r = self.device_reading
        if r is None or any(self.vital_inputs[n].text().strip() != t for n, t in self.device_texts.items()):
            return None
        return DeviceMark(r.device_name, tuple(r.status), r.measured_at)

    def _saved(self, result: Case | tuple[Case, Exception | None]) -> None:
        case, refused = result if isinstance(result, tuple) else (result, None)
        self.case = case
        self.device_reading, self.device_texts = None, {}
        self.device_label.hide()
        self._load_case()
        self.update_assessment()
        self.notice.setText(_("Saved."))
        self.notice.show()
        self.changed.emit()
        self.saved.emit(case)
        if refused is not None:
            self._failed(refused)

    def move_to(self, status: CaseStatus) -> None:
        case_id, actor = self.case.id, self.user
        self.runner.run(lambda: (self.cases.transition(actor, case_id, status), self.cases.get(case_id))[1],
                        self._saved, self._failed)

    def record_consent(self) -> None:
        self.consent_error.show_message(None)
        giver = ConsentGiver(self.consent_giver.currentData())
        method = ConsentMethod(self.consent_method.currentData())
        name, relation, case_id, actor = self.consent_name.text(), self.consent_relation.text(), self.case.id, self.user
        self.runner.run(lambda: (self.cases.record_consent(actor, case_id, giver, name, method, relation),
                                 self.cases.get(case_id))[1], self._consent_saved, self._consent_failed)

    def _consent_saved(self, case: Case) -> None:
        self.case = case
        c = case.consent
        self.consent_status.setText(_("Consent given by {who} ({how}) on {when}.").format(
            who=c.giver_name + (f" ({c.giver_relation})" if c.giver_relation else ""), how=_(c.method.value),
            when=c.given_at.astimezone().strftime("%d %b %Y %H:%M")))
        self.changed.emit()

    def _consent_failed(self, exc: Exception) -> None:
        if isinstance(exc, ValidationFailed):
            self.consent_error.show_message(" ".join(p.message for p in exc.problems))
        else:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.save_button.setEnabled(self.case.status in EDITABLE)
        if isinstance(exc, ValidationFailed):
            msgs = []
            for p in exc.problems:
                if p.field in self.vital_errors:
                    self.vital_errors[p.field].show_message(p.message)
                elif p.field == "complaints":
                    self.complaints_error.show_message(p.message)
                elif p.field in ("consent", "giver", "giver_name", "giver_relation"):
                    self.consent_error.show_message(p.message)
                else:
                    msgs.append(p.message)
            self.message.show_message("\n".join(msgs) or _("Please correct the fields shown in red."))
        elif isinstance(exc, SpokeError):
            self.message.show_message(exc.message)
        else:
            self.message.show_message(_("The case could not be saved: {e}. Nothing typed is lost; it is kept as a "
                                        "draft.").format(e=exc))
