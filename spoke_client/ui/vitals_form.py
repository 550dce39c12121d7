"""The vitals part of the case editor: the inputs with live red flags and NEWS2, the red-flag banner, and the sets
of vitals recorded so far."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import ValidationFailed
from spoke_client.domain.model import Patient, VitalsRecord, VitalsStatus
from spoke_client.domain.redflags import Assessment, Severity, assess
from spoke_client.domain.vitals import Consciousness, GlucoseKind, Vitals, bmi, vitals_from_form
from spoke_client.i18n import N_, _, when_text
from spoke_client.services.cases import DeviceMark, patient_context
from spoke_client.ui.widgets import ErrorLabel, severity_style

# (field, label, unit) for the numeric vitals inputs, in tab order; label and unit are translated where shown.
VITAL_FIELDS = [
    ("systolic_mmhg", N_("BP systolic"), "mmHg"),
    ("diastolic_mmhg", N_("BP diastolic"), "mmHg"),
    ("pulse_per_min", N_("Pulse"), N_("/min")),
    ("respiratory_rate_per_min", N_("Respiratory rate"), N_("/min")),
    ("temperature_c", N_("Temperature"), ""),
    ("spo2_pct", N_("SpO2"), "%"),
    ("weight_kg", N_("Weight"), "kg"),
    ("height_cm", N_("Height"), "cm"),
    ("glucose_mg_dl", N_("Blood glucose"), "mg/dL"),
]


def fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def vitals_summary(v: Vitals) -> str:
    parts = []
    if v.systolic_mmhg is not None and v.diastolic_mmhg is not None:
        parts.append(_("BP {s}/{d}").format(s=v.systolic_mmhg, d=v.diastolic_mmhg))
    for value, label in ((v.pulse_per_min, _("pulse")), (v.respiratory_rate_per_min, _("RR")), (v.spo2_pct, "SpO2")):
        if value is not None:
            parts.append(f"{label} {value}" + ("%" if label == "SpO2" else ""))
    if v.temperature_c is not None:
        parts.append(f"{v.temperature_c:.1f} °C")
    if v.weight_kg is not None:
        parts.append(f"{fmt(v.weight_kg)} kg")
    if v.glucose_mg_dl is not None:
        parts.append(_("glucose {g} mg/dL").format(g=v.glucose_mg_dl))
    return ", ".join(parts)


class RedFlagBanner(QLabel):
    """The red flags of the values entered, one a line, coloured by the most severe."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("redflags")
        # One flag a line, no word wrap: a wrapped label beside a stretching sibling gets squeezed and clipped.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.hide()   # until there is something to assess

    def show_assessment(self, a: Assessment | None, any_values: bool) -> None:
        flags = [f for f in a.flags if f.severity >= Severity.LOW or f.code == "weight_needed"] if a else []
        if flags:
            self.setText("\n".join(f"• {f.message}" for f in flags))
            self.setStyleSheet(severity_style(max(a.level, Severity.LOW)))
            self.show()
        else:
            self.setText(_("No red flags in the values entered."))
            self.setStyleSheet(severity_style(Severity.INFO))
            self.setVisible(a is not None and any_values)


class VitalsBox(QGroupBox):
    """The vital signs typed or taken from a device: values in (`set_vitals`, `set_state`), values out (`parse`,
    `state`), assessed against the patient after every change."""

    changed = Signal()            # the user changed a value (not a fill from the case or a draft)
    assessed = Signal(object)     # Assessment | None, after every change, typed or filled
    submitted = Signal()          # Enter in a field
    device_requested = Signal()

    def __init__(self, with_device: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(_("Vital signs"), parent)
        self.patient: Patient | None = None
        self.pregnant = False
        self.error: ValidationFailed | None = None   # the problems of the values as typed now
        self.assessment: Assessment | None = None
        self.device_reading = None       # the reading taken from a device, while its values stand in the form
        self.device_texts: dict[str, str] = {}
        self._filling = False
        grid = QGridLayout(self)
        self.inputs: dict[str, QLineEdit] = {}
        self.errors: dict[str, ErrorLabel] = {}
        for row, (name, label, unit) in enumerate(VITAL_FIELDS):
            edit = QLineEdit()
            edit.setObjectName(name)
            edit.setMaximumWidth(90)
            self.inputs[name] = edit
            err = ErrorLabel()
            err.setObjectName(f"error_{name}")
            self.errors[name] = err
            grid.addWidget(QLabel(_(label)), row * 2, 0)
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
                grid.addWidget(QLabel(_(unit)), row * 2, 2)
            grid.addWidget(err, row * 2 + 1, 0, 1, 3)
        base = len(VITAL_FIELDS) * 2
        self.bmi_label = QLabel()
        self.bmi_label.setObjectName("bmi")
        grid.addWidget(QLabel(_("BMI")), base, 0)
        grid.addWidget(self.bmi_label, base, 1, 1, 2)
        self.consciousness = QComboBox()
        self.consciousness.setObjectName("consciousness")
        for label, level in ((_("Alert"), Consciousness.ALERT), (_("New confusion"), Consciousness.NEW_CONFUSION),
                             (_("Responds to voice"), Consciousness.VOICE), (_("Responds to pain"), Consciousness.PAIN),
                             (_("Unresponsive"), Consciousness.UNRESPONSIVE)):
            self.consciousness.addItem(label, level.value)
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
        self.device_button.setVisible(with_device)
        self.device_button.clicked.connect(self.device_requested)
        self.device_label = QLabel()
        self.device_label.setObjectName("device_mark")
        self.device_label.setWordWrap(True)
        self.device_label.hide()
        grid.addWidget(self.device_button, base + 4, 0, 1, 3)
        grid.addWidget(self.device_label, base + 5, 0, 1, 3)
        for edit in self.inputs.values():
            edit.textChanged.connect(self._touched)
            edit.returnPressed.connect(self.submitted)
        for combo in (self.temp_unit, self.glucose_kind, self.consciousness):
            combo.currentIndexChanged.connect(self._touched)
        self.oxygen.toggled.connect(self._touched)

    def _touched(self, *_a) -> None:
        if self._filling:
            return
        self.changed.emit()
        self.assess()

    # --- values in ------------------------------------------------------------------------------
    def set_patient(self, patient: Patient) -> None:
        self.patient = patient
        self.assess()

    def set_pregnant(self, pregnant: bool) -> None:
        self.pregnant = pregnant
        self.assess()

    def set_vitals(self, v: Vitals) -> None:
        """Fills the form with a recorded set (the latest, or the one being corrected)."""
        self._filling = True
        try:
            for name, edit in self.inputs.items():
                edit.setText(fmt(getattr(v, name)))
            self.temp_unit.setCurrentIndex(0)
            self.glucose_kind.setCurrentIndex(max(0, self.glucose_kind.findData((v.glucose_kind or GlucoseKind.RANDOM).value)))
            self.consciousness.setCurrentIndex(
                max(0, self.consciousness.findData((v.consciousness or Consciousness.ALERT).value)))
            self.oxygen.setChecked(v.on_supplemental_oxygen)
        finally:
            self._filling = False
        self.assess()

    def set_state(self, d: dict) -> None:
        """Fills the form from a draft, as `state` gave it."""
        self._filling = True
        try:
            for name, text in d.get("vitals", {}).items():
                if name in self.inputs:
                    self.inputs[name].setText(text)
            for combo, key in ((self.temp_unit, "temperature_unit"), (self.glucose_kind, "glucose_kind"),
                               (self.consciousness, "consciousness")):
                idx = combo.findData(d.get(key))
                if idx >= 0:
                    combo.setCurrentIndex(idx)
            self.oxygen.setChecked(bool(d.get("oxygen")))
        finally:
            self._filling = False
        self.assess()

    def use_reading(self, reading) -> None:
        """Fills the vitals from a device; they count as device-measured while they stay as the device gave them."""
        self.temp_unit.setCurrentIndex(0)   # devices are read in °C
        self.device_texts = {}
        for name, value in reading.vitals.items():
            if name in self.inputs:
                text = fmt(value)
                self.inputs[name].setText(text)
                self.device_texts[name] = text
        self.device_reading = reading
        status = "; ".join(_(s) for s in reading.status)
        when = when_text(reading.measured_at) if reading.measured_at else ""
        self.device_label.setText(_("Measured by {device}{when}{status}").format(
            device=reading.device_name, when=f" ({when})" if when else "",
            status=(": " + status) if status else ""))
        self.device_label.setStyleSheet("color: #8a5a00;" if reading.status else "color: #1b5e20;")
        self.device_label.show()
        self.changed.emit()
        self.assess()

    def clear_device(self) -> None:
        self.device_reading, self.device_texts = None, {}
        self.device_label.hide()

    def set_editable(self, editable: bool) -> None:
        for w in [*self.inputs.values(), self.temp_unit, self.glucose_kind, self.consciousness, self.oxygen,
                  self.device_button]:
            w.setEnabled(editable)

    def show_problem(self, field: str, message: str) -> bool:
        """Shows a service's complaint under its field; False when the field is not one of these."""
        if field not in self.errors:
            return False
        self.errors[field].show_message(message)
        return True

    # --- values out -----------------------------------------------------------------------------
    def state(self) -> dict:
        return {"vitals": {name: e.text() for name, e in self.inputs.items()},
                "temperature_unit": self.temp_unit.currentData(), "glucose_kind": self.glucose_kind.currentData(),
                "consciousness": self.consciousness.currentData(), "oxygen": self.oxygen.isChecked()}

    def raw(self) -> dict[str, str]:
        fields = {name: e.text() for name, e in self.inputs.items()}
        fields["glucose_kind"] = self.glucose_kind.currentData() if fields["glucose_mg_dl"].strip() else ""
        fields["consciousness"] = self.consciousness.currentData()
        fields["on_supplemental_oxygen"] = "1" if self.oxygen.isChecked() else ""
        return fields

    def has_values(self) -> bool:
        return any(e.text().strip() for e in self.inputs.values())

    def parse(self) -> tuple[Vitals, ValidationFailed | None]:
        """The vitals typed; wrong fields are left out so the rest still raise their flags."""
        fields = self.raw()
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

    def device_mark(self) -> DeviceMark | None:
        """The device that measured the vitals being saved, if they are still what it gave."""
        r = self.device_reading
        if r is None or any(self.inputs[n].text().strip() != t for n, t in self.device_texts.items()):
            return None
        return DeviceMark(r.device_name, tuple(r.status), r.measured_at)

    # --- red flags ------------------------------------------------------------------------------
    def assess(self) -> Assessment | None:
        """Shows wrong values, BMI and NEWS2, and emits the red flags of what is typed now."""
        vitals, self.error = self.parse()
        for name, err in self.errors.items():
            err.show_message(self.error.for_field(name) if self.error else None)
        b = bmi(vitals.weight_kg, vitals.height_cm)
        self.bmi_label.setText(f"{b:.1f} kg/m²" if b else "—")
        if self.temp_unit.currentData() == "F" and vitals.temperature_c is not None:
            self.errors["temperature_c"].show_message(_("= {c:.1f} °C").format(c=vitals.temperature_c), warning=True)
        a = None
        if self.patient is not None:
            a = assess(vitals, patient_context(self.patient, self.pregnant, date.today()))
        if a is not None and a.news2 is not None:
            band = (Severity.EMERGENCY if a.news2 >= 7 else Severity.URGENT if a.news2 >= 5
                    else Severity.LOW if a.news2 else Severity.INFO)
            self.news2.setText(_("NEWS2 score: {n}").format(n=a.news2))
            self.news2.setStyleSheet(severity_style(band))
        else:
            self.news2.setText((a.news2_note or "") if a is not None else "")
            self.news2.setStyleSheet("color: #555;")
        self.assessment = a
        self.assessed.emit(a)
        return a


class VitalsHistoryBox(QGroupBox):
    """The sets of vitals recorded on the case, a corrected one struck through; one can be picked to correct."""

    correct_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_("Vitals recorded"), parent)
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setObjectName("vitals_history")
        self.list.setMaximumHeight(110)
        lay.addWidget(self.list)
        self.correct_button = QPushButton(_("Correct the selected set"))
        self.correct_button.setObjectName("correct")
        self.correct_button.clicked.connect(self.correct_requested)
        lay.addWidget(self.correct_button)

    def set_records(self, records: tuple[VitalsRecord, ...] | list[VitalsRecord]) -> None:
        self.list.clear()
        for rec in records:
            when = when_text(rec.recorded_at)
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
            self.list.addItem(item)

    def count(self) -> int:
        return self.list.count()

    def select(self, row: int) -> None:
        self.list.setCurrentRow(row)

    def selected(self) -> VitalsRecord | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def set_editable(self, editable: bool) -> None:
        self.correct_button.setEnabled(editable)
