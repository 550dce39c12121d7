"""Bluetooth health devices in the UI: the Devices page (scan, pair under a name, rename, remove) and the
"Take from device" dialog of the vitals form. All radio work runs on the runner's "devices" lane."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import User
from spoke_client.i18n import _, when_text
from spoke_client.services.devices import DeviceService, FoundDevice, PairedDevice, Reading
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel

VITAL_LABELS = {"systolic_mmhg": ("BP systolic", "mmHg"), "diastolic_mmhg": ("BP diastolic", "mmHg"),
                "pulse_per_min": ("Pulse", "/min"), "temperature_c": ("Temperature", "°C"), "spo2_pct": ("SpO2", "%"),
                "glucose_mg_dl": ("Blood glucose", "mg/dL"), "weight_kg": ("Weight", "kg"), "height_cm": ("Height", "cm")}


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, SpokeError) else _("Something went wrong: {e}").format(e=exc)


def reading_text(r: Reading) -> str:
    values = ", ".join(f"{_(VITAL_LABELS[k][0])} {v:g} {_(VITAL_LABELS[k][1])}" for k, v in r.vitals.items()
                       if k in VITAL_LABELS)
    return values + (" · " + "; ".join(_(s) for s in r.status) if r.status else "")


class DevicesPage(QWidget):
    def __init__(self, runner: TaskRunner, devices: DeviceService, user: User, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.devices, self.user = runner, devices, user
        self.found: list[FoundDevice] = []
        self.paired_items: list[PairedDevice] = []
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(_("Paired devices")))
        self.paired = QTreeWidget()
        self.paired.setObjectName("paired_devices")
        self.paired.setRootIsDecorated(False)
        self.paired.setHeaderLabels([_("Name"), _("Kind"), _("Address")])
        lay.addWidget(self.paired, 1)
        row = QHBoxLayout()
        self.rename_button = QPushButton(_("Rename…"))
        self.rename_button.setObjectName("rename_device")
        self.remove_button = QPushButton(_("Remove"))
        self.remove_button.setObjectName("remove_device")
        row.addWidget(self.rename_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(QLabel(_("Nearby health devices (switch the device on, or put it in pairing mode)")))
        self.nearby = QTreeWidget()
        self.nearby.setObjectName("nearby_devices")
        self.nearby.setRootIsDecorated(False)
        self.nearby.setHeaderLabels([_("Name"), _("Kind"), _("Signal")])
        lay.addWidget(self.nearby, 1)
        row = QHBoxLayout()
        self.scan_button = QPushButton(_("Search"))
        self.scan_button.setObjectName("scan_devices")
        self.pair_button = QPushButton(_("Pair…"))
        self.pair_button.setObjectName("pair_device")
        row.addWidget(self.scan_button)
        row.addWidget(self.pair_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.message = ErrorLabel(self)
        lay.addWidget(self.message)
        self.scan_button.clicked.connect(self.scan)
        self.pair_button.clicked.connect(lambda: self.pair_selected())
        self.rename_button.clicked.connect(lambda: self.rename_selected())
        self.remove_button.clicked.connect(self.remove_selected)
        self.refresh()

    def refresh(self) -> None:
        self.runner.run(self.devices.paired, self._show_paired, self._failed, lane="read")

    def _show_paired(self, items: list[PairedDevice]) -> None:
        self.paired_items = items
        self.paired.clear()
        for d in items:
            self.paired.addTopLevelItem(QTreeWidgetItem([d.name, _(d.kind), d.address]))

    def scan(self) -> None:
        self.scan_button.setEnabled(False)
        self.message.show_message(_("Searching for about 8 seconds…"), warning=True)
        self.runner.run(self.devices.scan, self._show_found, self._scan_failed, lane="devices")

    def _show_found(self, found: list[FoundDevice]) -> None:
        self.scan_button.setEnabled(True)
        self.found = found
        self.nearby.clear()
        for d in found:
            self.nearby.addTopLevelItem(QTreeWidgetItem([d.name, _(d.kind), f"{d.rssi} dBm" if d.rssi is not None else ""]))
        self.message.show_message(None if found else _("No health device found nearby. Switch it on and search again."),
                                  warning=True)

    def _scan_failed(self, exc: Exception) -> None:
        self.scan_button.setEnabled(True)
        self._failed(exc)

    def pair_selected(self, name: str | None = None) -> None:
        row = self.nearby.indexOfTopLevelItem(self.nearby.currentItem()) if self.nearby.currentItem() else -1
        if row < 0:
            self.message.show_message(_("Select a device found nearby first."))
            return
        device = self.found[row]
        if name is None:
            name, ok = QInputDialog.getText(self, _("Pair"), _("A name staff will recognise, e.g. 'BP monitor, room 1':"),
                                            text=device.name)
            if not ok:
                return
        self.runner.run(lambda: self.devices.pair(self.user, device, name), lambda _d: self._changed(), self._failed)

    def rename_selected(self, name: str | None = None) -> None:
        device = self._selected_paired()
        if device is None:
            return
        if name is None:
            name, ok = QInputDialog.getText(self, _("Rename"), _("Name:"), text=device.name)
            if not ok:
                return
        self.runner.run(lambda: self.devices.rename(self.user, device.id, name), lambda _d: self._changed(), self._failed)

    def remove_selected(self) -> None:
        device = self._selected_paired()
        if device is not None:
            self.runner.run(lambda: self.devices.unpair(self.user, device.id), lambda _d: self._changed(), self._failed)

    def _selected_paired(self) -> PairedDevice | None:
        row = self.paired.indexOfTopLevelItem(self.paired.currentItem()) if self.paired.currentItem() else -1
        if row < 0:
            self.message.show_message(_("Select a paired device first."))
            return None
        return self.paired_items[row]

    def _changed(self) -> None:
        self.message.show_message(None)
        self.refresh()

    def _failed(self, exc: Exception) -> None:
        self.message.show_message(_message(exc))


class TakeReadingDialog(QDialog):
    """Choose a paired device, press its start button, look at the reading, use it or discard it. A glucometer's
    stored readings can be fetched and the right one picked by its time."""

    def __init__(self, runner: TaskRunner, devices: DeviceService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.devices = runner, devices
        self.reading: Reading | None = None
        self.candidates: list[Reading] = []
        self.setWindowTitle(_("Take from device"))
        self.resize(560, 360)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Device")))
        self.device = QComboBox()
        self.device.setObjectName("device_choice")
        row.addWidget(self.device, 1)
        lay.addLayout(row)
        self.status = QLabel()
        self.status.setObjectName("device_status")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.readings = QTreeWidget()
        self.readings.setObjectName("device_readings")
        self.readings.setRootIsDecorated(False)
        self.readings.setHeaderLabels([_("Measured"), _("Reading")])
        lay.addWidget(self.readings, 1)
        self.message = ErrorLabel(self)
        lay.addWidget(self.message)
        buttons = QDialogButtonBox()
        self.measure_button = buttons.addButton(_("Measure now"), QDialogButtonBox.ButtonRole.ActionRole)
        self.measure_button.setObjectName("measure_now")
        self.stored_button = buttons.addButton(_("Fetch stored readings"), QDialogButtonBox.ButtonRole.ActionRole)
        self.stored_button.setObjectName("fetch_stored")
        self.use_button = buttons.addButton(_("Use this reading"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.setObjectName("use_reading")
        discard = buttons.addButton(_("Discard"), QDialogButtonBox.ButtonRole.RejectRole)
        discard.setObjectName("discard_reading")
        lay.addWidget(buttons)
        self.measure_button.clicked.connect(self.measure)
        self.stored_button.clicked.connect(self.fetch_stored)
        self.use_button.clicked.connect(self.use)
        discard.clicked.connect(self.reject)
        self.device.currentIndexChanged.connect(lambda _i: self._buttons())
        self.paired: list[PairedDevice] = []
        self._busy = False
        self._buttons()
        runner.run(devices.paired, self._show_paired, lambda e: self.message.show_message(_message(e)), lane="read")

    def _show_paired(self, items: list[PairedDevice]) -> None:
        self.paired = items
        for d in items:
            self.device.addItem(f"{d.name} ({_(d.kind)})")
        if not items:
            self.message.show_message(_("No device is paired with this computer yet: pair one on the Devices page."))
        self._buttons()

    def _current(self) -> PairedDevice | None:
        i = self.device.currentIndex()
        return self.paired[i] if 0 <= i < len(self.paired) else None

    def _buttons(self) -> None:
        device = self._current()
        self.measure_button.setEnabled(device is not None and not self._busy)
        from spoke_client.services.devices import ADAPTERS

        stored = device is not None and getattr(ADAPTERS.get(device.adapter), "stored_records", False)
        self.stored_button.setVisible(stored)
        self.stored_button.setEnabled(stored and not self._busy)
        self.use_button.setEnabled(self.readings.currentItem() is not None and not self._busy)

    def measure(self) -> None:
        device = self._current()
        if device is None:
            return
        self._start(_("Press the start button on '{device}'. Waiting for its reading…").format(device=device.name))
        self.runner.run(lambda: [self.devices.take_reading(device)], self._show, self._failed, lane="devices")

    def fetch_stored(self) -> None:
        device = self._current()
        if device is None:
            return
        self._start(_("Fetching the readings kept on '{device}'…").format(device=device.name))
        self.runner.run(lambda: self.devices.stored_readings(device), self._show, self._failed, lane="devices")

    def _start(self, text: str) -> None:
        self._busy = True
        self.message.show_message(None)
        self.status.setText(text)
        self.readings.clear()
        self._buttons()

    def _show(self, readings: list[Reading]) -> None:
        self._busy = False
        self.candidates = readings
        self.readings.clear()
        for r in readings:
            when = when_text(r.measured_at) if r.measured_at else _("now")
            item = QTreeWidgetItem([when, reading_text(r)])
            item.setToolTip(1, reading_text(r))
            self.readings.addTopLevelItem(item)
        if readings:
            self.readings.setCurrentItem(self.readings.topLevelItem(0))
            text = _("Check the reading, then use it or discard it.")
            if len(readings) == 1 and readings[0].status:
                text += "\n" + _("The device reported: {status}.").format(status="; ".join(_(s) for s in readings[0].status))
            self.status.setText(text)
        else:
            self.status.setText(_("The device has no stored readings."))
        self._buttons()

    def _failed(self, exc: Exception) -> None:
        self._busy = False
        self.status.setText("")
        self.message.show_message(_message(exc))
        self._buttons()

    def use(self) -> None:
        item = self.readings.currentItem()
        if item is None:
            return
        self.reading = self.candidates[self.readings.indexOfTopLevelItem(item)]
        self.accept()
