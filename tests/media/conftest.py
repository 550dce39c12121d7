"""Real capture paths without hardware: OpenCV reads a video file or an MJPEG server on loopback as its camera;
PortAudio records from a PulseAudio server with a null sink and a 440 Hz sine source, started here."""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

TONE_HZ = 440


def test_frame(i: int, w: int = 1920, h: int = 1080) -> np.ndarray:
    """A frame with smooth shading, shapes and a little sensor noise, like a photo more than a test card."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 200 // w + 30), (y * 180 // h + 40), ((x + y) * 120 // (w + h) + 60)], axis=-1).astype(np.uint8)
    cv2.circle(img, (w // 3 + i * 5, h // 2), h // 5, (60, 80, 190), -1)
    cv2.rectangle(img, (w // 2, h // 4), (w // 2 + w // 5, h // 4 + h // 3), (200, 190, 170), -1)
    noise = np.random.default_rng(i).integers(-6, 7, img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def camera_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "camera.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (1920, 1080))
    assert writer.isOpened()
    for i in range(20):
        writer.write(test_frame(i))
    writer.release()
    return path


class _MJPEG(http.server.BaseHTTPRequestHandler):
    frames: list[bytes] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(10_000):
                jpeg = self.frames[i % len(self.frames)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                                 + b"\r\n\r\n" + jpeg + b"\r\n")
                time.sleep(0.04)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def ip_camera():
    """An IP camera: MJPEG over HTTP on loopback, as cheap network cameras serve it."""
    _MJPEG.frames = [cv2.imencode(".jpg", test_frame(i, 1280, 720))[1].tobytes() for i in range(5)]
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MJPEG)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
    server.server_close()


def start_pulse(runtime: Path) -> None:
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix",
                    "--load=module-null-sink sink_name=vsink",
                    f"--load=module-sine-source source_name=sine frequency={TONE_HZ} rate=48000",
                    "--load=module-always-sink"], env=env, check=True, capture_output=True)
    for _ in range(50):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-source", "sine"], env=env, capture_output=True)
    subprocess.run(["pactl", "set-default-sink", "vsink"], env=env, capture_output=True)


def stop_pulse(runtime: Path) -> None:
    subprocess.run(["pulseaudio", "--kill"], env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)), capture_output=True)


@pytest.fixture(scope="session")
def pulse_runtime() -> Path:
    """PulseAudio with a null sink and a sine source as the default input; sounddevice records it for real."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed: ./dev.sh test installs it (Debian packages pulseaudio, libasound2-plugins)")
    runtime = Path(tempfile.mkdtemp(prefix="spoke-pulse-"))
    os.chmod(runtime, 0o700)
    start_pulse(runtime)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)   # the ALSA pulse plugin finds the server here
    yield runtime
    stop_pulse(runtime)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def pulse_sine(pulse_runtime) -> int:
    return TONE_HZ
