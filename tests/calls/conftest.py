"""Calls, all real: the hub as its own process on two workers, the doctor in Debian's Chromium (its fake camera and
microphone), the spoke's aiortc peer with a video file as its camera and PulseAudio's sine source as its
microphone, and coturn for the calls that may only go through a relay."""

from __future__ import annotations

import shutil

import pytest

from tests.hub.conftest import clinic, small_formulary  # noqa: F401
from tests.media.conftest import camera_video, pulse_runtime, pulse_sine  # noqa: F401
from tests.sync.conftest import ADMIN_TOKEN, facilities, hub, hub_db_url, hub_server, spoke_factory  # noqa: F401

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
# The fake devices stand in for the doctor's camera and microphone; loopback candidates are allowed so the
# browser and the spoke on this one machine can reach each other.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is missing: apt-get install chromium (Playwright must not download one)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()
