"""Media on a real hub (SQLite and PostgreSQL): content-addressed chunked uploads that resume at the last byte the
hub confirmed, never send a file twice, stay inside their facility, and come down to the facility's other PCs."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import select

from spoke_client.db.models import MediaBlobRow
from spoke_client.domain.model import AttachmentKind
from spoke_client.services.sync_local import LocalSync, enroll, sync_once
from sync.protocol import MAX_CHUNK_BYTES
from sync.transport.http import HubGarbage, HubRefused, HubUnreachable
from tests.sync.faults import FaultyProxy
from tests.sync.test_engine import queued_case


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the hub's media API, through HubClient ------------------------------------------------------
def test_chunks_are_confirmed_in_order_and_the_whole_is_checked(hub, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    data = os.urandom(300_000)
    digest = sha(data)
    status = pc.client.media_status(digest, len(data))
    assert (status.received, status.complete) == (0, False)
    status = pc.client.media_put(digest, 0, len(data), data[:100_000])
    assert (status.received, status.complete) == (100_000, False)
    with pytest.raises(HubRefused) as wrong:
        pc.client.media_put(digest, 50_000, len(data), data[50_000:150_000])
    assert wrong.value.status == 409 and wrong.value.code == "wrong_offset" and "100000" in wrong.value.message
    status = pc.client.media_put(digest, 100_000, len(data), data[100_000:])
    assert status.complete and status.received == len(data)
    assert hub.blob_path(digest).read_bytes() == data
    # The last chunk sent again (its answer was lost): acknowledged, nothing changes.
    assert pc.client.media_put(digest, 100_000, len(data), data[100_000:]).complete


def test_a_damaged_file_is_refused_and_starts_again(hub, facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    data = os.urandom(10_000)
    with pytest.raises(HubRefused) as damaged:
        pc.client.media_put(sha(data), 0, len(data), data[:-1] + bytes([data[-1] ^ 0xFF]))
    assert damaged.value.status == 422 and damaged.value.code == "damaged_upload"
    assert pc.client.media_status(sha(data), len(data)).received == 0
    assert not hub.blob_path(sha(data)).exists()
    assert pc.client.media_put(sha(data), 0, len(data), data).complete


@pytest.mark.parametrize("path, status, code", [
    ("/v1/media/NOT-A-HASH/status?size=10", 400, "bad_hash"),
    (f"/v1/media/{'a' * 64}/status?size={10**12}", 413, "file_too_large"),
    (f"/v1/media/{'a' * 64}/status?size=-1", 400, "bad_request"),
    (f"/v1/media/{'a' * 64}/status", 400, "bad_request"),
])
def test_bad_media_requests_get_a_reason(facilities, spoke_factory, path, status, code):
    pc = spoke_factory(facilities[0])
    from sync.protocol import MediaStatus

    with pytest.raises(HubRefused) as refused:
        pc.client._call("GET", path, None, MediaStatus)
    assert (refused.value.status, refused.value.code) == (status, code) and refused.value.message


def test_a_chunk_too_large_or_outside_the_file_is_refused(facilities, spoke_factory):
    pc = spoke_factory(facilities[0])
    big = b"x" * (MAX_CHUNK_BYTES + 1)
    with pytest.raises(HubRefused) as too_big:
        pc.client.media_put(sha(big), 0, len(big), big)
    assert too_big.value.status == 413
    with pytest.raises(HubRefused) as outside:
        pc.client.media_put(sha(b"abc"), 0, 3, b"abcd")
    assert outside.value.code == "bad_range"


def test_another_facility_can_neither_read_nor_learn_of_a_file(facilities, spoke_factory, tmp_path):
    mine, theirs = spoke_factory(facilities[0]), spoke_factory(facilities[1])
    data = os.urandom(5_000)
    assert mine.client.media_put(sha(data), 0, len(data), data).complete
    assert theirs.client.media_status(sha(data), len(data)).received == 0, "no existence oracle across facilities"
    with pytest.raises(HubRefused) as hidden:
        theirs.client.media_get(sha(data), tmp_path / "stolen")
    assert hidden.value.status == 404
    colleague = spoke_factory(facilities[0])
    colleague.client.media_get(sha(data), tmp_path / "mine")
    assert (tmp_path / "mine").read_bytes() == data


def test_a_download_resumes_from_a_partial_file_and_is_checked(facilities, spoke_factory, tmp_path):
    pc = spoke_factory(facilities[0])
    data = os.urandom(200_000)
    pc.client.media_put(sha(data), 0, len(data), data)
    partial = tmp_path / "partial"
    partial.write_bytes(data[:123_456])
    pc.client.media_get(sha(data), partial)
    assert partial.read_bytes() == data
    pc.client.media_get(sha(data), partial)   # already whole: the hub answers 416, the file is checked and kept
    assert partial.read_bytes() == data
    partial.write_bytes(b"\0" * 1000)         # a wrong beginning: detected, deleted, fetched whole next time
    with pytest.raises(HubGarbage):
        pc.client.media_get(sha(data), partial)
    assert not partial.exists()
    pc.client.media_get(sha(data), partial)
    assert partial.read_bytes() == data


def test_an_encrypted_pcs_download_is_sealed_as_it_arrives_and_resumes_after_a_cut(facilities, spoke_factory,
                                                                                     tmp_path):
    """A file fetched by a PC whose data is encrypted never lies in clear on its disk, not even half of it: the
    kept download is sealed block by block, resumes after a cut link or a crash in the middle of a block, and a
    changed byte in it costs a new download, never a wrong file."""
    import requests

    from spoke_client.services.media import MediaFiles

    pc = spoke_factory(facilities[0])
    data = os.urandom(400_000)
    digest = sha(data)
    pc.client.media_put(digest, 0, len(data), data)
    files = MediaFiles(tmp_path / "media", os.urandom(32))
    partial = files.partial(digest)

    def cut_after(limit):
        got = [0]

        def progress(n):
            got[0] += n
            if got[0] >= limit:
                raise requests.ConnectionError("cable pulled")
        return progress

    with pytest.raises(HubUnreachable):
        pc.client.media_get(digest, partial, progress=cut_after(150_000))
    kept = partial.size()
    assert 150_000 <= kept < len(data)
    raw = partial.path.read_bytes()
    assert not any(data[i:i + 24] in raw for i in range(0, kept - 24, 997)), "no piece of the content in clear"

    with open(partial.path, "r+b") as f:          # a crash in the middle of writing the last block
        f.truncate(len(raw) - 7)
    assert partial.size() < kept
    pc.client.media_get(digest, partial)          # resumes from the last whole block
    assert partial.size() == len(data) and b"".join(partial.blocks()) == data
    files.adopt(digest, partial)
    assert files.read(digest) == data and list((tmp_path / "media" / "incoming").iterdir()) == []

    # A changed byte in a kept download: detected when the download is checked, thrown away, fetched whole.
    again = files.partial(digest)
    with pytest.raises(HubUnreachable):
        pc.client.media_get(digest, again, progress=cut_after(100_000))
    raw = bytearray(again.path.read_bytes())
    raw[100] ^= 0x01
    again.path.write_bytes(bytes(raw))
    with pytest.raises(HubGarbage):
        pc.client.media_get(digest, again)
    assert not again.path.exists()
    pc.client.media_get(digest, again)
    assert b"".join(again.blocks()) == data

    # A download kept in clear by an earlier version, before the data was encrypted: zeroed and removed.
    clear = files.partial_path("ab" * 32)
    clear.write_bytes(data[:5000])
    assert files.forget_clear_downloads() == 1 and not clear.exists() and again.path.exists()


# --- the client engine, end to end -----------------------------------------------------------------
def attach(services, admin, case_id, data: bytes, label="rash, left forearm"):
    return services.attachments.attach(admin, case_id, AttachmentKind.PHOTO, data, "image/jpeg", label,
                                       width_px=1600, height_px=1200)


def test_files_go_up_once_and_come_down_to_the_other_pc(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = spoke("pc1")
    enroll(pc1.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    _kamla, case = queued_case(pc1, admin1)
    photo, cough = os.urandom(350_000), os.urandom(90_000)
    attach(pc1, admin1, case.id, photo)
    attach(pc1, admin1, case.id, cough, label="cough")
    assert LocalSync(pc1.store).pending_files() == 2
    report = sync_once(pc1.store, paths1)
    assert report.ok, report.error
    assert (report.files_uploaded, report.files_already_there, report.bytes_uploaded) == (2, 0, len(photo) + len(cough))
    assert hub.blob_path(sha(photo)).read_bytes() == photo
    assert LocalSync(pc1.store).pending_files() == 0
    # The same photo attached again (another case, a retake that came out identical): never sent again.
    _k2, case2 = queued_case(pc1, admin1, name="Ramesh Kumar")
    attach(pc1, admin1, case2.id, photo)
    assert LocalSync(pc1.store).pending_files() == 0
    assert sync_once(pc1.store, paths1).bytes_uploaded == 0

    pc2, _admin2, paths2 = spoke("pc2")
    enroll(pc2.store, paths2, hub_server.url, hub.enroll_code(facilities[0]), "PC-2")
    report = sync_once(pc2.store, paths2)
    assert report.ok and report.files_fetched == 2
    shown = pc2.attachments.list(case.id)
    assert [a.label for a in shown] == ["rash, left forearm", "cough"]
    assert [pc2.attachments.read_bytes(a) for a in shown] == [photo, cough]
    assert LocalSync(pc2.store).pending_files() == 0, "a file that came from the hub is not sent back"
    assert sync_once(pc2.store, paths2).files_fetched == 0


def test_a_cut_mid_upload_resumes_with_only_the_remainder(hub, hub_server, facilities, spoke):
    services, admin, paths = spoke("pc1")
    proxy = FaultyProxy(hub_server.port)
    enroll(services.store, paths, proxy.url, hub.enroll_code(facilities[0]), "PC-1")
    _kamla, case = queued_case(services, admin)
    sync_once(services.store, paths)                      # the records first; the file is what is under test
    photo = os.urandom(1_500_000)
    attach(services, admin, case.id, photo)
    proxy.mode, proxy.budget, proxy.forwarded = "budget", 700_000, 0
    report = sync_once(services.store, paths)
    assert report.error_kind == "unreachable" and LocalSync(services.store).pending_files() == 1
    with hub.session() as s:
        from sync.hub.models import HubMediaUpload

        confirmed = s.scalars(select(HubMediaUpload.received)).one()
    assert 0 < confirmed < len(photo) and not hub.blob_path(sha(photo)).exists()
    proxy.mode, proxy.forwarded = "pass", 0
    report = sync_once(services.store, paths)
    assert report.ok and report.files_uploaded == 1
    assert report.bytes_uploaded == len(photo) - confirmed, "only the remainder is sent"
    assert proxy.forwarded < len(photo) - confirmed + 20_000, "headers and the signed requests stay small"
    assert hub.blob_path(sha(photo)).read_bytes() == photo
    proxy.close()


def test_a_local_file_that_went_missing_is_reported_and_does_not_block_the_rest(hub, hub_server, facilities, spoke):
    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    _kamla, case = queued_case(services, admin)
    lost, kept = os.urandom(20_000), os.urandom(30_000)
    attach(services, admin, case.id, lost)
    attach(services, admin, case.id, kept)
    services.attachments.files.path(sha(lost)).write_bytes(b"damaged")
    report = sync_once(services.store, paths)
    assert report.files_refused == 1 and report.files_uploaded == 1 and not report.ok
    assert hub.blob_path(sha(kept)).read_bytes() == kept
    with services.store.read() as s:
        assert "damaged" in s.get(MediaBlobRow, sha(lost)).last_error


def test_an_attachment_deleted_from_a_draft_leaves_nothing_behind(spoke):
    services, admin, paths = spoke("pc1")
    from spoke_client.services.patients import PatientForm

    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    case = services.cases.open_case(admin, kamla.id)
    data = os.urandom(1000)
    a = attach(services, admin, case.id, data)
    assert services.attachments.files.has(sha(data))
    assert services.attachments.remove(admin, a.id) is True
    assert services.attachments.list(case.id) == [] and not services.attachments.files.has(sha(data))
    with services.store.read() as s:
        assert s.get(MediaBlobRow, sha(data)) is None
        from spoke_client.db.models import ChangeRow

        ops = s.scalars(select(ChangeRow.op).where(ChangeRow.entity_id == a.id).order_by(ChangeRow.seq)).all()
    assert ops == ["upsert", "delete"], "the other PCs learn of the deletion by a tombstone"


def test_an_attachment_that_left_the_pc_is_withdrawn_not_deleted(hub, hub_server, facilities, spoke):
    services, admin, paths = spoke("pc1")
    enroll(services.store, paths, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    _kamla, case = queued_case(services, admin)
    data = os.urandom(1000)
    a = attach(services, admin, case.id, data)
    sync_once(services.store, paths)
    from spoke_client.domain.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.attachments.remove(admin, a.id)           # a reason is required
    assert services.attachments.remove(admin, a.id, "wrong patient") is False
    assert services.attachments.list(case.id) == []
    [kept] = services.attachments.list(case.id, include_withdrawn=True)
    assert kept.status == "withdrawn" and kept.withdrawn_reason == "wrong patient"
    assert services.attachments.files.has(sha(data))
    sync_once(services.store, paths)
    assert hub.record("attachment", a.id).payload["status"] == "withdrawn"
