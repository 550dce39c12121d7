"""Review of patient details changed on two computers at once: the home page says so, the dialog settles it."""

from __future__ import annotations

import uuid

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from spoke_client.services.patients import PatientForm
from spoke_client.services.sync_local import LocalSync
from spoke_client.ui.main_window import HomePage
from sync.merge import FIELD_META, PATIENT_GROUPS, stamp_edit
from sync.protocol import HubChange, Op, PullPage


def concurrent_edit_from_another_pc(services, patient, **values):
    """What a pull brings when another PC changed the patient without having seen this PC's last edit: its
    record, whose field stamps are older than ours for the fields we both changed but newer than our base."""
    with services.store.read() as s:
        from spoke_client.db.models import PatientRow

        row = s.get(PatientRow, patient.id)
        base_meta = dict(row.field_hlc)
    other = "0198c0de-0000-7000-8000-00000000beef"
    ours = base_meta["phone"][0]
    theirs = f"{int(ours[:15]) - 1:015d}-00000-{other}"   # just before our edit, after what we both started from
    from sync.payloads import payload_of

    payload = payload_of("patient", patient) | values
    payload[FIELD_META] = stamp_edit({g: [base_meta[g][1] or base_meta[g][0], ""] for g in PATIENT_GROUPS},
                                     list(values), theirs)
    change = HubChange(seq=1, change_id=uuid.uuid4(), entity="patient", entity_id=patient.id, version=2, op=Op.UPSERT,
                       hlc=theirs, device_id=other, payload=payload)
    LocalSync(services.store).inbox.apply(PullPage(changes=[change], next_cursor=1, more=False))


def test_review_and_settle_a_conflict(qtbot, runner, services, admin, screenshot):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                          phone="9000000000"))
    kamla = services.patients.update(admin, kamla.id, PatientForm(name="Kamla Devi", sex="female", age_years=60,
                                                                  village="Rampur", phone="9876543210"), kamla.version)
    concurrent_edit_from_another_pc(services, kamla, phone="9123456780")
    assert services.patients.get(admin, kamla.id).phone == "9876543210", "our later edit wins the merge"

    home = HomePage(runner, services, admin)
    qtbot.addWidget(home)
    home.show()
    button = home.findChild(QPushButton, "review_conflicts")
    qtbot.waitUntil(lambda: button.isVisible(), timeout=5_000)
    assert button.text() == "1 patient detail was changed on two computers at once: review…"

    from spoke_client.ui.conflicts import ConflictsDialog

    dialog = ConflictsDialog(runner, services, admin, home)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.table.topLevelItemCount() == 1, timeout=5_000)
    row = dialog.table.topLevelItem(0)
    assert [row.text(i) for i in range(5)] == ["Kamla Devi", "Phone", "9876543210", "9123456780", "another computer"]
    screenshot(dialog, "13-conflicts")
    qtbot.mouseClick(dialog.other_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.table.topLevelItemCount() == 0, timeout=5_000)
    assert services.patients.get(admin, kamla.id).phone == "9123456780"
    assert services.conflicts.open_count() == 0
    home.refresh()
    qtbot.waitUntil(lambda: not button.isVisible(), timeout=5_000)
