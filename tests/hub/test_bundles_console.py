"""USB bundles in the hub console, in a real browser (Debian's chromium through Playwright) against a real hub on
127.0.0.1: hub staff take a two-part bundle from a drive (the page's script sends it in chunks to the endpoint a relay
PC uses), see what was applied, and download a return bundle that the spoke imports."""

from __future__ import annotations

import os

import pytest

from spoke_client.services import bundles
from spoke_client.services.sync_local import LocalSync
from sync import bundle
from tests.hub.test_console_e2e import Browser, chromium  # noqa: F401 - a fixture
from tests.sync.conftest import spoke  # noqa: F401 - a fixture
from tests.sync.test_bundles import attach, enrolled
from tests.sync.test_engine import queued_case


@pytest.fixture
def hub_db_url(tmp_path):
    """The page does not depend on the database: SQLite only (the bundle tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path}/hub.sqlite"


def test_staff_take_a_bundle_in_parts_from_a_drive_and_give_a_return_bundle(clinic, facilities, spoke, hub_server,
                                                                           chromium, tmp_path):
    from playwright.sync_api import expect

    hub = clinic[0]
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    kamla, case = queued_case(pc, admin)
    attach(pc, admin, case.id, os.urandom(1_500_000))
    drive = tmp_path / "drive"
    drive.mkdir()
    parts = bundles.export(pc.store, paths, drive, max_size=1_000_000).paths
    assert len(parts) == 2

    browser = Browser(chromium)
    browser.context.set_default_timeout(20_000)
    page = browser.page
    page.goto(f"{hub_server.url}/console/login")
    page.fill('input[name="username"]', "admin")
    page.fill('input[name="password"]', "admin-pass-12")
    page.click('button[type="submit"]')
    page.click("text=USB bundles")
    expect(page.locator("h1")).to_have_text("USB bundles")

    # Part 2 alone first (the other drive comes later): received, and the hub says what it still waits for.
    page.set_input_files('#bundle-upload input[type="file"]', str(parts[1]))
    page.click('#bundle-upload button[type="submit"]')
    expect(page.locator("#bundle-outcome")).to_contain_text("waits for part(s): 1")
    assert hub.record("patient", kamla.id) is None
    page.set_input_files('#bundle-upload input[type="file"]', [str(p) for p in parts])
    page.click('#bundle-upload button[type="submit"]')
    expect(page.locator("#bundle-outcome")).to_contain_text("The hub says: Imported:")
    expect(page.locator("#bundle-outcome")).to_contain_text("1 new files of 1")
    assert hub.record("patient", kamla.id).payload["name"] == "Kamla Devi"

    not_a_bundle = tmp_path / "photo.spokebundle"
    not_a_bundle.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(4000))
    page.set_input_files('#bundle-upload input[type="file"]', str(not_a_bundle))
    page.click('#bundle-upload button[type="submit"]')
    expect(page.locator("#bundle-outcome")).to_have_text("This file is not a Spoke bundle.")
    browser.shot("bundles")

    # The return bundle for the PC, downloaded as the browser downloads any file, imported at the spoke.
    page.reload()
    row = page.locator("#return tr", has_text="pc1")
    with page.expect_download() as download:
        row.locator("a", has_text="Download return bundle").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(bundle.SUFFIX) and bundle.read_header(saved).kind == "hub"
    assert LocalSync(pc.store).pending() > 0
    report = bundles.import_return(pc.store, paths, saved)
    assert report.acknowledged > 0 and LocalSync(pc.store).pending() == 0
    assert browser.outside == [] and browser.problems == []
    # A PC of a facility this hub does not serve is not offered, and its return bundle is refused.
    other, _a, _p = enrolled(spoke, hub, hub_server.url, facilities[1], "pc-elsewhere")
    assert page.goto(f"{hub_server.url}/console/bundles/return/{other.store.device_id}").status == 404
    browser.context.close()
