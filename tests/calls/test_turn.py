"""A call that can only go through TURN: coturn on loopback with the shared-secret scheme, both ends told to use
relayed candidates only (the machine's host candidates unusable), the hub handing out short-lived credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess
import time

import pytest

from spoke_client.services.call import HubCall
from spoke_client.services.sync_local import signed_client
from sync.hub.calls import IceConfig
from tests.calls.doctor_peer import DoctorPeer
from tests.calls.test_call_e2e import Heard
from tests.calls.test_calls import pc_with_a_queued_case, ringing_call  # noqa: F401
from tests.sync.conftest import free_port, spoke  # noqa: F401

SECRET = "spoke-test-turn-secret"
# The relay, the link and the window are what these test, not the hub's database: SQLite only (the signalling on
# PostgreSQL is tested in test_calls.py and test_call_e2e.py).
ONE_HUB_DATABASE = pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)


@pytest.fixture
def coturn(tmp_path):
    if shutil.which("turnserver") is None:
        pytest.fail("coturn is missing: ./dev.sh test installs it (Debian package coturn)")
    port = free_port()
    log = tmp_path / "turn.log"
    proc = subprocess.Popen(["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
                             f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={SECRET}",
                             "--realm=spoke.test", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
                             "--min-port=49160", "--max-port=49400", f"--log-file={log}", "--simple-log",
                             "--no-stdout-log", "-v"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (log.exists() and "listener opened on" in log.read_text(errors="replace")):
        time.sleep(0.05)
    yield f"turn:127.0.0.1:{port}?transport=udp", log
    proc.terminate()
    proc.wait(10)


def test_the_hub_hands_out_credentials_coturn_accepts_and_that_expire():
    ice = IceConfig(stun=("stun:stun.example.org:3478",), turn=("turn:t.example.org:3478",), secret=SECRET,
                    ttl_seconds=3600)
    stun, turn = ice.servers("spoke-abc", now=1_800_000_000)
    assert stun == {"urls": ["stun:stun.example.org:3478"]}
    assert turn["username"] == "1800003600:spoke-abc"
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"1800003600:spoke-abc", hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    assert IceConfig(turn=("turn:t.example.org",)).servers("x") == [], "no secret, no TURN server offered"


@ONE_HUB_DATABASE
def test_a_call_relayed_through_turn_carries_both_ways(pc_with_a_queued_case, camera_video, coturn):
    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    url, log = coturn
    hub.ice = IceConfig(turn=(url,), secret=SECRET)
    heard, call, doctor = relayed_call(pc_with_a_queued_case, camera_video, lambda call_id: hub.ice_for("doctor", call_id))
    deadline = time.monotonic() + 20
    while (doctor.frames < 20 or call.stats.video_frames_in < 20) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert doctor.frames >= 20 and call.stats.video_frames_in >= 20 and call.stats.audio_frames_in >= 50
    call.hang_up()
    heard.wait_for("ended")
    assert call.wait(10) and doctor.closed.wait(10)
    assert call.stats.relayed and doctor.relayed, "the media went through the TURN server"
    text = log.read_text(errors="replace")
    assert "spoke-" in text and "doctor-" in text, "coturn saw both ends' time-limited users"


def relayed_call(pc_with_a_queued_case, camera_video, doctor_ice):
    """The spoke rings with relayed candidates only, Dr Mehta answers with relayed candidates only; live."""
    from spoke_client.services.camera import Camera

    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    heard = Heard()
    call = HubCall(signed_client(services.store, paths), case.id, admin.full_name, heard,
                   open_camera=lambda: Camera(str(camera_video)), relay_only=True).start()
    heard.wait_for("ringing")
    call_id = ringing_call(hub, case.id)
    hub.answer_call(mehta, call_id)
    doctor = DoctorPeer(server.url, hub.sign_in("dr.mehta", "mehta-pass-12").token, call_id, doctor_ice(call_id),
                        relay_only=True).start()
    heard.wait_for("live", 40)
    return heard, call, doctor


def said(heard: Heard, words: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not any(words in text for _code, text in heard.states):
        assert time.monotonic() < deadline, f"the spoke never said {words!r}: {heard.states}"
        time.sleep(0.05)


class LossyUdp:
    """A UDP relay on loopback in front of coturn that drops a share of the datagrams each way (set `loss`): the
    spoke's whole media path, as a weak rural link would treat it."""

    def __init__(self, target_port: int) -> None:
        import random
        import select
        import socket
        import threading

        self.loss = 0.0
        self.dropped = 0
        self._random = random.Random(7)
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.bind(("127.0.0.1", 0))
        self.port = self.listen.getsockname()[1]
        self.target = ("127.0.0.1", target_port)
        self.upstream: dict[tuple, socket.socket] = {}
        self.back: dict[socket.socket, tuple] = {}
        self.running = True

        def pump() -> None:
            while self.running:
                ready, _, _ = select.select([self.listen, *self.back], [], [], 0.2)
                for sock in ready:
                    data, source = sock.recvfrom(65536)
                    if self._random.random() < self.loss:
                        self.dropped += 1
                        continue
                    if sock is self.listen:
                        up = self.upstream.get(source)
                        if up is None:
                            up = self.upstream[source] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            up.bind(("127.0.0.1", 0))
                            self.back[up] = source
                        up.sendto(data, self.target)
                    else:
                        self.listen.sendto(data, self.back[sock])

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        for s in [self.listen, *self.back]:
            s.close()


@ONE_HUB_DATABASE
@pytest.mark.solo
def test_a_weak_link_drops_video_keeps_sound_and_video_comes_back(pc_with_a_queued_case, camera_video, coturn):
    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    url, _log = coturn
    lossy = LossyUdp(int(url.split(":")[2].split("?")[0]))
    try:
        # The spoke reaches coturn through the weak link; the doctor directly.
        hub.ice = IceConfig(turn=(f"turn:127.0.0.1:{lossy.port}?transport=udp",), secret=SECRET)
        heard, call, doctor = relayed_call(pc_with_a_queued_case, camera_video, lambda call_id: IceConfig(
            turn=(url,), secret=SECRET).servers(f"doctor-{call_id[:8]}"))
        deadline = time.monotonic() + 20
        while doctor.frames < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert doctor.frames >= 20 and call.stats.mode == "video"
        lossy.loss = 0.15
        deadline = time.monotonic() + 20
        while call.stats.mode != "audio" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert call.stats.mode == "audio", "video stays on a link that loses 15 % of its packets"
        said(heard, "video paused")
        time.sleep(1)          # frames already on their way (and in the far end's jitter buffer) arrive
        frames, audio = doctor.frames, doctor.audio
        time.sleep(2)
        assert doctor.frames - frames <= 2, "video still flows after the switch to sound only"
        print(f"sound frames at the doctor in 2 s of sound only: {doctor.audio - audio}")
        assert doctor.audio - audio > 15, "the sound goes on"
        assert doctor.modes == ["audio"], "the doctor's end is told"
        lossy.loss = 0.0
        deadline = time.monotonic() + 25
        while call.stats.mode != "video" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert call.stats.mode == "video", "video does not come back on a link that recovered"
        frames = doctor.frames
        # An aiortc receiving end shows a picture again only once its jitter buffer gets past the hole the loss
        # left (128 packets later; Chromium asks for a keyframe sooner): up to about 10 s at a low bitrate.
        deadline = time.monotonic() + 20
        while doctor.frames - frames <= 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert doctor.frames - frames > 10 and doctor.modes == ["audio", "video"], (
            doctor.frames - frames, doctor.modes, call._camera_track.sent, heard.states[-3:], heard.links[-8:])
        said(heard, "video is back")
        call.hang_up()
        heard.wait_for("ended")
        assert call.wait(10) and doctor.closed.wait(10)
    finally:
        lossy.close()
