"""Recording through sounddevice for real (PulseAudio's sine source as the microphone), saved as Ogg Opus:
the tone's frequency is in the saved file, and 30 seconds stay under 100 KB. A sound server killed or frozen under
a recording ends it within a few seconds with what was captured kept, and the device list follows the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

from spoke_client.services import sound_system
from spoke_client.services.audio import Player, Recorder, decode_audio, encode_opus, list_input_devices
from tests.media.conftest import freeze_pulse, restart_pulse, start_pulse, stop_pulse, wait_for_released_streams

LOST = "The microphone stopped working during the recording"
KEPT = "What was recorded before that is kept."
STOP_WITHIN_S = sound_system.STOP_DEADLINE_S + 2   # "a few seconds": the deadline, and time to hand back the samples


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def record_until(rec: Recorder, seconds: float, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while rec.seconds() < seconds:
        assert time.monotonic() < deadline, f"only {rec.seconds():.1f} s recorded in {timeout_s} s"
        time.sleep(0.05)


def timed_stop(rec: Recorder) -> tuple[np.ndarray | None, float | None]:
    """rec.stop() on a thread of its own, so that a stop that hangs fails the test instead of hanging it."""
    box: dict = {}
    started = time.monotonic()
    helper = threading.Thread(target=lambda: box.update(samples=rec.stop(), took=time.monotonic() - started),
                              daemon=True)
    helper.start()
    helper.join(STOP_WITHIN_S + 10)
    return box.get("samples"), box.get("took")


def test_a_recording_keeps_the_tone_and_is_small(pulse_sine):
    assert list_input_devices(), "the sine source is an input device"
    seconds = 8      # any length shows it; the bound on size is per second (the suite's time is counted)
    rec = Recorder(max_seconds=seconds)
    rec.start()
    deadline = time.monotonic() + 60
    shown = []   # what the meter showed while recording (its last value may be of a block cut short at the end)
    while not rec.finished and time.monotonic() < deadline:
        assert 0.0 <= rec.level() <= 1.0
        shown.append(rec.level())
        time.sleep(0.1)
    samples = rec.stop()
    assert rec.finished and len(samples) == seconds * 48_000, "stopped by itself at the maximum length"
    assert not rec.lost and rec.error is None, "reaching the maximum length is no lost microphone"
    steady = float(np.sqrt(np.mean(samples[48_000:] ** 2)))
    seen = float(np.median(shown[len(shown) // 4:]))   # once the tone is flowing
    assert seen > 0.05 and abs(seen - steady) < 0.25 * steady, f"the meter saw the tone: {seen} against {steady}"
    recording = encode_opus(samples)
    assert recording.duration_ms == seconds * 1000
    assert len(recording.ogg) < 100_000 * seconds / 30, len(recording.ogg)   # under 100 kB for 30 s
    assert recording.ogg[:4] == b"OggS" and b"OpusHead" in recording.ogg[:100]
    decoded, rate = decode_audio(recording.ogg)
    assert rate == 48_000
    assert abs(dominant_hz(decoded[48_000:96_000], rate) - pulse_sine) < 3


def test_stopping_early_keeps_what_was_recorded(pulse_sine):
    rec = Recorder(max_seconds=60)
    rec.start()
    record_until(rec, 1.0)
    samples = rec.stop()
    assert len(samples) >= 48_000 and not rec.error and not rec.lost
    assert sound_system.open_streams() == (0, 0), "the microphone is closed"


def test_selfcheck_lists_the_cameras_opencv_finds_and_the_microphones(pulse_sine, tmp_path):
    import cv2

    out = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(tmp_path), "selfcheck"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # What OpenCV itself opens here, asked directly: no camera on a test machine, the webcam on a laptop.
    opened = []
    for i in range(4):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            opened.append(i)
        cap.release()
    cameras = [line.strip() for line in out.stdout.splitlines() if "cameras:" in line]
    expected = (", ".join(str(i) for i in opened) if opened else
                "none found (an IP camera can still be used by its address)")
    assert cameras == [f"cameras: {expected}"], out.stdout
    mics = [line for line in out.stdout.splitlines() if "microphones:" in line]
    assert mics and "(default)" in mics[0], out.stdout


def test_selfcheck_says_so_when_no_camera_can_be_found(tmp_path):
    """OpenCV with each of its camera backends switched off finds no camera on any PC: the sentence for that."""
    from cv2 import videoio_registry

    backends = [videoio_registry.getBackendName(b) for b in videoio_registry.getCameraBackends()]
    assert backends, "this OpenCV reads cameras through some backend"
    env = dict(os.environ, **{f"OPENCV_VIDEOIO_PRIORITY_{name}": "0" for name in backends})
    out = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(tmp_path), "selfcheck"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "cameras: none found (an IP camera can still be used by its address)" in out.stdout, out.stdout


def test_the_device_list_follows_the_sound_server(pulse_runtime):
    """PortAudio lists devices once, when it starts; a refresh lists them anew, so the microphone is found again
    after the sound server restarts, without restarting the app."""
    wait_for_released_streams()
    served = {d.name for d in list_input_devices(refresh=True)}
    assert served, "the sound server's microphone is listed"
    stop_pulse(pulse_runtime)
    try:
        assert not served & {d.name for d in list_input_devices(refresh=True)}, \
            "with the server gone, its microphones are no longer listed"
    finally:
        start_pulse(pulse_runtime)
    back = list_input_devices(refresh=True)
    assert {d.name for d in back} == served and any(d.default for d in back), "found again, and the default"
    rec = Recorder(max_seconds=10)
    rec.start()
    record_until(rec, 1.0)
    samples = rec.stop()
    assert not rec.lost and abs(dominant_hz(samples[:48_000], 48_000) - 440) < 3, "and it records"


def test_playback_ends_by_itself_and_lets_the_device_go(pulse_sine):
    player = Player()
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(24_000) / 48_000)).astype(np.float32)
    player.play(tone, 48_000)
    assert player.playing
    deadline = time.monotonic() + 15
    while (player.playing or sound_system.open_streams()[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not player.playing and sound_system.open_streams() == (0, 0), "finished, and its stream closed"
    player.play(tone, 48_000)
    player.stop()
    assert not player.playing and sound_system.open_streams() == (0, 0), "stopped, and its stream closed"


def test_a_microphone_lost_mid_recording_keeps_what_was_recorded(pulse_runtime):
    """The sound server killed under a running recording (as an unplugged USB microphone vanishes)."""
    rec = Recorder(max_seconds=60)
    rec.start()
    record_until(rec, 1.5)
    stop_pulse(pulse_runtime, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 20   # at most a silence of STALL_SECONDS (5 s)
        while not rec.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.finished, "the recording ends by itself when its microphone is gone"
        samples, took = timed_stop(rec)
        assert took is not None and took < STOP_WITHIN_S, f"stop() returned after {took} s (None: it hung)"
        assert rec.lost and LOST in rec.error and KEPT in rec.error, rec.error
        assert len(samples) >= int(1.5 * 48_000), "what was captured before the loss is kept"
        assert encode_opus(samples).duration_ms >= 1500, "and can be saved"
    finally:
        start_pulse(pulse_runtime)


FROZEN_AT_START_CHILD = textwrap.dedent("""
    import json, time
    from spoke_client.services.audio import AudioUnavailable, list_input_devices
    started = time.monotonic()
    try:
        outcome = [d.name for d in list_input_devices()]
    except AudioUnavailable as exc:
        outcome = exc.message
    print(json.dumps({"took": time.monotonic() - started, "outcome": outcome}), flush=True)
""")


def test_a_sound_server_frozen_before_the_app_starts_is_reported_not_waited_for(pulse_runtime):
    """Starting PortAudio opens every device to list it; with the server frozen that would wait for ever."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    freeze_pulse(pulse_runtime)
    try:
        child = subprocess.run([sys.executable, "-c", FROZEN_AT_START_CHILD], capture_output=True, text=True,
                               timeout=30, env=env)
    finally:
        restart_pulse(pulse_runtime)
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.splitlines()[-1])
    assert report["took"] < sound_system.OPEN_DEADLINE_S + 2, report
    assert str(report["outcome"]).startswith("The computer's sound system is not answering."), report


FROZEN_CHILD = textwrap.dedent("""
    import json, sys, threading, time
    from spoke_client.services.audio import Recorder, encode_opus
    rec = Recorder(max_seconds=60)
    rec.start()
    while rec.seconds() < 1.5:
        time.sleep(0.05)
    print("recording", flush=True)
    sys.stdin.readline()                      # the test has frozen the sound server
    deadline = time.monotonic() + 20
    while not rec.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = rec.finished
    box = {}
    started = time.monotonic()
    t = threading.Thread(target=lambda: box.update(n=len(rec.stop()), took=time.monotonic() - started), daemon=True)
    t.start()
    t.join(15)
    print(json.dumps({"finished": ended, "took": box.get("took"), "samples": box.get("n"),
                      "lost": rec.lost, "error": rec.error}), flush=True)
""")   # then it exits as the app does, through the interpreter's exit handlers


def test_a_frozen_sound_server_hangs_neither_stop_nor_exit(pulse_runtime):
    """A sound server that stops answering (SIGSTOP: its socket stays, nothing replies) makes PortAudio's stop wait
    for ever: the recording still ends within a few seconds with its sound kept, and the app can still exit."""
    wait_for_released_streams()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    child = subprocess.Popen([sys.executable, "-c", FROZEN_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "recording"
        freeze_pulse(pulse_runtime)
        child.stdin.write("go\n")
        child.stdin.flush()
        report = json.loads(child.stdout.readline() or "{}")
        assert report.get("finished"), f"the recording ends by itself when the microphone goes silent: {report}"
        assert report["took"] is not None and report["took"] < STOP_WITHIN_S, f"stop() hung: {report}"
        assert report["lost"] and LOST in report["error"], report
        assert report["samples"] >= int(1.5 * 48_000), "what was captured before the server froze is kept"
        try:
            assert child.wait(timeout=20) == 0, "the app exits cleanly"
        except subprocess.TimeoutExpired:
            raise AssertionError("the app did not exit with a stream stuck in PortAudio") from None
    finally:
        child.kill()
        child.wait()
        restart_pulse(pulse_runtime)
