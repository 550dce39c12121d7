"""Real widgets, offscreen: drug allergies on the form and in the case header, the speciality on "Send to the hub",
the doctor's question answered in the case editor, prescriptions with their signature check, the home lists."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PySide6.QtWidgets import QLabel, QTableView

from spoke_client.domain.model import CaseStatus
from spoke_client.services.patients import PatientForm
from spoke_client.ui.case_editor import CaseEditor
from spoke_client.ui.models import PrescriptionTableModel
from spoke_client.ui.patients import PatientDialog
from tests.services.test_consultation import pull, queued
from tests.sync import records
from tests.ui.test_flows import loaded, type_into, window  # noqa: F401  (window: the main window fixture)


@pytest.fixture
def kamla(services, admin):
    return services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                         allergies="Penicillin, sulfa drugs"))


@pytest.fixture
def hub_key(services):
    key = Ed25519PrivateKey.generate()
    services.store.set_setting("hub_public_key", records.public_key_b64(key))
    return key


def editor_for(qtbot, runner, services, user, case_id: str) -> CaseEditor:
    editor = CaseEditor(runner, services.cases, services.drafts, user, case_id, consultation=services.consultation)
    qtbot.addWidget(editor)
    editor.resize(1200, 900)
    editor.show()
    return loaded(qtbot, editor)


def test_allergies_are_registered_refused_when_contradictory_and_edited(qtbot, runner, services, admin, window):
    dialog = PatientDialog(runner, services.patients, admin, window)
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.name, "Kamla Devi")
    dialog.sex.setCurrentIndex(dialog.sex.findData("female"))
    dialog.age_years.setValue(60)
    type_into(qtbot, dialog.allergies, "NKDA, penicillin")
    dialog.save(confirmed_new=False)
    qtbot.waitUntil(lambda: dialog.fields.errors["allergies"].isVisible(), timeout=5_000)
    assert "not both" in dialog.fields.errors["allergies"].text()
    type_into(qtbot, dialog.allergies, " penicillin ,  sulfa drugs ")
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.save(confirmed_new=False)
    assert dialog.patient.allergies == ("penicillin", "sulfa drugs")

    page = window.patients
    window.tabs.setCurrentWidget(page)
    type_into(qtbot, page.search, "kamla")
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=5_000)
    edit = PatientDialog(runner, services.patients, admin, window, patient=page.selected())
    qtbot.addWidget(edit)
    assert edit.windowTitle() == "Edit patient details" and edit.allergies.text() == "penicillin, sulfa drugs"
    assert not edit.dob_known.isChecked() and edit.age_years.value() == 60
    type_into(qtbot, edit.allergies, "penicillin, sulfa drugs, ibuprofen")
    with qtbot.waitSignal(edit.accepted, timeout=10_000):
        edit.save(confirmed_new=False)
    after = services.patients.get(admin, dialog.patient.id)
    assert after.allergies == ("penicillin", "sulfa drugs", "ibuprofen")
    assert after.birth_date == dialog.patient.birth_date, "an estimated birth date is not moved by an edit"


@pytest.mark.parametrize("typed, shown, red", [
    ("Penicillin, sulfa drugs", "ALLERGIC TO: Penicillin, sulfa drugs", True),
    ("NKDA", "No known drug allergies (NKDA)", False),
    ("", "Drug allergies: not recorded", False),
])
def test_the_case_header_shows_the_allergies_where_nobody_can_miss_them(qtbot, runner, services, admin, typed, shown,
                                                                       red, screenshot):
    p = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, allergies=typed))
    editor = editor_for(qtbot, runner, services, admin, services.cases.open_case(admin, p.id).id)
    label = editor.findChild(QLabel, "allergies")
    assert label.isVisible() and label.text().startswith(shown)
    style = label.styleSheet()
    assert ("#c62828" in style and "bold" in style) == red
    if red:
        screenshot(editor, "20-case-allergies")


def test_send_to_the_hub_asks_for_a_speciality(qtbot, runner, services, admin, kamla):
    editor = editor_for(qtbot, runner, services, admin, services.cases.open_case(admin, kamla.id).id)
    offered = [editor.speciality.itemText(i) for i in range(editor.speciality.count())]
    assert offered[:2] == ["Any doctor", "General medicine"] and "Cardiology" in offered and len(offered) == 10
    assert editor.speciality.isVisible() and editor.speciality.currentData() == ""
    editor.complaints.check("Headache")
    type_into(qtbot, editor.consent.name, "Kamla Devi")
    editor.record_consent()
    qtbot.waitUntil(lambda: editor.case.consent is not None, timeout=5_000)
    editor.speciality.setCurrentIndex(editor.speciality.findData("Cardiology"))
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.queue_button.click()
    case = services.cases.get(editor.case.id)
    assert (case.status, case.speciality) == (CaseStatus.QUEUED, "Cardiology")
    assert not editor.speciality.isVisible()


def test_the_doctors_question_is_answered_in_the_case_editor(qtbot, runner, services, admin, kamla, screenshot):
    case = queued(services, admin, kamla)
    pull(services, ("question", "q-1", records.question("q-1", case.id, text="A photo of her feet, please.")))
    editor = editor_for(qtbot, runner, services, admin, case.id)
    assert editor.questions.isVisible() and editor.questions.frame.isVisible()
    assert editor.questions.asks.text() == "The doctor asks: A photo of her feet, please."
    assert "Dr Anil Mehta" in editor.questions.asked.text()
    assert "Information requested" in editor.status_label.text()
    # The complaints stay as sent; new vitals may be added.
    assert not editor.complaints.list.isEnabled() and editor.vital_inputs["pulse_per_min"].isEnabled()
    assert editor.save_button.isEnabled() and editor.cancel_button.isVisible() and not editor.queue_button.isVisible()
    type_into(qtbot, editor.vital_inputs["pulse_per_min"], "96")
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    assert [v.vitals.pulse_per_min for v in services.cases.get(case.id).vitals] == [118, 96]
    screenshot(editor, "21-case-question")
    editor.questions.send.click()
    qtbot.waitUntil(lambda: editor.questions.error.isVisible(), timeout=5_000)
    assert "answer" in editor.questions.error.text()
    editor.questions.answer.setPlainText("Photo added; pulse now 96.")
    with qtbot.waitSignal(editor.answer_sent, timeout=10_000):
        editor.questions.send.click()
    assert services.cases.get(case.id).status == CaseStatus.QUEUED
    assert not editor.questions.frame.isVisible()
    qtbot.waitUntil(lambda: "answered: Photo added" in _texts(editor.questions), timeout=5_000)
    assert "next sync" in editor.notice.text() and not editor.save_button.isEnabled()


def test_a_sync_brings_the_question_into_an_open_editor(qtbot, runner, services, admin, kamla):
    case = queued(services, admin, kamla)
    editor = editor_for(qtbot, runner, services, admin, case.id)
    assert not editor.questions.isVisible()
    pull(services, ("question", "q-1", records.question("q-1", case.id)))
    with qtbot.waitSignal(editor.hub_refreshed, timeout=5_000):
        editor.refresh_from_hub()
    assert editor.questions.frame.isVisible() and editor.case.status == CaseStatus.INFO_REQUESTED


def test_prescriptions_show_their_signature_check_and_a_cancellation(qtbot, runner, services, admin, kamla, hub_key,
                                                                     screenshot):
    case = queued(services, admin, kamla)
    good = records.prescription("rx-1", case.id, kamla.id, hub_key, issued_at="2026-12-01T08:00:00+00:00")
    tampered = records.prescription("rx-2", case.id, kamla.id, hub_key, issued_at="2026-12-01T09:00:00+00:00")
    tampered["medicines"][0]["dose"] = "2 tablets"
    pull(services, ("prescription", "rx-1", good), ("prescription", "rx-2", tampered))
    editor = editor_for(qtbot, runner, services, admin, case.id)
    box = editor.prescriptions
    assert box.isVisible() and [v.prescription.id for v in box.views] == ["rx-2", "rx-1"]
    warned, checked = box.views
    assert warned.signature.text().startswith("WARNING") and "#c62828" in warned.signature.styleSheet()
    assert checked.signature.text().startswith("Signature checked")
    qtbot.waitUntil(lambda: "Diagnosis" in _texts(checked), timeout=5_000)
    text = _texts(checked)
    for expected in ("Dr Anil Mehta, MBBS, MD (Medicine); registration no. UPMC-48213", "Diagnosis: Hypertensive urgency",
                     "1. AMLODIPINE 5 mg tablet: 1 tablet once a day after food, for 30 days (OD); 30 tablets",
                     "Advice: Low-salt diet", "Follow-up on 08 Dec 2026", "Referred to CHC Sidhauli (Cardiology), urgent"):
        assert expected in text, expected
    screenshot(editor, "22-case-prescriptions")
    pull(services, ("prescription", "rx-1", good | {"status": "cancelled", "cancelled_reason": "Wrong dose",
                                                    "cancelled_at": "2026-12-01T10:00:00+00:00"}), version=2)
    with qtbot.waitSignal(editor.hub_refreshed, timeout=5_000):
        editor.refresh_from_hub()
    cancelled = editor.prescriptions.views[1]
    assert cancelled.cancelled.text().startswith("CANCELLED by the hub on") and "Wrong dose" in cancelled.cancelled.text()


def test_home_lists_questions_first_and_prescriptions_newest_first(qtbot, runner, services, admin, kamla, hub_key,
                                                                   window, screenshot):
    asked = queued(services, admin, kamla)
    ravi = services.patients.register(admin, PatientForm(name="Ravi Kumar", sex="male", age_years=30))
    treated = queued(services, admin, ravi)
    pull(services, ("question", "q-1", records.question("q-1", asked.id)),
         ("prescription", "rx-1", records.prescription("rx-1", treated.id, ravi.id, hub_key)))
    home = window.home
    home.refresh()
    qtbot.waitUntil(lambda: home.models["prescriptions"].rowCount() == 1, timeout=5_000)
    assert home.boxes["info_requested"].isVisible()
    assert [c.case_id for c in home.models["info_requested"].items] == [asked.id]
    assert "asks about 1 case" in home.summary.text()
    model = home.models["prescriptions"]
    row = [model.data(model.index(0, c)) for c in range(model.columnCount())]
    assert row[0] == "Ravi Kumar" and row[3] == "Dr Anil Mehta" and row[4] == "1" and row[5] == "Signature checked"
    screenshot(window, "23-home-questions-prescriptions")
    with qtbot.waitSignal(home.open_case, timeout=5_000) as opened:
        home.findChild(QTableView, "prescriptions").doubleClicked.emit(model.index(0, 0))
    assert opened.args == [treated.id]
    editor = loaded(qtbot, window.open_case(treated.id))
    assert editor.prescriptions.isVisible()


def test_the_prescription_model_passes_the_model_tester(qtmodeltester, services, admin, kamla, hub_key):
    case = queued(services, admin, kamla)
    pull(services, ("prescription", "rx-1", records.prescription("rx-1", case.id, kamla.id, hub_key)))
    model = PrescriptionTableModel()
    model.set_items(services.consultation.received())
    qtmodeltester.check(model)


def _texts(widget) -> str:
    return "\n".join(label.text() for label in widget.findChildren(QLabel) if label.isVisibleTo(widget))
