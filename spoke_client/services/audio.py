"""Sound recordings (a cough, a chest through a digital stethoscope) through PortAudio (sounddevice), saved as
Ogg Opus (soundfile).

Why these settings: capture at 48 kHz mono, Opus's own rate, so nothing is resampled away (heart sounds lie at
20-200 Hz, breath sounds and crackles up to about 2 kHz, a cough's character up to 8 kHz). Opus at 24 kbit/s
keeps a band of about 12 kHz with speech-grade quality, far above what auscultation needs, and makes a
30-second recording about 90 KB, so it travels over a 2G link in under a minute.

Every call that can wait on the sound server goes through services/sound_system.py, with a deadline: a microphone
or sound server that vanishes mid-recording ends the recording, keeps what was captured and says so; it never
freezes the app.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _
from spoke_client.services import sound_system
from spoke_client.services.settings import AUDIO_MAX_SECONDS
from spoke_client.services.sound_system import NoAnswer

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
OPUS_BITRATE = 24_000                 # bit/s
DEFAULT_MAX_SECONDS = AUDIO_MAX_SECONDS.default   # an administrator's setting
STALL_SECONDS = 5.0                   # no sound block at all for this long: the microphone is gone. A live device
                                      # sends a block every few ms; PulseAudio's sine source sends 2 s at a time


def _opus_compression_level(bitrate: int) -> float:
    # libsndfile maps its compression level linearly onto Opus bitrates from 256 kbit/s (0.0) to 6 kbit/s (1.0).
    return min(1.0, max(0.0, 1 - (bitrate - 6_000) / 250_000))


class AudioUnavailable(SpokeError):
    """No microphone, or it stopped (unplugged) during a recording."""


def _not_answering() -> AudioUnavailable:
    return AudioUnavailable(_("The computer's sound system is not answering. Close Spoke and open it again; if that "
                              "does not help, restart the computer."))


def _sd():
    try:
        return sound_system.sounddevice()
    except NoAnswer as exc:
        raise _not_answering() from exc
    except OSError as exc:  # PortAudio itself missing
        raise AudioUnavailable(_("Sound recording is not available on this computer ({e}).").format(e=exc)) from exc


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    default: bool


def list_input_devices(refresh: bool = False) -> list[InputDevice]:
    """The microphones PortAudio knows. refresh=True asks PortAudio to look again first (it lists devices once, when
    it starts): a sound server restarted or a USB microphone plugged in since then is found. Blocks for a moment;
    call it off the UI thread."""
    sd = _sd()
    try:
        if refresh:
            sound_system.refresh()
        devices, default_in = sound_system.query(lambda sd: (sd.query_devices(), sd.default.device[0]))
    except NoAnswer as exc:
        raise _not_answering() from exc
    except sd.PortAudioError as exc:
        raise AudioUnavailable(_("Sound devices could not be listed ({e}).").format(e=exc)) from exc
    return [InputDevice(i, d["name"], i == default_in) for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def _device_index(sd, device: InputDevice | int | None) -> int | None:
    """The index of a listed device now: indices change when PortAudio lists devices anew, names do not."""
    if not isinstance(device, InputDevice):
        return device
    devices = sd.query_devices()
    if device.index < len(devices) and devices[device.index]["name"] == device.name \
            and devices[device.index]["max_input_channels"] > 0:
        return device.index
    for i, d in enumerate(devices):
        if d["name"] == device.name and d["max_input_channels"] > 0:
            return i
    raise ValueError(f"no input device named {device.name!r} now")


class Recorder:
    """Records in the background; level() and seconds() for the meter and the timer; stop() gives the samples.
    Stops by itself at max_seconds. A device that fails mid-recording keeps what was captured: `finished` turns
    true, stop() returns the samples so far, and `lost` and `error` say what happened. Nothing here waits on the
    sound system for more than a few seconds."""

    def __init__(self, device: InputDevice | int | None = None, max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.device, self.max_frames = device, int(max_seconds * SAMPLE_RATE)
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._level = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._full = False            # stopped by itself at the maximum length
        self._stopping = False
        self._ended_early = False     # PortAudio ended the stream: the device failed
        self._last_block = 0.0        # time.monotonic() of the last block (or of the start)
        self.lost = False
        self.error: str | None = None
        self._stream = None

    def start(self) -> None:
        """Opens the microphone; if that fails, PortAudio lists the devices anew and it is tried once more."""
        sd = _sd()
        try:
            try:
                self._stream = self._open(sd)
            except (sd.PortAudioError, ValueError) as first:
                log.info("opening the microphone failed (%s); listing sound devices anew", first)
                if not sound_system.refresh():
                    raise
                self._stream = self._open(sd)
        except NoAnswer as exc:
            raise _not_answering() from exc
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioUnavailable(_("No microphone could be opened ({e}). Check that it is plugged in.").format(
                e=exc)) from exc

    def _open(self, sd):
        def create():
            return sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                  device=_device_index(sd, self.device), callback=self._callback,
                                  finished_callback=self._finished)

        self._last_block = time.monotonic()
        return sound_system.open_stream(create, "opening the microphone")

    def _callback(self, indata, frames, _time, _status) -> None:
        import sounddevice as sd

        block = indata[:, 0].copy()
        with self._lock:
            self._last_block = time.monotonic()
            room = self.max_frames - self._frames
            if room <= 0:
                self._full = True
                raise sd.CallbackStop
            block = block[:room]
            self._blocks.append(block)
            self._frames += len(block)
            self._level = float(np.sqrt(np.mean(block ** 2))) if len(block) else 0.0
            if self._frames >= self.max_frames:
                self._full = True
                raise sd.CallbackStop

    def _finished(self) -> None:
        with self._lock:
            if not self._stopping and not self._full:
                self._ended_early = True
        self._done.set()

    def level(self) -> float:
        """The last block's loudness, 0..1 (RMS), for a meter."""
        return self._level

    def seconds(self) -> float:
        return self._frames / SAMPLE_RATE

    @property
    def stalled(self) -> bool:
        """Recording, but no sound at all has come for STALL_SECONDS: the device or the sound server is gone."""
        return (self._stream is not None and not self._stopping and not self._done.is_set()
                and time.monotonic() - self._last_block > STALL_SECONDS)

    @property
    def finished(self) -> bool:
        """Stopped by itself (the maximum length), by the device, or the device went silent: call stop()."""
        return self._done.is_set() or self.stalled

    def stop(self) -> np.ndarray:
        """The samples so far. Returns within a few seconds whatever PortAudio does (a stream that does not stop in
        time is abandoned); `lost` and `error` tell when the microphone failed."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stalled = time.monotonic() - self._last_block > STALL_SECONDS and not self._done.is_set()
            with self._lock:
                self._stopping = True
                ended_early = self._ended_early
            closed, problem = sound_system.close_stream(stream, "stopping the recording")
            reason = ("it did not stop in time and was abandoned" if not closed else
                      f"PortAudio reported {problem}" if problem else
                      "the stream ended by itself" if ended_early else
                      f"no sound for {STALL_SECONDS:.0f} s" if stalled else None)
            if reason:
                self.lost = True
                self.error = _("The microphone stopped working during the recording (unplugged, or the sound system "
                               "stopped). What was recorded before that is kept.")
                log.warning("microphone lost during a recording after %.1f s: %s", self.seconds(), reason)
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
    """Plays samples on the default output, through an output stream of its own (full duplex fails on some
    drivers; sounddevice's play() keeps a global stream that its exit handler stops with no deadline). play() and
    stop() wait on the sound system a few seconds at most; call them off the UI thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream = None
        self._done = threading.Event()
        self._done.set()

    @property
    def playing(self) -> bool:
        return not self._done.is_set()

    def play(self, samples: np.ndarray, rate: int) -> None:
        sd = _sd()
        self.stop()
        data = np.ascontiguousarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        position = 0
        done = threading.Event()

        def callback(outdata, frames, _time, _status) -> None:
            nonlocal position
            chunk = data[position:position + frames]
            outdata[:len(chunk)] = chunk
            outdata[len(chunk):] = 0
            position += len(chunk)
            if len(chunk) < frames:
                raise sd.CallbackStop

        def finished() -> None:
            done.set()
            with self._lock:
                mine = stream is not None and self._stream is stream
                if mine:
                    self._stream = None
            if mine:
                sound_system.close_later(stream, "closing finished playback")

        def create():
            return sd.OutputStream(samplerate=rate, channels=data.shape[1], dtype="float32", callback=callback,
                                   finished_callback=finished)

        stream = None
        try:
            with self._lock:   # finished() cannot run before the stream is known
                stream = sound_system.open_stream(create, "starting playback")
                self._stream, self._done = stream, done
        except NoAnswer as exc:
            raise _not_answering() from exc
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioUnavailable(_("The recording cannot be played here ({e}).").format(e=exc)) from exc

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        self._done.set()
        if stream is not None:
            closed, _problem = sound_system.close_stream(stream, "stopping playback")
            if not closed:
                log.warning("playback did not stop in time; its stream is abandoned")
