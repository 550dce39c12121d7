"""Sound recordings (a cough, a chest through a digital stethoscope) through PortAudio (sounddevice), saved as
Ogg Opus (soundfile).

Why these settings: capture at 48 kHz mono, Opus's own rate, so nothing is resampled away (heart sounds lie at
20-200 Hz, breath sounds and crackles up to about 2 kHz, a cough's character up to 8 kHz). Opus at 24 kbit/s
keeps a band of about 12 kHz with speech-grade quality, far above what auscultation needs, and makes a
30-second recording about 90 KB, so it travels over a 2G link in under a minute.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass

import numpy as np

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _

SAMPLE_RATE = 48_000
OPUS_BITRATE = 24_000                 # bit/s
DEFAULT_MAX_SECONDS = 120             # a setting ("audio_max_seconds")


def _opus_compression_level(bitrate: int) -> float:
    # libsndfile maps its compression level linearly onto Opus bitrates from 256 kbit/s (0.0) to 6 kbit/s (1.0).
    return min(1.0, max(0.0, 1 - (bitrate - 6_000) / 250_000))


class AudioUnavailable(SpokeError):
    """No microphone, or it stopped (unplugged) during a recording."""


def _sd():
    try:
        import sounddevice
    except OSError as exc:  # PortAudio itself missing
        raise AudioUnavailable(_("Sound recording is not available on this computer ({e}).").format(e=exc)) from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    default: bool


def list_input_devices() -> list[InputDevice]:
    sd = _sd()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioUnavailable(_("Sound devices could not be listed ({e}).").format(e=exc)) from exc
    return [InputDevice(i, d["name"], i == default_in) for i, d in enumerate(devices) if d["max_input_channels"] > 0]


class Recorder:
    """Records in the background; level() and seconds() for the meter and the timer; stop() gives the samples.
    Stops by itself at max_seconds. A device that fails mid-recording keeps what was captured."""

    def __init__(self, device: int | None = None, max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.device, self.max_frames = device, int(max_seconds * SAMPLE_RATE)
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._level = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.error: str | None = None
        self._stream = None

    def start(self) -> None:
        sd = _sd()
        try:
            self._stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", device=self.device,
                                          callback=self._callback, finished_callback=self._done.set)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise AudioUnavailable(_("No microphone could be opened ({e}). Check that it is plugged in.").format(e=exc)) from exc

    def _callback(self, indata, frames, _time, _status) -> None:
        import sounddevice as sd

        block = indata[:, 0].copy()
        with self._lock:
            room = self.max_frames - self._frames
            if room <= 0:
                raise sd.CallbackStop
            block = block[:room]
            self._blocks.append(block)
            self._frames += len(block)
            self._level = float(np.sqrt(np.mean(block ** 2))) if len(block) else 0.0
        if self._frames >= self.max_frames:
            raise sd.CallbackStop

    def level(self) -> float:
        """The last block's loudness, 0..1 (RMS), for a meter."""
        return self._level

    def seconds(self) -> float:
        return self._frames / SAMPLE_RATE

    @property
    def finished(self) -> bool:
        """Stopped by itself (the maximum length) or by the device."""
        return self._done.is_set()

    def stop(self) -> np.ndarray:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:   # unplugged mid-recording: keep what we have
                self.error = _("The microphone stopped during the recording; what was recorded is kept ({e}).").format(e=exc)
        with self._lock:
            return np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Recording:
    ogg: bytes
    duration_ms: int


def encode_opus(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, bitrate: int = OPUS_BITRATE) -> Recording:
    import soundfile as sf

    if samples.size == 0:
        raise AudioUnavailable(_("Nothing was recorded."))
    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1, 1), sample_rate, format="OGG", subtype="OPUS",
             compression_level=_opus_compression_level(bitrate))
    return Recording(buf.getvalue(), round(1000 * len(samples) / sample_rate))


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return samples, rate


class Player:
    """Plays samples on the default output (an output stream of its own: full duplex fails on some drivers)."""

    def __init__(self) -> None:
        self._stream = None

    def play(self, samples: np.ndarray, rate: int) -> None:
        sd = _sd()
        self.stop()
        try:
            sd.play(samples, rate)
        except sd.PortAudioError as exc:
            raise AudioUnavailable(_("The recording cannot be played here ({e}).").format(e=exc)) from exc
        self._started = time.monotonic()

    def stop(self) -> None:
        sd = _sd()
        try:
            sd.stop()
        except sd.PortAudioError:
            pass
