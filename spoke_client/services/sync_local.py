"""The spoke's side of sync: enrolment, the outbox (change log), quarantine, the pull inbox and its cursor."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import func, select, text, update

from spoke_client.db.models import CaseRow, ChangeRow, InboxRow
from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import CaseStatus
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.files import atomic_write_bytes
from spoke_client.services.store import Store
from sync.engine import SyncEngine, SyncReport
from sync.protocol import Change, Op, PullPage, Rejection
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable

HUB_URL, HUB_FACILITY, HUB_FACILITY_NAME, HUB_ALLOW_HTTP = "hub_url", "hub_facility_id", "hub_facility_name", "hub_allow_http"
COUNTER, CURSOR, LAST_SYNC, LAST_ERROR = "hub_counter", "hub_cursor", "hub_last_sync", "hub_last_error"
HUB_DEVICE_ID = "hub"
_CHUNK = 500


class NotEnrolled(SpokeError):
    pass


class EnrolmentFailed(SpokeError):
    pass


@dataclass(frozen=True)
class SyncStatus:
    enrolled: bool
    hub_url: str
    facility_name: str
    pending: int
    pending_cases: int
    quarantined: int
    last_sync: datetime | None
    last_error: str


def key_path(paths: DataPaths):
    return paths.root / "device-key.pem"


class LocalSync:
    """Outbox and Inbox of sync.engine over the local SQLite store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- outbox ---------------------------------------------------------------------------------
    def unsent(self, limit: int) -> list[Change]:
        # Columns, not ORM objects, and no second validation of our own rows: the hub validates every message.
        c = ChangeRow.__table__.c
        with self.store.read() as s:
            rows = s.execute(select(c.change_id, c.entity, c.entity_id, c.version, c.op, c.hlc, c.device_id, c.payload)
                             .where(c.pushed_at.is_(None), c.rejected_at.is_(None)).order_by(c.seq).limit(limit))
            return [Change.model_construct(change_id=uuid.UUID(r.change_id), entity=r.entity, entity_id=r.entity_id,
                                           version=r.version, op=Op(r.op), hlc=r.hlc, device_id=r.device_id,
                                           payload=None if r.op == Op.DELETE.value else r.payload) for r in rows]

    def mark_sent(self, change_ids: list[str]) -> None:
        with self.store.write(None) as w:
            for i in range(0, len(change_ids), _CHUNK):
                w.session.execute(update(ChangeRow).where(ChangeRow.change_id.in_(change_ids[i:i + _CHUNK]))
                                  .values(pushed_at=w.now))

    def quarantine(self, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        with self.store.write(None) as w:
            for r in rejections:
                w.session.execute(update(ChangeRow).where(ChangeRow.change_id == str(r.change_id))
                                  .values(rejected_at=w.now, rejected_reason=r.reason))
                w.audit("sync_quarantine", "change", str(r.change_id), r.reason)

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

    # --- inbox ----------------------------------------------------------------------------------
    def cursor(self) -> int:
        return int(self.store.get_setting(CURSOR, "0") or 0)

    def apply(self, page: PullPage) -> int:
        """Stores the page, applies what this version knows (the hub's case updates) and moves the cursor,
        all in one transaction: a cut between pages loses nothing and applies nothing twice."""
        with self.store.write(None) as w:
            for c in page.changes:
                inserted = w.session.execute(text(
                    "INSERT OR IGNORE INTO hub_inbox(seq, change_id, entity, entity_id, version, op, hlc, device_id, "
                    "payload, received_at) VALUES (:seq, :cid, :e, :eid, :v, :op, :hlc, :dev, :p, :at)"), dict(
                    seq=c.seq, cid=str(c.change_id), e=c.entity, eid=c.entity_id, v=c.version, op=c.op.value,
                    hlc=c.hlc, dev=c.device_id, p=None if c.payload is None else _json(c.payload),
                    at=w.now.replace(tzinfo=None).isoformat(" "))).rowcount
                if inserted and self._apply_one(w, c):
                    w.session.execute(update(InboxRow).where(InboxRow.seq == c.seq).values(applied_at=w.now))
            row_cursor = max(page.next_cursor, self.cursor())
            self._set(w, CURSOR, str(row_cursor))
            if page.changes:
                w.audit("sync_pull", "hub", "", f"{len(page.changes)} changes up to {row_cursor}")
        return len(page.changes)

    def _apply_one(self, w, c) -> bool:
        # The hub owns the consultation outcome: status and the doctor's note of a case. Other kinds of
        # pulled records (other PCs of the facility, prescriptions) stay in the inbox for a later version.
        if c.entity != "case" or c.device_id != HUB_DEVICE_ID or c.payload is None:
            return False
        row = w.session.get(CaseRow, c.entity_id)
        if row is None:
            return False
        status = c.payload.get("status")
        if status in {s.value for s in CaseStatus} and status != row.status:
            w.audit("hub_update", "case", row.id, f"status:{row.status}->{status}")
            row.status = status
        if "doctor_note" in c.payload:
            row.hub_note = str(c.payload["doctor_note"] or "")
        row.updated_at = w.now
        return True

    # --- settings -------------------------------------------------------------------------------
    @staticmethod
    def _set(w, key: str, value: str) -> None:
        w.session.execute(text("INSERT INTO setting(key, value) VALUES (:k, :v) "
                               "ON CONFLICT(key) DO UPDATE SET value = excluded.value"), {"k": key, "v": value})

    def next_counter(self) -> int:
        """Each signed request takes the next number; kept durably so a restart never reuses one."""
        with self.store.write(None) as w:
            value = int(w.session.execute(text("SELECT value FROM setting WHERE key = :k"), {"k": COUNTER}).scalar() or 0) + 1
            self._set(w, COUNTER, str(value))
            return value


def _json(payload: dict) -> str:
    import json

    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def enroll(store: Store, paths: DataPaths, hub_url: str, code: str, device_name: str, *, allow_http: bool = False) -> str:
    """Generates this PC's Ed25519 key, registers it with the hub under the one-time code, keeps the key."""
    if store.get_setting(HUB_URL):
        raise EnrolmentFailed(_("This computer is already enrolled with {hub}.").format(hub=store.get_setting(HUB_URL)))
    try:
        client = HubClient(hub_url, allow_plain_http=allow_http)
    except ValueError as exc:
        raise EnrolmentFailed(str(exc)) from exc
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    pending = key_path(paths).with_suffix(".pending")
    atomic_write_bytes(pending, pem)
    os.chmod(pending, 0o600)
    try:
        result = client.enroll(code, key, store.device_id, device_name)
    except HubRefused as exc:
        pending.unlink(missing_ok=True)
        raise EnrolmentFailed(exc.message) from exc
    except (HubUnreachable, HubGarbage) as exc:
        pending.unlink(missing_ok=True)
        raise EnrolmentFailed(_("The hub could not be reached: {e}").format(e=exc)) from exc
    os.replace(pending, key_path(paths))
    with store.write(None) as w:
        for k, v in ((HUB_URL, client.base_url), (HUB_FACILITY, result.facility_id),
                     (HUB_FACILITY_NAME, result.facility_name), (HUB_ALLOW_HTTP, "1" if allow_http else "")):
            LocalSync._set(w, k, v)
        w.audit("enroll", "hub", result.facility_id, client.base_url)
    return result.facility_name


def make_engine(store: Store, paths: DataPaths) -> tuple[SyncEngine, LocalSync]:
    url = store.get_setting(HUB_URL)
    if not url or not key_path(paths).exists():
        raise NotEnrolled(_("This computer is not enrolled with a hub yet: run 'spoke-client enroll --hub URL --code CODE'."))
    key = load_pem_private_key(key_path(paths).read_bytes(), password=None)
    local = LocalSync(store)
    client = HubClient(url, device_id=store.device_id, key=key, next_counter=local.next_counter,
                       allow_plain_http=bool(store.get_setting(HUB_ALLOW_HTTP)))
    return SyncEngine(client, local, local), local


def sync_once(store: Store, paths: DataPaths, progress=None, cancel=None) -> SyncReport:
    engine, local = make_engine(store, paths)
    report = engine.run_once(progress, cancel)
    with store.write(None) as w:
        if report.error is None:
            LocalSync._set(w, LAST_SYNC, w.now.isoformat())
        LocalSync._set(w, LAST_ERROR, report.error or "")
        w.audit("sync", "hub", "", f"pushed {report.pushed}, pulled {report.pulled}, error {report.error_kind or '-'}")
    return report


def sync_status(store: Store) -> SyncStatus:
    local = LocalSync(store)
    last = store.get_setting(LAST_SYNC)
    return SyncStatus(enrolled=bool(store.get_setting(HUB_URL)), hub_url=store.get_setting(HUB_URL, "") or "",
                      facility_name=store.get_setting(HUB_FACILITY_NAME, "") or "", pending=local.pending(),
                      pending_cases=local.pending_cases(), quarantined=len(local.quarantined()), last_sync=datetime.fromisoformat(last) if last else None,
                      last_error=store.get_setting(LAST_ERROR, "") or "")
