"""Pairing and "Take from device" through real widgets, with scripted devices at the bleak boundary."""

from __future__ import annotations

from PySide6.QtCore import Qt

from spoke_client.domain.model import VitalsStatus
from spoke_client.services.devices import DeviceService
from spoke_client.services.patients import PatientForm
from spoke_client.ui.case_editor import CaseEditor
from spoke_client.ui.devices import DevicesPage, TakeReadingDialog
from tests.ui.conftest import runner, screenshot  # noqa: F401 - fixtures


def click(qtbot, button):
    assert button.isEnabled(), button.objectName()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_pair_rename_and_remove(qtbot, runner, services, admin, world, transport, screenshot):
    devices = DeviceService(services.store, transport)
    page = DevicesPage(runner, devices, admin)
    qtbot.addWidget(page)
    page.resize(800, 600)
    page.show()
    click(qtbot, page.scan_button)
    qtbot.waitUntil(lambda: page.nearby.topLevelItemCount() == 3, timeout=10_000)
    assert [page.nearby.topLevelItem(i).text(1) for i in range(3)] == ["blood pressure monitor", "thermometer", "glucometer"]
    page.nearby.setCurrentItem(page.nearby.topLevelItem(0))
    page.pair_selected("BP monitor, room 1")
    qtbot.waitUntil(lambda: page.paired.topLevelItemCount() == 1, timeout=5_000)
    page.nearby.setCurrentItem(page.nearby.topLevelItem(2))
    page.pair_selected("Glucometer")
    qtbot.waitUntil(lambda: page.paired.topLevelItemCount() == 2, timeout=5_000)
    screenshot(page, "30-devices")
    page.paired.setCurrentItem(page.paired.topLevelItem(0))
    page.rename_selected("BP monitor, OPD")
    qtbot.waitUntil(lambda: {page.paired.topLevelItem(i).text(0) for i in range(2)} == {"BP monitor, OPD", "Glucometer"},
                    timeout=5_000)
    page.paired.setCurrentItem(page.paired.topLevelItem(1))
    click(qtbot, page.remove_button)
    qtbot.waitUntil(lambda: page.paired.topLevelItemCount() == 1, timeout=5_000)


def test_take_from_device_fills_the_form_and_saves_it_marked(qtbot, runner, services, admin, world, transport, screenshot):
    devices = DeviceService(services.store, transport)
    found = {d.kind: d for d in devices.scan()}
    devices.pair(admin, found["blood pressure monitor"], "BP monitor, room 1")
    devices.pair(admin, found["glucometer"], "Glucometer")
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    case = services.cases.open_case(admin, kamla.id)
    editor = CaseEditor(runner, services.cases, services.drafts, admin, case.id, devices=devices)
    qtbot.addWidget(editor)
    editor.resize(1200, 800)
    editor.show()
    assert editor.device_button.isVisible()

    dialog = TakeReadingDialog(runner, devices, editor)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.device.count() == 2, timeout=5_000)
    dialog.device.setCurrentIndex([i for i in range(2) if dialog.device.itemText(i).startswith("BP")][0])
    assert not dialog.stored_button.isVisible(), "a BP monitor keeps no readings to fetch here"
    click(qtbot, dialog.measure_button)
    qtbot.waitUntil(lambda: dialog.readings.topLevelItemCount() == 1, timeout=10_000)
    assert "BP systolic 138 mmHg" in dialog.readings.topLevelItem(0).text(1)
    assert "irregular pulse" in dialog.readings.topLevelItem(0).text(1)
    screenshot(dialog, "31-take-from-device")
    click(qtbot, dialog.use_button)
    editor.use_reading(dialog.reading)
    assert editor.vital_inputs["systolic_mmhg"].text() == "138" and editor.vital_inputs["pulse_per_min"].text() == "60"
    assert editor.device_label.text().startswith("Measured by BP monitor, room 1: body movement; cuff too loose")
    assert editor.banner.text(), "red flags are assessed from device readings like typed ones"

    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    [rec] = [v for v in services.cases.get(case.id).vitals if v.status == VitalsStatus.FINAL]
    assert rec.source == "BP monitor, room 1" and "irregular pulse" in rec.device_status
    assert rec.vitals.systolic_mmhg == 138


def test_an_edited_device_value_is_no_longer_marked(qtbot, runner, services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    bp = devices.pair(admin, next(d for d in devices.scan() if d.kind == "blood pressure monitor"), "BP monitor")
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    case = services.cases.open_case(admin, kamla.id)
    editor = CaseEditor(runner, services.cases, services.drafts, admin, case.id, devices=devices)
    qtbot.addWidget(editor)
    editor.use_reading(devices.take_reading(bp))
    editor.vital_inputs["systolic_mmhg"].setText("140")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    [rec] = services.cases.get(case.id).vitals
    assert rec.source == "manual" and rec.device_status == ()


def test_stored_glucose_readings_are_picked_by_time(qtbot, runner, services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    devices.pair(admin, next(d for d in devices.scan() if d.kind == "glucometer"), "Glucometer")
    dialog = TakeReadingDialog(runner, devices)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.device.count() == 1, timeout=5_000)
    assert dialog.stored_button.isVisible()
    click(qtbot, dialog.stored_button)
    qtbot.waitUntil(lambda: dialog.readings.topLevelItemCount() == 3, timeout=10_000)
    assert dialog.readings.topLevelItem(0).text(0).endswith("13:00")
    dialog.readings.setCurrentItem(dialog.readings.topLevelItem(1))
    click(qtbot, dialog.use_button)
    assert dialog.reading.vitals == {"glucose_mg_dl": 182}


def test_a_vanishing_device_fills_nothing_and_says_so(qtbot, runner, services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    devices.pair(admin, next(d for d in devices.scan() if d.kind == "blood pressure monitor"), "BP monitor")
    world["AA:00:00:00:00:01"].behaviour = "vanish"
    dialog = TakeReadingDialog(runner, devices)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.device.count() == 1, timeout=5_000)
    click(qtbot, dialog.measure_button)
    qtbot.waitUntil(lambda: dialog.message.isVisibleTo(dialog), timeout=10_000)
    assert "disconnected before it sent a reading; nothing was filled in" in dialog.message.text()
    assert dialog.readings.topLevelItemCount() == 0 and not dialog.use_button.isEnabled()
