"""The spoke's outbox: the change log as sync sends it, what the hub refused, and a clock put right.

Only what the hub acknowledged is marked sent. A change the hub refuses for its content is quarantined with
the hub's reason and no longer blocks the queue; one refused because this PC's clock was far ahead stays
queued, and is stamped again once the date is right (nobody has seen it yet, so that is safe).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import bindparam, func, select, text, update

from spoke_client.db.models import ChangeRow, PatientRow
from spoke_client.services.store import Store
from sync.hlc import MAX_AHEAD_MS, Stamp
from sync.merge import FIELD_META
from sync.protocol import REJECT_CLOCK_AHEAD, Change, Op, Rejection

log = logging.getLogger(__name__)

_CHUNK = 500


class Outbox:
    """The Outbox of sync.engine over the local change log."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def unsent(self, limit: int) -> list[Change]:
        return self.unsent_page(limit, None)[0]

    def unsent_page(self, limit: int, after: int | None) -> tuple[list[Change], int | None]:
        """Unsent changes in log order after a position (so the engine can read the next batch while the
        current one is in flight), and the position of the last one."""
        # Columns, not ORM objects, and no second validation of our own rows: the hub validates every message.
        c = ChangeRow.__table__.c
        q = (select(c.seq, c.change_id, c.entity, c.entity_id, c.version, c.op, c.hlc, c.device_id, c.payload)
             .where(c.pushed_at.is_(None), c.rejected_at.is_(None)).order_by(c.seq).limit(limit))
        if after is not None:
            q = q.where(c.seq > after)
        with self.store.read() as s:
            rows = s.execute(q).all()
        changes = [Change.model_construct(change_id=uuid.UUID(r.change_id), entity=r.entity, entity_id=r.entity_id,
                                          version=r.version, op=Op(r.op), hlc=r.hlc, device_id=r.device_id,
                                          payload=None if r.op == Op.DELETE.value else r.payload) for r in rows]
        return changes, (rows[-1].seq if rows else after)

    def mark_sent(self, change_ids: list[str]) -> None:
        with self.store.write(None) as w:
            for i in range(0, len(change_ids), _CHUNK):
                w.session.execute(update(ChangeRow).where(ChangeRow.change_id.in_(change_ids[i:i + _CHUNK]))
                                  .values(pushed_at=w.now))

    def acknowledge(self, change_ids: list[str]) -> int:
        """Marks sent those of these changes still waiting (a return bundle's acknowledgements); how many."""
        done = 0
        with self.store.write(None) as w:
            for i in range(0, len(change_ids), _CHUNK):
                done += w.session.execute(update(ChangeRow).where(ChangeRow.change_id.in_(change_ids[i:i + _CHUNK]),
                                                                  ChangeRow.pushed_at.is_(None))
                                          .values(pushed_at=w.now, rejected_at=None, rejected_reason=None)).rowcount
        return done

    def quarantine(self, rejections: list[Rejection]) -> None:
        """Holds refused changes aside with the hub's reason; those refused for this PC's clock stay queued."""
        held = [r for r in rejections if r.code != REJECT_CLOCK_AHEAD]
        if not held:
            return
        with self.store.write(None) as w:
            w.session.execute(update(ChangeRow.__table__).where(ChangeRow.__table__.c.change_id == bindparam("cid"))
                              .values(rejected_at=w.now, rejected_reason=bindparam("reason")),
                              [{"cid": str(r.change_id), "reason": r.reason} for r in held])
            for r in held:
                w.audit("sync_quarantine", "change", str(r.change_id), r.reason)
        log.warning("the hub refused %d changes (quarantined with its reasons)", len(held))

    def pending(self) -> int:
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(ChangeRow)
                            .where(ChangeRow.pushed_at.is_(None), ChangeRow.rejected_at.is_(None))) or 0

    def pending_cases(self) -> int:
        with self.store.read() as s:
            return s.scalar(select(func.count(func.distinct(ChangeRow.entity_id))).where(
                ChangeRow.entity == "case", ChangeRow.pushed_at.is_(None), ChangeRow.rejected_at.is_(None))) or 0

    def quarantined(self) -> list[tuple[str, str, str]]:
        with self.store.read() as s:
            return [(r.entity, r.entity_id, r.rejected_reason or "") for r in s.scalars(
                select(ChangeRow).where(ChangeRow.rejected_at.is_not(None)).order_by(ChangeRow.seq))]

    def restamp_ahead(self) -> int:
        """After this PC's date was set far ahead and then corrected: its unsent changes still carry stamps of
        the wrong date, which the hub refuses, and its clock would go on from there. Stamps them again from the
        corrected clock, in their order (field stamps of patients too), and returns how many. Sent changes are
        never touched."""
        with self.store.write(None) as w:
            now_ms = int(w.now.timestamp() * 1000)
            limit = f"{now_ms + MAX_AHEAD_MS:015d}-99999-~"    # every stamp above sorts after this text
            rows = w.session.execute(select(ChangeRow.seq, ChangeRow.hlc, ChangeRow.entity, ChangeRow.entity_id,
                                            ChangeRow.payload)
                                     .where(ChangeRow.hlc > limit, ChangeRow.pushed_at.is_(None))
                                     .order_by(ChangeRow.seq)).all()
            if not rows:
                return 0
            sane = w.session.execute(text(
                "SELECT max(h) FROM (SELECT max(hlc) AS h FROM change_log WHERE hlc <= :l "
                "UNION ALL SELECT max(hlc) FROM hub_inbox WHERE hlc <= :l)"), {"l": limit}).scalar()
            self.store.hlc.reset(Stamp.decode(sane) if sane else Stamp(0, 0, self.store.device_id))
            renamed: dict[str, str] = {}
            for r in rows:
                renamed[r.hlc] = self.store.hlc.now(now_ms).encode()
            for r in rows:
                payload = r.payload
                if r.entity == "patient" and payload and payload.get(FIELD_META):
                    payload = dict(payload, **{FIELD_META: _renamed(payload[FIELD_META], renamed)})
                w.session.execute(update(ChangeRow).where(ChangeRow.seq == r.seq)
                                  .values(hlc=renamed[r.hlc], payload=payload))
            for patient in w.session.scalars(select(PatientRow).where(
                    PatientRow.id.in_({r.entity_id for r in rows if r.entity == "patient"}))):
                patient.field_hlc = _renamed(patient.field_hlc or {}, renamed)
            w.audit("sync_restamp", "change_log", "", f"{len(rows)} unsent changes stamped again (clock corrected)")
        log.warning("stamped %d unsent changes again: this PC's clock had been far ahead", len(rows))
        return len(rows)


def _renamed(field_stamps: dict, renamed: dict[str, str]) -> dict:
    return {group: [renamed.get(v, v) for v in pair] for group, pair in field_stamps.items()}
