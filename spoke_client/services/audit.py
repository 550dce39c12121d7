"""Reading the append-only audit trail (writing happens inside every service transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from spoke_client.db.models import AuditRow
from spoke_client.domain.errors import NotAllowed
from spoke_client.domain.model import Role, User
from spoke_client.i18n import _
from spoke_client.services.store import Store


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user_id: str | None
    action: str
    entity: str
    entity_id: str
    detail: str


class AuditService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, actor: User, action: str, entity: str = "", entity_id: str = "", detail: str = "") -> None:
        """For events that write nothing else, such as printing a document."""
        with self.store.write(actor.id) as w:
            w.audit(action, entity, entity_id, detail)

    def entries(self, actor: User, entity: str | None = None, entity_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        if actor.role != Role.ADMIN:
            raise NotAllowed(_("Only an administrator can read the audit trail."))
        q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        if entity:
            q = q.where(AuditRow.entity == entity)
        if entity_id:
            q = q.where(AuditRow.entity_id == entity_id)
        with self.store.read() as s:
            return [AuditEntry(r.at, r.user_id, r.action, r.entity, r.entity_id, r.detail) for r in s.scalars(q)]
