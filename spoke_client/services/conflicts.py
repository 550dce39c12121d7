"""Values that lost a field-by-field merge of patient demographics: listed for the user, who keeps the merged
value or takes the other one (PatientService.use_conflict_value)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from spoke_client.db.models import ConflictRow, PatientRow
from spoke_client.domain.errors import NotFound
from spoke_client.domain.model import User
from spoke_client.i18n import _
from spoke_client.services.store import Store


@dataclass(frozen=True)
class ConflictView:
    id: int
    patient_id: str
    patient_name: str
    what: str            # "Phone", "Date of birth"...
    kept: str            # as the user reads it
    other: str
    other_from: str      # "another computer" | "the hub"
    detected_at: datetime


def field_label(group: str) -> str:
    return {"name": _("Name"), "sex": _("Sex"), "birth_date": _("Date of birth"), "relative": _("Relative"),
            "phone": _("Phone"), "village": _("Village"), "address": _("Address"), "abha_number": _("ABHA number"),
            "abha_address": _("ABHA address")}.get(group, group)


def value_text(group: str, values: dict) -> str:
    if group == "birth_date" and values.get("birth_date"):
        d = date.fromisoformat(values["birth_date"]).strftime("%d-%m-%Y")
        return d + (" " + _("(approximate)") if values.get("birth_date_approximate") else "")
    if group == "relative":
        text = " ".join(x for x in (values.get("relative_relation") or "", values.get("relative_name") or "") if x)
        return text or _("(empty)")
    value = next(iter(values.values()), None)
    return str(value) if value not in (None, "") else _("(empty)")


class ConflictService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def open_count(self) -> int:
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(ConflictRow).where(ConflictRow.resolved_at.is_(None))) or 0

    def open_conflicts(self, patient_id: str | None = None) -> list[ConflictView]:
        with self.store.read() as s:
            q = select(ConflictRow, PatientRow.name).join(PatientRow, PatientRow.id == ConflictRow.entity_id).where(
                ConflictRow.resolved_at.is_(None), ConflictRow.entity == "patient")
            if patient_id:
                q = q.where(ConflictRow.entity_id == patient_id)
            out = []
            for c, name in s.execute(q.order_by(ConflictRow.detected_at, ConflictRow.id)):
                out.append(ConflictView(
                    id=c.id, patient_id=c.entity_id, patient_name=name, what=field_label(c.field),
                    kept=value_text(c.field, json.loads(c.kept_value or "{}")),
                    other=value_text(c.field, json.loads(c.lost_value or "{}")),
                    other_from=_("the hub") if c.lost_device == "hub" else _("another computer"),
                    detected_at=c.detected_at))
            return out

    def keep(self, actor: User, conflict_id: int) -> None:
        """The merged value stays; the other one remains in the record of this conflict."""
        with self.store.write(actor.id) as w:
            c = w.session.get(ConflictRow, conflict_id)
            if c is None or c.resolved_at is not None:
                raise NotFound(_("This difference was already settled."))
            c.resolved_at, c.resolved_by = w.now, actor.id
            w.audit("conflict_keep", c.entity, c.entity_id, c.field)
