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


def test_a_call_relayed_through_turn_carries_both_ways(pc_with_a_queued_case, camera_video, coturn):
    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    url, log = coturn
    hub.ice = IceConfig(turn=(url,), secret=SECRET)
    heard = Heard()
    call = HubCall(signed_client(services.store, paths), case.id, admin.full_name, heard,
                   open_camera=lambda: __import__("spoke_client.services.camera", fromlist=["Camera"]).Camera(
                       str(camera_video)), relay_only=True).start()
    heard.wait_for("ringing")
    call_id = ringing_call(hub, case.id)
    hub.answer_call(mehta, call_id)
    doctor = DoctorPeer(server.url, hub.sign_in("dr.mehta", "mehta-pass-12").token, call_id,
                        hub.ice_for("doctor", call_id), relay_only=True).start()
    heard.wait_for("live", 40)
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
