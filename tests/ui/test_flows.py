"""Real widgets, offscreen: set-up, sign-in, register and find a patient, vitals with red flags, save, home."""

from __future__ import annotations


import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit

from spoke_client.domain.model import CaseStatus, ConsentGiver, ConsentMethod
from spoke_client.services.cases import COMMON_COMPLAINTS
from spoke_client.services.patients import PatientForm
from spoke_client.ui.case_editor import CaseEditor
from spoke_client.ui.login import LockDialog, LoginDialog, SetupDialog
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.models import CaseTableModel, PatientTableModel
from spoke_client.ui.patients import DuplicateDialog, PatientDialog
from tests.conftest import ADMIN_PASSWORD


def type_into(qtbot, widget: QLineEdit, text: str) -> None:
    widget.setFocus()
    widget.clear()
    qtbot.keyClicks(widget, text)


def test_first_run_setup_then_sign_in(qtbot, runner, services, screenshot):
    dialog = SetupDialog(runner, services.auth)
    qtbot.addWidget(dialog)
    dialog.show()
    for name, value in (("name", "HWC Rampur"), ("hwc_id", "HWC-UP-0042"), ("district", "Sitapur"),
                        ("state", "Uttar Pradesh"), ("username", "admin"), ("full_name", "Asha Admin"),
                        ("password", "short"), ("confirm", "short")):
        type_into(qtbot, dialog.findChild(QLineEdit, name), value)
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.findChild(QLabel, "error_password").isVisible())
    assert "8 characters" in dialog.findChild(QLabel, "error_password").text()
    screenshot(dialog, "01-setup-refused")
    type_into(qtbot, dialog.password, ADMIN_PASSWORD)
    type_into(qtbot, dialog.confirm, ADMIN_PASSWORD)
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.submit()
    assert not services.auth.needs_setup()

    login = LoginDialog(runner, services.auth, "HWC Rampur (HWC-UP-0042)")
    qtbot.addWidget(login)
    login.show()
    type_into(qtbot, login.username, "admin")
    type_into(qtbot, login.password, "wrong-password")
    qtbot.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: login.message.isVisible())
    assert "4 tries left" in login.message.text() and login.password.text() == ""
    screenshot(login, "02-login-wrong-password")
    type_into(qtbot, login.password, ADMIN_PASSWORD)
    with qtbot.waitSignal(login.accepted, timeout=10_000):
        qtbot.keyClick(login.password, Qt.Key.Key_Return)  # keyboard only: Enter signs in
    assert login.result_value.username == "admin"


@pytest.fixture
def window(qtbot, runner, services, admin):
    w = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(w)
    w.show()
    return w


def test_register_a_patient_then_find_her_again(qtbot, runner, services, admin, window, screenshot):
    dialog = PatientDialog(runner, services.patients, admin, window)
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.name, "Kamla Devi")
    dialog.sex.setCurrentIndex(dialog.sex.findData("female"))
    dialog.age_years.setValue(60)
    dialog.relation.setCurrentIndex(dialog.relation.findData("W/o"))
    type_into(qtbot, dialog.relative_name, "Ramesh Yadav")
    type_into(qtbot, dialog.village, "Rampur")
    type_into(qtbot, dialog.phone, "98765")
    type_into(qtbot, dialog.abha_number, "91-1234-5678-9012")
    dialog.abha_number.editingFinished.emit()
    assert "check digit" in dialog.fields.errors["abha_number"].text()
    dialog.save(confirmed_new=False)
    qtbot.waitUntil(lambda: dialog.fields.errors["phone"].isVisible())
    assert "10 digits" in dialog.fields.errors["phone"].text()
    screenshot(dialog, "03-registration-refused")
    type_into(qtbot, dialog.phone, "")
    type_into(qtbot, dialog.abha_number, "")
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.save(confirmed_new=False)
    assert dialog.patient.name == "Kamla Devi" and dialog.patient.birth_date_approximate

    window.tabs.setCurrentWidget(window.patients)
    type_into(qtbot, window.patients.search, "kamla ramp")
    qtbot.waitUntil(lambda: window.patients.model.rowCount() == 1, timeout=5_000)
    assert window.patients.model.item(0).patient.id == dialog.patient.id
    screenshot(window, "04-patient-search")


def test_duplicate_warning_lists_the_closest_first(qtbot, runner, services, admin):
    services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=58, village="Rampur",
                                                  relative_name="Ramesh Yadav", relative_relation="W/o"))
    services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=34, village="Rampur",
                                                  relative_name="Suresh Pal", relative_relation="W/o"), confirmed_new=True)
    from spoke_client.services.patients import LikelyDuplicate

    with pytest.raises(LikelyDuplicate) as e:
        services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                      relative_name="Mohan Lal", relative_relation="W/o"))
    dup = DuplicateDialog(e.value)
    qtbot.addWidget(dup)
    dup.show()
    assert dup.list.count() == 2 and "58" in dup.list.item(0).text()
    with qtbot.waitSignal(dup.accepted):
        dup.new_button.click()
    assert dup.chosen is None


def loaded(qtbot, editor: CaseEditor) -> CaseEditor:
    """The editor opens its case on the write lane; the form is there once it has."""
    qtbot.waitUntil(editor.is_loaded, timeout=10_000)
    return editor


def open_editor(qtbot, runner, services, user, patient) -> CaseEditor:
    case = services.cases.open_case(user, patient.id)
    editor = CaseEditor(runner, services.cases, services.drafts, user, case.id)
    qtbot.addWidget(editor)
    editor.resize(1100, 900)
    editor.show()
    return loaded(qtbot, editor)


def test_vitals_red_flags_appear_as_typed_and_a_wrong_value_is_refused(qtbot, runner, services, admin, window, screenshot):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                          relative_name="Mohan Lal", relative_relation="W/o"))
    editor = loaded(qtbot, window.open_case(services.cases.open_case(admin, kamla.id).id))
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Kamla Devi"
    offered = editor.complaints.list
    assert [offered.item(i).data(Qt.ItemDataRole.UserRole) for i in range(offered.count())] == list(COMMON_COMPLAINTS), \
        "every common complaint is offered, in order"
    assert editor.complaints.checked() == (), "a new case has none ticked"
    editor.complaints.check("Headache")
    v, errors = editor.vitals.inputs, editor.vitals.errors
    type_into(qtbot, v["systolic_mmhg"], "186")
    type_into(qtbot, v["diastolic_mmhg"], "122")
    type_into(qtbot, v["pulse_per_min"], "811")
    assert errors["pulse_per_min"].isVisible()
    assert "250" in errors["pulse_per_min"].text()
    assert "Hypertensive crisis" in editor.banner.text()  # the other values still raise their flags
    qtbot.keyClick(v["pulse_per_min"], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: editor.message.isVisible())
    assert services.cases.get(editor.case.id).vitals == ()
    type_into(qtbot, v["pulse_per_min"], "118")
    type_into(qtbot, v["spo2_pct"], "93")
    type_into(qtbot, v["respiratory_rate_per_min"], "22")
    type_into(qtbot, v["temperature_c"], "37.2")
    assert not errors["pulse_per_min"].isVisible()
    assert not editor.message.isVisible(), "the refusal goes once the value is right"
    assert "Hypertensive crisis" in editor.banner.text()
    qtbot.wait(50)  # let the posted layout requests run, as the event loop does between keystrokes
    assert editor.banner.height() >= editor.banner.sizeHint().height(), "the red-flag banner must not be clipped"
    assert editor.vitals.news2.text().startswith("NEWS2 score:")
    assert editor.assessment.news2 >= 5
    screenshot(window, "05-case-red-flags")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        qtbot.keyClick(v["spo2_pct"], Qt.Key.Key_Return)  # Enter saves
    case = services.cases.get(editor.case.id)
    assert len(case.vitals) == 1 and case.vitals[0].vitals.pulse_per_min == 118 and case.complaints == ("Headache",)
    assert editor.vitals_history.count() == 1
    window.tabs.setCurrentWidget(window.home)
    qtbot.waitUntil(lambda: window.home.models["today"].rowCount() == 1, timeout=5_000)
    assert window.home.models["today"].item(0).priority == 3
    screenshot(window, "06-home")


def test_correcting_vitals_keeps_the_old_set_struck_through(qtbot, runner, services, admin):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    editor = open_editor(qtbot, runner, services, admin, kamla)
    type_into(qtbot, editor.vitals.inputs["systolic_mmhg"], "168")
    type_into(qtbot, editor.vitals.inputs["diastolic_mmhg"], "100")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    editor.vitals_history.select(0)
    editor.start_correction()
    type_into(qtbot, editor.vitals.inputs["systolic_mmhg"], "186")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    assert editor.vitals_history.count() == 2
    first = editor.vitals_history.list.item(0)
    assert first.font().strikeOut() and "entered in error" in first.text()
    assert [v.vitals.systolic_mmhg for v in services.cases.get(editor.case.id).vitals] == [168, 186]


def test_a_child_gets_fast_breathing_not_news2(qtbot, runner, services, admin, screenshot):
    ravi = services.patients.register(admin, PatientForm(name="Ravi", sex="male", age_years=0, age_months=11,
                                                         relative_name="Geeta Devi", relative_relation="S/o"))
    editor = open_editor(qtbot, runner, services, admin, ravi)
    editor.complaints.check("Cough")
    type_into(qtbot, editor.vitals.inputs["respiratory_rate_per_min"], "54")
    assert "Fast breathing for age (>= 50/min at 2-12 months)" in editor.banner.text()
    assert "weight" in editor.banner.text().lower()
    assert "NEWS2" in editor.vitals.news2.text() and "16" in editor.vitals.news2.text()
    screenshot(editor, "07-child-fast-breathing")
    # consent must come from the mother
    consent = editor.consent
    assert consent.giver.currentData() == ConsentGiver.GUARDIAN.value, "a child's consent is the adult's by default"
    type_into(qtbot, consent.name, "Geeta Devi")
    type_into(qtbot, consent.relation, "mother")
    consent.method.setCurrentIndex(consent.method.findData(ConsentMethod.VERBAL.value))
    editor.record_consent()
    qtbot.waitUntil(lambda: "Geeta Devi (mother)" in consent.status.text(), timeout=5_000)
    type_into(qtbot, editor.vitals.inputs["weight_kg"], "8.5")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.queue_button.click()
    assert services.cases.get(editor.case.id).status == CaseStatus.QUEUED
    assert not editor.save_button.isEnabled()


def test_temperature_in_fahrenheit_is_stored_in_celsius(qtbot, runner, services, admin):
    p = services.patients.register(admin, PatientForm(name="Anil Kumar", sex="male", age_years=40))
    editor = open_editor(qtbot, runner, services, admin, p)
    editor.vitals.temp_unit.setCurrentIndex(editor.vitals.temp_unit.findData("F"))
    type_into(qtbot, editor.vitals.inputs["temperature_c"], "102.2")
    assert "39.0" in editor.vitals.errors["temperature_c"].text()
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    assert services.cases.get(editor.case.id).vitals[0].vitals.temperature_c == 39.0


def test_draft_is_autosaved_and_restored(qtbot, runner, services, admin):
    p = services.patients.register(admin, PatientForm(name="Anil Kumar", sex="male", age_years=40))
    editor = open_editor(qtbot, runner, services, admin, p)
    with qtbot.waitSignal(editor.draft_saved, timeout=5_000):
        type_into(qtbot, editor.complaints.other, "pain in the left knee")
        type_into(qtbot, editor.vitals.inputs["pulse_per_min"], "88")
    again = CaseEditor(runner, services.cases, services.drafts, admin, editor.case.id)
    qtbot.addWidget(again)
    loaded(qtbot, again)
    assert again.complaints.values()["complaint_text"] == "pain in the left knee"
    assert again.vitals.state()["vitals"]["pulse_per_min"] == "88"
    assert again.notice.text().startswith("Unsaved changes")


def test_users_page_adds_a_paramedic(qtbot, runner, services, admin, window, screenshot):
    from spoke_client.ui.main_window import AddUserDialog

    dialog = AddUserDialog(runner, services, admin, window)
    qtbot.addWidget(dialog)
    type_into(qtbot, dialog.username, "sunita")
    type_into(qtbot, dialog.full_name, "Sunita Yadav")
    type_into(qtbot, dialog.password, "sunita-pass-1")
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.submit()
    window.users.refresh()
    qtbot.waitUntil(lambda: window.users.model.rowCount() == 2, timeout=5_000)
    window.tabs.setCurrentWidget(window.users)
    window.users.idle_minutes.setValue(5)
    window.users.idle_save.click()
    qtbot.waitUntil(lambda: "Saved" in window.users.message.text(), timeout=5_000)
    assert services.auth.idle_lock_minutes() == 5
    screenshot(window, "08-users")


def test_idle_lock_asks_for_the_password(qtbot, runner, services, admin):
    from spoke_client.app import IdleWatcher

    watcher = IdleWatcher(0.2)
    with qtbot.waitSignal(watcher.idle, timeout=3_000):
        pass
    lock = LockDialog(runner, services.auth, admin)
    qtbot.addWidget(lock)
    lock.show()
    type_into(qtbot, lock.password, "nope-nope")
    lock.submit()
    qtbot.waitUntil(lambda: lock.message.isVisible(), timeout=5_000)
    type_into(qtbot, lock.password, ADMIN_PASSWORD)
    with qtbot.waitSignal(lock.accepted, timeout=10_000):
        lock.submit()
    watcher.resume()
    assert not watcher.paused


def test_item_models_pass_the_model_tester(qtmodeltester, services, admin):
    p = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    services.cases.open_case(admin, p.id)
    cases = CaseTableModel()
    cases.set_items(services.cases.home().today)
    qtmodeltester.check(cases)
    patients = PatientTableModel()
    patients.set_items(services.patients.search("kamla"))
    qtmodeltester.check(patients)


def test_send_without_consent_saves_once_and_says_why(qtbot, runner, services, admin):
    p = services.patients.register(admin, PatientForm(name="Anil Kumar", sex="male", age_years=40))
    editor = open_editor(qtbot, runner, services, admin, p)
    editor.complaints.check("Fever")
    type_into(qtbot, editor.vitals.inputs["pulse_per_min"], "96")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.queue_button.click()
    qtbot.waitUntil(lambda: editor.consent.error.isVisible(), timeout=5_000)
    assert "consent" in editor.consent.error.text()
    assert services.cases.get(editor.case.id).status == CaseStatus.READY
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    assert len(services.cases.get(editor.case.id).vitals) == 1, "the same vitals must not be recorded twice"
