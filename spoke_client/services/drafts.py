"""Form drafts saved as the user types: local working state, so not in the change log and never synced."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from spoke_client.db.models import DraftRow
from spoke_client.services.store import Store


class DraftService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, user_id: str | None, key: str, kind: str, content: dict[str, Any]) -> None:
        with self.store.write(user_id) as w:
            row = w.session.get(DraftRow, key)
            if row is None:
                w.session.add(DraftRow(key=key, kind=kind, content=content, user_id=user_id, updated_at=w.now))
            else:
                row.content = content
                row.updated_at = w.now

    def load(self, key: str) -> dict[str, Any] | None:
        with self.store.read() as s:
            row = s.get(DraftRow, key)
            return dict(row.content) if row else None

    def discard(self, key: str) -> None:
        with self.store.write(None) as w:
            w.session.execute(delete(DraftRow).where(DraftRow.key == key))
