"""Calls at the service level, all real but the doctor's browser (a Python aiortc peer on the console's own
WebSocket stands in for it; tests/calls/test_call_e2e.py has Chromium): a real spoke PC with its encrypted data
enrolled to a real hub on loopback, its camera a video file and its microphone PulseAudio's sine source."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from spoke_client.services.call import (
    GOOD_SAMPLES,
    POOR_SAMPLES,
    PROBE_POOR,
    PROBE_SAMPLES,
    LinkJudge,
    LinkSample,
    call_hub,
)
from sync.hub.errors import HubError
from tests.calls.doctor_peer import DoctorPeer
from tests.calls.links import CuttableTcp
from tests.calls.test_call_e2e import Heard
from tests.sync.test_consultation_sync import enrolled, queued_case, synced
from tests.sync.conftest import spoke  # noqa: F401


# The hub's refusals and clocks on one database (the PostgreSQL hub's sweep is in test_call_e2e.py's power cut).
ONE_HUB_DATABASE = pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)


def ringing_call(hub, case_id: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with hub.session() as s:
            from sync.hub.models import HubCall
            row = s.query(HubCall).filter_by(case_id=case_id, state="ringing").first()
            if row is not None:
                return row.id
        time.sleep(0.05)
    raise AssertionError("the call never rang at the hub")


@pytest.fixture
def pc_with_a_queued_case(clinic, facilities, spoke, hub_server, camera_video, pulse_sine):
    hub, _org, _admin, mehta, rao = clinic
    services, admin, paths = enrolled(spoke, hub, hub_server, facilities[0], "spoke-pc")
    _kamla, case = queued_case(services, admin)
    synced(services, paths)
    mehta = hub.set_on_duty(mehta, True)
    rao = hub.set_on_duty(rao, True)
    return hub, hub_server, services, paths, admin, case, mehta, rao


def test_a_call_is_recorded_on_the_case_synced_and_gives_the_prescription_its_mode(pc_with_a_queued_case,
                                                                                   camera_video):
    hub, server, services, paths, admin, case, mehta, rao = pc_with_a_queued_case
    heard = Heard()
    call = call_hub(services.store, paths, case.id, admin.full_name, heard, camera_source=str(camera_video))
    heard.wait_for("ringing")
    call_id = ringing_call(hub, case.id)
    rung = hub.ringing_calls(mehta)
    assert [c.id for c in rung] == [call_id] and rung[0].complaints == "Headache" and rung[0].caller == admin.full_name
    assert rung[0].flags, "the ringing call shows the case's red flags"
    hub.answer_call(mehta, call_id)
    with pytest.raises(HubError) as taken:          # the second doctor is told who took it
        hub.answer_call(rao, call_id)
    assert taken.value.code == "call_taken" and "Dr Rajesh Mehta" in taken.value.message
    token = hub.sign_in("dr.mehta", "mehta-pass-12").token
    doctor = DoctorPeer(server.url, token, call_id, hub.ice_for("doctor", call_id)).start()
    heard.wait_for("live", 30)
    deadline = time.monotonic() + 20
    while (doctor.frames < 20 or call.stats.video_frames_in < 20 or call.stats.audio_frames_in < 50) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert doctor.frames >= 20 and doctor.audio >= 50, (doctor.frames, doctor.audio)
    assert call.stats.video_frames_in >= 20 and call.stats.audio_frames_in >= 50, call.stats
    assert heard.local > 10 and heard.links, "the spoke shows its own view and the link's quality"
    # Switch camera: the next source (a second camera, here a green video) is what the spoke sends now.
    green = camera_video.parent / "green.avi"
    writer = cv2.VideoWriter(str(green), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for _ in range(5):
        writer.write(np.full((480, 640, 3), (40, 200, 40), np.uint8))
    writer.release()
    call.switch_camera([str(camera_video), str(green)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (heard.last_local is not None and heard.last_local[:, :, 1].mean() > 150
                                               and heard.last_local[:, :, 0].mean() < 80):
        time.sleep(0.05)
    assert heard.last_local[:, :, 1].mean() > 150, "the second camera's picture is not the one sent"
    time.sleep(3)      # a few seconds of measurements: the bitrates a rural link must carry
    video, audio = call.stats.sent_kbps("video"), call.stats.sent_kbps("audio")
    assert video is not None and 20 < video <= 330, f"video at {video} kbit/s"
    assert audio is not None and 10 < audio <= 45, f"audio at {audio} kbit/s (Opus at 24 plus RTP)"
    print(f"sent: video {video:.0f} kbit/s, audio {audio:.0f} kbit/s")
    call.hang_up()
    assert "You hung up" in heard.wait_for("ended")
    assert doctor.closed.wait(10) and doctor.ended["reason"] == "spoke_hung_up"
    assert call.wait(10)

    assert hub.case_view(mehta, case.id).consultation_mode == "video"
    synced(services, paths)
    [record] = services.consultation.calls(case.id)
    assert (record.outcome, record.mode_used, record.doctor) == ("completed", "video", "Dr Rajesh Mehta")
    assert record.duration_s >= 1 and record.caller == admin.full_name
    assert services.cases.get(case.id).status.value == "queued"


@ONE_HUB_DATABASE
def test_a_call_nobody_answers_is_missed_and_the_case_stays_queued(pc_with_a_queued_case, camera_video):
    hub, _server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    hub.ring_seconds = 2
    heard = Heard()
    started = time.monotonic()
    call = call_hub(services.store, paths, case.id, admin.full_name, heard, camera_source=str(camera_video))
    assert "No doctor answered" in heard.wait_for("ended", 15)
    assert time.monotonic() - started < 8
    assert call.wait(10)
    with pytest.raises(HubError) as over:
        hub.answer_call(mehta, ringing_call_id(hub, case.id))
    assert over.value.code == "call_over"
    synced(services, paths)
    [record] = services.consultation.calls(case.id)
    assert (record.outcome, record.mode_used) == ("missed", "none")
    assert services.cases.get(case.id).status.value == "queued"
    assert hub.case_view(mehta, case.id).consultation_mode == "store_and_forward"


def ringing_call_id(hub, case_id: str) -> str:
    from sync.hub.models import HubCall
    with hub.session() as s:
        return s.query(HubCall).filter_by(case_id=case_id).one().id


@ONE_HUB_DATABASE
def test_without_a_doctor_on_duty_or_a_hub_the_user_is_told_at_once(pc_with_a_queued_case, camera_video):
    hub, server, services, paths, admin, case, mehta, rao = pc_with_a_queued_case
    hub.set_on_duty(mehta, False)
    hub.set_on_duty(rao, False)
    heard = Heard()
    started = time.monotonic()
    call_hub(services.store, paths, case.id, admin.full_name, heard, camera_source=str(camera_video)).wait(10)
    assert "No doctor of the hub is on duty" in heard.wait_for("refused", 1)
    server.stop()
    heard = Heard()
    call_hub(services.store, paths, case.id, admin.full_name, heard, camera_source=str(camera_video)).wait(20)
    assert "cannot be reached" in heard.wait_for("unreachable", 1)
    assert time.monotonic() - started < 15
    assert services.cases.get(case.id).status.value == "queued"


def test_the_link_judge_drops_video_on_a_poor_link_and_brings_it_back_when_it_holds_good():
    good, poor = LinkSample(loss=0.0, rtt=0.05), LinkSample(loss=0.2, rtt=0.3)
    # The call's first seconds are video on probation: one poor sample drops it (a link too narrow for video and
    # sound loses sound from its first second).
    judge = LinkJudge()
    assert judge.feed(good) is None and judge.feed(poor) is None and judge.feed(good) is None, "one alone is not enough"
    assert judge.feed(poor) is None and judge.feed(poor) == "audio" and not judge.video
    # A low REMB alone is not enough on probation (a browser's estimate starts low and climbs): three in a row are.
    judge, low = LinkJudge(), LinkSample(loss=0.0, rtt=0.05, allowed_bps=70_000)
    assert [judge.feed(low) for _ in range(POOR_SAMPLES)] == [None] * (POOR_SAMPLES - 1) + ["audio"]
    # Past its probation, video is dropped after POOR_SAMPLES poor samples in a row, not at one.
    judge = LinkJudge()
    assert [judge.feed(good) for _ in range(PROBE_SAMPLES)] == [None] * PROBE_SAMPLES and judge.probation == 0
    assert [judge.feed(poor) for _ in range(POOR_SAMPLES)] == [None] * (POOR_SAMPLES - 1) + ["audio"]
    assert not judge.video
    flapping = [judge.feed(s) for s in [good] * (GOOD_SAMPLES - 1) + [poor] + [good] * (GOOD_SAMPLES - 1)]
    assert flapping == [None] * len(flapping), "a link at the edge does not bring video back"
    assert judge.feed(good) == "video" and judge.video
    # A link that cannot carry video: each try is on probation (its first poor sample ends it), and each that
    # fails soon doubles the wait before the next one.
    waits = []
    for _ in range(4):
        assert [judge.feed(poor) for _ in range(PROBE_POOR)] == [None] * (PROBE_POOR - 1) + ["audio"]
        waits.append(next(n for n in range(1, 200) if judge.feed(good) == "video"))
    assert waits == [2 * GOOD_SAMPLES, 4 * GOOD_SAMPLES, 8 * GOOD_SAMPLES, 96], waits
    for _ in range(40):                 # video holds for longer than the retry window: the next drop waits 6 again
        assert judge.feed(good) is None
    assert [judge.feed(poor) for _ in range(POOR_SAMPLES)][-1] == "audio"
    assert next(n for n in range(1, 200) if judge.feed(good) == "video") == GOOD_SAMPLES
    assert LinkJudge.level(LinkSample(loss=0.0, rtt=1.5)) == "poor"
    assert LinkJudge.level(LinkSample(loss=0.0, rtt=0.1, allowed_bps=50_000)) == "poor"
    # A low REMB that still allows more than the video sends (a still picture) is no sign of a narrow link.
    assert LinkJudge.level(LinkSample(loss=0.0, rtt=0.1, allowed_bps=70_000, sent_bps=50_000)) == "good"
    assert LinkJudge.level(LinkSample(loss=0.0, rtt=0.1, allowed_bps=70_000, sent_bps=150_000)) == "poor"
    assert LinkJudge.level(LinkSample(loss=0.05, rtt=0.1)) == "fair"


@ONE_HUB_DATABASE
def test_garbage_on_the_signalling_socket_is_refused_and_the_call_goes_on(pc_with_a_queued_case):
    """A spoke (or anything holding its key) that sends garbage gets an error for each message; the call rings on,
    and an unsigned socket is refused outright."""
    import asyncio
    import json

    from websockets.asyncio.client import connect

    from spoke_client.services.sync_local import signed_client

    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    client = signed_client(services.store, paths)
    start = client.start_call(case.id, "ANM")
    path = f"/v1/calls/{start.call_id}/signal"
    url = server.url.replace("http://", "ws://") + path

    async def talk() -> tuple[list[dict], dict]:
        async with connect(url, additional_headers=client.signed_headers("GET", path)) as ws:
            answers = []
            for bad in ("not json", json.dumps([1, 2]), json.dumps({"kind": "answer", "sdp": "x"}),
                        json.dumps({"kind": "offer", "sdp": "x" * 70_000})):
                await ws.send(bad)
                while True:
                    m = json.loads(await ws.recv())
                    if m["kind"] == "error":
                        answers.append(m)
                        break
            answers.append({"ringing": [c.id for c in hub.ringing_calls(mehta)]})
        async with connect(url) as unsigned:
            refused = json.loads(await unsigned.recv())
        return answers, refused

    answers, refused = asyncio.run(talk())
    *errors, still = answers
    assert len(errors) == 4 and all(a["message"] for a in errors)
    assert still["ringing"] == [start.call_id], "the garbage did not end the call"
    assert refused["kind"] == "error" and refused["code"]
    time.sleep(0.3)
    # The first socket closed without a hang-up: that ends the ringing call as stopped, as the spoke's window would.
    from sync.hub.models import HubCall
    with hub.session() as s:
        assert s.get(HubCall, start.call_id).outcome == "cancelled"


@ONE_HUB_DATABASE
def test_a_signalling_socket_that_drops_mid_call_is_opened_again_and_the_call_goes_on(pc_with_a_queued_case,
                                                                                        camera_video):
    """The link under the spoke's signalling socket drops (a reset, no closing handshake) while the sound and
    picture go their own way: the spoke says it is reconnecting, opens a new socket that carries on from the
    last message it had, the doctor's end notices nothing, and hanging up afterwards goes through the new one.
    A socket closed cleanly without a hang-up still ends the call at once (the garbage test above)."""
    from sync.hub.models import HubCall as Row
    from sync.transport.http import HubClient
    from spoke_client.services.call import HubCall
    from spoke_client.services.camera import Camera
    from spoke_client.services.sync_local import signed_client

    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    link = CuttableTcp(server.port)
    signed = signed_client(services.store, paths)
    client = HubClient(link.url, device_id=signed.device_id, key=signed.key, next_counter=signed.next_counter,
                       allow_plain_http=True)
    heard = Heard()
    call = HubCall(client, case.id, admin.full_name, heard, open_camera=lambda: Camera(str(camera_video))).start()
    try:
        heard.wait_for("ringing")
        call_id = ringing_call(hub, case.id)
        hub.answer_call(mehta, call_id)
        doctor = DoctorPeer(server.url, hub.sign_in("dr.mehta", "mehta-pass-12").token, call_id,
                            hub.ice_for("doctor", call_id)).start()
        heard.wait_for("live", 30)
        deadline = time.monotonic() + 20
        while (doctor.audio < 50 or call.stats.audio_frames_in < 50) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert doctor.audio >= 50 and call.stats.audio_frames_in >= 50
        sockets_before = link.connections
        link.cut()
        assert "reconnecting" in heard.wait_for("reconnecting", 10)
        deadline = time.monotonic() + 10
        while not (heard.states[-1][0] == "live" and link.connections > sockets_before) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard.states[-1][0] == "live" and link.connections > sockets_before, heard.states[-3:]
        # The media never stopped, and the hub and the doctor still hold the call.
        heard_before, doctor_before = call.stats.audio_frames_in, doctor.audio
        time.sleep(2)
        assert call.stats.audio_frames_in > heard_before + 50 and doctor.audio > doctor_before + 50
        assert not doctor.closed.is_set()
        with hub.session() as s:
            assert s.get(Row, call_id).state == "answered"
        call.hang_up()
        assert "You hung up" in heard.wait_for("ended")
        assert doctor.closed.wait(10) and doctor.ended["reason"] == "spoke_hung_up"
        assert call.wait(10)
        with hub.session() as s:
            assert s.get(Row, call_id).outcome == "completed"
        assert [c for c, _t in heard.states].count("lost") == 0
        call.hang_up()          # a second click once the call is over: nothing happens
    finally:
        call.hang_up()
        link.close()


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("listener_late", [0.0, 1.0], ids=["listener-at-once", "listener-a-second-late"])
def test_on_postgresql_a_message_reaches_its_end_by_notification_not_by_the_next_look(pc_with_a_queued_case,
                                                                                       monkeypatch, listener_late):
    """On PostgreSQL a message written for an end wakes that end's socket at once (LISTEN/NOTIFY, one listening
    connection per worker); with polling and heartbeats made 5 s here, the doctor's answer reaches the ringing spoke
    within a second (it would take seconds without the notification). That holds too when the listener goes live
    only after the end began to wait (its connection slow to open: the end then polls, and is woken when the
    listener is live). When the last socket goes, the listener stops."""
    import asyncio
    import json

    from websockets.asyncio.client import connect

    from spoke_client.services.sync_local import signed_client
    from sync.hub import calls

    monkeypatch.setattr(calls, "POLL_SECONDS", 5.0)        # an end that polled would wait that long,
    monkeypatch.setattr(calls, "HEARTBEAT_SECONDS", 5.0)   # and one that only looked at its heartbeats too
    if listener_late:
        listen = calls._Listener._run
        monkeypatch.setattr(calls._Listener, "_run", lambda self: (time.sleep(listener_late), listen(self)))
    hub, server, services, paths, _admin, case, mehta, _rao = pc_with_a_queued_case
    client = signed_client(services.store, paths)
    start = client.start_call(case.id, "ANM")
    path = f"/v1/calls/{start.call_id}/signal"
    url = server.url.replace("http://", "ws://") + path

    async def ring() -> float:
        async with connect(url, additional_headers=client.signed_headers("GET", path)) as ws:
            deadline = time.monotonic() + 10
            def listening() -> bool:
                listener = getattr(hub, "_listener", None)     # made by the first socket of a call
                return listener is not None and listener.live.is_set() and bool(listener.waiting)

            while not listening() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert listening(), "the worker listens for the call's messages"
            await asyncio.sleep(0.3)
            answered_at = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, hub.answer_call, mehta, start.call_id)
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 4))
                if m["kind"] == "answered":
                    return time.monotonic() - answered_at

    took = asyncio.run(ring())
    assert took < 1.0, f"the answer took {took:.2f} s: it waited for a look, not a notification"
    deadline = time.monotonic() + 5
    while hub._listener.thread is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hub._listener.thread is None, "the listener stops when no end waits"
