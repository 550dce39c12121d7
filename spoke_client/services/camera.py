"""Cameras through OpenCV: a USB camera by index, an IP camera by URL (MJPEG or RTSP), or a video file (the test
camera; it loops). Photos are saved as JPEG at a clinical size with no EXIF or location data."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")   # no console warnings for every camera index probed
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _
from spoke_client.services.settings import PHOTO_LONG_SIDE

DEFAULT_LONG_SIDE = PHOTO_LONG_SIDE.default   # px: enough to see a rash or a wound edge (an administrator's setting)
MAX_PHOTO_BYTES = 400_000       # a typical photo stays under this on a 2G upload
QUALITIES = (85, 80, 75, 70, 65, 60)
MAX_FAILED_READS = 25           # about a second of nothing at 25 fps: the camera is gone


class CameraUnavailable(SpokeError):
    """No camera at that index or address, or it stopped giving pictures."""


def parse_source(text: str | int) -> int | str:
    """'0' -> 0 (a USB camera); 'http://...', 'rtsp://...' or a file path stay text."""
    if isinstance(text, int):
        return text
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text:
        raise CameraUnavailable(_("Choose a camera: its number (0 for the first) or an IP camera's address."))
    return text


def describe_source(source: int | str) -> str:
    return _("camera {n}").format(n=source) if isinstance(source, int) else str(source)


class Camera:
    """One open camera. read() gives the newest frame (BGR); close() releases the device."""

    def __init__(self, source: int | str) -> None:
        self.source = parse_source(source)
        self._is_file = isinstance(self.source, str) and os.path.isfile(self.source)
        if isinstance(self.source, str) and not self._is_file:
            self.cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG)
        else:
            self.cap = cv2.VideoCapture(self.source)
        self._lock = threading.Lock()
        self._failures = 0
        if not self.cap.isOpened():
            self.cap.release()
            raise CameraUnavailable(_("No picture from {source}. Check that the camera is plugged in (or the IP "
                                      "camera's address), then try again.").format(source=describe_source(self.source)))

    def read(self) -> np.ndarray:
        with self._lock:
            while True:
                ok, frame = self.cap.read()
                if ok and frame is not None:
                    self._failures = 0
                    return frame
                if self._is_file and self._failures == 0:
                    self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)   # a test video loops like a live camera
                self._failures += 1
                if self._failures >= MAX_FAILED_READS:
                    raise CameraUnavailable(_("The camera stopped giving pictures (unplugged?). Photos already taken "
                                              "are kept."))

    def close(self) -> None:
        with self._lock:
            self.cap.release()

    def __enter__(self) -> "Camera":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def list_cameras(max_index: int = 4) -> list[int]:
    """USB cameras that open, by index (IP cameras are typed in, not found)."""
    found = []
    for i in range(max_index):
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened():
                found.append(i)
        finally:
            cap.release()
    return found


@dataclass(frozen=True)
class Photo:
    jpeg: bytes
    width_px: int
    height_px: int
    quality: int


def encode_photo(frame: np.ndarray, long_side: int = DEFAULT_LONG_SIDE, max_bytes: int = MAX_PHOTO_BYTES) -> Photo:
    """A clinical-size JPEG of a frame: long side at most `long_side`, quality lowered step by step until it
    fits `max_bytes`. OpenCV writes no EXIF, so no location or device data leaves the PC."""
    if frame is None or frame.ndim not in (2, 3) or frame.size == 0:
        raise CameraUnavailable(_("The camera gave an empty picture; take the photo again."))
    h, w = frame.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    if scale < 1.0:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = frame.shape[:2]
    for quality in QUALITIES:
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        if not ok:
            raise CameraUnavailable(_("The photo could not be encoded."))
        if len(buf) <= max_bytes:
            break
    return Photo(buf.tobytes(), w, h, quality)
