"""The case editor's attachments through real widgets: a photo from the camera (a video file through OpenCV),
a recording from the microphone (PulseAudio's sine source), a document, labels, playback and removal. A microphone
lost mid-recording (the sound server killed or frozen) is reported while the window stays responsive, and the
sound so far can be kept; a microphone is found again once the sound server is back."""

from __future__ import annotations

import signal
import time

import pytest
from PySide6.QtCore import Qt, QTimer

from spoke_client.domain.model import AttachmentKind
from spoke_client.services import audio
from spoke_client.services.patients import PatientForm
from spoke_client.ui.attachments import AttachmentsPanel, AudioDialog, PhotoDialog
from spoke_client.ui.case_editor import CaseEditor
from tests.media.conftest import freeze_pulse, restart_pulse, start_pulse, stop_pulse, wait_for_released_streams
from tests.ui.conftest import runner, screenshot  # noqa: F401 - fixtures

LOST = ("The microphone stopped working during the recording (unplugged, or the sound system stopped). What was "
        "recorded before that is kept.")
NO_MICROPHONE = "No microphone was found. Plug one in and open this window again."


def draft_case(services, admin):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    return services.cases.open_case(admin, kamla.id)


def click(qtbot, button):
    assert button.isEnabled(), button.objectName()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


class EventLoopWatch:
    """How long the UI thread went without running its event loop: a frozen window shows as a long gap."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self._last = time.monotonic()
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.longest_s = max(self.longest_s, now - self._last)
        self._last = now

    def __enter__(self) -> "EventLoopWatch":
        self._last = time.monotonic()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._tick()
        self._timer.stop()


def recording_dialog(qtbot, runner, services, admin, case):
    dialog = AudioDialog(runner, services.attachments, admin, case.id)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def start_recording(qtbot, dialog, seconds: float) -> None:
    qtbot.waitUntil(dialog.record_button.isEnabled, timeout=10_000)   # microphones listed off the UI thread
    click(qtbot, dialog.record_button)
    qtbot.waitUntil(lambda: dialog.recorder is not None and dialog.recorder.seconds() >= seconds, timeout=20_000)


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
    assert dialog.worker is None
    qtbot.waitUntil(worker.isFinished, timeout=5_000)   # closing released the camera (without waiting for it)
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
    dialog = recording_dialog(qtbot, runner, services, admin, case)
    qtbot.waitUntil(lambda: dialog.device.count() > 0, timeout=10_000)
    assert not dialog.message.isVisibleTo(dialog)
    start_recording(qtbot, dialog, 2.0)
    qtbot.waitUntil(lambda: dialog.timer_label.text() != "0:00" and dialog.meter.value() > 10, timeout=10_000)
    click(qtbot, dialog.stop_button)
    qtbot.waitUntil(lambda: dialog.samples is not None, timeout=10_000)
    assert len(dialog.samples) >= 2 * 48_000 and not dialog.message.isVisibleTo(dialog)
    click(qtbot, dialog.play_button)
    qtbot.waitUntil(lambda: dialog.player.playing, timeout=10_000)
    dialog.label.setText("cough")
    with qtbot.waitSignal(dialog.accepted, timeout=15_000):
        click(qtbot, dialog.keep_button)
    rec = dialog.saved
    assert (rec.kind, rec.mime, rec.label) == (AttachmentKind.AUDIO, "audio/ogg", "cough") and rec.duration_ms >= 2000


def test_a_microphone_is_found_again_once_the_sound_server_is_back(qtbot, runner, services, admin, pulse_runtime):
    """Why the recording window once found no microphone: it listed them from PortAudio's list, made once when
    PortAudio started; a sound server that was not up then (or restarted since) stayed missing. It asks anew."""
    wait_for_released_streams()
    case = draft_case(services, admin)
    served = {d.name for d in audio.list_input_devices(refresh=True)}
    assert served
    stop_pulse(pulse_runtime)
    try:
        gone = recording_dialog(qtbot, runner, services, admin, case)
        qtbot.waitUntil(lambda: not gone.loading, timeout=10_000)
        names = {gone.device.itemText(i) for i in range(gone.device.count())}
        assert not names & served, "the server's microphones are not offered while it is gone"
        if not names:
            assert gone.message.isVisibleTo(gone) and gone.message.text() == NO_MICROPHONE
            assert not gone.record_button.isEnabled()
        gone.reject()
    finally:
        start_pulse(pulse_runtime)
    back = recording_dialog(qtbot, runner, services, admin, case)
    start_recording(qtbot, back, 1.0)   # opening the window again finds it, and it records
    assert {back.device.itemText(i) for i in range(back.device.count())} >= served
    click(qtbot, back.stop_button)
    qtbot.waitUntil(lambda: back.samples is not None, timeout=10_000)
    assert len(back.samples) >= 48_000 and not back.message.isVisibleTo(back)


@pytest.mark.solo
def test_a_microphone_lost_mid_recording_is_reported_and_what_was_recorded_kept(qtbot, runner, services, admin,
                                                                                 pulse_runtime, screenshot):
    """The sound server killed under a running recording: the window stops by itself, says so in plain words, and
    the sound so far can be kept."""
    case = draft_case(services, admin)
    dialog = recording_dialog(qtbot, runner, services, admin, case)
    start_recording(qtbot, dialog, 1.5)
    stop_pulse(pulse_runtime, signal.SIGKILL)
    try:
        with EventLoopWatch() as watch:
            qtbot.waitUntil(lambda: dialog.samples is not None, timeout=25_000)   # 5 s of silence, then the deadline
    finally:
        start_pulse(pulse_runtime)
    assert watch.longest_s < 1.0, f"the window froze for {watch.longest_s:.1f} s"
    assert dialog.message.isVisibleTo(dialog) and dialog.message.text() == LOST
    assert len(dialog.samples) >= int(1.5 * 48_000)
    screenshot(dialog, "22-microphone-lost")
    dialog.label.setText("cough")
    with qtbot.waitSignal(dialog.accepted, timeout=15_000):
        click(qtbot, dialog.keep_button)
    assert dialog.saved.duration_ms >= 1500, "the sound recorded before the loss is saved"


@pytest.mark.solo
def test_a_frozen_sound_server_never_freezes_the_window(qtbot, runner, services, admin, pulse_runtime):
    """Frozen (SIGSTOP), the server answers nothing and PortAudio's stop waits for ever: the window notices the
    silence, gives up on the stream after its deadline, stays responsive throughout and keeps the sound so far."""
    wait_for_released_streams()
    case = draft_case(services, admin)
    dialog = recording_dialog(qtbot, runner, services, admin, case)
    start_recording(qtbot, dialog, 1.5)
    freeze_pulse(pulse_runtime)
    try:
        with EventLoopWatch() as watch:
            qtbot.waitUntil(lambda: dialog.samples is not None, timeout=25_000)   # 5 s of silence, then the deadline
    finally:
        restart_pulse(pulse_runtime)   # the abandoned stop returns once the frozen server is gone
    assert watch.longest_s < 1.0, f"the window froze for {watch.longest_s:.1f} s"
    assert dialog.message.text() == LOST and len(dialog.samples) >= int(1.5 * 48_000)
    assert dialog.keep_button.isEnabled() and dialog.record_button.isEnabled()
    wait_for_released_streams()


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


def test_the_panel_plays_a_recording(qtbot, runner, services, admin, pulse_sine):
    import numpy as np

    case = draft_case(services, admin)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)).astype(np.float32)
    rec = audio.encode_opus(tone)
    services.attachments.attach(admin, case.id, AttachmentKind.AUDIO, rec.ogg, "audio/ogg", "cough",
                                duration_ms=rec.duration_ms)
    panel = AttachmentsPanel(runner, services.attachments, admin, case.id)
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=10_000)
    assert panel.list.item(0).text() == "cough (1 s)"
    panel.list.setCurrentRow(0)
    click(qtbot, panel.open_button)   # the file read and decoded, then played, all off the UI thread
    qtbot.waitUntil(lambda: panel.player.playing, timeout=10_000)
    assert not panel.message.isVisibleTo(panel)
    panel.player.stop()


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
    qtbot.waitUntil(lambda: audio_dialog.max_seconds == 45, timeout=5_000)   # read off the UI thread
    assert audio_dialog.limit_label.text() == "At most 45 seconds."
