"""The hub's file store: content-addressed blobs, each facility's resumable uploads, and their expiry.

A chunk is on disk (fsync) before it is confirmed; the last chunk is confirmed only once the whole file's SHA-256
matches. An upload that stops coming is forgotten after UPLOAD_TTL, its partial bytes deleted.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from sync.files import fsync_dir, sha256_file
from sync.hub.auth import Device, utcnow
from sync.hub.errors import HubError
from sync.hub.models import HubBlob, HubMediaUpload
from sync.protocol import MAX_CHUNK_BYTES, MAX_MEDIA_BYTES, SHA256_PATTERN, MediaStatus

log = logging.getLogger(__name__)

# A spoke on a 2G link may take days to send a large file, resuming each time; a week without a single chunk
# means it is not coming (the PC was replaced, or the file withdrawn).
UPLOAD_TTL = timedelta(days=7)
EXPIRE_EVERY = timedelta(hours=1)


class HubMedia:
    """Mixed into sync.hub.service.Hub (needs .session, .media_dir, .busy_guard and .expire_bundle_uploads)."""

    media_dir: Path
    _last_expiry: datetime | None = None

    def blob_path(self, sha256: str) -> Path:
        return self.media_dir / "blobs" / sha256[:2] / sha256

    def _partial_path(self, facility_id: str, sha256: str) -> Path:
        return self.media_dir / "partial" / facility_id / sha256

    def media_status(self, device: Device, sha256: str, size: int) -> MediaStatus:
        """How much of the file this facility has sent (nothing is created by asking)."""
        _check_media(sha256, size)
        with self.session() as s:
            up = s.get(HubMediaUpload, (device.facility_id, sha256))
            if up is None:
                return MediaStatus(sha256=sha256, size=size, received=0, complete=False)
            if up.size != size:
                if up.completed_at is not None:
                    raise HubError(409, "size_mismatch", "The hub holds this file with another size; it cannot be the same file.")
                return MediaStatus(sha256=sha256, size=size, received=0, complete=False)  # restarted at the first chunk
            return self._status(up, device.facility_id)

    def _status(self, up: HubMediaUpload, facility_id: str) -> MediaStatus:
        received = up.size if up.completed_at is not None else min(up.received, _file_size(self._partial_path(facility_id, up.sha256)))
        return MediaStatus(sha256=up.sha256, size=up.size, received=received, complete=up.completed_at is not None)

    def media_put(self, device: Device, sha256: str, offset: int, size: int, data: bytes) -> MediaStatus:
        with self.busy_guard():
            status = self._media_put(device, sha256, offset, size, data)
        self.expire_uploads_now_and_then()
        return status

    def _media_put(self, device: Device, sha256: str, offset: int, size: int, data: bytes) -> MediaStatus:
        """Appends one chunk at `offset`, which must be exactly the bytes already confirmed."""
        _check_media(sha256, size)
        if len(data) > MAX_CHUNK_BYTES:
            raise HubError(413, "chunk_too_large", f"A chunk may be at most {MAX_CHUNK_BYTES} bytes.")
        if offset < 0 or offset + len(data) > size or (not data and size):
            raise HubError(400, "bad_range", "This chunk does not fit inside the file.")
        damaged = False
        with self.session.begin() as s:
            key = (device.facility_id, sha256)
            up = s.get(HubMediaUpload, key, with_for_update=True)
            if up is None:
                up = HubMediaUpload(facility_id=device.facility_id, sha256=sha256, size=size, received=0,
                                    completed_at=None, updated_at=utcnow())
                s.add(up)
                s.flush()
            if up.completed_at is not None:
                if up.size != size:
                    raise HubError(409, "size_mismatch", "The hub holds this file with another size; it cannot be the same file.")
                return self._status(up, device.facility_id)   # a resent last chunk after a lost answer
            partial = self._partial_path(device.facility_id, sha256)
            if up.size != size:
                up.size, up.received = size, 0    # a different size under the same hash: start again
            up.received = min(up.received, _file_size(partial))  # a hub crash may have lost the file's tail
            if offset != up.received:
                raise HubError(409, "wrong_offset", f"The hub has {up.received} bytes of this file; send from there.")
            _write_at(partial, offset, data)
            up.received, up.updated_at = offset + len(data), utcnow()
            if up.received == size:
                if sha256_file(partial) != sha256:
                    partial.unlink(missing_ok=True)
                    up.received, damaged = 0, True
                else:
                    blob = self.blob_path(sha256)
                    blob.parent.mkdir(parents=True, exist_ok=True)
                    if blob.exists():
                        partial.unlink()
                    else:
                        os.replace(partial, blob)
                        fsync_dir(blob.parent)
                    if s.get(HubBlob, sha256) is None:
                        s.add(HubBlob(sha256=sha256, size=size, stored_at=utcnow()))
                    up.completed_at = utcnow()
            status = self._status(up, device.facility_id)
        if damaged:
            log.warning("an upload of facility %s arrived damaged (checksum mismatch)", device.facility_id)
            raise HubError(422, "damaged_upload", "The file arrived damaged (its checksum does not match); it will be sent again.")
        return status

    def media_file(self, device: Device, sha256: str) -> tuple[Path, int]:
        """A file this device's facility uploaded in full (another facility's files stay invisible)."""
        if not re.fullmatch(SHA256_PATTERN, sha256):
            raise HubError(400, "bad_hash", "A file is named by its SHA-256 in lower-case hex.")
        with self.session() as s:
            up = s.get(HubMediaUpload, (device.facility_id, sha256))
            if up is None or up.completed_at is None or not self.blob_path(sha256).exists():
                raise HubError(404, "no_file", "The hub does not have this file (yet).")
            return self.blob_path(sha256), up.size

    # --- expiry ---------------------------------------------------------------------------------------------
    def expire_uploads(self, older_than: timedelta = UPLOAD_TTL, now: datetime | None = None) -> int:
        """Forgets uploads that have not received a chunk for `older_than`, deleting their partial bytes; a
        spoke that comes back later starts that file again. Returns how many were forgotten."""
        cutoff = (now or utcnow()) - older_than
        with self.session.begin() as s:
            stale = s.scalars(select(HubMediaUpload).where(HubMediaUpload.completed_at.is_(None),
                                                          HubMediaUpload.updated_at < cutoff)
                              .with_for_update(skip_locked=True).limit(1000)).all()
            for up in stale:
                self._partial_path(up.facility_id, up.sha256).unlink(missing_ok=True)
                s.delete(up)
        if stale:
            log.info("forgot %d unfinished uploads older than %s", len(stale), older_than)
        return len(stale)

    def expire_uploads_now_and_then(self) -> None:
        now = datetime.now(timezone.utc)
        if self._last_expiry is not None and now - self._last_expiry < EXPIRE_EVERY:
            return
        self._last_expiry = now
        try:
            self.expire_uploads(now=now)
            self.expire_bundle_uploads(now=now)   # relayed bundles whose parts stopped coming (sync.hub.bundles)
        except Exception:  # noqa: BLE001 - housekeeping must never fail an upload
            log.exception("expiring unfinished uploads failed")


def _check_media(sha256: str, size: int) -> None:
    if not re.fullmatch(SHA256_PATTERN, sha256):
        raise HubError(400, "bad_hash", "A file is named by its SHA-256 in lower-case hex.")
    if not 0 <= size <= MAX_MEDIA_BYTES:
        raise HubError(413, "file_too_large", f"A file may be at most {MAX_MEDIA_BYTES // (1024 * 1024)} MB.")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write_at(path: Path, offset: int, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.seek(offset)
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())

