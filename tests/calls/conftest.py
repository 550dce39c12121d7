"""Calls, all real: the hub as its own process on two workers, the doctor in Debian's Chromium (its fake camera and
microphone), the spoke's aiortc peer with a video file as its camera and PulseAudio's sine source as its
microphone, and coturn for the calls that may only go through a relay."""

from __future__ import annotations

import pytest

from tests.hub.conftest import clinic, small_formulary  # noqa: F401
from tests.hub.test_console_e2e import FLAGS, launched_chromium
from tests.media.conftest import camera_video, pulse_runtime, pulse_sine  # noqa: F401
from tests.sync.conftest import ADMIN_TOKEN, facilities, hub, hub_db_url, hub_server, spoke_factory  # noqa: F401

# The fake devices stand in for the doctor's camera and microphone; loopback candidates are allowed so the
# browser and the spoke on this one machine can reach each other.
CALL_FLAGS = [*FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def chromium():
    yield from launched_chromium(CALL_FLAGS)
