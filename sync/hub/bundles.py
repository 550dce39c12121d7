"""USB bundles at the hub: the hub's encryption key, each device's, and a spoke's bundle imported.

A bundle's changes go through the same code as a network push (Hub.push_in), all of its batches in one
transaction: a change that came by network and again by USB is applied once, and a bundle that fails anywhere
leaves the database as it was. Its files are stored as chunks of an upload are (content-addressed, checked by
their SHA-256), before its changes.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from pydantic import ValidationError
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sync import bundle
from sync.bundle import BundleError, Header
from sync.hub.auth import Device, aware, utcnow
from sync.hub.errors import HubError
from sync.files import fsync_dir
from sync.hub.media import _write_at
from sync.hub.models import HubBlob, HubBoxKey, HubBundle, HubBundleUpload, HubChangeRow, HubDevice, HubFacility, HubMediaUpload
from sync.protocol import MAX_CHUNK_BYTES, ProtocolError, PushEnvelope, decode, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundleReport:
    bundle_id: str
    device_id: str
    facility_id: str
    changes: int
    accepted: int
    duplicates: int
    rejected: int
    files: int
    files_new: int
    already: datetime | None = None   # imported before (this bundle, or everything in it), on that date
    reasons: tuple[str, ...] = ()

    def sentence(self) -> str:
        if self.already is not None:
            return f"Already imported on {aware(self.already):%d %b %Y %H:%M} UTC: nothing was changed."
        text = (f"Imported: {self.accepted} changes applied, {self.duplicates} already here, {self.rejected} refused; "
                f"{self.files_new} new files of {self.files}.")
        if self.reasons:
            text += " Refused: " + "; ".join(self.reasons[:3]) + ("..." if len(self.reasons) > 3 else "")
        return text


@dataclass(frozen=True)
class ReturnReport:
    paths: tuple[Path, ...]
    changes: int
    acknowledged: int
    files: int

    def sentence(self) -> str:
        return (f"Written and checked: {self.changes} changes, {self.acknowledged} acknowledgements and {self.files} "
                f"files in {len(self.paths)} part(s).")


@dataclass(frozen=True)
class UploadStatus:
    bundle_id: str
    part: int
    size: int
    received: int
    complete: bool
    outcome: str                 # once the whole bundle was imported (or refused): the sentence
    waiting: tuple[int, ...]     # parts not yet here

    def to_json(self) -> dict:
        return {"bundle_id": self.bundle_id, "part": self.part, "size": self.size, "received": self.received,
                "complete": self.complete, "outcome": self.outcome, "waiting": list(self.waiting)}


MAX_UPLOAD_PART = 8 * 2**30   # one part of a bundle by HTTP
MAX_PENDING_PER_DEVICE = 32 * 2**30   # unfinished relayed bundles of one PC, in all
RELAY_TTL = timedelta(days=30)   # parts may travel on different days, from different PCs: a month to bring them all
ACK_FRAME = 5000          # change ids per acknowledgement frame
RETURN_PAGE = 2000        # changes per page frame
FILE_PIECE = 1024 * 1024


def _now_ms() -> int:
    return int(time.time() * 1000)


class HubBundles:
    """Mixed into sync.hub.service.Hub (needs .session, .push_in, ._media_put)."""

    # --- keys --------------------------------------------------------------------------------------------
    def box_key(self) -> tuple[str, X25519PrivateKey]:
        """The hub's current X25519 key (the newest not retired), made on first use (in the database: every worker
        uses the same)."""
        with self.session.begin() as s:
            row = s.scalars(select(HubBoxKey).where(HubBoxKey.retired_at.is_(None))
                            .order_by(HubBoxKey.created_at.desc())).first()
            if row is None:
                row = _new_box_key(s)
            return row.key_id, load_pem_private_key(row.private_pem.encode(), password=None)

    def box_key_ids(self) -> dict[str, datetime | None]:
        """Every key id the hub has had, with the day each was retired (None: it still opens bundles)."""
        self.box_key()
        with self.session() as s:
            return {k: aware(r) if r else None for k, r in s.execute(select(HubBoxKey.key_id, HubBoxKey.retired_at))}

    def _box_private(self, key_id: str) -> X25519PrivateKey:
        """The private half of a key a bundle was sealed for, or a BundleError saying why it cannot be opened."""
        with self.session() as s:
            row = s.get(HubBoxKey, key_id)
        if row is None:
            raise BundleError("other_hub", "This bundle was made for another hub; it cannot be imported here.")
        if row.retired_at is not None:
            raise BundleError("retired_key", f"This bundle was sealed for a key of this hub that was retired on "
                                             f"{aware(row.retired_at):%d %b %Y}: it cannot be opened any more. The PC "
                                             "learns the new key at its next network sync; then write the bundle "
                                             "again.")
        return load_pem_private_key(row.private_pem.encode(), password=None)

    def rotate_box_key(self) -> str:
        """A new current key; the older ones keep opening the bundles already sealed for them (a PC on USB alone
        may carry one for weeks) until `retire_box_key`. Returns the new key's id."""
        with self.session.begin() as s:
            row = _new_box_key(s)
        log.info("bundle key rotated: %s is the current key", row.key_id)
        return row.key_id

    def retire_box_key(self, key_id: str) -> None:
        """Destroys an older key's private half: bundles sealed for it are refused from now on, with the day."""
        current, _ = self.box_key()
        with self.session.begin() as s:
            row = s.get(HubBoxKey, key_id, with_for_update=True)
            if row is None:
                raise HubError(404, "no_key", f"This hub has no bundle key {key_id}.")
            if row.key_id == current:
                raise HubError(409, "current_key", "This is the hub's current bundle key: rotate first, then retire "
                                                   "the old one once the PCs have learnt the new one.")
            if row.retired_at is None:
                row.retired_at, row.private_pem = utcnow(), ""
        log.info("bundle key %s retired", key_id)

    def register_box_key(self, device: Device, public_b64: str) -> tuple[str, str]:
        """Keeps a device's X25519 key (an enrolled PC registers one once, without enrolling again); returns the
        hub's own (key id, base64) for the spoke to seal its bundles with."""
        try:
            X25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        except ValueError:
            raise HubError(400, "bad_key", "This is not an X25519 public key.") from None
        with self.session.begin() as s:
            row = s.get(HubDevice, device.id, with_for_update=True)
            row.box_key = public_b64
        key_id, key = self.box_key()
        log.info("device %s registered its bundle key", device.id)
        return key_id, base64.b64encode(bundle.raw(key.public_key())).decode()

    # --- return bundles ----------------------------------------------------------------------------------
    def _next_return_sequence(self, device_id: str) -> int:
        """The clock in ms, or one above the device's last return bundle if that is higher (a clock put back must
        not make the new bundle look older: the PC would refuse it as a replay). Taken in one UPDATE, so two
        workers making bundles for one PC at once should get two numbers (not tested); a number whose bundle was
        not finished is simply skipped."""
        above = HubDevice.return_sequence + 1
        now = _now_ms()
        with self.session.begin() as s:
            s.execute(update(HubDevice).where(HubDevice.id == device_id)
                      .values(return_sequence=case((above > now, above), else_=now)))
            return s.scalar(select(HubDevice.return_sequence).where(HubDevice.id == device_id))

    def export_return_bundle(self, device_id: str, out: Path, max_size: int | None = None) -> ReturnReport:
        """What this device has not seen yet, sealed for it: acknowledgements of its changes and files, then its
        facility's changes after the cursor it last told the hub, by bundle or by network pull (other PCs' work,
        case status, the doctors' questions and notes, prescriptions), then the files those changes attach.
        Signed with the hub's key."""
        with self.session() as s:
            row = s.get(HubDevice, device_id) if bundle._ID.fullmatch(device_id or "") else None
            if row is None:
                raise BundleError("unknown_sender", "No PC with this id is enrolled with this hub.")
            if row.revoked_at is not None:
                raise BundleError("revoked", f"This PC was revoked on {aware(row.revoked_at):%d %b %Y}; no bundle is "
                                             "made for it.")
            if not row.box_key:
                raise BundleError("no_key", "This PC has not registered its key for bundles yet: it does so at its "
                                            "next sync over a network.")
            device = Device(row.id, row.facility_id)
            box_key = X25519PublicKey.from_public_bytes(base64.b64decode(row.box_key))
            after = row.bundle_cursor or 0
            facility = s.get(HubFacility, row.facility_id)
            own_ids = s.scalars(select(HubChangeRow.change_id).where(HubChangeRow.device_id == device.id)
                                .order_by(HubChangeRow.seq)).all()
            newest = s.scalar(select(func.max(HubBundle.sequence)).where(HubBundle.device_id == device.id)) or 0
            have_files = s.scalars(select(HubMediaUpload.sha256).where(
                HubMediaUpload.facility_id == device.facility_id, HubMediaUpload.completed_at.is_not(None))).all()
        hub_id, _ = self.box_key()
        _key_id, signing = self.signing_key()
        header = bundle.new_header(kind="hub", sender="hub", facility_id=device.facility_id,
                                   facility_name=facility.name if facility else "", hub=hub_id,
                                   recipient=bundle.key_id(box_key), sequence=self._next_return_sequence(device.id),
                                   changes=0, files=0)
        changes = files = 0
        attached: dict[str, int] = {}
        try:
            with bundle.BundleWriter(out, header, signing, box_key, max_size) as writer:
                writer.frame(b"M", _dumps({"bundle_id": header.bundle_id, "sender": "hub", "device": device.id,
                                           "facility_id": device.facility_id, "after": after,
                                           "bundle_sequence": newest}))
                for at in range(0, len(own_ids), ACK_FRAME):
                    writer.frame(b"A", gzip.compress(_dumps(own_ids[at:at + ACK_FRAME]), mtime=0))
                writer.frame(b"K", gzip.compress(_dumps(list(have_files)), mtime=0))
                cursor = after
                while True:
                    page = self.pull(device, cursor, RETURN_PAGE, own=False, count=False, bundle=True)
                    if page.changes:
                        writer.frame(b"P", encode(page))
                        changes += len(page.changes)
                        for c in page.changes:
                            if c.entity == "attachment" and c.payload and isinstance(c.payload.get("sha256"), str):
                                attached[c.payload["sha256"]] = 1
                    cursor = page.next_cursor
                    if not page.more:
                        break
                for sha256 in attached:
                    try:
                        path, size = self.media_file(device, sha256)
                    except HubError:
                        continue   # not here yet (its PC has not sent it): it comes by network or a later bundle
                    writer.frame(b"F", _dumps({"sha256": sha256, "size": size}))
                    with open(path, "rb") as f:
                        while piece := f.read(FILE_PIECE):
                            writer.frame(b"D", piece)
                    files += 1
                writer.frame(b"E", _dumps({"changes": changes, "files": files, "acks": len(own_ids)}))
                writer.header = dataclasses.replace(header, changes=changes, files=files)
                written = writer.finish()
        except OSError as exc:
            raise bundle.write_error(exc) from None
        log.info("return bundle %s for device %s: %d changes after %d, %d acknowledgements, %d files",
                 header.bundle_id, device.id, changes, after, len(own_ids), files)
        return ReturnReport(tuple(written), changes, len(own_ids), files)

    # --- the console's view -------------------------------------------------------------------------------
    def bundle_devices(self, hub_id: str) -> list[dict]:
        """The PCs of the facilities this hub serves, each with its last bundle imported, for hub staff."""
        from sync.hub.models import HubFacilityHub

        last = (select(HubBundle.device_id, func.max(HubBundle.imported_at).label("at"))
                .group_by(HubBundle.device_id).subquery())
        with self.session() as s:
            rows = s.execute(select(HubDevice.id, HubDevice.name, HubDevice.enrolled_at, HubDevice.box_key,
                                    HubFacility.name, last.c.at)
                             .join(HubFacility, HubFacility.id == HubDevice.facility_id)
                             .join(HubFacilityHub, HubFacilityHub.facility_id == HubDevice.facility_id)
                             .outerjoin(last, last.c.device_id == HubDevice.id)
                             .where(HubFacilityHub.hub_id == hub_id, HubDevice.revoked_at.is_(None))
                             .order_by(HubFacility.name, HubDevice.name)).all()
        return [{"id": i, "name": n, "enrolled_at": e, "ready": bool(k), "facility": f, "last_bundle": at}
                for i, n, e, k, f, at in rows]

    def staff_return_bundle(self, hub_id: str, device_id: str, out: Path) -> ReturnReport:
        """A return bundle made from the console: only for a PC of a facility this hub serves."""
        if not any(d["id"] == device_id for d in self.bundle_devices(hub_id)):
            raise HubError(404, "no_device", "No such PC at the facilities this hub serves.")
        return self.export_return_bundle(device_id, out)

    # --- bundles arriving by HTTP (a relay PC, the console) ------------------------------------------------
    def _upload_dir(self, bundle_id: str) -> Path:
        return self.media_dir / "bundles" / bundle_id

    def bundle_upload_status(self, bundle_id: str, part: int) -> UploadStatus:
        _check_upload_name(bundle_id, part)
        with self.session() as s:
            row = s.get(HubBundleUpload, (bundle_id, part))
            if row is None:
                return UploadStatus(bundle_id, part, 0, 0, False, "", ())
            return self._upload_status(s, row)

    def _upload_status(self, s, row: HubBundleUpload) -> UploadStatus:
        have = set(s.scalars(select(HubBundleUpload.part).where(HubBundleUpload.bundle_id == row.bundle_id,
                                                                HubBundleUpload.completed_at.is_not(None))))
        waiting = tuple(n for n in range(1, row.parts + 1) if n not in have)
        return UploadStatus(row.bundle_id, row.part, row.size, row.received, row.completed_at is not None,
                            row.outcome or "", waiting)

    def bundle_upload_put(self, bundle_id: str, part: int, offset: int, size: int, data: bytes) -> UploadStatus:
        """One chunk of one part at `offset` (the bytes already confirmed). The first chunk must hold the part's
        readable header, which must name an enrolled PC and this hub; the last one is confirmed only once the
        part's signature holds. When every part is here, the bundle is imported (the outcome is in the answer)."""
        _check_upload_name(bundle_id, part)
        if not 0 < size <= MAX_UPLOAD_PART or len(data) > MAX_CHUNK_BYTES or offset < 0 or offset + len(data) > size \
                or not data:
            raise HubError(400, "bad_range", f"A chunk is 1 byte to {MAX_CHUNK_BYTES} bytes inside a part of at most "
                                             f"{MAX_UPLOAD_PART // 2**30} GB.")
        folder = self._upload_dir(bundle_id)
        ids = self.box_key_ids()   # before the write transaction (SQLite has one writer)
        with self.busy_guard(), self.session.begin() as s:
            row = s.get(HubBundleUpload, (bundle_id, part), with_for_update=True)
            if row is None:
                if offset != 0:
                    raise HubError(409, "wrong_offset", "The hub has 0 bytes of this part; send from there.",
                                   headers={"Spoke-Received": "0"})
                header = _upload_header(s, data, size, bundle_id, part, ids)
                pending = s.scalar(select(func.coalesce(func.sum(HubBundleUpload.size), 0)).where(
                    HubBundleUpload.device_id == header.sender, HubBundleUpload.outcome == "")) or 0
                if pending + size > MAX_PENDING_PER_DEVICE:
                    # Its signature is checked only at the last byte: what a stranger could send in its name is
                    # bounded, so no one fills the hub's disk with parts that never verify.
                    raise HubError(429, "too_much_pending", "This PC's bundles already waiting at the hub are too "
                                                            "large; bring their missing parts first.",
                                   retry_after=3600)
                row = HubBundleUpload(bundle_id=bundle_id, part=part, parts=header.parts, device_id=header.sender,
                                      size=size, received=0, completed_at=None, updated_at=utcnow(), outcome="")
                s.add(row)
                s.flush()
            if row.completed_at is not None or row.size != size:
                if row.size != size:
                    raise HubError(409, "size_mismatch", "The hub holds this part with another size.")
                return self._upload_status(s, row)
            partial = folder / f"{part}.partial"
            row.received = min(row.received, _size_of(partial))
            if offset != row.received:
                raise HubError(409, "wrong_offset", f"The hub has {row.received} bytes of this part; send from there.",
                               headers={"Spoke-Received": str(row.received)})
            _write_at(partial, offset, data)
            row.received, row.updated_at = offset + len(data), utcnow()
            if row.received == size:
                final = bundle.part_paths(folder / f"bundle{bundle.SUFFIX}", row.parts)[part - 1]
                try:
                    header = bundle.read_header(partial)
                    device = s.get(HubDevice, header.sender)
                    bundle.verify(partial, header, Ed25519PublicKey.from_public_bytes(base64.b64decode(device.public_key)))
                except BundleError as exc:
                    partial.unlink(missing_ok=True)
                    s.delete(row)
                    refusal = exc
                else:
                    refusal = None
                    os.replace(partial, final)
                    row.completed_at = utcnow()
            else:
                refusal = None
            if refusal is None:
                status = self._upload_status(s, row)
        if refusal is not None:
            log.warning("a relayed bundle part was refused: %s", refusal.code)
            raise HubError(422, refusal.code, refusal.message)
        if status.complete and not status.waiting and not status.outcome:
            status = self._import_uploaded(bundle_id, part)
        self.expire_uploads_now_and_then()   # with the media uploads' housekeeping (sync.hub.media)
        return status

    def expire_bundle_uploads(self, older_than: timedelta = RELAY_TTL, now: datetime | None = None) -> int:
        """Forgets relayed bundles that got no chunk for `older_than` (a part cut short, or the other parts never
        brought), deleting their bytes; brought later, they start again. Returns how many bundles were forgotten."""
        cutoff = (now or utcnow()) - older_than
        with self.session.begin() as s:
            fresh = select(HubBundleUpload.bundle_id).where(HubBundleUpload.updated_at >= cutoff)
            stale = set(s.scalars(select(HubBundleUpload.bundle_id).where(
                HubBundleUpload.outcome == "", HubBundleUpload.updated_at < cutoff,
                HubBundleUpload.bundle_id.not_in(fresh))))
            for bundle_id in stale:
                s.execute(delete(HubBundleUpload).where(HubBundleUpload.bundle_id == bundle_id))
        for bundle_id in stale:
            shutil.rmtree(self._upload_dir(bundle_id), ignore_errors=True)
        if stale:
            log.info("forgot %d relayed bundles that stopped coming", len(stale))
        return len(stale)

    def _import_uploaded(self, bundle_id: str, part: int) -> UploadStatus:
        folder = self._upload_dir(bundle_id)
        first = folder / f"bundle{bundle.SUFFIX}"
        try:
            outcome = self.import_bundle(first).sentence()
        except BundleError as exc:
            outcome = f"Refused: {exc.message}"
            code = exc.code
        except IntegrityError:   # another worker imported it at the same moment: its outcome stands
            return self.bundle_upload_status(bundle_id, part)
        else:
            code = ""
        with self.session.begin() as s:
            for row in s.scalars(select(HubBundleUpload).where(HubBundleUpload.bundle_id == bundle_id)):
                row.outcome = outcome
        shutil.rmtree(folder, ignore_errors=True)   # imported (or refused for good): the bytes are not kept
        status = self.bundle_upload_status(bundle_id, part)
        if code:
            raise HubError(422, code, outcome)
        return status

    # --- import ------------------------------------------------------------------------------------------
    def import_bundle(self, first: Path) -> BundleReport:
        """Verifies every part of the bundle, then applies it whole, or refuses it with a BundleError (nothing
        applied). A bundle imported before, or whose every change and file is already here, changes nothing."""
        paths, headers = bundle.open_bundle(Path(first))
        header = headers[0]
        if header.kind != "spoke":
            raise BundleError("other_hub", "This is a return bundle for a spoke PC: import it there, not at the hub.")
        ids = self.box_key_ids()
        for h in headers:
            if h.hub not in ids or h.recipient != header.recipient:
                raise BundleError("other_hub", "This bundle was made for another hub; it cannot be imported here.")
        hub_key = self._box_private(header.recipient)   # sealed for the current key, or an older one not retired
        with self.session() as s:
            device = s.get(HubDevice, header.sender)
            if device is None:
                raise BundleError("unknown_sender", "This bundle comes from a PC this hub does not know (not enrolled "
                                                    "here); it was not imported.")
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(device.public_key))
            facility_id, revoked_at, revoked_reason = device.facility_id, device.revoked_at, device.revoked_reason
        for path, h in zip(paths, headers):
            bundle.verify(path, h, public)
        if revoked_at is not None:   # told only once the signature shows it is that device's
            raise BundleError("revoked", f"This bundle comes from a PC the hub revoked on {aware(revoked_at):%d %b %Y}"
                                         + (f" ({revoked_reason})" if revoked_reason else "") + "; it was not imported.")
        if header.facility_id != facility_id:
            raise BundleError("damaged", "This bundle names another facility than its PC's; it was not imported.")
        with self.session() as s:
            done = s.get(HubBundle, header.bundle_id)
            if done is not None:
                return self._report(header, facility_id, done.imported_at)
            newest = s.execute(select(HubBundle.sequence, HubBundle.imported_at)
                               .where(HubBundle.device_id == header.sender)
                               .order_by(HubBundle.sequence.desc()).limit(1)).first()
        if newest is not None and header.sequence < newest.sequence:
            raise BundleError("replayed", f"This bundle is older than one already imported from the same PC (on "
                                          f"{aware(newest.imported_at):%d %b %Y}); its work came with that one. "
                                          "It was not imported.")
        return self._apply(paths, headers, Device(header.sender, facility_id), hub_key)

    def _apply(self, paths: list[Path], headers: list[Header], device: Device, hub_key: X25519PrivateKey) -> BundleReport:
        header = headers[0]
        stream = bundle.frames(paths, headers, hub_key)
        manifest = _manifest(next(stream, (b"", b"")), header)
        accepted = duplicates = 0
        reasons: list[str] = []
        with self.session() as s:   # the files this facility already has are not written again
            have = set(s.scalars(select(HubMediaUpload.sha256).where(HubMediaUpload.facility_id == device.facility_id,
                                                                     HubMediaUpload.completed_at.is_not(None))))
        stored: list[tuple[str, int]] = []   # files written to the blob store, recorded with the changes below
        files = 0
        current = None   # the file being read: [sha256, size, bytes so far, hash, open file, temporary path]
        kind, body = next(stream, (b"", b""))
        try:
            while kind in (b"F", b"D"):
                if kind == b"F":
                    if current is not None:
                        raise BundleError("damaged", "A file in this bundle is cut short.")
                    sha256, size = _file_start(body)
                    files += 1
                    current = [sha256, size, 0, hashlib.sha256(), None, None]
                    if sha256 not in have and not self.blob_path(sha256).exists():
                        temp = self.media_dir / "partial" / device.facility_id / f"{sha256}.bundle"
                        temp.parent.mkdir(parents=True, exist_ok=True)
                        current[4], current[5] = open(temp, "wb"), temp
                else:
                    if current is None:
                        raise BundleError("damaged", "This bundle holds a piece of a file outside any file.")
                    if current[2] + len(body) > current[1]:
                        raise BundleError("damaged", "A file in this bundle is longer than it says.")
                    current[2] += len(body)
                    current[3].update(body)
                    if current[4] is not None:
                        current[4].write(body)
                if current is not None and current[2] == current[1]:
                    stored += self._bundle_file_done(current, have)
                    current = None
                kind, body = next(stream, (b"", b""))
            if current is not None:
                raise BundleError("damaged", "A file in this bundle is cut short.")
        finally:
            if current is not None and current[4] is not None:
                current[4].close()
                current[5].unlink(missing_ok=True)
        files_new = len(stored)
        self._sync_files(stored)
        changes = 0
        first_seen: datetime | None = None
        with self.session.begin() as s:
            while kind == b"C":
                try:
                    batch = decode(PushEnvelope, body)
                except ProtocolError:
                    raise BundleError("damaged", "A batch of changes in this bundle cannot be read.") from None
                result = self.push_in(s, device, batch)
                s.flush()
                s.expunge_all()   # applied and flushed: a bundle of any size holds one batch's records in memory
                changes += len(batch.changes)
                accepted, duplicates = accepted + len(result.accepted), duplicates + len(result.duplicates)
                reasons += [r.reason for r in result.rejected]
                if result.duplicates and not result.accepted:
                    seen = s.scalar(select(func.min(HubChangeRow.received_at))
                                    .where(HubChangeRow.change_id.in_([str(i) for i in result.duplicates[:500]])))
                    first_seen = seen if first_seen is None or (seen and seen < first_seen) else first_seen
                kind, body = next(stream, (b"", b""))
            if kind != b"E":
                raise BundleError("damaged", "This bundle ends early or holds something Spoke does not write.")
            end = _json(body)
            if end.get("changes") != changes or end.get("files") != files or changes != header.changes \
                    or files != header.files:
                raise BundleError("damaged", "This bundle's counts do not match what it holds; it was not imported.")
            if next(stream, None) is not None:
                raise BundleError("damaged", "This bundle holds something after its end.")
            self._record_files(s, device.facility_id, stored)
            cursor = manifest.get("cursor")
            row = s.get(HubDevice, device.id, with_for_update=True)
            # Taken as it is, even when lower than the one known: a PC put back from an older copy has a lower
            # cursor, and a return bundle that started above it would leave it a gap. Too low costs only size.
            if isinstance(cursor, int) and not isinstance(cursor, bool) and 0 <= cursor < 2**63:
                row.bundle_cursor = cursor
            now = utcnow()
            s.add(HubBundle(bundle_id=header.bundle_id, device_id=device.id, sequence=header.sequence,
                            created_at=header.created, imported_at=now, changes=changes, files=files,
                            accepted=accepted, duplicates=duplicates, rejected=len(reasons)))
        log.info("bundle %s of device %s imported: %d applied, %d already here, %d refused, %d new files",
                 header.bundle_id, device.id, accepted, duplicates, len(reasons), files_new)
        nothing_new = accepted == 0 and files_new == 0 and not reasons and (changes or files)
        return BundleReport(header.bundle_id, device.id, device.facility_id, changes, accepted, duplicates,
                            len(reasons), files, files_new, already=(first_seen or now) if nothing_new else None,
                            reasons=tuple(reasons))

    def _bundle_file_done(self, current: list, have: set[str]) -> list[tuple[str, int]]:
        """A file of the bundle read whole: checked against its SHA-256, and moved into the blob store (content-
        addressed, so a bundle refused later leaves at most a file no record names). Returns it when it is new to
        this facility: it is recorded with the bundle's changes, in their transaction."""
        sha256, size, _read, digest, f, temp = current
        if digest.hexdigest() != sha256:
            if f is not None:
                f.close()
                temp.unlink(missing_ok=True)
            raise BundleError("damaged", "A file in this bundle does not match its checksum; nothing was applied.")
        if f is not None:
            f.close()   # flushed to the disk with the others, once all are written (_sync_files)
            blob = self.blob_path(sha256)
            blob.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, blob)
        if sha256 in have:
            return []
        have.add(sha256)
        return [(sha256, size)]

    def _sync_files(self, stored: list[tuple[str, int]]) -> None:
        """Every new file on the disk before the records that name it are committed: written first, then flushed
        together (one pass of fsync after the writes costs far less than one flush per file as it is written)."""
        folders = set()
        for sha256, _size in stored:
            path = self.blob_path(sha256)
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            folders.add(path.parent)
        for folder in folders:
            fsync_dir(folder)

    @staticmethod
    def _record_files(s, facility_id: str, stored: list[tuple[str, int]]) -> None:
        """The bundle's new files as this facility's complete uploads (and blobs), in bulk statements."""
        if not stored:
            return
        now = utcnow()
        sizes = dict(stored)
        blobs, uploads = set(), set()
        names = list(sizes)
        for at in range(0, len(names), 500):
            some = names[at:at + 500]
            blobs |= set(s.scalars(select(HubBlob.sha256).where(HubBlob.sha256.in_(some))))
            uploads |= set(s.scalars(select(HubMediaUpload.sha256).where(HubMediaUpload.facility_id == facility_id,
                                                                         HubMediaUpload.sha256.in_(some))))
        new_blobs = [{"sha256": h, "size": n, "stored_at": now} for h, n in stored if h not in blobs]
        new_uploads = [{"facility_id": facility_id, "sha256": h, "size": n, "received": n, "completed_at": now,
                        "updated_at": now} for h, n in stored if h not in uploads]
        if new_blobs:
            s.execute(insert(HubBlob), new_blobs)
        if new_uploads:
            s.execute(insert(HubMediaUpload), new_uploads)
        for h in uploads:   # a network upload of it had stopped halfway: it is complete now
            s.execute(update(HubMediaUpload).where(HubMediaUpload.facility_id == facility_id,
                                                   HubMediaUpload.sha256 == h)
                      .values(size=sizes[h], received=sizes[h], completed_at=now, updated_at=now))

    def _report(self, header: Header, facility_id: str, when: datetime) -> BundleReport:
        return BundleReport(header.bundle_id, header.sender, facility_id, header.changes, 0, 0, 0, header.files, 0,
                            already=when)


def _new_box_key(s) -> HubBoxKey:
    key = X25519PrivateKey.generate()
    row = HubBoxKey(key_id=bundle.key_id(key.public_key()),
                    private_pem=key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
                    public_b64=base64.b64encode(bundle.raw(key.public_key())).decode(), created_at=utcnow())
    s.add(row)
    s.flush()
    return row


def _upload_header(s, data: bytes, size: int, bundle_id: str, part: int, ids: dict) -> Header:
    if len(data) < min(size, bundle.PREFIX_BYTES):
        raise HubError(400, "bad_range", "The first chunk of a part must hold its whole header.")
    try:
        header = bundle.parse_header(data[:bundle.PREFIX_BYTES], size)
    except BundleError as exc:
        raise HubError(422, exc.code, exc.message) from None
    if header.size != size:
        raise HubError(422, "damaged", "This part's size does not match its header.")
    if (header.bundle_id, header.part) != (bundle_id, part):
        raise HubError(422, "damaged", "This part's header names another bundle or part.")
    if header.kind != "spoke":
        raise HubError(422, "other_hub", "This is a return bundle for a spoke PC: it goes to that PC, not to the hub.")
    if header.hub not in ids or header.recipient not in ids:
        raise HubError(422, "other_hub", "This bundle was made for another hub; it cannot be taken here.")
    if ids[header.recipient] is not None:
        raise HubError(422, "retired_key", f"This bundle was sealed for a key of this hub that was retired on "
                                           f"{ids[header.recipient]:%d %b %Y}: the PC must learn the new key (a "
                                           "network sync) and write the bundle again.")
    if s.get(HubDevice, header.sender) is None:
        raise HubError(422, "unknown_sender", "This bundle comes from a PC this hub does not know.")
    return header


def _check_upload_name(bundle_id: str, part: int) -> None:
    try:
        uuid.UUID(bundle_id)
    except (ValueError, TypeError, AttributeError):
        raise HubError(404, "no_bundle", "A bundle is named by its id (a UUID).") from None
    if not 1 <= part <= 9999:
        raise HubError(404, "no_bundle", "A part is numbered from 1.")


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _dumps(data) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise BundleError("damaged", "A record of this bundle cannot be read.") from None
    if not isinstance(data, dict):
        raise BundleError("damaged", "A record of this bundle cannot be read.")
    return data


def _manifest(frame: tuple[bytes, bytes], header: Header) -> dict:
    kind, body = frame
    if kind != b"M":
        raise BundleError("damaged", "This bundle does not start with its list of contents.")
    manifest = _json(body)
    if (manifest.get("bundle_id"), manifest.get("sender"), manifest.get("facility_id")) != \
            (header.bundle_id, header.sender, header.facility_id):
        raise BundleError("damaged", "This bundle's sealed contents do not match its header; it was not imported.")
    return manifest


def _file_start(body: bytes) -> tuple[str, int]:
    data = _json(body)
    sha256, size = data.get("sha256"), data.get("size")
    try:
        from sync.protocol import MediaStatus

        MediaStatus(sha256=sha256, size=size, received=0, complete=size == 0)
    except (ValidationError, TypeError):
        raise BundleError("damaged", "A file in this bundle is described wrongly.") from None
    return sha256, size
