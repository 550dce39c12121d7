"""Real capture paths without hardware: OpenCV reads a video file or an MJPEG server on loopback as its camera;
PortAudio records from a PulseAudio server with a null sink and a 440 Hz sine source, started here."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
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


def _pulse_env(runtime: Path) -> dict[str, str]:
    return dict(os.environ, XDG_RUNTIME_DIR=str(runtime))


def pulse_pid(runtime: Path) -> int | None:
    """The running sound server's process id, from its pid file (None when none runs, or only its zombie)."""
    try:
        pid = int((runtime / "pulse" / "pid").read_text().split()[0])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else pid


def start_pulse(runtime: Path) -> None:
    """Starts the server and waits until it answers with the sine source as the default input; fails loudly
    otherwise (a server that is not ready looks like a missing microphone to the tests that follow)."""
    env = _pulse_env(runtime)
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix",
                    "--load=module-null-sink sink_name=vsink",
                    f"--load=module-sine-source source_name=sine frequency={TONE_HZ} rate=48000",
                    "--load=module-always-sink"], env=env, check=True, capture_output=True)
    for _ in range(100):
        answers = [subprocess.run(["pactl", f"set-default-{kind}", name], env=env, capture_output=True).returncode
                   for kind, name in (("source", "sine"), ("sink", "vsink"))]
        if answers == [0, 0]:
            return
        time.sleep(0.1)
    raise RuntimeError("the PulseAudio test server did not answer within 10 s")


def stop_pulse(runtime: Path, sig: int = signal.SIGTERM) -> None:
    """Ends the server (SIGKILL: it vanishes at once, as a crashed one does; a frozen one too) and waits until it
    is gone, so that a start right after it does not meet the old one."""
    pid = pulse_pid(runtime)
    if pid is None:
        return
    os.kill(pid, sig)
    os.kill(pid, signal.SIGCONT)   # a frozen server acts on the signal only once it runs again
    deadline = time.monotonic() + 10
    while pulse_pid(runtime) == pid and time.monotonic() < deadline:
        if time.monotonic() > deadline - 5:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    if pulse_pid(runtime) == pid:
        raise RuntimeError("the PulseAudio test server did not end")
    (runtime / "pulse" / "pid").unlink(missing_ok=True)


def freeze_pulse(runtime: Path) -> int:
    """Stops the server's process without ending it (SIGSTOP): its socket stays open and nothing answers on it,
    as with a sound server that hangs."""
    pid = pulse_pid(runtime)
    assert pid is not None, "the sound server is running"
    os.kill(pid, signal.SIGSTOP)
    return pid


def restart_pulse(runtime: Path) -> None:
    """A fresh server that answers, whatever state the old one is in (running, frozen or gone)."""
    stop_pulse(runtime, signal.SIGKILL)
    start_pulse(runtime)


def wait_for_released_streams(timeout_s: float = 10.0) -> None:
    """Streams an earlier test abandoned (a sound server killed under them) are released when PortAudio lets go;
    until then PortAudio cannot list devices anew in this process."""
    from spoke_client.services import sound_system

    deadline = time.monotonic() + timeout_s
    while sound_system.open_streams()[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sound_system.open_streams()[0] == 0, \
        f"an earlier test left a sound stream stuck in PortAudio: {sound_system.open_streams()} (open, stuck)"


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
