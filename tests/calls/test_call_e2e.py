"""The spoke's aiortc peer and the doctor in headless Chromium, through the real hub's signalling on two workers."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from spoke_client.services.call import HubCall
from spoke_client.services.camera import Camera
from sync.hub.models import HubCall as Row
from sync.transport.http import HubClient
from tests.hub.test_console_e2e import calm_case
from tests.sync.hub_process import HubProcess


class Heard:
    """What the spoke's screen would be told, with the moment of each state."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []
        self.remote = self.local = 0
        self.last_local = None
        self.links: list[str] = []
        self.changed = threading.Condition()

    def state(self, code: str, text: str) -> None:
        with self.changed:
            self.states.append((code, text))
            self.changed.notify_all()

    def remote_frame(self, frame) -> None:
        self.remote += 1

    def local_frame(self, frame) -> None:
        self.local += 1
        self.last_local = frame

    def link(self, level: str, text: str) -> None:
        self.links.append(level)

    def wait_for(self, code: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for c, text in self.states:
                    if c == code:
                        return text
                left = deadline - time.monotonic()
                assert left > 0, f"the spoke never reached {code!r}: {self.states}"
                self.changed.wait(left)


def signed_in_doctor(browser, url: str, username: str, password: str):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{url}/console/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{url}/console/")
    return context, page


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)   # PostgreSQL's hub: the power cut below
def test_a_call_from_the_spoke_answered_in_the_browser(clinic, facilities, spoke_factory, hub_db_url, tmp_path,
                                                       chromium, camera_video, pulse_sine):
    hub, _org, _admin, mehta, rao = clinic
    spoke = spoke_factory(facilities[0])
    calm_case(spoke, "c-call", "p-call")
    hub.set_on_duty(mehta, True)
    hub.set_on_duty(rao, True)
    with HubProcess(hub_db_url, tmp_path, workers=2).start() as process:
        client = HubClient(process.url, device_id=spoke.client.device_id, key=spoke.client.key,
                           next_counter=spoke.client.next_counter, allow_plain_http=True)
        context, page = signed_in_doctor(chromium, process.url, "dr.mehta", "mehta-pass-12")
        heard = Heard()
        call = HubCall(client, "c-call", "Dr Anil (generalist)", heard, open_camera=lambda: Camera(str(camera_video)))
        call.start()
        heard.wait_for("ringing")
        page.wait_for_selector("section.ringing button.answer", timeout=10_000)
        assert "Cough" in page.inner_text("section.ringing")
        page.click("section.ringing button.answer")
        page.wait_for_url(f"{process.url}/console/calls/*")
        heard.wait_for("live", 30)
        page.wait_for_function("() => window.spokeCall.frames > 20 && window.spokeCall.audioBytes > 2000", timeout=30_000)
        deadline = time.monotonic() + 20
        while (call.stats.video_frames_in < 20 or call.stats.audio_frames_in < 50) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert call.stats.video_frames_in >= 20 and call.stats.audio_frames_in >= 50, call.stats
        page.click("#hangup")
        text = heard.wait_for("ended")
        assert "doctor hung up" in text
        page.wait_for_function("() => window.spokeCall.ended !== ''", timeout=10_000)
        assert "You hung up" in page.inner_text("#call-note")
        assert call.wait(10)
        page.goto(f"{process.url}/console/cases/c-call")     # the call is on the case, and gives its mode
        assert "video" in page.inner_text(".call-record") and "Dr Rajesh Mehta" in page.inner_text(".call-record")
        assert "video" in page.inner_text("dl")
        context.close()


def power_cut(process: HubProcess) -> None:
    """SIGKILL the hub and every worker of it, as a power cut or the OOM killer would."""
    subprocess.run(["pkill", "-KILL", "-P", str(process.proc.pid)], check=False)
    process.kill()
    process.wait_dead()


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)   # the production hub; SQLite's above
def test_the_hub_killed_mid_call_ends_it_at_both_ends_and_the_case_stays_queued(clinic, facilities, spoke_factory,
                                                                              hub_db_url, tmp_path, chromium,
                                                                              camera_video, pulse_sine):
    hub, _org, _admin, mehta, rao = clinic
    spoke = spoke_factory(facilities[0])
    calm_case(spoke, "c-cut", "p-cut")
    mehta = hub.set_on_duty(mehta, True)
    rao = hub.set_on_duty(rao, True)
    process = HubProcess(hub_db_url, tmp_path, workers=2).start()
    try:
        client = HubClient(process.url, device_id=spoke.client.device_id, key=spoke.client.key,
                           next_counter=spoke.client.next_counter, allow_plain_http=True)
        context, page = signed_in_doctor(chromium, process.url, "dr.rao", "rao-pass-1234")
        heard = Heard()
        call = HubCall(client, "c-cut", "ANM Sunita", heard, open_camera=lambda: Camera(str(camera_video))).start()
        heard.wait_for("ringing")
        # Dr Mehta answers first (through the service); Dr Rao, in the browser, is told it was taken.
        page.wait_for_selector("section.ringing button.answer", timeout=10_000)
        hub.answer_call(mehta, next(c.id for c in hub.ringing_calls(mehta)))
        page.click("section.ringing button.answer")
        assert "Dr Rajesh Mehta already answered this call" in page.inner_text("#problem")
        page.goto(f"{process.url}/console/")
        assert page.locator("section.ringing").count() == 0 or not page.locator("section.ringing").is_visible()
        context.close()
        # Mehta's browser takes the call from here.
        context, page = signed_in_doctor(chromium, process.url, "dr.mehta", "mehta-pass-12")
        with hub.session() as s:
            call_id = s.query(Row).filter_by(case_id="c-cut").one().id
        page.goto(f"{process.url}/console/calls/{call_id}")
        heard.wait_for("live", 30)
        page.wait_for_function("() => window.spokeCall.frames > 10", timeout=30_000)
        power_cut(process)
        assert "connection to the hub was lost" in heard.wait_for("lost", 10)
        page.wait_for_function("() => window.spokeCall.ended !== ''", timeout=10_000)
        assert "connection to the hub was lost" in page.evaluate("() => window.spokeCall.ended")
        assert call.wait(10)
        context.close()
    finally:
        if process.alive:
            power_cut(process)
    # The hub comes back: the call it lost is ended once its ends have been silent long enough, and recorded.
    hub.quiet_seconds = 0
    assert hub.ringing_calls(mehta) == []
    with hub.session() as s:
        row = s.query(Row).filter_by(case_id="c-cut").one()
        assert (row.state, row.outcome) == ("ended", "failed")
    assert hub.case_view(mehta, "c-cut").case["status"] == "queued"


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_the_doctors_socket_that_drops_mid_call_is_opened_again_on_any_worker(clinic, facilities, spoke_factory,
                                                                              hub_db_url, tmp_path, chromium,
                                                                              camera_video, pulse_sine):
    """The doctor's browser reaches the hub through a link that drops (a reset under its signalling socket): the
    page says it is reconnecting, opens the socket again (on whichever of the two workers takes it), the call
    goes on, the spoke is told nothing, and the doctor's hang-up afterwards reaches the spoke."""
    from tests.calls.links import CuttableTcp

    hub, _org, _admin, mehta, _rao = clinic
    spoke = spoke_factory(facilities[0])
    calm_case(spoke, "c-drop", "p-drop")
    hub.set_on_duty(mehta, True)
    with HubProcess(hub_db_url, tmp_path, workers=2).start() as process:
        link = CuttableTcp(process.port)
        try:
            client = HubClient(process.url, device_id=spoke.client.device_id, key=spoke.client.key,
                               next_counter=spoke.client.next_counter, allow_plain_http=True)
            context, page = signed_in_doctor(chromium, link.url, "dr.mehta", "mehta-pass-12")
            heard = Heard()
            call = HubCall(client, "c-drop", "ANM Sunita", heard, open_camera=lambda: Camera(str(camera_video)))
            call.start()
            heard.wait_for("ringing")
            page.wait_for_selector("section.ringing button.answer", timeout=10_000)
            page.click("section.ringing button.answer")
            heard.wait_for("live", 30)
            page.wait_for_function("() => window.spokeCall.frames > 10 && window.spokeCall.state === 'live'",
                                   timeout=30_000)
            before = link.connections
            link.cut()
            page.wait_for_function("() => window.spokeCall.states.slice(-2).join() === 'reconnecting,live'",
                                   timeout=10_000)
            assert link.connections > before and page.evaluate("() => window.spokeCall.ended") == ""
            frames = page.evaluate("() => window.spokeCall.frames")
            page.wait_for_function(f"() => window.spokeCall.frames > {frames + 15}", timeout=10_000)
            assert [c for c, _t in heard.states].count("lost") == 0 and call.state == "live"
            page.click("#hangup")
            assert "doctor hung up" in heard.wait_for("ended")
            assert call.wait(10)
            context.close()
        finally:
            link.close()
