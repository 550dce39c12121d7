"""Photos, recordings and documents on a case: the panel in the case editor, the camera dialog (live preview in a
worker thread) and the recording dialog (level meter and timer)."""

from __future__ import annotations

import logging
import mimetypes
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QThread, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import Attachment, AttachmentKind, User
from spoke_client.i18n import _
from spoke_client.services import audio
from spoke_client.services.camera import Camera, encode_photo, list_cameras
from spoke_client.services.media import AttachmentService
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel

log = logging.getLogger(__name__)

THUMB = 96


def _message(exc: Exception) -> str:
    if isinstance(exc, SpokeError):
        return exc.message
    return _("Something went wrong: {e}").format(e=exc)


def to_qimage(frame: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class CameraWorker(QThread):
    """Opens the camera and reads frames until stopped, off the UI thread; the camera is released on exit. It has no
    parent: stopping never waits for it (a read from a stalled IP camera can take many seconds), and it is kept
    alive until it has ended (see _ending)."""

    frame = Signal(object, object)     # (worker, the newest frame, numpy BGR), for capture
    preview = Signal(object, QImage)   # (worker, the frame scaled for the screen)
    failed = Signal(object, str)

    def __init__(self, source: str, after: CameraWorker | None = None) -> None:
        super().__init__()
        self.source = source
        self._after = after      # the previous worker: the same camera opens only once that one let it go
        self._stop = False

    def stop(self) -> None:
        """Asks the thread to end and returns at once; the camera is released when its current read returns."""
        self._stop = True

    def run(self) -> None:
        if self._after is not None:
            self._after.wait(10_000)
            self._after = None
        if self._stop:
            return
        try:
            with Camera(self.source) as cam:
                while not self._stop:
                    started = time.monotonic()
                    frame = cam.read()
                    self.frame.emit(self, frame)
                    image = to_qimage(frame).scaled(640, 480, Qt.AspectRatioMode.KeepAspectRatio,
                                                    Qt.TransformationMode.SmoothTransformation)
                    self.preview.emit(self, image)
                    time.sleep(max(0.0, 1 / 15 - (time.monotonic() - started)))   # about 15 previews a second
        except SpokeError as exc:
            self.failed.emit(self, exc.message)
        except Exception as exc:  # noqa: BLE001 - any camera trouble becomes a message, never a crash
            self.failed.emit(self, _message(exc))


_ending: list[CameraWorker] = []    # stopped workers still releasing their camera (a QThread must outlive its run)


def _keep_until_ended(worker: CameraWorker) -> None:
    _ending[:] = [w for w in _ending if not w.isFinished()]
    _ending.append(worker)


class PhotoDialog(QDialog):
    def __init__(self, runner: TaskRunner, attachments: AttachmentService, user: User, case_id: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.attachments, self.user, self.case_id = runner, attachments, user, case_id
        self.saved: Attachment | None = None
        self.worker: CameraWorker | None = None
        self.latest: np.ndarray | None = None
        self.captured: np.ndarray | None = None
        self.setWindowTitle(_("Take a photo"))
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Camera")))
        self.source = QComboBox()
        self.source.setObjectName("camera_source")
        self.source.setEditable(True)
        self.source.lineEdit().setPlaceholderText(_("0 for the first camera, or an IP camera's address"))
        row.addWidget(self.source, 1)
        self.start_button = QPushButton(_("Start"))
        self.start_button.setObjectName("start_camera")
        row.addWidget(self.start_button)
        lay.addLayout(row)
        self.view = QLabel(_("No picture yet"))
        self.view.setObjectName("preview")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(480, 320)
        self.view.setStyleSheet("background: #222; color: #ddd;")
        lay.addWidget(self.view, 1)
        self.label = QLineEdit()
        self.label.setObjectName("photo_label")
        self.label.setPlaceholderText(_("What it shows, e.g. 'rash, left forearm'"))
        lay.addWidget(self.label)
        self.message = ErrorLabel(self)
        lay.addWidget(self.message)
        buttons = QHBoxLayout()
        self.capture_button = QPushButton(_("Capture"))
        self.capture_button.setObjectName("capture")
        self.retake_button = QPushButton(_("Retake"))
        self.retake_button.setObjectName("retake")
        self.save_button = QPushButton(_("Save photo"))
        self.save_button.setObjectName("save_photo")
        close = QPushButton(_("Close"))
        for b in (self.capture_button, self.retake_button, self.save_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay.addLayout(buttons)
        self.start_button.clicked.connect(self.start_camera)
        self.capture_button.clicked.connect(self.capture)
        self.retake_button.clicked.connect(self.retake)
        self.save_button.clicked.connect(self.save)
        close.clicked.connect(self.reject)
        self._states(capturing=False, captured=False)
        # The last camera used (a read) and the USB cameras that open (device work): both off the UI thread.
        self._last_source: str | None = None
        self._loading = 2
        runner.run(attachments.remembered_camera, self._remembered, self._load_failed, lane="read")
        runner.run(lambda: list_cameras(2), self._cameras_found, self._load_failed, lane="devices")

    def _remembered(self, last: str | None) -> None:
        self._last_source = last
        self._loaded()

    def _cameras_found(self, cameras: list[int]) -> None:
        typed = self.source.currentText()
        for i in cameras:
            self.source.addItem(str(i))
        self.source.setEditText(typed)   # the first item added would replace what was typed meanwhile
        self._loaded()

    def _load_failed(self, exc: Exception) -> None:
        log.warning("the camera list or the last camera used could not be read: %s", exc)
        self._loaded()

    def _loaded(self) -> None:
        self._loading -= 1
        if self._loading == 0 and not self.source.currentText():
            self.source.setEditText(self._last_source or (self.source.itemText(0) if self.source.count() else "0"))

    def _states(self, capturing: bool, captured: bool) -> None:
        self.capture_button.setEnabled(capturing and not captured)
        self.retake_button.setEnabled(captured)
        self.save_button.setEnabled(captured)

    def start_camera(self) -> None:
        previous = self.stop_camera()
        self.message.show_message(None)
        self.captured = None
        self.latest = None
        self.worker = CameraWorker(self.source.currentText().strip(), after=previous)
        self.worker.frame.connect(self._frame)
        self.worker.preview.connect(self._preview)
        self.worker.failed.connect(self._failed)
        self.worker.start()
        self._states(capturing=True, captured=False)

    def _frame(self, worker: CameraWorker, frame: np.ndarray) -> None:
        if worker is self.worker:
            self.latest = frame

    def _preview(self, worker: CameraWorker, image: QImage) -> None:
        if worker is self.worker and self.captured is None:
            self.view.setPixmap(QPixmap.fromImage(image))

    def _failed(self, worker: CameraWorker, text: str) -> None:
        if worker is not self.worker:
            return
        self.message.show_message(text)
        self._states(capturing=False, captured=self.captured is not None)

    def capture(self) -> None:
        if self.latest is None:
            self.message.show_message(_("No picture from the camera yet; wait a moment."))
            return
        self.captured = self.latest.copy()
        self.view.setPixmap(QPixmap.fromImage(to_qimage(self.captured)).scaled(
            640, 480, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self._states(capturing=True, captured=True)

    def retake(self) -> None:
        self.captured = None
        self._states(capturing=self.worker is not None and self.worker.isRunning(), captured=False)

    def save(self) -> None:
        frame, label, source = self.captured, self.label.text(), self.source.currentText().strip()
        if frame is None:
            return
        self.save_button.setEnabled(False)
        attachments = self.attachments

        def work() -> Attachment:
            photo = encode_photo(frame, long_side=attachments.photo_long_side())
            saved = attachments.attach(self.user, self.case_id, AttachmentKind.PHOTO, photo.jpeg, "image/jpeg",
                                       label, width_px=photo.width_px, height_px=photo.height_px)
            attachments.remember_camera(self.user, source)
            return saved

        self.runner.run(work, self._saved, lambda e: (self.message.show_message(_message(e)),
                                                      self.save_button.setEnabled(True)))

    def _saved(self, attachment: Attachment) -> None:
        self.saved = attachment
        self.accept()

    def stop_camera(self) -> CameraWorker | None:
        """Asks the preview to end, without waiting for it; returns the worker that is ending, if any."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()
            _keep_until_ended(worker)
        return worker

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: closing releases the camera
        self.stop_camera()
        super().done(result)


class AudioDialog(QDialog):
    """Records a sound. Listing microphones, opening, stopping and playing run on the runner's "devices" lane, each
    waiting on the sound system a few seconds at most, so the window never freezes; a microphone lost mid-recording
    ends the recording, says so, and what was captured can still be kept."""

    def __init__(self, runner: TaskRunner, attachments: AttachmentService, user: User, case_id: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.attachments, self.user, self.case_id = runner, attachments, user, case_id
        self.saved: Attachment | None = None
        self.recorder: audio.Recorder | None = None
        self._starting: audio.Recorder | None = None   # opening the microphone
        self._stopping = False
        self._loading = {"limit", "devices"}
        self.samples: np.ndarray | None = None
        self.player = audio.Player()
        self.max_seconds = audio.DEFAULT_MAX_SECONDS
        self.setWindowTitle(_("Record a sound"))
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Microphone")))
        self.device = QComboBox()
        self.device.setObjectName("audio_device")
        row.addWidget(self.device, 1)
        lay.addLayout(row)
        meter_row = QHBoxLayout()
        self.meter = QProgressBar()
        self.meter.setObjectName("level")
        self.meter.setRange(0, 100)
        self.meter.setTextVisible(False)
        self.timer_label = QLabel("0:00")
        self.timer_label.setObjectName("elapsed")
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.timer_label)
        lay.addLayout(meter_row)
        self.limit_label = QLabel(_("At most {n} seconds.").format(n=self.max_seconds))
        lay.addWidget(self.limit_label)
        self.label = QLineEdit()
        self.label.setObjectName("audio_label")
        self.label.setPlaceholderText(_("What it is, e.g. 'cough' or 'chest, left lower zone'"))
        lay.addWidget(self.label)
        self.message = ErrorLabel(self)
        lay.addWidget(self.message)
        buttons = QHBoxLayout()
        self.record_button = QPushButton(_("Record"))
        self.record_button.setObjectName("record")
        self.stop_button = QPushButton(_("Stop"))
        self.stop_button.setObjectName("stop")
        self.play_button = QPushButton(_("Play"))
        self.play_button.setObjectName("play")
        self.keep_button = QPushButton(_("Keep"))
        self.keep_button.setObjectName("keep")
        self.discard_button = QPushButton(_("Discard"))
        self.discard_button.setObjectName("discard")
        for b in (self.record_button, self.stop_button, self.play_button, self.keep_button, self.discard_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.record_button.clicked.connect(self.record)
        self.stop_button.clicked.connect(self.stop)
        self.play_button.clicked.connect(self.play)
        self.keep_button.clicked.connect(self.keep)
        self.discard_button.clicked.connect(self.discard)
        self.poll = QTimer(self)
        self.poll.setInterval(100)
        self.poll.timeout.connect(self._tick)
        self._buttons()
        runner.run(attachments.max_recording_seconds, self._limit_loaded, self._limit_failed, lane="read")
        # PortAudio is asked to look for devices anew: its list is the one it made when it started, and a sound
        # server (or USB microphone) that came up since then would otherwise stay missing until Spoke restarts.
        runner.run(lambda: audio.list_input_devices(refresh=True), self._devices_listed, self._devices_failed,
                   lane="devices")

    # --- loading ----------------------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        """Still reading the recording length or listing the microphones."""
        return bool(self._loading)

    def _limit_loaded(self, value: int) -> None:
        self.max_seconds = value
        self.limit_label.setText(_("At most {n} seconds.").format(n=self.max_seconds))
        self._loading.discard("limit")
        self._buttons()

    def _limit_failed(self, exc: Exception) -> None:
        log.warning("the recording length setting could not be read: %s", exc)
        self._loading.discard("limit")
        self._buttons()

    def _devices_listed(self, devices: list[audio.InputDevice]) -> None:
        for d in devices:
            self.device.addItem(d.name, d)
            if d.default:
                self.device.setCurrentIndex(self.device.count() - 1)
        if self.device.count() == 0:
            self._say(_("No microphone was found. Plug one in and open this window again."))
        self._loading.discard("devices")
        self._buttons()

    def _devices_failed(self, exc: Exception) -> None:
        self._say(_message(exc))
        self._loading.discard("devices")
        self._buttons()

    def _say(self, text: str, warning: bool = False) -> None:
        self.message.show_message(text, warning=warning)
        self.adjustSize()   # a message that comes after the window is shown gets room for its lines

    # --- recording --------------------------------------------------------------------------------
    def _buttons(self) -> None:
        busy = bool(self._loading) or self._starting is not None or self._stopping
        recording = self.recorder is not None
        have = self.samples is not None and len(self.samples) > 0
        self.record_button.setEnabled(not busy and not recording and self.device.count() > 0)
        self.stop_button.setEnabled(recording and not self._stopping)
        self.play_button.setEnabled(have and not recording and not busy)
        self.keep_button.setEnabled(have and not recording and not busy)
        self.discard_button.setEnabled(have and not recording and not busy)

    def record(self) -> None:
        if self.recorder is not None or self._starting is not None:
            return
        self.message.show_message(None)
        self.samples = None
        recorder = audio.Recorder(self.device.currentData(), max_seconds=self.max_seconds)
        self._starting = recorder
        self._buttons()
        self.runner.run(recorder.start, lambda _r: self._started(recorder), lambda e: self._start_failed(recorder, e),
                        lane="devices")

    def _started(self, recorder: audio.Recorder) -> None:
        if recorder is not self._starting:   # the window closed meanwhile; done() queued its stop
            return
        self._starting = None
        self.recorder = recorder
        self.poll.start()
        self._buttons()

    def _start_failed(self, recorder: audio.Recorder, exc: Exception) -> None:
        if recorder is self._starting:
            self._starting = None
            self._say(_message(exc))
            self._buttons()

    def _tick(self) -> None:
        if self.recorder is None:
            return
        self.meter.setValue(min(100, int(self.recorder.level() * 200)))
        s = int(self.recorder.seconds())
        self.timer_label.setText(f"{s // 60}:{s % 60:02d}")
        if self.recorder.finished:   # the maximum length, or the microphone is gone
            self.stop()

    def stop(self) -> None:
        if self.recorder is None or self._stopping:
            return
        self.poll.stop()
        recorder, self.recorder = self.recorder, None
        self._stopping = True
        self._buttons()
        self.runner.run(recorder.stop, lambda samples: self._stopped(recorder, samples),
                        lambda e: self._stopped(recorder, None, e), lane="devices")

    def _stopped(self, recorder: audio.Recorder, samples: np.ndarray | None, exc: Exception | None = None) -> None:
        self._stopping = False
        self.samples = samples
        if exc is not None:
            self._say(_message(exc))
        elif recorder.error:
            self._say(recorder.error, warning=True)
        self.meter.setValue(0)
        self._buttons()

    def play(self) -> None:
        samples, player = self.samples, self.player
        if samples is not None:
            self.runner.run(lambda: player.play(samples, audio.SAMPLE_RATE), None,
                            lambda e: self._say(_message(e)), lane="devices")

    def discard(self) -> None:
        self.runner.run(self.player.stop, lane="devices")
        self.samples = None
        self.timer_label.setText("0:00")
        self._buttons()

    def keep(self) -> None:
        samples, label = self.samples, self.label.text()
        if samples is None:
            return
        self.keep_button.setEnabled(False)

        def work() -> Attachment:
            rec = audio.encode_opus(samples)
            return self.attachments.attach(self.user, self.case_id, AttachmentKind.AUDIO, rec.ogg, "audio/ogg", label,
                                           duration_ms=rec.duration_ms)

        self.runner.run(work, self._saved, lambda e: (self.message.show_message(_message(e)), self._buttons()))

    def _saved(self, attachment: Attachment) -> None:
        self.saved = attachment
        self.accept()

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: never leave the microphone open
        self.poll.stop()
        # Queued on the devices lane (one job at a time, in order): a microphone still opening is stopped once open.
        for recorder in (self.recorder, self._starting):
            if recorder is not None:
                self.runner.run(recorder.stop, lane="devices")
        self.recorder = self._starting = None
        self.runner.run(self.player.stop, lane="devices")
        super().done(result)


class AttachmentsPanel(QGroupBox):
    """Thumbnails of the case's photos, recordings and documents, and what can be done with them."""

    changed = Signal()

    def __init__(self, runner: TaskRunner, attachments: AttachmentService, user: User, case_id: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(_("Photos, recordings and documents"), parent)
        self.runner, self.attachments, self.user, self.case_id = runner, attachments, user, case_id
        self.items: list[Attachment] = []
        self.player = audio.Player()
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setObjectName("attachments")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMinimumHeight(THUMB + 48)
        self.list.setWordWrap(True)
        lay.addWidget(self.list)
        row = QHBoxLayout()
        self.photo_button = QPushButton(_("Photo…"))
        self.photo_button.setObjectName("add_photo")
        self.audio_button = QPushButton(_("Record…"))
        self.audio_button.setObjectName("add_audio")
        self.file_button = QPushButton(_("Attach file…"))
        self.file_button.setObjectName("add_file")
        self.open_button = QPushButton(_("Open / play"))
        self.open_button.setObjectName("open_attachment")
        self.label_button = QPushButton(_("Label…"))
        self.label_button.setObjectName("label_attachment")
        self.remove_button = QPushButton(_("Remove…"))
        self.remove_button.setObjectName("remove_attachment")
        for b in (self.photo_button, self.audio_button, self.file_button, self.open_button, self.label_button,
                  self.remove_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.message = ErrorLabel(self)
        lay.addWidget(self.message)
        self.photo_button.clicked.connect(self.take_photo)
        self.audio_button.clicked.connect(self.record_audio)
        self.file_button.clicked.connect(self.attach_file)
        self.open_button.clicked.connect(self.open_selected)
        self.label_button.clicked.connect(self.relabel_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.list.itemDoubleClicked.connect(lambda _i: self.open_selected())
        self.refresh()

    # --- listing --------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.runner.run(lambda: [(a, self._thumb_bytes(a)) for a in self.attachments.list(self.case_id)],
                        self._show, lambda e: self.message.show_message(_message(e)), lane="read")

    def _thumb_bytes(self, a: Attachment) -> bytes | None:
        return self.attachments.read_bytes(a) if a.kind == AttachmentKind.PHOTO or a.mime.startswith("image/") else None

    def _show(self, rows) -> None:
        self.items = [a for a, _b in rows]
        self.list.clear()
        style = self.style()
        for a, data in rows:
            icon = None
            if data:
                image = QImage.fromData(data)
                if not image.isNull():
                    icon = QIcon(QPixmap.fromImage(image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                                Qt.TransformationMode.SmoothTransformation)))
            if icon is None:
                kind = QStyle.StandardPixmap.SP_MediaVolume if a.kind == AttachmentKind.AUDIO else QStyle.StandardPixmap.SP_FileIcon
                icon = style.standardIcon(kind)
            text = a.label or {AttachmentKind.PHOTO: _("photo"), AttachmentKind.AUDIO: _("recording"),
                               AttachmentKind.DOCUMENT: _("document")}[a.kind]
            if a.kind == AttachmentKind.AUDIO and a.duration_ms:
                text += f" ({a.duration_ms // 1000} s)"
            if data is None and a.kind == AttachmentKind.PHOTO:
                text += " · " + _("coming from the hub")
            item = QListWidgetItem(icon, text)
            item.setToolTip(f"{a.mime}, {a.size_bytes // 1024} kB")
            self.list.addItem(item)

    def selected(self) -> Attachment | None:
        row = self.list.currentRow()
        if 0 <= row < len(self.items):
            return self.items[row]
        self.message.show_message(_("Select a photo, recording or document first."))
        return None

    # --- adding ---------------------------------------------------------------------------------
    def take_photo(self) -> None:
        dialog = PhotoDialog(self.runner, self.attachments, self.user, self.case_id, self)
        if dialog.exec() and dialog.saved:
            self._added()

    def record_audio(self) -> None:
        dialog = AudioDialog(self.runner, self.attachments, self.user, self.case_id, self)
        if dialog.exec() and dialog.saved:
            self._added()

    def attach_file(self, path: str | None = None) -> None:
        if not path:
            path, _f = QFileDialog.getOpenFileName(self, _("Attach a document"), str(Path.home()),
                                                   _("Pictures and PDF (*.jpg *.jpeg *.png *.pdf)"))
        if not path:
            return
        self.runner.run(lambda: self.attachments.attach_document(self.user, self.case_id, Path(path)),
                        lambda _a: self._added(), self._failed)

    def _added(self) -> None:
        self.message.show_message(None)
        self.refresh()
        self.changed.emit()

    def _failed(self, exc: Exception) -> None:
        self.message.show_message(_message(exc))

    # --- acting on one --------------------------------------------------------------------------
    def open_selected(self) -> None:
        a = self.selected()
        if a is None:
            return
        if a.kind == AttachmentKind.AUDIO:
            def load():   # the file and its decoding off the UI thread; then playing, on the devices lane
                data = self.attachments.read_bytes(a)
                return None if data is None else audio.decode_audio(data)

            self.runner.run(load, self._play, self._failed, lane="read")
            return
        def viewable():   # a sealed file is opened by the system's viewer from a private clear copy
            if not self.attachments.files.has(a.sha256):
                return None
            return self.attachments.files.viewable(a.sha256, mimetypes.guess_extension(a.mime) or "")

        self.runner.run(viewable, lambda path: self._open_file(path), self._failed, lane="read")

    def _not_here(self) -> None:
        self.message.show_message(_("This file has not arrived from the hub yet; it will after the next sync."))

    def _play(self, decoded: tuple[np.ndarray, int] | None) -> None:
        if decoded is None:
            self._not_here()
            return
        player = self.player
        self.runner.run(lambda: player.play(*decoded), None, self._failed, lane="devices")

    def _open_file(self, path) -> None:
        if path is None:
            self._not_here()
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def relabel_selected(self) -> None:
        a = self.selected()
        if a is None:
            return
        text, ok = QInputDialog.getText(self, _("Label"), _("What it shows:"), text=a.label)
        if ok:
            self.runner.run(lambda: self.attachments.relabel(self.user, a.id, text), lambda _a: self._added(),
                            self._failed)

    def remove_selected(self, reason: str | None = None) -> None:
        a = self.selected()
        if a is None:
            return
        if reason is None:
            reason, ok = QInputDialog.getText(self, _("Remove"), _(
                "Why is it removed? (A photo or recording that has left this computer is kept, marked withdrawn.)"))
            if not ok:
                return
        self.runner.run(lambda: self.attachments.remove(self.user, a.id, reason), lambda _d: self._added(), self._failed)
