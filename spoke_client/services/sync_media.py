"""The spoke's media box: files to upload to the hub, and files other PCs of the facility made, to fetch."""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update

from spoke_client.db.models import MediaBlobRow
from spoke_client.services.media import MediaFiles
from spoke_client.services.store import Store
from sync.engine import MediaItem

log = logging.getLogger(__name__)


class MediaBox:
    """The MediaBox of sync.engine over the media folder and its table."""

    def __init__(self, store: Store, files: MediaFiles) -> None:
        self.store = store
        self.files = files

    def media_to_upload(self) -> list[MediaItem]:
        with self.store.read() as s:
            rows = s.execute(select(MediaBlobRow.sha256, MediaBlobRow.size_bytes).where(
                MediaBlobRow.present.is_(True), MediaBlobRow.uploaded_at.is_(None), MediaBlobRow.last_error == "")
                .order_by(MediaBlobRow.created_at)).all()
        return [MediaItem(r.sha256, r.size_bytes, self.files.path(r.sha256), self.files.opener(r.sha256)) for r in rows]

    def media_uploaded(self, sha256: str) -> None:
        with self.store.write(None) as w:
            w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == sha256).values(uploaded_at=w.now))

    def media_failed(self, sha256: str, reason: str) -> None:
        log.warning("file %s… not sent: %s", sha256[:12], reason)
        with self.store.write(None) as w:
            w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == sha256).values(last_error=reason))
            w.audit("sync_file_refused", "media", sha256, reason)

    def media_to_fetch(self) -> list[MediaItem]:
        with self.store.read() as s:
            rows = s.execute(select(MediaBlobRow.sha256, MediaBlobRow.size_bytes)
                             .where(MediaBlobRow.present.is_(False)).order_by(MediaBlobRow.created_at)).all()
        return [MediaItem(r.sha256, r.size_bytes, self.files.partial_path(r.sha256), partial=self.files.partial(r.sha256))
                for r in rows]

    def media_fetched(self, item: MediaItem) -> None:
        self.files.adopt(item.sha256, item.partial or item.path)
        with self.store.write(None) as w:
            # It came from the hub, so the hub has it: never uploaded back.
            w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == item.sha256)
                              .values(present=True, uploaded_at=w.now))

    def pending_files(self) -> int:
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(MediaBlobRow).where(
                MediaBlobRow.present.is_(True), MediaBlobRow.uploaded_at.is_(None))) or 0
