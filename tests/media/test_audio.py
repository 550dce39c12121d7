"""Recording through sounddevice for real (PulseAudio's sine source as the microphone), saved as Ogg Opus:
the tone's frequency is in the saved file, and 30 seconds stay under 100 KB."""

from __future__ import annotations

import time

import numpy as np

from spoke_client.services.audio import Recorder, decode_audio, encode_opus, list_input_devices


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_a_recording_keeps_the_tone_and_is_small(pulse_sine):
    assert list_input_devices(), "the sine source is an input device"
    rec = Recorder(max_seconds=30)
    rec.start()
    deadline = time.monotonic() + 60
    while not rec.finished and time.monotonic() < deadline:
        assert 0.0 <= rec.level() <= 1.0
        time.sleep(0.1)
    samples = rec.stop()
    assert rec.finished and len(samples) == 30 * 48_000, "stopped by itself at the maximum length"
    assert rec.level() > 0.1, "the meter saw the tone"
    recording = encode_opus(samples)
    assert recording.duration_ms == 30_000
    assert len(recording.ogg) < 100_000, len(recording.ogg)
    assert recording.ogg[:4] == b"OggS" and b"OpusHead" in recording.ogg[:100]
    decoded, rate = decode_audio(recording.ogg)
    assert rate == 48_000
    assert abs(dominant_hz(decoded[48_000:96_000], rate) - pulse_sine) < 3


def test_stopping_early_keeps_what_was_recorded(pulse_sine):
    rec = Recorder(max_seconds=60)
    rec.start()
    while rec.seconds() < 1.0:
        time.sleep(0.05)
    samples = rec.stop()
    assert len(samples) >= 48_000 and not rec.error


def test_selfcheck_lists_cameras_and_microphones(pulse_sine, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(tmp_path), "selfcheck"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cameras: none found (an IP camera can still be used by its address)" in out.stdout
    mics = [line for line in out.stdout.splitlines() if "microphones:" in line]
    assert mics and "(default)" in mics[0], out.stdout


def test_a_microphone_lost_mid_recording_keeps_what_was_recorded(pulse_runtime):
    """The sound server killed under a running recording (as an unplugged USB microphone vanishes)."""
    from tests.media.conftest import start_pulse, stop_pulse

    rec = Recorder(max_seconds=60)
    rec.start()
    while rec.seconds() < 1.5:
        time.sleep(0.05)
    stop_pulse(pulse_runtime)
    try:
        time.sleep(1.0)
        samples = rec.stop()               # must not raise, and must not hang
        assert len(samples) >= int(1.5 * 48_000), "what was captured before the loss is kept"
        assert encode_opus(samples).duration_ms >= 1500
    finally:
        start_pulse(pulse_runtime)
