"""A call to the hub's doctor on a case: WebRTC through aiortc, signalled over the hub's WebSocket.

The spoke rings (POST /v1/calls), waits on the WebSocket until a doctor answers, then offers its camera (the same
OpenCV capture as photos) and microphone (sounddevice); the doctor's browser answers. Media go straight between
the two ends, or through the TURN server the hub names. aiortc's asyncio loop runs in its own thread; what the
screen needs (state, pictures, link quality) leaves it through the `CallEvents` callbacks, which the UI turns
into Qt signals. Nothing here touches Qt.

Rural links: video is sent at most 320x240 and 15 frames a second, with VP8 held between 60 and 180 kbit/s and
Opus at 24 kbit/s (aiortc's own encoders, bounded through the seam where its senders pick an encoder). When the
link measures poor (loss and round trip from RTCP receiver reports, and the bitrate the far end's REMB allows) the
call drops video at both ends and keeps sound; when it measures good again for a while, video comes back.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from spoke_client.i18n import _
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable

log = logging.getLogger("spoke.call")

VIDEO_SIZE = (320, 240)
VIDEO_FPS = 15
VIDEO_MIN_BPS, VIDEO_MAX_BPS = 60_000, 180_000   # with Opus, under a 256 kbit/s link (bench/call_bench.py)
OPUS_BPS = 24_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 960              # 20 ms
STATS_SECONDS = 1.0            # how often the link is measured
POOR_LOSS, POOR_RTT, POOR_BPS = 0.10, 1.0, 90_000
GOOD_LOSS, GOOD_RTT = 0.03, 0.5
POOR_SAMPLES, GOOD_SAMPLES = 3, 6  # poor for 3 s drops video; good for 6 s brings it back
PROBE_SAMPLES, PROBE_POOR = 6, 2   # the first 3 s of video (the call's start, each try), sampled each 0.5 s: two
                                   # samples in a row with loss or delay drop it
RETRY_WINDOW_SAMPLES, MAX_WAIT_SAMPLES = 30, 96   # dropped again within 30 s: wait twice as long, at most 96 s
RECONNECT_SECONDS = 6.0        # a signalling socket that dropped mid-call is opened again for this long (the hub
                               # ends a call whose end has been silent for 15 s)


class CallEvents(Protocol):
    def state(self, code: str, text: str) -> None: ...
    def remote_frame(self, frame: np.ndarray) -> None: ...
    def local_frame(self, frame: np.ndarray) -> None: ...
    def link(self, level: str, text: str) -> None: ...


# --- bitrates for rural links, through aiortc's public seams --------------------------------------------------
def _bounded_encoders() -> None:
    """aiortc's senders pick an encoder through aiortc.rtcrtpsender.get_encoder (aiortc.codecs.get_encoder is
    bound there at import): wrap it once so VP8 keeps to our bounds and Opus to a voice bitrate."""
    import aiortc.rtcrtpsender as sender
    from aiortc.codecs.opus import OpusEncoder
    from aiortc.codecs.vpx import Vp8Encoder

    if getattr(sender.get_encoder, "_spoke", False):
        return

    class RuralVp8(Vp8Encoder):
        requested = VIDEO_MAX_BPS      # what the far end's REMB last allowed, before our bounds

        def __init__(self) -> None:
            super().__init__()
            self.target_bitrate = VIDEO_MAX_BPS

        @property
        def target_bitrate(self) -> int:
            return self._spoke_target

        @target_bitrate.setter
        def target_bitrate(self, bitrate: int) -> None:
            self.requested = bitrate
            self._spoke_target = max(VIDEO_MIN_BPS, min(int(bitrate), VIDEO_MAX_BPS))

        def encode(self, frame, force_keyframe: bool = False):
            # aiortc's encoder reads its own private target; give it ours before each frame.
            self._Vp8Encoder__target_bitrate = self._spoke_target
            return super().encode(frame, force_keyframe)

    class VoiceOpus(OpusEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.codec.bit_rate = OPUS_BPS

    original = sender.get_encoder

    def get_encoder(codec):
        name = codec.mimeType.lower()
        if name == "video/vp8":
            return RuralVp8()
        if name == "audio/opus":
            return VoiceOpus()
        return original(codec)

    get_encoder._spoke = True
    sender.get_encoder = get_encoder


# --- the link: drop video on a poor one, bring it back on a good one -------------------------------------------
@dataclass
class LinkSample:
    loss: float          # fraction of packets lost, the worst direction
    rtt: float | None    # seconds, from RTCP receiver reports
    allowed_bps: int | None = None   # the far end's REMB estimate for our video
    sent_bps: int | None = None      # what our video actually sent since the last sample


@dataclass
class LinkJudge:
    """Decides audio-only from what the link measures: POOR_SAMPLES poor samples in a row drop video,
    GOOD_SAMPLES good ones in a row bring it back (so a link at the edge does not flap). Video on probation (the
    first PROBE_SAMPLES of the call and of each try) is dropped after PROBE_POOR samples in a row with loss or delay
    (not a low REMB alone: estimators start low): a link too narrow for
    video and sound loses sound from the first second, so it should not lose three. A link that cannot carry
    video at all looks good once video is off: when video has to be dropped again soon after it came back, the
    judge waits twice as long before the next try (up to MAX_WAIT_SAMPLES), so sound is not cut every few seconds
    by a hopeless try."""

    video: bool = True
    poor_run: int = 0
    good_run: int = 0
    wait: int = GOOD_SAMPLES          # good samples needed before video comes back
    since_back: int | None = None     # samples since video last came back
    probation: int = PROBE_SAMPLES    # samples of video left on probation
    lossy_run: int = 0                # samples in a row with loss or delay

    @staticmethod
    def level(s: LinkSample) -> str:
        # A low REMB is a narrow link only when it allows less than the video is sending: an estimate follows what
        # arrives, so a still picture that costs the encoder little gets a low one on any link.
        squeezed = s.allowed_bps is not None and s.allowed_bps < POOR_BPS and \
            (s.sent_bps is None or s.allowed_bps < s.sent_bps)
        if s.loss >= POOR_LOSS or (s.rtt is not None and s.rtt >= POOR_RTT) or squeezed:
            return "poor"
        if s.loss <= GOOD_LOSS and (s.rtt is None or s.rtt <= GOOD_RTT):
            return "good"
        return "fair"

    def feed(self, s: LinkSample) -> str | None:
        """'audio' or 'video' when the call should change mode now, else None."""
        level = self.level(s)
        self.poor_run = self.poor_run + 1 if level == "poor" else 0
        self.good_run = self.good_run + 1 if level == "good" else 0
        if self.since_back is not None:
            self.since_back += 1
        on_probation = self.video and self.probation > 0
        if self.video:
            self.probation = max(0, self.probation - 1)
        # On probation only loss or delay drops video at once: a browser's first REMB estimates start low (Chromium's
        # was 70 kbit/s on loopback) and climb within seconds.
        # Two in a row: the first report after video came back may still count the loss of the stretch that
        # made it go (seen through a relay that had stopped losing).
        lossy = s.loss >= POOR_LOSS or (s.rtt is not None and s.rtt >= POOR_RTT)
        self.lossy_run = self.lossy_run + 1 if lossy else 0
        if self.video and (self.poor_run >= POOR_SAMPLES or (on_probation and self.lossy_run >= PROBE_POOR)):
            soon = self.since_back is not None and self.since_back <= RETRY_WINDOW_SAMPLES
            self.wait = min(self.wait * 2, MAX_WAIT_SAMPLES) if soon else GOOD_SAMPLES
            self.video, self.poor_run, self.probation, self.lossy_run = False, 0, 0, 0
            return "audio"
        if not self.video and self.good_run >= self.wait:
            self.video, self.good_run, self.since_back, self.probation = True, 0, 0, PROBE_SAMPLES
            return "video"
        return None


# --- the tracks ------------------------------------------------------------------------------------------------
def _tracks():
    """The track classes (aiortc and av imported only when a call starts: the app starts without them)."""
    import av
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class CameraTrack(MediaStreamTrack):
        """The camera, read on its own thread (OpenCV blocks), sent at VIDEO_SIZE and VIDEO_FPS. Paused (camera
        off, or audio only on a poor link) it sends nothing at all."""

        kind = "video"

        def __init__(self, open_camera: Callable[[], object] | None, on_frame: Callable[[np.ndarray], None]) -> None:
            super().__init__()
            self._latest: np.ndarray | None = None
            self._on_frame = on_frame
            self._stop = threading.Event()
            self.paused = asyncio.Event()
            self._running = asyncio.Event()
            self._running.set()
            self._pts = 0
            self.sent = 0          # frames handed to the encoder
            self._next = time.monotonic()
            self.problem = ""
            self.switch(open_camera)

        def switch(self, open_camera) -> None:
            """Reads from another camera from now on (the old one is released by its own thread)."""
            self._stop.set()
            self._stop = threading.Event()
            threading.Thread(target=self._read, args=(open_camera, self._stop), daemon=True, name="call-camera").start()

        def _read(self, open_camera, stop: threading.Event) -> None:
            import cv2

            if open_camera is None:
                return
            try:
                camera = open_camera()
            except Exception as exc:   # noqa: BLE001 - no camera is not an error of the call: sound goes on
                self.problem = str(exc)
                log.warning("no camera for the call (%s)", type(exc).__name__)
                return
            try:
                while not stop.is_set():
                    frame = camera.read()
                    small = cv2.resize(frame, VIDEO_SIZE, interpolation=cv2.INTER_AREA)
                    self._latest = small
                    self._on_frame(small)
                    time.sleep(1 / VIDEO_FPS / 2)
            except Exception as exc:   # noqa: BLE001 - the camera went away mid-call
                self.problem = str(exc)
                log.warning("the call's camera stopped (%s)", type(exc).__name__)
            finally:
                camera.close()

        def set_sending(self, sending: bool) -> None:
            if sending:
                self._running.set()
            else:
                self._running.clear()

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            await self._running.wait()
            self._next += 1 / VIDEO_FPS
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self._next = time.monotonic()
            image = self._latest if self._latest is not None else np.zeros((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = self._pts, fractions.Fraction(1, 90_000)
            self._pts += 90_000 // VIDEO_FPS
            self.sent += 1
            return frame

        def stop(self) -> None:
            self._stop.set()
            super().stop()

    class MicrophoneTrack(MediaStreamTrack):
        """The microphone through sounddevice, 20 ms frames of 48 kHz mono; muted, or with no microphone,
        silence in the same rhythm (the doctor's side then knows the call is alive)."""

        kind = "audio"

        def __init__(self, device) -> None:
            super().__init__()
            self.muted = False
            self._queue: deque[np.ndarray] = deque(maxlen=50)
            self._pts = 0
            self._next = time.monotonic()
            self._stream = None
            self.problem = ""
            try:
                import sounddevice as sd

                self._stream = sd.InputStream(samplerate=AUDIO_RATE, channels=1, dtype="int16", blocksize=AUDIO_FRAME,
                                              device=device, callback=self._callback)
                self._stream.start()
            except Exception as exc:   # noqa: BLE001 - no microphone: the call goes on with silence
                self.problem = str(exc)
                self._stream = None
                log.warning("no microphone for the call (%s)", type(exc).__name__)

        def _callback(self, indata, _frames, _time, _status) -> None:
            self._queue.append(indata[:, 0].copy())

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            self._next += AUDIO_FRAME / AUDIO_RATE
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self._next = time.monotonic()
            block = self._queue.popleft() if self._queue else None
            if block is None or self.muted or len(block) != AUDIO_FRAME:
                block = np.zeros(AUDIO_FRAME, np.int16)
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, self._pts, fractions.Fraction(1, AUDIO_RATE)
            self._pts += AUDIO_FRAME
            return frame

        def stop(self) -> None:
            if self._stream is not None:
                try:
                    self._stream.stop()
                    self._stream.close()
                except Exception:   # noqa: BLE001 - a sound server gone: nothing to close
                    pass
                self._stream = None
            super().stop()

    return CameraTrack, MicrophoneTrack


class _Speaker:
    """The doctor's voice out of the default output, through sounddevice; without an output it only counts."""

    def __init__(self) -> None:
        self.frames = 0
        self.peak = 0
        self._buffer: deque[np.ndarray] = deque(maxlen=100)
        self._stream = None
        try:
            import sounddevice as sd

            self._stream = sd.OutputStream(samplerate=AUDIO_RATE, channels=1, dtype="int16", blocksize=AUDIO_FRAME,
                                           callback=self._callback)
            self._stream.start()
        except Exception as exc:   # noqa: BLE001 - no speaker: the call goes on, the doctor's video still shows
            log.warning("no sound output for the call (%s)", type(exc).__name__)
            self._stream = None

    def _callback(self, outdata, frames, _time, _status) -> None:
        block = self._buffer.popleft() if self._buffer else None
        if block is None or len(block) < frames:
            outdata.fill(0)
        else:
            outdata[:, 0] = block[:frames]

    def play(self, samples: np.ndarray) -> None:
        self.frames += 1
        if samples.size:
            self.peak = max(self.peak, int(np.abs(samples.astype(np.int32)).max()))
        if self._stream is not None:
            for start in range(0, len(samples) - AUDIO_FRAME + 1, AUDIO_FRAME):
                self._buffer.append(samples[start:start + AUDIO_FRAME])

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:   # noqa: BLE001
                pass
            self._stream = None


# --- the call --------------------------------------------------------------------------------------------------
REASONS = {
    "spoke_hung_up": lambda: _("You hung up."),
    "doctor_hung_up": lambda: _("The doctor hung up."),
    "no_answer": lambda: _("No doctor answered in time. The case stays in the queue for the doctor to see."),
    "cancelled": lambda: _("The call was stopped before a doctor answered. The case stays in the queue."),
    "spoke_gone": lambda: _("This computer's connection to the hub was lost; the call ended. The case stays in "
                            "the queue."),
    "doctor_gone": lambda: _("The doctor's connection was lost; the call ended. The case stays in the queue."),
}


@dataclass
class CallStats:
    """What the call has carried so far (the tests and the technician's log read it)."""

    video_frames_in: int = 0
    video_frames_out: int = 0
    audio_frames_in: int = 0
    audio_peak_in: int = 0
    mode: str = "video"
    relayed: bool = False
    # What this end sent, by kind, between the first and the last measurement (for bitrates).
    sent_first: dict[str, tuple[float, int]] = field(default_factory=dict)
    sent_last: dict[str, tuple[float, int]] = field(default_factory=dict)

    def sent_kbps(self, kind: str) -> float | None:
        first, last = self.sent_first.get(kind), self.sent_last.get(kind)
        if not first or not last or last[0] <= first[0]:
            return None
        return (last[1] - first[1]) * 8 / (last[0] - first[0]) / 1000


class HubCall:
    """One call on a case, from ringing to hang-up, on its own thread. `events` hears everything the screen
    shows; hang_up(), mute() and camera() may be called from any thread."""

    def __init__(self, client: HubClient, case_id: str, caller: str, events: CallEvents, *,
                 open_camera: Callable[[], object] | None = None, microphone=None, relay_only: bool = False,
                 ca_bundle: str | None = None) -> None:
        self.client, self.case_id, self.caller, self.events = client, case_id, caller, events
        self.open_camera, self.microphone, self.relay_only, self.ca_bundle = open_camera, microphone, relay_only, ca_bundle
        self.stats = CallStats()
        self.camera_source = None    # the camera the call opened first (call_hub sets it), for Switch camera
        self.state = "idle"
        self.call_id: str | None = None
        self.finished = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hangup: asyncio.Event | None = None
        self._camera_track = None
        self._mic_track = None
        self._camera_wanted = True
        self._judge = LinkJudge()
        self._thread = threading.Thread(target=self._main, daemon=True, name="call")

    # --- from any thread ------------------------------------------------------------------------------------
    def start(self) -> "HubCall":
        self._thread.start()
        return self

    def hang_up(self) -> None:
        if self._hangup is not None:
            self._soon(lambda: self._hangup.set())

    def mute(self, muted: bool) -> None:
        if self._mic_track is not None:
            self._mic_track.muted = muted

    def camera(self, on: bool) -> None:
        self._camera_wanted = on
        self._soon(self._apply_video)

    def _soon(self, fn) -> None:
        """`fn` on the call's own loop; nothing once the call is over (a second click on Hang up)."""
        loop = self._loop
        if loop is not None and not self.finished.is_set():
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:      # the loop closed between the check and the call
                pass

    def switch_camera(self, sources: list) -> None:
        """The next of `sources` (camera numbers or addresses) after the one in use."""
        from spoke_client.services.camera import Camera

        if self._camera_track is None or not sources:
            return
        if not hasattr(self, "_camera_index"):
            self._camera_index = sources.index(self.camera_source) if self.camera_source in sources else -1
        self._camera_index = (self._camera_index + 1) % len(sources)
        source = sources[self._camera_index]
        self._camera_track.switch(lambda: Camera(source))

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # --- the call's own thread -----------------------------------------------------------------------------
    def _say(self, code: str, text: str) -> None:
        self.state = code
        log.info("call %s: %s", self.call_id or "-", code)
        self.events.state(code, text)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        except Exception:   # noqa: BLE001 - a call must never take the app down; the log keeps the details
            log.exception("the call failed")
            self._say("failed", _("The call failed on this computer. The case stays in the queue."))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self.finished.set()

    async def _run(self) -> None:
        self._hangup = asyncio.Event()
        self._say("calling", _("Calling the hub..."))
        try:
            start = await asyncio.get_running_loop().run_in_executor(None, self.client.start_call, self.case_id,
                                                                     self.caller)
        except HubRefused as exc:
            self._say("refused", _refusal(exc))
            return
        except (HubUnreachable, HubGarbage):
            self._say("unreachable", _("The hub cannot be reached now, so the call cannot start. The case stays "
                                       "in the queue for the doctor to see when it arrives."))
            return
        self.call_id = start.call_id
        await self._signal(start)

    async def _connect(self, path: str, after: int, timeout: float):
        """The call's signalling socket, signed as any GET of this PC; `after`: the last message number received,
        so a socket opened again mid-call carries on from there."""
        from websockets.asyncio.client import connect

        full = path + (f"?after={after}" if after else "")
        url = ("wss://" if self.client.base_url.startswith("https://") else "ws://") + \
            self.client.base_url.split("://", 1)[1] + full
        context = None
        if url.startswith("wss://"):
            context = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else ssl.create_default_context()
        return await connect(url, additional_headers=self.client.signed_headers("GET", full), ssl=context,
                             open_timeout=timeout, max_size=256 * 1024, ping_interval=5, ping_timeout=10)

    async def _reconnect(self, path: str):
        """After the signalling socket dropped mid-call (the sound and picture go their own way and may well go
        on): a new socket within RECONNECT_SECONDS, under the hub's quiet time, or None."""
        import websockets

        was = self.state
        self._say("reconnecting", _("The link to the hub dropped; reconnecting. The call goes on meanwhile."))
        deadline, pause = time.monotonic() + RECONNECT_SECONDS, 0.25
        while time.monotonic() < deadline and not self._hangup.is_set():
            try:
                ws = await self._connect(path, self._seq, max(1.0, min(5.0, deadline - time.monotonic())))
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 2.0)
                continue
            log.info("call %s: signalling reconnected", self.call_id)
            self._ws = ws
            if was == "live":
                self._say("live", _("In the call"))
                if self.stats.mode == "audio":     # the doctor may have missed it while the socket was down
                    await self._send({"kind": "mode", "mode": "audio", "why": "link"})
            else:
                self._say(was, _("Ringing at the hub. Waiting for a doctor to answer...") if was == "ringing"
                          else _("Connecting..."))
            return ws
        return None

    async def _send(self, message: dict) -> None:
        """To the doctor through the hub; a message while the socket is down is dropped (the call's state, not
        its history, is what matters, and `_reconnect` says the mode again)."""
        import websockets

        try:
            await self._ws.send(json.dumps(message))
        except websockets.exceptions.ConnectionClosed:
            log.info("call %s: a signalling message was dropped with its socket", self.call_id)

    async def _signal(self, start) -> None:
        import websockets

        path = f"/v1/calls/{start.call_id}/signal"
        self._seq = 0
        try:
            ws = self._ws = await self._connect(path, 0, 15)
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
            self._say("unreachable", _("The hub cannot be reached now, so the call cannot start. The case stays "
                                       "in the queue for the doctor to see when it arrives."))
            return
        self._say("ringing", _("Ringing at the hub. Waiting for a doctor to answer..."))
        pc = None
        ended = hung_up = False
        hangup = asyncio.create_task(self._hangup.wait())
        try:
            while True:
                receive = asyncio.create_task(ws.recv())
                done, _pending = await asyncio.wait({receive, hangup}, return_when=asyncio.FIRST_COMPLETED)
                if hangup in done:
                    receive.cancel()
                    hung_up = True
                    await ws.send(json.dumps({"kind": "hangup"}))
                    self._hangup = asyncio.Event()   # wait for the hub's "ended", or the socket to close
                    hangup = asyncio.create_task(asyncio.sleep(5))
                    continue
                try:
                    text = receive.result()
                except websockets.exceptions.ConnectionClosed as exc:
                    if hung_up or not _dropped(exc):
                        raise
                    again = await self._reconnect(path)
                    if again is None:
                        raise
                    ws = again
                    continue
                try:
                    message = json.loads(text)
                except (ValueError, TypeError):
                    continue
                kind = message.get("kind") if isinstance(message, dict) else None
                if isinstance(message, dict) and isinstance(message.get("seq"), int):
                    self._seq = max(self._seq, message["seq"])
                if kind == "answered":
                    self._say("connecting", _("{doctor} answered. Connecting...").format(
                        doctor=str(message.get("doctor", ""))[:200] or _("The doctor")))
                    pc = await self._offer(start)
                elif kind == "answer" and pc is not None:
                    from aiortc import RTCSessionDescription

                    await pc.setRemoteDescription(RTCSessionDescription(sdp=str(message.get("sdp", "")), type="answer"))
                elif kind == "mode" and message.get("mode") == "camera_off":
                    self._say("live", _("The doctor turned their camera off; the call goes on."))
                elif kind == "mode" and message.get("mode") == "camera_on":
                    self._say("live", _("In the call"))
                elif kind == "ended":
                    ended = True
                    reason = REASONS.get(str(message.get("reason")))
                    self._say("ended", reason() if reason else _("The call ended."))
                    return
                elif kind == "error":
                    log.warning("the hub refused a signalling message: %s", str(message.get("code", ""))[:40])
        except websockets.exceptions.ConnectionClosed:
            if not ended:
                if self.state in ("ringing", "calling") or hangup.done():
                    self._say("lost", _("The connection to the hub was lost before a doctor answered. The case "
                                        "stays in the queue."))
                else:
                    self._say("lost", _("The connection to the hub was lost; the call ended. The case stays in "
                                        "the queue."))
        finally:
            hangup.cancel()
            await self._close(pc)
            await ws.close()

    async def _offer(self, start):
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
        from aiortc.rtcconfiguration import RTCIceTransportPolicy

        _bounded_encoders()
        CameraTrack, MicrophoneTrack = _tracks()
        servers = [RTCIceServer(urls=s.urls, username=s.username or None, credential=s.credential or None)
                   for s in start.ice_servers]
        config = RTCConfiguration(iceServers=servers)
        if self.relay_only:
            config.iceTransportPolicy = RTCIceTransportPolicy.RELAY
        pc = RTCPeerConnection(config)
        self._pc = pc
        self._speaker = _Speaker()

        def local(frame):
            self.stats.video_frames_out += 1
            self.events.local_frame(frame)

        self._camera_track = CameraTrack(self.open_camera, local)
        self._mic_track = MicrophoneTrack(self.microphone)
        pc.addTrack(self._mic_track)
        self._video_sender = pc.addTrack(self._camera_track)

        @pc.on("track")
        def on_track(track) -> None:
            asyncio.ensure_future(self._consume(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                if self._camera_track.problem or self._mic_track.problem:
                    self._say("live", _("In the call, but this computer's camera or microphone could not be "
                                        "opened: check it is plugged in (the doctor may not see or hear you)."))
                else:
                    self._say("live", _("In the call"))
                self._stats_task = asyncio.ensure_future(self._measure())   # kept: a task needs a reference
            elif pc.connectionState == "failed":
                self._say("failed", _("The call's sound and picture could not get through the network. The case "
                                      "stays in the queue."))
                self._hangup.set()

        await pc.setLocalDescription(await pc.createOffer())
        await self._send({"kind": "offer", "sdp": pc.localDescription.sdp, "type": "offer"})
        return pc

    async def _consume(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.stats.video_frames_in += 1
                    self.events.remote_frame(frame.to_ndarray(format="bgr24"))
                else:
                    self.stats.audio_frames_in += 1
                    samples = frame.to_ndarray()
                    mono = samples.reshape(-1, len(frame.layout.channels))[:, 0] if samples.ndim > 1 else samples
                    self._speaker.play(mono.astype(np.int16, copy=False))
                    self.stats.audio_peak_in = self._speaker.peak
        except MediaStreamError:
            pass

    async def _measure(self) -> None:
        """Every STATS_SECONDS: loss and round trip from the RTCP reports of both directions, and the bitrate
        the doctor's REMB allows, judged into good / fair / poor; a change of mode is told to the doctor."""
        last: dict[int, tuple[int, int]] = {}
        reported: dict[str, object] = {}     # each remote report's time: a stream we stopped sending reports no more
        video_before: tuple[float, int] | None = None
        pc = self._pc
        while pc.connectionState == "connected":
            # Video on probation is looked at twice as often: on a link too narrow for it, each second costs sound.
            await asyncio.sleep(STATS_SECONDS / 2 if self._judge.probation else STATS_SECONDS)
            report = await pc.getStats()
            # Read while the link is up: by the time the call closes, the far end's close may have stopped ICE.
            self.stats.relayed = self.stats.relayed or _relayed(pc)
            losses, rtts = [], []
            for s in report.values():
                kind = type(s).__name__
                if kind == "RTCRemoteInboundRtpStreamStats":
                    if reported.get(s.id) == s.timestamp:
                        continue         # no new receiver report for this stream since the last look
                    reported[s.id] = s.timestamp
                    # aiortc gives RTCP's own field: the fraction lost in 1/256ths (the standard's stats say 0-1).
                    losses.append(float(s.fractionLost or 0) / 256)
                    if s.roundTripTime:
                        rtts.append(float(s.roundTripTime))
                elif kind == "RTCInboundRtpStreamStats":
                    got, lost = int(s.packetsReceived or 0), int(s.packetsLost or 0)
                    g0, l0 = last.get(s.ssrc, (0, 0))
                    last[s.ssrc] = (got, lost)
                    sent = (got - g0) + max(0, lost - l0)
                    if sent > 0:
                        losses.append(max(0, lost - l0) / sent)
                elif kind == "RTCOutboundRtpStreamStats":
                    sample = (time.monotonic(), int(s.bytesSent or 0))
                    self.stats.sent_first.setdefault(s.kind, sample)
                    self.stats.sent_last[s.kind] = sample
            encoder = getattr(self._video_sender, "_RTCRtpSender__encoder", None)
            allowed = getattr(encoder, "requested", None) if self._judge.video else None
            video_now, sent_bps = self.stats.sent_last.get("video"), None
            if video_now is not None and video_before is not None and video_now[0] > video_before[0]:
                sent_bps = int((video_now[1] - video_before[1]) * 8 / (video_now[0] - video_before[0]))
            video_before = video_now
            sample = LinkSample(loss=max(losses, default=0.0), rtt=max(rtts, default=None), allowed_bps=allowed,
                                sent_bps=sent_bps)
            level = LinkJudge.level(sample)
            if level != getattr(self, "_level", None):
                self._level = level
                log.info("call %s: link %s (%.0f%% lost, round trip %s, REMB %s)", self.call_id, level,
                         sample.loss * 100, f"{sample.rtt * 1000:.0f} ms" if sample.rtt is not None else "-",
                         sample.allowed_bps)
            self.events.link(level, _link_text(level, sample))
            change = self._judge.feed(sample)
            if change:
                self.stats.mode = change
                self._apply_video()
                await self._send({"kind": "mode", "mode": change, "why": "link"})
                self._say("live", _("Weak link: video paused, the call goes on with sound only.") if change == "audio"
                          else _("The link recovered: video is back."))

    def _apply_video(self) -> None:
        if self._camera_track is not None:
            sending = self._camera_wanted and self._judge.video
            self._camera_track.set_sending(sending)
            if sending and getattr(self, "_video_sender", None) is not None:
                # After a pause the far end has no picture to build on: start again from a keyframe (what a PLI
                # from it would ask; aiortc's sender method for that).
                self._video_sender._send_keyframe()

    async def _close(self, pc) -> None:
        for track in (self._camera_track, self._mic_track):
            if track is not None:
                track.stop()
        if getattr(self, "_speaker", None) is not None:
            self._speaker.close()
        if pc is not None:
            self.stats.relayed = self.stats.relayed or _relayed(pc)
            await pc.close()


def _dropped(exc) -> bool:
    """Whether a closed signalling socket dropped (no closing handshake, or the hub going away for a restart),
    rather than being closed by the hub on purpose (a refusal, 4xxx; the end of the call, 1000)."""
    code = exc.rcvd.code if exc.rcvd is not None else None
    return code is None or code in (1001, 1006, 1011, 1012, 1013, 1014)


def _relayed(pc) -> bool:
    """Whether the media went through a TURN server (the chosen pair's local candidate is a relayed one)."""
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.sender.transport.transport
            pair = ice._connection._nominated.get(1) if ice._connection else None
            if pair is not None:
                return pair.local_candidate.type == "relay"
    except AttributeError:
        pass
    return False


def _link_text(level: str, s: LinkSample) -> str:
    words = {"good": _("Link: good"), "fair": _("Link: fair"), "poor": _("Link: poor")}[level]
    detail = _("{loss:.0%} lost").format(loss=s.loss)
    if s.rtt is not None:
        detail += ", " + _("{ms} ms round trip").format(ms=int(s.rtt * 1000))
    return f"{words} ({detail})"


def _refusal(exc: HubRefused) -> str:
    known = {
        "no_doctor": _("No doctor of the hub is on duty now. The case stays in the queue for a doctor to see."),
        "no_case": _("The hub does not have this case yet. Send it first (sync), then call."),
        "case_finished": _("This case is finished at the hub; it cannot be called about."),
        "call_busy": _("A call on this case is already ringing or going on."),
        "not_enrolled": _("This computer is not enrolled with a hub yet."),
    }
    return known.get(exc.code, _("The hub refused the call: {reason}").format(reason=exc.message))


def call_hub(store, paths, case_id: str, caller: str, events: CallEvents, *, camera_source: str | int | None = None,
             microphone=None) -> HubCall:
    """A call from this PC about a case, started: signed as this PC, with the camera last used for photos (or the
    first one) and the default microphone. NotEnrolled when the PC has no hub yet."""
    from spoke_client.services.camera import Camera, parse_source
    from spoke_client.services.sync_local import signed_client
    from spoke_client.services.hub_link import HUB_CA_BUNDLE

    client = signed_client(store, paths)
    source = camera_source if camera_source not in (None, "") else 0
    call = HubCall(client, case_id, caller, events, open_camera=lambda: Camera(source), microphone=microphone,
                   ca_bundle=store.get_setting(HUB_CA_BUNDLE) or None)
    call.camera_source = parse_source(source) if isinstance(source, (str, int)) else source
    return call.start()
