"""The call in the app: "Call hub" on a queued case opens the call window; the doctor (a Python aiortc peer on the
console's WebSocket) answers; both pictures show; the window stays responsive (the longest stall of the Qt event
loop during the call is measured); hanging up ends both ends and the case shows the call once synced."""

from __future__ import annotations

import pytest

from spoke_client.services.call import call_hub
from spoke_client.ui.case_editor import CaseEditor
from tests.calls.doctor_peer import DoctorPeer
from tests.calls.test_calls import pc_with_a_queued_case, ringing_call  # noqa: F401
from tests.sync.conftest import spoke  # noqa: F401
from tests.sync.test_consultation_sync import synced
from tests.ui.conftest import runner, screenshot  # noqa: F401
from tests.ui.heartbeat import Heartbeat
from tests.ui.test_consultation_ui import loaded

# The relay, the link and the window are what these test, not the hub's database: SQLite only (the signalling on
# PostgreSQL is tested in test_calls.py and test_call_e2e.py).
ONE_HUB_DATABASE = pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)


@ONE_HUB_DATABASE
@pytest.mark.solo
def test_call_hub_from_the_case_with_both_pictures_and_no_stall(qtbot, runner, pc_with_a_queued_case, camera_video,
                                                               screenshot):
    hub, server, services, paths, admin, case, mehta, _rao = pc_with_a_queued_case
    starter = lambda case_id, events: call_hub(services.store, paths, case_id, admin.full_name, events,  # noqa: E731
                                               camera_source=str(camera_video))
    editor = CaseEditor(runner, services.cases, services.drafts, admin, case.id, consultation=services.consultation,
                        call_starter=starter)
    qtbot.addWidget(editor)
    editor.show()
    loaded(qtbot, editor)
    assert editor.call_button.isVisible()
    window = editor.call_hub()
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.last_state == "ringing", timeout=10_000)
    call_id = ringing_call(hub, case.id)
    hub.answer_call(mehta, call_id)
    doctor = DoctorPeer(server.url, hub.sign_in("dr.mehta", "mehta-pass-12").token, call_id,
                        hub.ice_for("doctor", call_id)).start()
    qtbot.waitUntil(lambda: window.last_state == "live", timeout=30_000)
    meter = Heartbeat(overdue_s=0.05)
    meter.start()
    qtbot.waitUntil(lambda: window.remote.pixmap() is not None and not window.remote.pixmap().isNull()
                    and window.local.pixmap() is not None and not window.local.pixmap().isNull(), timeout=20_000)
    qtbot.wait(3000)   # three seconds of a call: pictures drawn, sound in and out, the link measured
    longest = round(meter.stop() * 1000)
    screenshot(window, "call-window")
    assert window.link_label.text().startswith("Link:")
    assert longest < 100, f"the window froze for {longest} ms during the call{meter.why()}"
    assert doctor.frames > 20 and window.call.stats.video_frames_in > 20
    window.mute_button.click()
    assert window.call._mic_track.muted
    window.hangup_button.click()
    qtbot.waitUntil(lambda: window.last_state == "ended", timeout=15_000)
    assert "You hung up" in window.state_label.text() and window.hangup_button.text() == "Close"
    assert doctor.closed.wait(10)
    assert window.call.wait(10)
    synced(services, paths)
    editor.refresh_from_hub()
    qtbot.waitUntil(lambda: editor.calls_label.isVisible(), timeout=10_000)
    assert "Dr Rajesh Mehta" in editor.calls_label.text() and "video" in editor.calls_label.text()
    print(f"longest stall of the event loop during the call: {longest} ms{meter.why()}")
