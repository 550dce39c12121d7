"""The case editor's attachments through real widgets: a photo from the camera (a video file through OpenCV),
a recording from the microphone (PulseAudio's sine source), a document, labels, playback and removal."""

from __future__ import annotations

from PySide6.QtCore import Qt

from spoke_client.domain.model import AttachmentKind
from spoke_client.services.patients import PatientForm
from spoke_client.ui.attachments import AttachmentsPanel, AudioDialog, PhotoDialog
from spoke_client.ui.case_editor import CaseEditor
from tests.ui.conftest import runner, screenshot  # noqa: F401 - fixtures


def draft_case(services, admin):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    return services.cases.open_case(admin, kamla.id)


def click(qtbot, button):
    assert button.isEnabled(), button.objectName()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_photo_capture_retake_label_save_and_release(qtbot, runner, services, admin, camera_video, screenshot):
    case = draft_case(services, admin)
    dialog = PhotoDialog(runner, services.attachments, admin, case.id)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.source.setEditText(str(camera_video))
    click(qtbot, dialog.start_button)
    qtbot.waitUntil(lambda: dialog.view.pixmap() is not None and not dialog.view.pixmap().isNull(), timeout=10_000)
    qtbot.waitUntil(lambda: dialog.latest is not None, timeout=10_000)
    click(qtbot, dialog.capture_button)
    assert dialog.captured is not None and not dialog.capture_button.isEnabled()
    click(qtbot, dialog.retake_button)
    assert dialog.captured is None
    click(qtbot, dialog.capture_button)
    dialog.label.setText("rash, left forearm")
    screenshot(dialog, "20-photo-dialog")
    worker = dialog.worker
    with qtbot.waitSignal(dialog.accepted, timeout=15_000):
        click(qtbot, dialog.save_button)
    assert worker.isFinished() and dialog.worker is None, "closing released the camera"
    photo = dialog.saved
    assert (photo.kind, photo.label, photo.width_px, photo.height_px) == (AttachmentKind.PHOTO, "rash, left forearm", 1600, 900)
    assert photo.size_bytes < 400_000
    assert services.store.get_setting("camera_source") == str(camera_video), "the camera is remembered"


def test_no_camera_says_so_and_nothing_is_saved(qtbot, runner, services, admin):
    case = draft_case(services, admin)
    dialog = PhotoDialog(runner, services.attachments, admin, case.id)
    qtbot.addWidget(dialog)
    dialog.source.setEditText("7")
    click(qtbot, dialog.start_button)
    qtbot.waitUntil(lambda: dialog.message.isVisibleTo(dialog), timeout=10_000)
    assert "No picture from camera 7" in dialog.message.text()
    assert not dialog.capture_button.isEnabled() and not dialog.save_button.isEnabled()
    dialog.reject()
    assert services.attachments.list(case.id) == []


def test_record_play_keep(qtbot, runner, services, admin, pulse_sine):
    case = draft_case(services, admin)
    dialog = AudioDialog(runner, services.attachments, admin, case.id)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.device.count() > 0
    click(qtbot, dialog.record_button)
    qtbot.waitUntil(lambda: dialog.timer_label.text() == "0:02", timeout=20_000)
    assert dialog.meter.value() > 10, "the level meter moves with the sound"
    click(qtbot, dialog.stop_button)
    assert dialog.samples is not None and len(dialog.samples) >= 2 * 48_000
    click(qtbot, dialog.play_button)
    dialog.label.setText("cough")
    with qtbot.waitSignal(dialog.accepted, timeout=15_000):
        click(qtbot, dialog.keep_button)
    rec = dialog.saved
    assert (rec.kind, rec.mime, rec.label) == (AttachmentKind.AUDIO, "audio/ogg", "cough") and rec.duration_ms >= 2000


def test_the_panel_lists_adds_relabels_and_removes(qtbot, runner, services, admin, camera_video, tmp_path, screenshot):
    import cv2
    import numpy as np

    case = draft_case(services, admin)
    editor = CaseEditor(runner, services.cases, services.drafts, admin, case.id, attachments=services.attachments)
    qtbot.addWidget(editor)
    editor.resize(1200, 800)
    editor.show()
    panel = editor.findChild(AttachmentsPanel)
    assert panel is not None
    report = tmp_path / "cbc-report.png"
    ok, png = cv2.imencode(".png", 255 * np.ones((300, 200, 3), "uint8"))
    report.write_bytes(png.tobytes())
    panel.attach_file(str(report))
    qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=10_000)
    assert panel.list.item(0).text() == "cbc-report"
    bad = tmp_path / "notes.txt"
    bad.write_text("not a document")
    panel.attach_file(str(bad))
    qtbot.waitUntil(lambda: panel.message.isVisibleTo(panel), timeout=10_000)
    assert "Only pictures (JPEG, PNG) and PDF" in panel.message.text()
    screenshot(panel, "21-case-attachments")
    panel.list.setCurrentRow(0)
    a = panel.items[0]
    runner.run(lambda: services.attachments.relabel(admin, a.id, "CBC report, 20 Nov"), lambda _x: panel.refresh())
    qtbot.waitUntil(lambda: panel.list.count() == 1 and panel.list.item(0).text() == "CBC report, 20 Nov", timeout=10_000)
    panel.list.setCurrentRow(0)
    panel.remove_selected(reason="")
    qtbot.waitUntil(lambda: panel.list.count() == 0, timeout=10_000)
    assert services.attachments.list(case.id, include_withdrawn=True) == [], "a draft's attachment is deleted"


def test_an_administrator_sets_photo_size_and_recording_length(qtbot, runner, services, admin, camera_video):
    from spoke_client.ui.main_window import UsersPage

    page = UsersPage(runner, services, admin)
    qtbot.addWidget(page)
    page.photo_side.setValue(1200)
    page.audio_max.setValue(45)
    click(qtbot, page.media_save)
    qtbot.waitUntil(lambda: page.message.text().startswith("Saved"), timeout=5_000)
    case = draft_case(services, admin)
    dialog = PhotoDialog(runner, services.attachments, admin, case.id)
    qtbot.addWidget(dialog)
    dialog.source.setEditText(str(camera_video))
    click(qtbot, dialog.start_button)
    qtbot.waitUntil(lambda: dialog.latest is not None, timeout=10_000)
    click(qtbot, dialog.capture_button)
    with qtbot.waitSignal(dialog.accepted, timeout=15_000):
        click(qtbot, dialog.save_button)
    assert (dialog.saved.width_px, dialog.saved.height_px) == (1200, 675)
    audio_dialog = AudioDialog(runner, services.attachments, admin, case.id)
    qtbot.addWidget(audio_dialog)
    assert audio_dialog.max_seconds == 45
