"""USB bundles, all real: a spoke enrolled with a real hub on loopback writes its unsent work to a bundle, the hub
imports it through the same code as a push; every bad bundle is refused with its own reason and exit code, and
the hub's database is left exactly as it was."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from spoke_client.domain.model import AttachmentKind
from spoke_client.services import bundles
from spoke_client.services.hub_link import HUB_BOX_KEY
from spoke_client.services.sync_local import LocalSync, enroll, sync_once
from sync import bundle
from sync.bundle import BundleError, BundleWriter
from sync.hub.app import create_app
from sync.hub.models import HubBlob, HubBundle, HubChangeRow, HubDevice, HubMediaUpload, HubRecord
from sync.hub.service import Hub, make_hub_engine
from tests.hub.conftest import clinic, small_formulary  # noqa: F401 - fixtures
from tests.sync.conftest import ADMIN_TOKEN, ServerThread, cli_env
from tests.sync.test_engine import queued_case

ROOT = Path(__file__).resolve().parents[2]


def attach(services, admin, case_id, data: bytes, label="rash, left forearm"):
    return services.attachments.attach(admin, case_id, AttachmentKind.PHOTO, data, "image/jpeg", label,
                                       width_px=1600, height_px=1200)


def hub_state(hub: Hub) -> tuple:
    """Everything an import could change at the hub, to show that a refused one changed nothing."""
    with hub.session() as s:
        counts = tuple(s.scalar(select(func.count()).select_from(m)) for m in
                       (HubChangeRow, HubRecord, HubBundle, HubMediaUpload, HubBlob))
        cursors = tuple(s.execute(select(HubDevice.id, HubDevice.bundle_cursor).order_by(HubDevice.id)).all())
    return counts, cursors


def hub_cli(db_url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sync.hub", "--db", db_url, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, **kw)


def enrolled(spoke, hub, url, facility_id, name):
    services, admin, paths = spoke(name)
    enroll(services.store, paths, url, hub.enroll_code(facility_id), name, allow_http=True)
    return services, admin, paths


# --- the whole way, on SQLite and PostgreSQL ---------------------------------------------------------------
def test_a_bundle_carries_the_work_and_the_files_and_is_applied_once(hub, hub_server, hub_db_url, facilities, spoke,
                                                                      tmp_path):
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    assert pc.store.get_setting(HUB_BOX_KEY), "the keys for bundles are exchanged at enrolment"
    with hub.session() as s:
        assert s.get(HubDevice, pc.store.device_id).box_key
    kamla, case = queued_case(pc, admin)
    photo, cough = os.urandom(700_000), os.urandom(90_000)
    attach(pc, admin, case.id, photo)
    attach(pc, admin, case.id, cough, label="cough")
    pending = LocalSync(pc.store).pending()
    drive = tmp_path / "drive"
    drive.mkdir()

    estimate = bundles.estimate(pc.store, paths)
    assert (estimate.changes, estimate.files) == (pending, 2) and estimate.bytes > len(photo) + len(cough)
    report = bundles.export(pc.store, paths, drive)
    assert (report.changes, report.files, report.skipped_files, len(report.paths)) == (pending, 2, 0, 1)
    [path] = report.paths
    assert list(drive.iterdir()) == [path], "nothing unfinished is left beside it"
    data = path.read_bytes()
    for secret in (b"Kamla", b"Headache", photo[:64], cough[:64]):
        assert secret not in data, "a lost drive shows nothing but the header"
    header = bundle.read_header(path)
    assert (header.kind, header.sender, header.changes, header.files, header.size) == (
        "spoke", pc.store.device_id, pending, 2, len(data))
    assert LocalSync(pc.store).pending() == pending, "a bundle is not an acknowledgement: the work stays queued"

    before = hub_state(hub)
    done = hub_cli(hub_db_url, "bundle", "import", str(path), "--media-dir", str(hub.media_dir))
    assert done.returncode == 0, done.stderr
    assert f"Imported: {pending} changes applied, 0 already here, 0 refused; 2 new files of 2." in done.stdout
    assert hub.record("patient", kamla.id).payload["name"] == "Kamla Devi"
    assert hub.record("case", case.id).payload["status"] == "queued"
    assert hub.blob_path(bundles_sha(photo)).read_bytes() == photo
    assert hub_state(hub) != before

    # The same bundle again: nothing changes, and the user is told when it came.
    after = hub_state(hub)
    again = hub_cli(hub_db_url, "bundle", "import", str(path), "--media-dir", str(hub.media_dir))
    assert again.returncode == 0 and "Already imported on" in again.stdout
    assert hub_state(hub) == after

    # The network then offers the same changes and files: acknowledged as already there, nothing applied twice.
    synced = sync_once(pc.store, paths)
    assert synced.ok and synced.pushed == 0 and synced.already_there == pending
    assert synced.files_uploaded == 0 and synced.files_already_there == 2
    assert LocalSync(pc.store).pending() == 0


def bundles_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_what_came_by_network_is_told_as_already_imported_and_an_older_bundle_is_a_replay(hub, hub_server, facilities,
                                                                                           spoke, tmp_path):
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    queued_case(pc, admin)
    first = bundles.export(pc.store, paths, tmp_path / "monday.spokebundle").paths[0]
    queued_case(pc, admin, name="Ramesh Kumar")
    second = bundles.export(pc.store, paths, tmp_path / "tuesday.spokebundle").paths[0]
    assert sync_once(pc.store, paths).ok   # everything went by network too
    report = hub.import_bundle(second)
    assert report.already is not None and report.accepted == 0 and report.duplicates == report.changes > 0
    assert "Already imported on" in report.sentence()
    state = hub_state(hub)
    with pytest.raises(BundleError) as refused:
        hub.import_bundle(first)
    assert refused.value.code == "replayed" and "older than one already imported" in refused.value.message
    assert hub_state(hub) == state


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_pc_put_back_from_an_older_copy_still_writes_bundles_the_hub_takes(hub, hub_server, facilities, spoke,
                                                                            tmp_path):
    """Its bundle numbers are at least the time now, and a return bundle tells it the hub's newest: a PC whose
    database came back from an older copy (its last numbers forgotten) is not refused as a replay."""
    import time

    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    queued_case(pc, admin)
    first = bundles.export(pc.store, paths, tmp_path / "first.spokebundle").paths[0]
    assert hub.import_bundle(first).accepted > 0
    with pc.store.write(None) as w:   # as after restore-good-copy from before that export
        w.set_setting(bundles.BUNDLE_SEQUENCE, "0")
    time.sleep(0.01)
    queued_case(pc, admin, name="Ramesh Kumar")
    second = bundles.export(pc.store, paths, tmp_path / "second.spokebundle").paths[0]
    assert bundle.read_header(second).sequence > bundle.read_header(first).sequence
    assert hub.import_bundle(second).accepted > 0
    # A clock set far back as well: the hub's return bundle raises the PC's number above what the hub has seen.
    with pc.store.write(None) as w:
        w.set_setting(bundles.BUNDLE_SEQUENCE, "0")
    returned = hub.export_return_bundle(pc.store.device_id, tmp_path / "back.spokebundle").paths[0]
    bundles.import_return(pc.store, paths, returned)
    assert int(pc.store.get_setting(bundles.BUNDLE_SEQUENCE)) == bundle.read_header(second).sequence


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_bundle_split_into_parts_is_imported_whole_and_a_missing_part_is_named(hub, hub_server, facilities, spoke,
                                                                                  tmp_path):
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    _kamla, case = queued_case(pc, admin)
    photo = os.urandom(900_000)
    attach(pc, admin, case.id, photo)
    drive = tmp_path / "drive"
    drive.mkdir()
    report = bundles.export(pc.store, paths, drive, max_size=300_000)
    assert len(report.paths) == 4 and all(p.stat().st_size <= 300_000 for p in report.paths)
    assert [bundle.read_header(p).part for p in report.paths] == [1, 2, 3, 4]
    by_cli = tmp_path / "cli-drive"
    by_cli.mkdir()
    done = spoke_cli(paths, "bundle", "export", "--max-size", "300000", "--out", str(by_cli))
    assert done.returncode == 0 and "On the drive and checked: 4 part(s)." in done.stdout, done.stderr
    assert len(list(by_cli.glob("*.spokebundle"))) == 4 and "wait on this computer" not in done.stdout
    hidden = report.paths[2].rename(tmp_path / "at-home.spokebundle")
    state = hub_state(hub)
    with pytest.raises(BundleError) as refused:
        hub.import_bundle(report.paths[0])
    assert refused.value.code == "part_missing" and "Part 3 of 4" in refused.value.message
    assert hub_state(hub) == state
    hidden.rename(report.paths[2])
    done = hub.import_bundle(report.paths[3])   # any part names the whole bundle
    assert done.files_new == 1 and done.rejected == 0
    assert hub.blob_path(bundles_sha(photo)).read_bytes() == photo


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_pc_enrolled_before_bundles_registers_its_key_at_its_next_sync(hub, hub_server, facilities, spoke, tmp_path):
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    with pc.store.write(None) as w:   # as a PC enrolled by an older release: no bundle keys anywhere
        w.set_setting(HUB_BOX_KEY, "")
    bundles.box_key_path(paths).unlink()
    with hub.session.begin() as s:
        s.get(HubDevice, pc.store.device_id).box_key = None
    queued_case(pc, admin)
    with pytest.raises(bundles.NoBundleKey) as told:
        bundles.export(pc.store, paths, tmp_path)
    assert "sync once over a network" in told.value.message
    assert sync_once(pc.store, paths).ok
    assert pc.store.get_setting(HUB_BOX_KEY)
    with hub.session() as s:
        assert s.get(HubDevice, pc.store.device_id).box_key
    queued_case(pc, admin, name="Ramesh Kumar")
    path = bundles.export(pc.store, paths, tmp_path).paths[0]
    assert hub.import_bundle(path).accepted == bundle.read_header(path).changes


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_the_hubs_bundle_key_rotates_without_stranding_a_bundle_on_the_road(hub, hub_server, hub_db_url, facilities,
                                                                            spoke, tmp_path):
    """The hub rotates its bundle key (`spoke-hub bundle rotate-key`): a bundle already sealed for the old key (a
    drive on the road) still imports; a return bundle under the new key imports at a PC that has not learnt it
    yet; the PC learns it at its next network sync and seals for it from then on; once the old key is retired
    (its private half destroyed) a bundle sealed for it is refused with the day and its own exit code, and the
    hub's database is left as it was."""
    from spoke_client.services.hub_link import HUB_BOX_KEY_ID

    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    old_id = pc.store.get_setting(HUB_BOX_KEY_ID)
    queued_case(pc, admin)
    on_the_road = bundles.export(pc.store, paths, tmp_path / "road.spokebundle").paths[0]
    stale = tmp_path / "stale.spokebundle"
    stale.write_bytes(on_the_road.read_bytes())

    rotated = hub_cli(hub_db_url, "bundle", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    new_id = rotated.stdout.split()[0]
    assert new_id != old_id and hub.box_key()[0] == new_id
    listed = hub_cli(hub_db_url, "bundle", "keys").stdout
    assert f"{new_id}  current" in listed and f"{old_id}  older" in listed

    report = hub.import_bundle(on_the_road)          # sealed for the old key, carried for days: still opens
    assert report.accepted == bundle.read_header(on_the_road).changes
    back = hub.export_return_bundle(pc.store.device_id, tmp_path / "back.spokebundle").paths[0]
    assert bundle.read_header(back).hub == new_id
    assert bundles.import_return(pc.store, paths, back).acknowledged >= 1, "the hub's own, under its new key"
    assert pc.store.get_setting(HUB_BOX_KEY_ID) == old_id, "nothing is sealed for the hub from a return bundle"

    assert sync_once(pc.store, paths).ok                 # the next network sync learns the new key
    assert pc.store.get_setting(HUB_BOX_KEY_ID) == new_id
    queued_case(pc, admin, name="Ramesh Kumar")
    fresh = bundles.export(pc.store, paths, tmp_path / "fresh.spokebundle").paths[0]
    assert (bundle.read_header(fresh).recipient, bundle.read_header(fresh).hub) == (new_id, new_id)
    assert hub.import_bundle(fresh).accepted >= 1

    assert hub_cli(hub_db_url, "bundle", "retire-key", new_id).returncode == 1, "the current key is not retired"
    retired = hub_cli(hub_db_url, "bundle", "retire-key", old_id)
    assert retired.returncode == 0, retired.stderr
    with hub.session.begin() as s:               # the bundle on the road, as if it had never been imported
        s.query(HubBundle).filter_by(bundle_id=bundle.read_header(stale).bundle_id).delete()
    before = hub_state(hub)
    refused = hub_cli(hub_db_url, "bundle", "import", str(stale))
    assert refused.returncode == BundleError.EXIT["retired_key"], refused.stderr
    assert "retired on" in refused.stderr and "next network sync" in refused.stderr
    assert hub_state(hub) == before
    assert f"{old_id}  retired" in hub_cli(hub_db_url, "bundle", "keys").stdout


# --- the way back: the hub's answers on the drive -------------------------------------------------------------
def spoke_cli(paths, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(paths.root), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=cli_env())


def test_a_field_week_by_usb_drive_alone_the_work_goes_the_prescription_comes_back_and_prints(
        clinic, hub_server, hub_db_url, facilities, spoke, tmp_path):
    """Scenario: the PC was enrolled on a day with a network; then a week with none. The drive carries the case to
    the hub, the doctor prescribes there, the return bundle brings the prescription (checked against the hub's key)
    and the acknowledgements back; it prints at once, and nothing is offered again."""
    import requests

    from tests.printing.conftest import signed_in

    hub = clinic[0]   # HWC Rampur served by a hub with its doctor, dr.mehta (tests/hub/conftest.py)
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    other, _admin2, other_paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc2")
    _kamla, case = queued_case(pc, admin)
    photo = os.urandom(400_000)
    attach(pc, admin, case.id, photo)
    drive = tmp_path / "drive"
    drive.mkdir()
    media = ("--media-dir", str(hub.media_dir))

    sent = spoke_cli(paths, "bundle", "export", "--out", str(drive))
    assert sent.returncode == 0, sent.stderr
    assert "The drive is safe to remove." in sent.stdout
    nothing = spoke_cli(paths, "bundle", "export", "--carry", "--out", str(drive))
    assert nothing.returncode == 0 and "No part of a bundle waits on this computer." in nothing.stdout
    [outgoing] = drive.glob("*.spokebundle")
    assert hub_cli(hub_db_url, "bundle", "import", str(outgoing), *media).returncode == 0

    me = signed_in(hub_server.url)
    assert requests.post(f"{hub_server.url}/v1/hub/cases/{case.id}/take", headers=me, timeout=10).status_code == 200
    issued = requests.post(f"{hub_server.url}/v1/hub/cases/{case.id}/prescriptions", headers=me, timeout=10, json={
        "diagnosis": "Essential hypertension", "icd10_code": "I10",
        "medicines": [{"formulary_id": "1:Tablet:500 mg", "dose": "1 tablet", "frequency": "BD", "duration_days": 5,
                       "instructions": "after food"}],
        "advice": "Less salt."})
    assert issued.status_code == 200, issued.text

    back = drive / "back"
    back.mkdir()
    made = hub_cli(hub_db_url, "bundle", "export", "--device", pc.store.device_id, "--out", str(back), *media)
    assert made.returncode == 0, made.stderr
    [returned] = back.glob("*.spokebundle")
    assert bundle.read_header(returned).kind == "hub"

    wrong = spoke_cli(other_paths, "bundle", "import", str(returned))
    assert wrong.returncode == 10 and "made for another PC" in wrong.stderr
    damaged = tmp_path / "damaged.spokebundle"
    data = bytearray(returned.read_bytes())
    data[bundle.PREFIX_BYTES + 7] ^= 1
    damaged.write_bytes(bytes(data))
    in_hindi = spoke_cli(paths, "--language", "hi", "bundle", "import", str(damaged))
    assert in_hindi.returncode == 6 and "यह बंडल ख़राब है" in in_hindi.stderr, in_hindi.stderr
    pending = LocalSync(pc.store).pending()
    assert pending > 0
    got = spoke_cli(paths, "bundle", "import", str(returned))
    assert got.returncode == 0, got.stderr
    assert "(1 prescriptions)" in got.stdout and f"{pending} of this computer's changes are confirmed" in got.stdout
    assert LocalSync(pc.store).pending() == 0, "what the hub acknowledged is not offered for export again"
    assert LocalSync(pc.store).pending_files() == 0
    [rx] = pc.consultation.prescriptions(case.id)
    assert rx.id == issued.json()["id"] and rx.signature_ok
    pdf = pc.printing.save_pdf(admin, rx.id, tmp_path / "rx.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")

    again = spoke_cli(paths, "bundle", "import", str(returned))
    assert again.returncode == 0 and "Already imported on" in again.stdout
    # Nothing left to send: the next bundle holds no change and no file.
    empty = bundles.estimate(pc.store, paths)
    assert (empty.changes, empty.files) == (0, 0)

    # The other PC of the facility gets the case, its photo and the prescription from its own return bundle.
    for_other = hub_cli(hub_db_url, "bundle", "export", "--device", other.store.device_id, "--out",
                        str(back / "pc2.spokebundle"), *media)
    assert for_other.returncode == 0, for_other.stderr
    report = bundles.import_return(other.store, other_paths, back / "pc2.spokebundle")
    assert report.prescriptions == 1 and report.files == 1
    [shown] = other.attachments.list(case.id)
    assert other.attachments.read_bytes(shown) == photo
    assert list((other_paths.media / "incoming").iterdir()) == [], "the bundle's file was sealed, then kept"


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_return_bundle_that_is_older_tampered_or_for_the_hub_is_refused_at_the_spoke(hub, hub_server, facilities,
                                                                                      spoke, tmp_path):
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    _kamla, case = queued_case(pc, admin)
    assert sync_once(pc.store, paths).ok
    older = hub.export_return_bundle(pc.store.device_id, tmp_path / "older.spokebundle").paths[0]
    hub.update_case(case.id, {"status": "in_consultation", "doctor_note": "Please send a photo of the rash"})
    newer = hub.export_return_bundle(pc.store.device_id, tmp_path / "newer.spokebundle").paths[0]
    outgoing = bundles.export(pc.store, paths, tmp_path / "mine.spokebundle").paths[0]

    def refused(path: Path) -> BundleError:
        with pytest.raises(BundleError) as caught:
            bundles.import_return(pc.store, paths, path)
        return caught.value

    assert refused(outgoing).code == "other_spoke"
    data = bytearray(newer.read_bytes())
    data[bundle.PREFIX_BYTES + 5] ^= 1
    tampered = tmp_path / "tampered.spokebundle"
    tampered.write_bytes(bytes(data))
    assert refused(tampered).code == "damaged"
    assert pc.cases.get(case.id).status == "queued", "nothing of a refused bundle is applied"
    assert bundles.import_return(pc.store, paths, newer).received >= 1
    assert pc.cases.get(case.id).status == "in_consultation"
    assert refused(older).code == "replayed"


def test_a_return_bundle_made_after_the_hubs_clock_went_back_is_still_the_newer(hub, hub_server, facilities, spoke,
                                                                                 tmp_path, monkeypatch):
    """The hub's clock put back a day between two return bundles for one PC: the second is still numbered above
    the first (each PC's last number is kept at the hub), so the PC imports it; numbered by the clock alone, it was
    refused as a replay of an older bundle."""
    from sync.hub import bundles as hub_bundles

    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    _kamla, case = queued_case(pc, admin)
    assert sync_once(pc.store, paths).ok
    first = hub.export_return_bundle(pc.store.device_id, tmp_path / "first.spokebundle").paths[0]
    bundles.import_return(pc.store, paths, first)
    now = hub_bundles._now_ms()
    monkeypatch.setattr(hub_bundles, "_now_ms", lambda: now - 86_400_000)
    hub.update_case(case.id, {"status": "in_consultation", "doctor_note": "Please send a photo of the rash"})
    second = hub.export_return_bundle(pc.store.device_id, tmp_path / "second.spokebundle").paths[0]
    assert bundles.import_return(pc.store, paths, second).received >= 1
    assert pc.cases.get(case.id).status == "in_consultation"
    with pytest.raises(BundleError) as caught:
        bundles.import_return(pc.store, paths, first)
    assert caught.value.code == "replayed", "the first is still the older one"


def test_a_return_bundle_starts_where_the_pc_last_pulled_and_never_steps_over_a_gap(hub, hub_server, facilities,
                                                                                     spoke, tmp_path):
    """A PC that only ever synced by network gets, in its first return bundle, what came after the last page it
    asked for, not the facility's whole history. A PC put back from an older copy (its cursor lower than the hub was told) applies
    such a bundle but keeps its cursor, and is told that earlier changes are still to come; its next bundle tells
    the hub its cursor, and the next return bundle fills the gap."""
    from spoke_client.services.sync_inbox import CURSOR, Inbox

    pc1, admin1, paths1 = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    pc2, admin2, paths2 = enrolled(spoke, hub, hub_server.url, facilities[0], "pc2")
    kamla, _ = queued_case(pc1, admin1)
    assert sync_once(pc1.store, paths1).ok and sync_once(pc2.store, paths2).ok
    assert pc2.patients.get(admin2, kamla.id).name == "Kamla Devi"
    seen = Inbox(pc2.store).cursor()
    assert seen > 0
    assert sync_once(pc2.store, paths2).ok   # its next round asks after what it has (the last page is not told)
    ramesh, his_case = queued_case(pc1, admin1, name="Ramesh Kumar")
    assert sync_once(pc1.store, paths1).ok
    with hub.session() as s:
        assert s.get(HubDevice, pc2.store.device_id).bundle_cursor == seen, "told by the pull it asked"
        fresh = s.scalar(select(func.count()).select_from(HubChangeRow).where(
            HubChangeRow.facility_id == facilities[0], HubChangeRow.seq > seen,
            HubChangeRow.device_id != pc2.store.device_id))
    returned = hub.export_return_bundle(pc2.store.device_id, tmp_path / "back.spokebundle")
    assert returned.changes == fresh > 0, "only what came after its last pull"
    report = bundles.import_return(pc2.store, paths2, returned.paths[0])
    assert (report.received, report.behind) == (fresh, False)
    assert pc2.patients.get(admin2, ramesh.id).name == "Ramesh Kumar"
    top = Inbox(pc2.store).cursor()
    assert top > seen and sync_once(pc2.store, paths2).ok and sync_once(pc2.store, paths2).pulled == 0
    with hub.session() as s:
        assert s.get(HubDevice, pc2.store.device_id).bundle_cursor == top

    # Put back from an older copy: its cursor is the one of before Ramesh. The hub still believes the higher one.
    with pc2.store.write(None) as w:
        w.set_setting(CURSOR, str(seen))
    hub.update_case(his_case.id, {"status": "in_consultation", "doctor_note": "Please send a photo"})
    ahead = hub.export_return_bundle(pc2.store.device_id, tmp_path / "ahead.spokebundle").paths[0]
    report = bundles.import_return(pc2.store, paths2, ahead)
    assert report.behind and report.received >= 1
    assert "Some earlier changes from the hub have not reached this computer yet" in report.sentence()
    assert Inbox(pc2.store).cursor() == seen, "the cursor does not step over what it has not had"
    # Its next bundle tells the hub its cursor; the hub's next return bundle starts there.
    outgoing = bundles.export(pc2.store, paths2, tmp_path / "mine.spokebundle").paths[0]
    hub.import_bundle(outgoing)
    with hub.session() as s:
        assert s.get(HubDevice, pc2.store.device_id).bundle_cursor == seen, "lower than the hub knew: taken"
    again = hub.export_return_bundle(pc2.store.device_id, tmp_path / "again.spokebundle").paths[0]
    report = bundles.import_return(pc2.store, paths2, again)
    assert not report.behind and "Some earlier" not in report.sentence()
    assert Inbox(pc2.store).cursor() > top


# --- every bad bundle, refused with its reason; the hub unchanged -------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One hub, one enrolled PC with a case and a photo, its bundle; a second PC revoked with a bundle of its own."""
    from spoke_client.paths import DataPaths
    from spoke_client.services.auth import FacilityForm
    from spoke_client.services.runtime import open_services

    root = tmp_path_factory.mktemp("bundles")
    url = f"sqlite:///{root / 'hub.sqlite'}"
    hub = Hub(make_hub_engine(url), media_dir=root / "hub-media")
    hub.create_schema()
    server = ServerThread(create_app(hub, ADMIN_TOKEN)).start()
    facility = hub.create_facility("HWC Rampur", "HWC-UP-0042")
    made = []

    def pc(name: str):
        paths = DataPaths(root / name)
        services = open_services(paths)
        made.append(services)
        _f, admin = services.auth.setup(FacilityForm("HWC Rampur", "HWC-UP-0042", "Sitapur", "Uttar Pradesh"),
                                        "admin", "Asha", "pass-word-1")
        enroll(services.store, paths, server.url, hub.enroll_code(facility), name, allow_http=True)
        _kamla, case = queued_case(services, admin)
        attach(services, admin, case.id, os.urandom(200_000))
        return services, paths

    good, good_paths = pc("pc1")
    (root / "out").mkdir()
    path = bundles.export(good.store, good_paths, root / "out" / "good.spokebundle").paths[0]
    revoked, revoked_paths = pc("pc2")
    revoked_path = bundles.export(revoked.store, revoked_paths, root / "out" / "revoked.spokebundle").paths[0]
    hub.revoke(revoked.store.device_id, "stolen")
    yield {"hub": hub, "url": url, "bundle": path, "revoked": revoked_path, "root": root, "facility": facility,
           "device": good.store.device_id, "paths": good_paths}
    for s in made:
        s.close()
    server.stop()
    hub.engine.dispose()


def damaged_copy(world, folder: Path, change) -> Path:
    data = bytearray(world["bundle"].read_bytes())
    data = change(data)
    folder.mkdir(exist_ok=True)
    out = folder / "bad.spokebundle"
    out.write_bytes(bytes(data))
    return out


def flip(offset_of):
    def change(data: bytearray) -> bytearray:
        at = offset_of(len(data))
        data[at] ^= 0x40
        return data
    return change


HEADER_AT = len(bundle.MAGIC)
PAYLOAD_AT = bundle.PREFIX_BYTES

BAD = {
    "a byte of the header": (flip(lambda n: HEADER_AT + 20), "damaged", 6, "header is damaged"),
    "a byte of the header's padding": (flip(lambda n: HEADER_AT + bundle.HEADER_BYTES - 10), "damaged", 6, "header"),
    "a byte of the header digest": (flip(lambda n: HEADER_AT + bundle.HEADER_BYTES + 5), "damaged", 6, "header"),
    "a byte of the recipient stanza": (flip(lambda n: PAYLOAD_AT - 40), "damaged", 6, "signature does not match"),
    "a byte of the first chunk": (flip(lambda n: PAYLOAD_AT + 10), "damaged", 6, "signature does not match"),
    "a byte of a middle chunk": (flip(lambda n: PAYLOAD_AT + bundle.CHUNK + 100), "damaged", 6, "signature"),
    "a byte of the last chunk": (flip(lambda n: n - bundle.TRAILER_BYTES - 3), "damaged", 6, "signature"),
    "a byte of the signature": (flip(lambda n: n - 10), "damaged", 6, "signature does not match"),
    "the signature's mark": (flip(lambda n: n - bundle.TRAILER_BYTES), "damaged", 6, "signature is missing"),
    "cut in the middle": (lambda d: d[:len(d) // 2], "truncated", 5, "cut short"),
    "cut in the header": (lambda d: d[:200], "truncated", 5, "cut short"),
    "cut before the signature": (lambda d: d[:-bundle.TRAILER_BYTES], "truncated", 5, "cut short"),
    "an empty file": (lambda d: bytearray(), "not_a_bundle", 3, "not a Spoke bundle"),
    "a photo": (lambda d: bytearray(b"\xff\xd8\xff\xe0" + os.urandom(5000)), "not_a_bundle", 3, "not a Spoke bundle"),
    "bytes added at the end": (lambda d: d + b"\0" * 10, "damaged", 6, "size does not match"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_damaged_bundle_is_refused_with_its_reason_and_nothing_applied(world, tmp_path, case):
    change, code, exit_code, words = BAD[case]
    bad = damaged_copy(world, tmp_path, change)
    before = hub_state(world["hub"])
    with pytest.raises(BundleError) as refused:
        world["hub"].import_bundle(bad)
    assert (refused.value.code, refused.value.exit_code) == (code, exit_code)
    assert words in refused.value.message
    assert hub_state(world["hub"]) == before


def rewritten(world, folder: Path, **fields) -> Path:
    """The good bundle with header fields changed and the header digest made right again (so only what the
    field means is refused, not the digest)."""
    data = bytearray(world["bundle"].read_bytes())
    line = bytes(data[HEADER_AT:HEADER_AT + bundle.HEADER_BYTES])
    header = {**json.loads(line), **fields}
    new = json.dumps(header, separators=(",", ":")).encode()
    new += b" " * (bundle.HEADER_BYTES - 1 - len(new)) + b"\n"
    import hashlib

    data[HEADER_AT:HEADER_AT + bundle.HEADER_BYTES + 32] = new + hashlib.sha256(bundle.MAGIC + new).digest()
    folder.mkdir(exist_ok=True)
    out = folder / "edited.spokebundle"
    out.write_bytes(bytes(data))
    return out


def test_the_cli_refuses_each_kind_with_its_own_exit_code_and_sentence(world, tmp_path):
    cases = [
        (rewritten(world, tmp_path / "v", format=2), 4, "newer than this program reads"),
        (rewritten(world, tmp_path / "h", hub="0123456789abcdef"), 9, "made for another hub"),
        (rewritten(world, tmp_path / "r", kind="hub"), 9, "return bundle for a spoke PC"),
        (rewritten(world, tmp_path / "d", sender=str(uuid.uuid4())), 7, "does not know"),
        (rewritten(world, tmp_path / "f", facility_id=world["facility"][::-1]), 6, "signature does not match"),
        (world["revoked"], 8, "revoked on"),
        (damaged_copy(world, tmp_path, lambda d: d[:len(d) - 100]), 5, "cut short"),
        (damaged_copy(world, tmp_path / "x", lambda d: bytearray(b"hello")), 3, "not a Spoke bundle"),
    ]
    before = hub_state(world["hub"])
    for path, exit_code, words in cases:
        done = hub_cli(world["url"], "bundle", "import", str(path))
        assert (done.returncode, words in done.stderr) == (exit_code, True), (path, done.stderr)
        assert "Traceback" not in done.stderr
    assert hub_state(world["hub"]) == before


def test_a_bundle_from_a_stranger_or_sealed_for_another_key_is_refused(world, tmp_path):
    hub = world["hub"]
    hub_id, hub_key = hub.box_key()
    stranger = bundle.new_header(kind="spoke", sender=str(uuid.uuid4()), facility_id=world["facility"],
                                 facility_name="HWC Rampur", hub=hub_id, recipient=hub_id, sequence=1, changes=0, files=0)
    with BundleWriter(tmp_path / "stranger", stranger, Ed25519PrivateKey.generate(), hub_key.public_key()) as w:
        w.frame(b"E", b"{}")
        [path] = w.finish()
    before = hub_state(hub)
    with pytest.raises(BundleError) as refused:
        hub.import_bundle(path)
    assert refused.value.code == "unknown_sender"
    # Signed by the enrolled PC's own key but sealed for another hub's key under this hub's name.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from spoke_client.services.sync_local import key_path

    own = load_pem_private_key(key_path(world["paths"]).read_bytes(), password=None)
    sealed = bundle.new_header(kind="spoke", sender=world["device"], facility_id=world["facility"],
                               facility_name="HWC Rampur", hub=hub_id, recipient=hub_id, sequence=99, changes=0, files=0)
    with BundleWriter(tmp_path / "elsewhere", sealed, own, X25519PrivateKey.generate().public_key()) as w:
        w.frame(b"E", b"{}")
        [path] = w.finish()
    with pytest.raises(BundleError) as refused:
        hub.import_bundle(path)
    assert refused.value.code == "no_key" and "sealed for another key" in refused.value.message
    assert hub_state(hub) == before


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)
def test_a_drive_that_fills_during_export_leaves_nothing_that_looks_complete(hub, hub_server, facilities, spoke,
                                                                              tmp_path):
    """The operating system itself refuses the writes past a size (a file-size limit on the exporting process, as
    a full drive or a FAT32 drive's 4 GB limit refuses them); the export says so, with its exit code, and leaves
    neither a bundle nor an unfinished part."""
    pc, admin, paths = enrolled(spoke, hub, hub_server.url, facilities[0], "pc1")
    _kamla, case = queued_case(pc, admin)
    attach(pc, admin, case.id, os.urandom(12 * 2**20))
    pc.close()
    drive = tmp_path / "drive"
    drive.mkdir()
    database = max(p.stat().st_size for p in paths.root.rglob("*.sqlite*"))
    limit = database + 4 * 2**20   # the database may still grow by a few MB; a 12 MB bundle may not be written

    def small_drive():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(paths.root), "bundle", "export",
                           "--out", str(drive)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          preexec_fn=small_drive, env=cli_env())
    assert done.returncode == 13, done.stderr
    assert "The drive is full, or takes no file this large" in done.stderr
    assert list(drive.iterdir()) == []


# --- the reader never crashes --------------------------------------------------------------------------------
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), cut=st.integers(min_value=0, max_value=2000),
       spots=st.lists(st.integers(min_value=0, max_value=10**9), max_size=4))
def test_fuzz_any_bytes_are_refused_with_a_bundle_error(world, tmp_path, data, cut, spots):
    good = world["bundle"].read_bytes()
    mutated = bytearray(good)
    for i in spots:
        mutated[i % len(good)] ^= 1 + i % 255
    for n, blob in enumerate([data, bundle.MAGIC + data, good[:cut] + data, mutated]):
        path = tmp_path / f"fuzz{n}.spokebundle"
        path.write_bytes(bytes(blob))
        try:
            world["hub"].import_bundle(path)
        except BundleError:
            pass


FRAME = st.tuples(st.sampled_from([b"M", b"F", b"D", b"C", b"E", b"Z"]),
                  st.one_of(st.binary(max_size=200), st.dictionaries(st.sampled_from(
                      ["bundle_id", "sender", "facility_id", "cursor", "sha256", "size", "changes", "files"]),
                      st.one_of(st.integers(-5, 2**64), st.text(max_size=70), st.none()), max_size=5).map(
                      lambda d: json.dumps(d).encode())))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(FRAME, max_size=6), sequence=st.integers(min_value=1000, max_value=10**6))
def test_fuzz_well_sealed_bundles_with_any_content_never_crash_the_import(world, tmp_path, frames, sequence):
    """Sealed and signed by the enrolled PC's own key, so the frames themselves are what is tried."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from spoke_client.services.sync_local import key_path

    hub = world["hub"]
    hub_id, hub_key = hub.box_key()
    own = load_pem_private_key(key_path(world["paths"]).read_bytes(), password=None)
    header = bundle.new_header(kind="spoke", sender=world["device"], facility_id=world["facility"],
                               facility_name="HWC Rampur", hub=hub_id, recipient=hub_id, sequence=sequence,
                               changes=0, files=0)
    with BundleWriter(tmp_path / "fuzzed", header, own, hub_key.public_key()) as w:
        w.frame(b"M", json.dumps({"bundle_id": header.bundle_id, "sender": header.sender,
                                  "facility_id": header.facility_id}).encode())
        for kind, body in frames:
            w.frame(kind, body)
        [path] = w.finish()
    try:
        hub.import_bundle(path)
    except BundleError:
        pass
