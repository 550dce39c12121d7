"""Relaying a bundle from any PC with a network, all real: the hub as its own process on two workers (the upload's
state lives in the database, so chunks may land on either worker), a link that drops mid-upload (a TCP proxy on
loopback), parts relayed on different days, and the refusals a relay PC can meet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from spoke_client.services import bundles
from sync import bundle
from sync.bundle import BundleError
from sync.bundle_relay import RelayFailed, relay
from sync.hub.models import HubBundle, HubBundleUpload
from sync.hub.service import Hub, make_hub_engine
from tests.sync.faults import FaultyProxy
from tests.sync.hub_process import HubProcess
from tests.sync.test_bundles import attach, enrolled, hub_state
from tests.sync.test_engine import queued_case

ROOT = Path(__file__).resolve().parents[2]


def relay_cli(path: Path, url: str, home: Path) -> subprocess.CompletedProcess:
    """`spoke-hub bundle upload` as a relay PC runs it: a fresh home folder, no hub database, no key."""
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    return subprocess.run([sys.executable, "-m", "sync.hub", "bundle", "upload", str(path), "--hub", url],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def test_parts_relayed_on_different_days_through_a_link_that_drops_are_imported_once(hub_db_url, spoke, tmp_path):
    with HubProcess(hub_db_url, tmp_path, workers=2).start() as process:
        hub = Hub(make_hub_engine(hub_db_url), media_dir=process.media)
        facility = hub.create_facility("HWC Rampur", "HWC-UP-0042")
        pc, admin, paths = enrolled(spoke, hub, process.url, facility, "pc1")
        _kamla, case = queued_case(pc, admin)
        photo = os.urandom(1_200_000)
        attach(pc, admin, case.id, photo)
        drive = tmp_path / "drive"
        drive.mkdir()
        first, second = bundles.export(pc.store, paths, drive, max_size=900_000).paths

        # Monday, at the block office: the link drops after 400 kB of part 1 and never comes back that day.
        proxy = FaultyProxy(process.port)
        proxy.mode, proxy.budget = "budget", 400_000
        monday = tmp_path / "block-office"
        monday.mkdir()
        lone = monday / first.name
        lone.write_bytes(first.read_bytes())   # only part 1 travels on Monday
        with pytest.raises(RelayFailed) as cut:
            relay(lone, proxy.url, sleep=lambda _s: None, chunk=128 * 1024)
        assert "run the same command again" in str(cut.value)
        with hub.session() as s:
            confirmed = s.scalars(select(HubBundleUpload.received)).one()
        assert 0 < confirmed < first.stat().st_size

        # The link is back: only the rest of part 1 goes; the hub now waits for part 2.
        proxy.mode, proxy.forwarded = "pass", 0
        report = relay(lone, proxy.url, sleep=lambda _s: None, chunk=128 * 1024)
        assert report.bytes_sent == first.stat().st_size - confirmed, "only the remainder is sent"
        assert (report.parts_sent, report.waiting, report.outcome) == ((1,), (2,), "")
        assert hub.record("patient", _kamla.id) is None, "nothing is applied before every part is here"
        proxy.close()

        # Wednesday, from another PC (the command alone: no database, no key): part 2, and the bundle is imported.
        home = tmp_path / "district-pc"
        home.mkdir()
        wednesday = home / second.name
        wednesday.write_bytes(second.read_bytes())
        done = relay_cli(wednesday, process.url, home)
        assert done.returncode == 0, done.stderr
        assert "The hub says: Imported:" in done.stdout and "1 new files of 1" in done.stdout
        assert not (home / "data" / "SpokeHub").exists(), "a relay PC keeps no hub database"
        assert hub.record("patient", _kamla.id).payload["name"] == "Kamla Devi"
        assert hub.blob_path(bundles_sha(photo)).read_bytes() == photo

        # The same parts relayed again (a second drive with the same bundle): told, nothing applied twice.
        state = hub_state(hub)
        again = relay_cli(first, process.url, home)
        assert again.returncode == 0 and "The hub says: Imported:" in again.stdout
        assert hub_state(hub) == state
        with hub.session() as s:
            assert len(s.scalars(select(HubBundle)).all()) == 1
        hub.engine.dispose()


def bundles_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_relay_meets_a_refusal_in_plain_words_and_the_hub_keeps_nothing(hub, hub_server, facilities, spoke, tmp_path):
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    queued_case(pc, admin)
    good = bundles.export(pc.store, paths, tmp_path / "good.spokebundle").paths[0]
    data = bytearray(good.read_bytes())
    data[bundle.PREFIX_BYTES + 100] ^= 1
    damaged = tmp_path / "damaged.spokebundle"
    damaged.write_bytes(bytes(data))
    state = hub_state(hub)
    done = relay_cli(damaged, hub_server.url, tmp_path)
    assert done.returncode == 6 and "signature does not match" in done.stderr, done.stderr
    with hub.session() as s:
        assert s.scalars(select(HubBundleUpload)).all() == []
    assert not list((hub.media_dir / "bundles").rglob("*.spokebundle"))

    returned = hub.export_return_bundle(pc.store.device_id, tmp_path / "back.spokebundle").paths[0]
    done = relay_cli(returned, hub_server.url, tmp_path)
    assert done.returncode == 9 and "copy it to that PC's drive" in done.stderr

    hub.revoke(pc.store.device_id, "stolen")
    done = relay_cli(good, hub_server.url, tmp_path)
    assert done.returncode == 8 and "revoked" in done.stderr, done.stderr
    assert hub_state(hub) == state
    plain = subprocess.run([sys.executable, "-m", "sync.hub", "bundle", "upload", str(good), "--hub",
                            "http://hub.example.org"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert plain.returncode == 2 and "https://" in plain.stderr
    with pytest.raises(BundleError) as refused:
        relay(tmp_path / "missing.spokebundle", hub_server.url)
    assert refused.value.code == "not_a_bundle"


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_relayed_parts_that_stop_coming_are_forgotten_after_a_month(hub, hub_server, facilities, spoke, tmp_path):
    from datetime import timedelta

    from sync.hub.auth import utcnow

    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    _kamla, case = queued_case(pc, admin)
    attach(pc, admin, case.id, os.urandom(600_000))
    first, second = bundles.export(pc.store, paths, tmp_path, max_size=400_000).paths
    second.rename(tmp_path / "on-another-drive.bin")
    assert relay(first, hub_server.url).waiting == (2,)
    folder = hub.media_dir / "bundles" / bundle.read_header(first).bundle_id
    assert folder.exists()
    assert hub.expire_bundle_uploads(now=utcnow() + timedelta(days=29)) == 0, "a month to bring the other parts"
    assert hub.expire_bundle_uploads(now=utcnow() + timedelta(days=31)) == 1
    assert not folder.exists()
    with hub.session() as s:
        assert s.scalars(select(HubBundleUpload)).all() == []


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_what_waits_at_the_hub_in_a_pcs_name_is_bounded(hub, hub_server, facilities, spoke, tmp_path, monkeypatch):
    """A part's signature is checked at its last byte, so what anyone may upload in a PC's name is bounded."""
    from sync.hub import bundles as hub_bundles

    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    _kamla, case = queued_case(pc, admin)
    attach(pc, admin, case.id, os.urandom(600_000))
    first, second = bundles.export(pc.store, paths, tmp_path, max_size=400_000).paths
    second.rename(tmp_path / "on-another-drive.bin")
    monkeypatch.setattr(hub_bundles, "MAX_PENDING_PER_DEVICE", 500_000)
    assert relay(first, hub_server.url).waiting == (2,)
    third = tmp_path / "other" / "next.spokebundle"
    third.parent.mkdir()
    other = bundles.export(pc.store, paths, third, max_size=400_000).paths[0]
    with pytest.raises(BundleError) as refused:
        relay(other, hub_server.url, sleep=lambda _s: None)
    assert refused.value.code == "refused" and "bring their missing parts first" in refused.value.message


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_hub_that_never_answers_is_told_after_a_few_tries_not_minutes(hub, hub_server, facilities, spoke, tmp_path):
    from tests.sync.conftest import free_port

    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    queued_case(pc, admin)
    path = bundles.export(pc.store, paths, tmp_path / "b.spokebundle").paths[0]
    waited: list[float] = []
    with pytest.raises(RelayFailed) as cut:
        relay(path, f"http://127.0.0.1:{free_port()}", sleep=waited.append)
    assert "cannot be reached" in str(cut.value)
    assert len(waited) == 2, "three tries, two waits between them"
