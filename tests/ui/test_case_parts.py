"""The case editor's parts, each on its own: values in, values out, and `changed` only when the user changes
them; and the editor around them while its case loads, fails to load, or goes before it has loaded."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from spoke_client.domain.model import ConsentGiver, ConsentMethod, Patient
from spoke_client.domain.vitals import Vitals
from spoke_client.services.patients import PatientForm
from spoke_client.ui.case_editor import CaseEditor
from spoke_client.ui.case_parts import ComplaintsBox, ConsentBox, NotesBox
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.vitals_form import RedFlagBanner, VitalsBox


def a_patient(services, admin, **form) -> Patient:
    return services.patients.register(admin, PatientForm(**({"name": "Kamla Devi", "sex": "female", "age_years": 60}
                                                             | form)))


def counter(signal) -> list:
    seen: list = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def test_complaints_in_and_out(qtbot):
    box = ComplaintsBox()
    qtbot.addWidget(box)
    changed = counter(box.changed)
    box.set_values(("Fever", "Itching of the scalp"), "since the rains", "3 days")
    assert changed == [], "a fill is not a change by the user"
    assert box.values() == {"complaints": ("Fever",), "complaint_text": "Itching of the scalp, since the rains",
                            "duration": "3 days"}, "a complaint not in the list is written in 'Other'"
    box.check("Cough")
    qtbot.keyClicks(box.duration, " ago")
    assert len(changed) == 1 + len(" ago")
    assert set(box.checked()) == {"Fever", "Cough"}
    submitted = counter(box.submitted)
    qtbot.keyClick(box.other, Qt.Key.Key_Return)
    assert submitted == [()]


def test_notes_say_whether_pregnancy_applies(qtbot):
    box = NotesBox()
    qtbot.addWidget(box)
    box.show()
    pregnant = counter(box.pregnant_changed)
    changed = counter(box.changed)
    box.set_values("cough for a week", "crepitations, right base", True)
    assert changed == [] and pregnant == [(True,)], "the red flags follow a filled value too"
    assert box.values() == {"history": "cough for a week", "examination": "crepitations, right base", "pregnant": True}
    box.pregnant.click()
    assert len(changed) == 1 and pregnant[-1] == (False,)


def test_consent_defaults_follow_the_patient(qtbot, services, admin):
    child = a_patient(services, admin, name="Ravi", sex="male", age_years=4, relative_name="Geeta Devi",
                      relative_relation="S/o")
    adult = a_patient(services, admin)
    box = ConsentBox()
    qtbot.addWidget(box)
    changed, asked = counter(box.changed), counter(box.record_requested)
    box.set_patient(child)
    assert box.values()["giver"] == ConsentGiver.GUARDIAN.value and box.values()["name"] == ""
    other = ConsentBox()
    qtbot.addWidget(other)
    other.set_patient(adult)
    assert other.values()["giver"] == ConsentGiver.PATIENT.value and other.values()["name"] == "Kamla Devi"
    box.set_values({"giver": "guardian", "name": "Geeta Devi", "relation": "mother", "method": "written"})
    assert changed == []
    assert box.values() == {"giver": "guardian", "name": "Geeta Devi", "relation": "mother",
                            "method": ConsentMethod.WRITTEN.value}
    qtbot.keyClicks(box.relation, "!")
    box.button.click()
    assert len(changed) == 1 and asked == [()]
    box.show_consent(None)
    assert box.status.text() == "No consent recorded yet."


def test_vitals_assess_against_the_patient_and_say_what_is_wrong(qtbot, services, admin):
    box = VitalsBox()
    banner = RedFlagBanner()
    qtbot.addWidget(box)
    qtbot.addWidget(banner)
    box.assessed.connect(lambda a: banner.show_assessment(a, box.has_values()))
    changed = counter(box.changed)
    box.set_patient(a_patient(services, admin))
    box.set_vitals(Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118))
    assert changed == []
    assert "Hypertensive crisis" in banner.text() and box.assessment is not None
    assert box.state()["vitals"]["systolic_mmhg"] == "186"
    box.inputs["pulse_per_min"].setText("811")
    assert len(changed) == 1 and box.error is not None and "250" in box.errors["pulse_per_min"].text()
    vitals, error = box.parse()
    assert error is not None and vitals.pulse_per_min is None and vitals.systolic_mmhg == 186, \
        "a wrong value is left out; the rest still raise their flags"
    again = VitalsBox()
    qtbot.addWidget(again)
    again.set_state(box.state())
    assert again.raw() == box.raw(), "what a draft keeps fills the form back as it was"
    assert box.show_problem("spo2_pct", "Enter SpO2 as a percentage.") and not box.show_problem("giver", "x")


def test_the_editor_says_when_its_case_cannot_be_opened(qtbot, runner, services, admin):
    editor = CaseEditor(runner, services.cases, services.drafts, admin, "0198c0de-0000-7000-8000-000000000000")
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitUntil(lambda: editor.message.isVisible(), timeout=10_000)
    assert editor.header.text().startswith("This case could not be opened")
    assert editor.message.text() == "This case does not exist on this computer."
    assert not editor.is_loaded() and not editor.body.isEnabled() and not editor.actions.isEnabled()
    editor.save()   # nothing to save, and no error
    assert not editor.is_loaded()


def test_calls_made_before_the_case_has_loaded_wait_for_it(qtbot, runner, services, admin):
    case = services.cases.open_case(admin, a_patient(services, admin).id)
    editor = CaseEditor(runner, services.cases, services.drafts, admin, case.id)
    qtbot.addWidget(editor)
    assert not editor.is_loaded() and editor.header.text() == "Opening the case…"
    loaded = counter(editor.loaded)
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()   # a caller that does not wait: the save waits for the case, and does not lose it
    assert editor.is_loaded() and loaded == [()]
    qtbot.wait(50)
    assert loaded == [()], "loaded once, though the load's own answer came afterwards"


def test_a_tab_closed_while_its_case_loads_goes_quietly(qtbot, runner, services, admin):
    case = services.cases.open_case(admin, a_patient(services, admin).id)
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.show()
    editor = window.open_case(case.id)
    assert window.tabs.tabText(window.tabs.indexOf(editor)) == "Opening…"
    window.tabs.tabCloseRequested.emit(window.tabs.indexOf(editor))
    qtbot.wait(10)   # the editor is deleted
    assert runner.wait(10_000)
    qtbot.wait(50)   # the load's answer arrives for an editor that is gone: nothing may raise
    assert window.open_case_editors() == []
    assert window.findChildren(QLineEdit, "complaint_text") == []
