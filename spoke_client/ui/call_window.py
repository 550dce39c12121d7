"""The call with the hub's doctor: the doctor's video large, this PC's own view small, what is happening in
words, the link's quality, and Mute, Camera off, Switch camera and Hang up. The call itself runs on its own
thread (spoke_client.services.call); what it reports reaches this window through queued Qt signals, and the
newest picture is drawn at most 15 times a second, so the window never waits for the network."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _

OVER = ("ended", "refused", "unreachable", "lost", "failed")
DRAW_MS = 66        # 15 pictures a second at most


class _Bridge(QObject):
    """The call's events, from its thread to the window's (Qt queues signals across threads)."""

    state = Signal(str, str)
    link = Signal(str, str)
    cameras = Signal(object)      # the USB cameras found, for "Switch camera"

    def __init__(self) -> None:
        super().__init__()
        self.remote: np.ndarray | None = None    # the newest pictures: drawn by the window's timer
        self.local: np.ndarray | None = None

    # CallEvents, called on the call's thread
    def remote_frame(self, frame: np.ndarray) -> None:
        self.remote = frame

    def local_frame(self, frame: np.ndarray) -> None:
        self.local = frame


def _pixmap(frame: np.ndarray, width: int, height: int) -> QPixmap:
    h, w = frame.shape[:2]
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(width, height, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)


class CallWindow(QDialog):
    """starter(case_id, events) starts the call and returns it (a spoke_client.services.call.HubCall)."""

    finished_call = Signal(str)     # the last state: the case editor refreshes what the call changed

    def __init__(self, starter, case_id: str, title: str, cameras: list[int] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("call_window")
        self.setWindowTitle(_("Call with the hub: {who}").format(who=title))
        self.setModal(False)
        self.resize(720, 560)
        self.bridge = _Bridge()
        self.call = None
        self.last_state = ""
        self.cameras = list(cameras or [])   # the sources Switch camera goes through (found ones are added)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.state_label = QLabel(_("Calling the hub..."))
        self.state_label.setObjectName("call_state")
        self.state_label.setWordWrap(True)
        self.state_label.setStyleSheet("font-weight: bold;")
        self.link_label = QLabel("")
        self.link_label.setObjectName("call_link")
        top.addWidget(self.state_label, 1)
        top.addWidget(self.link_label)
        lay.addLayout(top)
        self.remote = QLabel(_("The doctor's picture appears here once they answer."))
        self.remote.setObjectName("remote_video")
        self.remote.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.remote.setMinimumSize(320, 240)
        self.remote.setStyleSheet("background: #111; color: #ddd;")
        lay.addWidget(self.remote, 1)
        bottom = QHBoxLayout()
        self.local = QLabel()
        self.local.setObjectName("local_video")
        self.local.setFixedSize(160, 120)
        self.local.setStyleSheet("background: #333;")
        bottom.addWidget(self.local)
        bottom.addStretch(1)
        self.mute_button = QPushButton(_("Mute"))
        self.mute_button.setObjectName("mute")
        self.mute_button.setCheckable(True)
        self.camera_button = QPushButton(_("Camera off"))
        self.camera_button.setObjectName("camera_off")
        self.camera_button.setCheckable(True)
        self.switch_button = QPushButton(_("Switch camera"))
        self.switch_button.setObjectName("switch_camera")
        self.switch_button.setEnabled(len(self.cameras) > 1)
        self.hangup_button = QPushButton(_("Hang up"))
        self.hangup_button.setObjectName("hang_up")
        self.hangup_button.setStyleSheet("background: #c62828; color: white; font-weight: bold;")
        for b in (self.mute_button, self.camera_button, self.switch_button, self.hangup_button):
            bottom.addWidget(b)
        lay.addLayout(bottom)
        self.mute_button.toggled.connect(self._mute)
        self.camera_button.toggled.connect(self._camera)
        self.switch_button.clicked.connect(self._switch)
        self.hangup_button.clicked.connect(self.hang_up)
        self.bridge.state.connect(self._state)
        self.bridge.link.connect(self._link)
        self._draw = QTimer(self)
        self._draw.setInterval(DRAW_MS)
        self._draw.timeout.connect(self._draw_frames)
        self._draw.start()
        self._events = _Events(self.bridge)
        self.bridge.cameras.connect(self._found_cameras)
        if cameras is None:
            # Probing cameras takes a moment per number: off the window's thread.
            from spoke_client.services.camera import list_cameras

            bridge = self.bridge
            threading.Thread(target=lambda: bridge.cameras.emit(list_cameras()), daemon=True,
                             name="call-cameras").start()
        try:
            self.call = starter(case_id, self._events)
        except SpokeError as exc:
            self._state("refused", exc.message)

    # --- what the call reports -----------------------------------------------------------------------------
    def _state(self, code: str, text: str) -> None:
        self.last_state = code
        self.state_label.setText(text)
        over = code in OVER
        self.state_label.setStyleSheet("font-weight: bold;" + (" color: #b00020;" if over and code != "ended" else ""))
        if over:
            for b in (self.mute_button, self.camera_button, self.switch_button):
                b.setEnabled(False)
            self.hangup_button.setText(_("Close"))
            self.link_label.setText("")
            self.finished_call.emit(code)

    def _found_cameras(self, found: list) -> None:
        current = getattr(self.call, "camera_source", None)
        known = ([current] if current is not None and current not in self.cameras else []) + list(self.cameras)
        self.cameras = known + [c for c in found if c not in known]
        self.switch_button.setEnabled(len(self.cameras) > 1 and self.last_state not in OVER)

    def _link(self, level: str, text: str) -> None:
        colour = {"good": "#0b6e3a", "fair": "#b34700", "poor": "#c62828"}.get(level, "#333")
        self.link_label.setText(text)
        self.link_label.setStyleSheet(f"color: {colour}; font-weight: bold;")

    def _draw_frames(self) -> None:
        remote, local = self.bridge.remote, self.bridge.local
        self.bridge.remote = self.bridge.local = None
        if remote is not None:
            self.remote.setPixmap(_pixmap(remote, self.remote.width(), self.remote.height()))
        if local is not None and not self.camera_button.isChecked():
            self.local.setPixmap(_pixmap(local, self.local.width(), self.local.height()))

    # --- the buttons ---------------------------------------------------------------------------------------
    def _mute(self, muted: bool) -> None:
        self.mute_button.setText(_("Unmute") if muted else _("Mute"))
        if self.call is not None:
            self.call.mute(muted)

    def _camera(self, off: bool) -> None:
        self.camera_button.setText(_("Camera on") if off else _("Camera off"))
        if off:
            self.local.clear()
        if self.call is not None:
            self.call.camera(not off)

    def _switch(self) -> None:
        if self.call is not None and len(self.cameras) > 1:
            self.call.switch_camera(self.cameras)

    def hang_up(self) -> None:
        if self.call is None or self.last_state in OVER:
            self.close()
            return
        self.hangup_button.setEnabled(False)
        self.state_label.setText(_("Hanging up..."))
        self.call.hang_up()

    def closeEvent(self, event) -> None:   # noqa: N802 - Qt's name
        if self.call is not None and self.last_state not in OVER:
            self.call.hang_up()
        self._draw.stop()
        super().closeEvent(event)


class _Events:
    """CallEvents for the call's thread: everything goes through the bridge's signals or its newest-frame slots."""

    def __init__(self, bridge: _Bridge) -> None:
        self.bridge = bridge

    def state(self, code: str, text: str) -> None:
        self.bridge.state.emit(code, text)

    def link(self, level: str, text: str) -> None:
        self.bridge.link.emit(level, text)

    def remote_frame(self, frame) -> None:
        self.bridge.remote_frame(frame)

    def local_frame(self, frame) -> None:
        self.bridge.local_frame(frame)
