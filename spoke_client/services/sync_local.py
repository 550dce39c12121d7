"""The spoke's side of sync: enrolment, the outbox (change log), quarantine, the pull inbox and its cursor."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import func, select, text, update

from spoke_client.db.models import (
    AttachmentRow,
    CaseRow,
    ChangeRow,
    ConsentRow,
    FacilityRow,
    InboxRow,
    MediaBlobRow,
    PatientRow,
    VitalsRow,
)
from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import CaseStatus
from spoke_client.domain.names import normalize_name, phonetic_key
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.files import atomic_write_bytes
from spoke_client.services.media import MediaFiles
from spoke_client.services.patients import patient_payload, search_columns, to_patient
from spoke_client.services.store import Store
from sync.engine import MediaItem, SyncEngine, SyncReport
from sync.hlc import Stamp
from sync.merge import FIELD_META, merge
from sync.protocol import Change, Op, PullPage, Rejection, hub_status_applies, set_digest
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable

HUB_URL, HUB_FACILITY, HUB_FACILITY_NAME, HUB_ALLOW_HTTP = "hub_url", "hub_facility_id", "hub_facility_name", "hub_allow_http"
HUB_CA_BUNDLE = "hub_ca_bundle"   # a CA bundle file for a hub whose certificate the system does not know
COUNTER, CURSOR, LAST_SYNC, LAST_ERROR = "hub_counter", "hub_cursor", "hub_last_sync", "hub_last_error"
LAST_CHECK, PULL_OWN = "hub_last_check", "hub_pull_own"
CHECK_EVERY = timedelta(hours=6)   # the divergence check: cheap, but it reads every change id at both ends
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
    pending_files: int
    quarantined: int
    last_sync: datetime | None
    last_error: str


@dataclass(frozen=True)
class RefusedItem:
    """A record or file the hub refused (or that could not be sent), in the user's terms."""

    kind: str          # change | file
    key: str           # change id or SHA-256, for "try again"
    what: str          # "Patient Kamla Devi", "Case of Kamla Devi", "File 'rash, left forearm'"
    reason: str
    when: datetime | None


def key_path(paths: DataPaths):
    return paths.root / "device-key.pem"


class LocalSync:
    """Outbox, Inbox and MediaBox of sync.engine over the local SQLite store and media folder."""

    def __init__(self, store: Store, files: MediaFiles | None = None) -> None:
        self.store = store
        self.files = files

    # --- media ----------------------------------------------------------------------------------
    def media_to_upload(self) -> list[MediaItem]:
        with self.store.read() as s:
            rows = s.execute(select(MediaBlobRow.sha256, MediaBlobRow.size_bytes).where(
                MediaBlobRow.present.is_(True), MediaBlobRow.uploaded_at.is_(None), MediaBlobRow.last_error == "")
                .order_by(MediaBlobRow.created_at)).all()
        return [MediaItem(r.sha256, r.size_bytes, self.files.path(r.sha256)) for r in rows]

    def media_uploaded(self, sha256: str) -> None:
        with self.store.write(None) as w:
            w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == sha256).values(uploaded_at=w.now))

    def media_failed(self, sha256: str, reason: str) -> None:
        with self.store.write(None) as w:
            w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == sha256).values(last_error=reason))
            w.audit("sync_file_refused", "media", sha256, reason)

    def media_to_fetch(self) -> list[MediaItem]:
        with self.store.read() as s:
            rows = s.execute(select(MediaBlobRow.sha256, MediaBlobRow.size_bytes)
                             .where(MediaBlobRow.present.is_(False)).order_by(MediaBlobRow.created_at)).all()
        items = [MediaItem(r.sha256, r.size_bytes, self.files.partial_path(r.sha256)) for r in rows]
        for item in items:
            item.path.parent.mkdir(parents=True, exist_ok=True)
        return items

    def media_fetched(self, item: MediaItem) -> None:
        self.files.adopt(item.sha256, item.path)
        with self.store.write(None) as w:
            # It came from the hub, so the hub has it: never uploaded back.
            w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == item.sha256)
                              .values(present=True, uploaded_at=w.now))

    def refused(self) -> list[RefusedItem]:
        """Every quarantined change and refused file, oldest first, described for the user."""
        out: list[RefusedItem] = []
        with self.store.read() as s:
            for r in s.scalars(select(ChangeRow).where(ChangeRow.rejected_at.is_not(None)).order_by(ChangeRow.seq)):
                out.append(RefusedItem("change", r.change_id, _describe(s, r.entity, r.entity_id, r.payload),
                                       r.rejected_reason or "", r.rejected_at))
            for b in s.scalars(select(MediaBlobRow).where(MediaBlobRow.last_error != "").order_by(MediaBlobRow.created_at)):
                labels = s.scalars(select(AttachmentRow.label).where(AttachmentRow.sha256 == b.sha256)).all()
                what = _("File '{label}'").format(label=labels[0]) if labels and labels[0] else _("A file")
                out.append(RefusedItem("file", b.sha256, what, b.last_error, None))
        return out

    def try_again(self, user_id: str | None, items: list[RefusedItem]) -> None:
        """Puts refused records and files back in the queue (after the hub or the file was put right)."""
        with self.store.write(user_id) as w:
            for item in items:
                if item.kind == "change":
                    w.session.execute(update(ChangeRow).where(ChangeRow.change_id == item.key)
                                      .values(rejected_at=None, rejected_reason=None))
                else:
                    w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == item.key).values(last_error=""))
                w.audit("sync_retry", item.kind, item.key, item.reason[:200])

    def pending_files(self) -> int:
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(MediaBlobRow).where(
                MediaBlobRow.present.is_(True), MediaBlobRow.uploaded_at.is_(None))) or 0

    # --- outbox ---------------------------------------------------------------------------------
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
        """Stores the page, applies what this version knows and moves the cursor, all in one transaction:
        a cut between pages loses nothing and applies nothing twice. A record whose parent has not arrived
        yet stays in the inbox and is tried again after each page."""
        with self.store.write(None) as w:
            now_ms = int(w.now.timestamp() * 1000)
            for c in page.changes:
                self.store.hlc.observe(Stamp.decode(c.hlc), now_ms)  # our next changes order after what we saw
                inserted = w.session.execute(text(
                    "INSERT OR IGNORE INTO hub_inbox(seq, change_id, entity, entity_id, version, op, hlc, device_id, "
                    "payload, received_at) VALUES (:seq, :cid, :e, :eid, :v, :op, :hlc, :dev, :p, :at)"), dict(
                    seq=c.seq, cid=str(c.change_id), e=c.entity, eid=c.entity_id, v=c.version, op=c.op.value,
                    hlc=c.hlc, dev=c.device_id, p=None if c.payload is None else _json(c.payload),
                    at=w.now.replace(tzinfo=None).isoformat(" "))).rowcount
                if inserted and self._apply_one(w, c):
                    w.session.execute(update(InboxRow).where(InboxRow.seq == c.seq).values(applied_at=w.now))
            self._retry_unapplied(w)
            row_cursor = max(page.next_cursor, self.cursor())
            self._set(w, CURSOR, str(row_cursor))
            if page.changes:
                w.audit("sync_pull", "hub", "", f"{len(page.changes)} changes up to {row_cursor}")
        return len(page.changes)

    def _retry_unapplied(self, w) -> None:
        rows = w.session.scalars(select(InboxRow).where(InboxRow.applied_at.is_(None),
                                                        InboxRow.entity.in_(sorted(RECORD_APPLIERS)))
                                 .order_by(InboxRow.seq).limit(5_000)).all()
        for row in rows:
            change = _InboxChange(row.entity, row.entity_id, row.version, row.op, row.device_id, row.payload, row.hlc)
            if self._apply_one(w, change):
                row.applied_at = w.now

    def _apply_one(self, w, c) -> bool:
        if c.device_id == HUB_DEVICE_ID:
            if c.entity == "patient" and c.payload is not None:
                return _apply_patient(self, w, c)   # the hub corrected demographics: merged like any other edit
            return self._apply_hub_case(w, c)
        # Our own changes come back only in a full resync; the appliers are idempotent, so what this PC still
        # has stays as it is and what a restore from an older copy lost comes back.
        if c.entity in ("facility", "user"):
            return True  # facility details and users stay per PC (passwords never travel)
        if c.entity == "attachment" and c.op == Op.DELETE.value:
            row = w.session.get(AttachmentRow, c.entity_id)
            if row is not None:
                w.session.delete(row)   # deleted from a draft on its own PC before anyone relied on it
            return True
        applier = RECORD_APPLIERS.get(c.entity)
        if applier is None or c.payload is None:
            return False  # not known to this version (prescriptions...): kept in the inbox
        return applier(self, w, c)

    def _apply_hub_case(self, w, c) -> bool:
        # The hub owns the consultation outcome: status and the doctor's note of a case.
        if c.entity != "case" or c.payload is None:
            return False
        row = w.session.get(CaseRow, c.entity_id)
        if row is None:
            return False
        status = c.payload.get("status")
        if status in {s.value for s in CaseStatus} and status != row.status and hub_status_applies(row.status, status):
            w.audit("hub_update", "case", row.id, f"status:{row.status}->{status}")
            row.status = status
        if "doctor_note" in c.payload:
            row.hub_note = str(c.payload["doctor_note"] or "")
        row.updated_at = w.now
        return True

    # --- divergence check -----------------------------------------------------------------------
    def local_digest(self, cursor: int):
        me = self.store.device_id
        with self.store.read() as s:
            others = s.scalars(select(InboxRow.change_id).where(InboxRow.seq <= cursor, InboxRow.seq > 0,
                                                               InboxRow.device_id != me)).yield_per(10_000)
            others_digest = set_digest(others)
            # Our own changes the hub has: those it acknowledged, and those a full resync brought back to a PC
            # restored from an older copy.
            own = s.execute(text(
                "SELECT change_id FROM change_log WHERE pushed_at IS NOT NULL AND rejected_at IS NULL "
                "UNION SELECT change_id FROM hub_inbox WHERE device_id = :me"), {"me": me}).scalars().yield_per(10_000)
            return others_digest, set_digest(own)

    def pull_own(self) -> bool:
        return self.store.get_setting(PULL_OWN) == "1"

    def prepare_resync(self, pull_again: bool, push_again: bool) -> None:
        """Before a full resync. Pull again: from the start, our own changes included (a PC restored from an
        older copy gets back what it had sent); what was pulled stays applied, and pulled records this version
        cannot apply yet keep their place under a negative number (the hub's numbering may have been reset by
        a restore). Push again: every change the hub acknowledged is offered again (it acknowledges the ones
        it has as duplicates). Unsent and refused changes are not touched."""
        with self.store.write(None) as w:
            if pull_again or push_again:
                w.session.execute(text("DELETE FROM hub_inbox WHERE applied_at IS NOT NULL AND seq > 0"))
                low, high = w.session.execute(text(
                    "SELECT min(coalesce(min(seq), 0), 0), coalesce(max(seq), 0) FROM hub_inbox")).one()
                # Below everything there, in the same order: seq - high - 1 + low.
                w.session.execute(text("UPDATE hub_inbox SET seq = seq - :high - 1 + :low WHERE seq > 0"),
                                  {"low": low, "high": high})
                self._set(w, CURSOR, "0")
                self._set(w, PULL_OWN, "1")
            if push_again:
                w.session.execute(update(ChangeRow).where(ChangeRow.pushed_at.is_not(None), ChangeRow.rejected_at.is_(None))
                                  .values(pushed_at=None))
            self._set(w, LAST_CHECK, "")   # cut before the end: the next round checks again
            w.audit("sync_resync", "hub", "", f"pull_again={pull_again} push_again={push_again}")

    def pull_done(self) -> None:
        if self.pull_own():
            self.store.set_setting(PULL_OWN, "")

    def raise_counter(self, last_seen_by_hub: int) -> None:
        """The hub saw a higher request number than ours (this PC was restored from an older copy)."""
        with self.store.write(None) as w:
            current = int(w.session.execute(text("SELECT value FROM setting WHERE key = :k"), {"k": COUNTER}).scalar() or 0)
            if last_seen_by_hub > current:
                self._set(w, COUNTER, str(last_seen_by_hub))
                w.audit("sync_counter", "hub", "", f"{current}->{last_seen_by_hub}")

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


def _describe(s, entity: str, entity_id: str, payload: dict | None) -> str:
    def patient_name(patient_id: str | None) -> str:
        row = s.get(PatientRow, patient_id) if patient_id else None
        return row.name if row else _("an unknown patient")

    p = payload or {}
    if entity == "patient":
        return _("Patient {name}").format(name=p.get("name") or patient_name(entity_id))
    if entity == "case":
        return _("Case of {name}").format(name=patient_name(p.get("patient_id")))
    if entity in ("vitals", "consent", "attachment"):
        case = s.get(CaseRow, p.get("case_id")) if p.get("case_id") else None
        name = patient_name(case.patient_id if case else None)
        return {"vitals": _("Vitals of {name}"), "consent": _("Consent of {name}"),
                "attachment": _("Attachment of {name}")}[entity].format(name=name)
    return _("A {entity} record").format(entity=entity)


@dataclass(frozen=True)
class _InboxChange:
    entity: str
    entity_id: str
    version: int
    op: str
    device_id: str
    payload: dict | None
    hlc: str = ""


def _dt(text_: str | None) -> datetime | None:
    return datetime.fromisoformat(text_) if text_ else None


def _newer(row, c) -> bool:
    return row is None or c.version > row.version


def _apply_patient(local: LocalSync, w, c) -> bool:
    """Demographics merge field by field with what this PC holds (sync.merge); a value that lost to an edit
    that had not seen it is kept as a conflict record for the user to look at."""
    row = w.session.get(PatientRow, c.entity_id)
    incoming = dict(c.payload)
    if row is None:
        merged, conflicts = incoming, []
        merged.setdefault(FIELD_META, {})
    else:
        current = patient_payload(to_patient(row), dict(row.field_hlc or {}))
        current_stamp = max((v[0] for v in (row.field_hlc or {}).values()), default="")
        merged, conflicts = merge(current, current_stamp, incoming, c.hlc)
    facility_id = w.session.scalars(select(FacilityRow.id).limit(1)).first()
    fields = dict(name=merged["name"], sex=merged["sex"], birth_date=date.fromisoformat(merged["birth_date"]),
                  birth_date_approximate=bool(merged["birth_date_approximate"]),
                  relative_name=merged.get("relative_name") or "", relative_relation=merged.get("relative_relation"),
                  phone=merged.get("phone") or "", village=merged.get("village") or "", address=merged.get("address") or "",
                  abha_number=merged.get("abha_number") or "", abha_address=merged.get("abha_address") or "",
                  field_hlc=merged[FIELD_META], updated_at=w.now)
    fields["search_names"], fields["search_village"] = search_columns(fields["name"], fields["relative_name"], fields["village"])
    if row is None:
        w.session.add(PatientRow(id=c.entity_id, facility_id=facility_id, created_at=_dt(incoming.get("created_at")) or w.now,
                                 created_by=c.device_id, version=c.version, **fields))
    else:
        for k, v in fields.items():
            setattr(row, k, v)
        row.version = max(row.version + 1, c.version)
    for conflict in conflicts:
        w.session.execute(text(
            "INSERT OR IGNORE INTO sync_conflict(entity, entity_id, field, kept_value, lost_value, lost_device, lost_hlc, "
            "detected_at) VALUES ('patient', :id, :field, :kept, :lost, :device, :hlc, :at)"), dict(
            id=c.entity_id, field=conflict.group, kept=_json(conflict.kept), lost=_json(conflict.lost),
            device=conflict.lost_device, hlc=conflict.lost_stamp, at=w.now.replace(tzinfo=None).isoformat(" ")))
        w.audit("sync_conflict", "patient", c.entity_id, conflict.group)
    keys = {phonetic_key(x) for x in normalize_name(f"{fields['name']} {fields['relative_name']} {fields['village']}").split()}
    keys = sorted(k for k in keys if len(k) >= 3)
    if keys:
        w.session.execute(text("INSERT OR IGNORE INTO search_vocab(key) VALUES (:k)"), [{"k": k} for k in keys])
    return True


def _apply_case(local: LocalSync, w, c) -> bool:
    p = c.payload
    if w.session.get(PatientRow, p["patient_id"]) is None:
        return False
    row = w.session.get(CaseRow, c.entity_id)
    if not _newer(row, c):
        return True
    fields = dict(patient_id=p["patient_id"], status=p["status"], complaints=list(p.get("complaints") or []),
                  complaint_text=p.get("complaint_text") or "", duration=p.get("duration") or "",
                  history=p.get("history") or "", examination=p.get("examination") or "",
                  pregnant=bool(p.get("pregnant")), priority=int(p.get("priority") or 0), version=c.version,
                  updated_at=_dt(p.get("updated_at")) or w.now)
    if row is None:
        w.session.add(CaseRow(id=c.entity_id, created_at=_dt(p.get("created_at")) or w.now, created_by=c.device_id, **fields))
    else:
        for k, v in fields.items():
            setattr(row, k, v)
    return True


def _apply_vitals(local: LocalSync, w, c) -> bool:
    p = c.payload
    if w.session.get(CaseRow, p["case_id"]) is None or (p.get("replaces_id") and w.session.get(VitalsRow, p["replaces_id"]) is None):
        return False
    row = w.session.get(VitalsRow, c.entity_id)
    if not _newer(row, c):
        return True
    fields = dict(case_id=p["case_id"], recorded_at=_dt(p["recorded_at"]), recorded_by=p["recorded_by"], status=p["status"],
                  replaces_id=p.get("replaces_id"), source=p.get("source") or "manual", version=c.version,
                  device_status=list(p.get("device_status") or []), measured_at=_dt(p.get("measured_at")),
                  **{k: v for k, v in (p.get("vitals") or {}).items() if k in VITALS_COLUMNS})
    if row is None:
        w.session.add(VitalsRow(id=c.entity_id, **fields))
    else:
        for k, v in fields.items():
            setattr(row, k, v)
    return True


def _apply_consent(local: LocalSync, w, c) -> bool:
    p = c.payload
    if w.session.get(CaseRow, p["case_id"]) is None:
        return False
    if w.session.get(ConsentRow, c.entity_id) is None:
        w.session.add(ConsentRow(id=c.entity_id, case_id=p["case_id"], giver=p["giver"], giver_name=p["giver_name"],
                                 giver_relation=p.get("giver_relation") or "", method=p["method"],
                                 given_at=_dt(p["given_at"]), recorded_by=p["recorded_by"], version=c.version))
    return True


def _apply_attachment(local: LocalSync, w, c) -> bool:
    p = c.payload
    if w.session.get(CaseRow, p["case_id"]) is None:
        return False
    row = w.session.get(AttachmentRow, c.entity_id)
    if not _newer(row, c):
        return True
    fields = dict(case_id=p["case_id"], kind=p["kind"], sha256=p["sha256"], mime=p["mime"], size_bytes=int(p["size_bytes"]),
                  label=p.get("label") or "", width_px=p.get("width_px"), height_px=p.get("height_px"),
                  duration_ms=p.get("duration_ms"), status=p.get("status") or "active",
                  withdrawn_reason=p.get("withdrawn_reason") or "", version=c.version)
    if row is None:
        w.session.add(AttachmentRow(id=c.entity_id, created_at=_dt(p.get("created_at")) or w.now,
                                    created_by=p.get("created_by") or c.device_id, **fields))
    else:
        for k, v in fields.items():
            setattr(row, k, v)
    if w.session.get(MediaBlobRow, p["sha256"]) is None:
        # Known, not here yet: the engine fetches it from the hub after the pull.
        present = local.files is not None and local.files.has(p["sha256"])
        w.session.add(MediaBlobRow(sha256=p["sha256"], size_bytes=int(p["size_bytes"]), mime=p["mime"], present=present,
                                   uploaded_at=w.now, last_error="", created_at=w.now))
    return True


RECORD_APPLIERS = {"patient": _apply_patient, "case": _apply_case, "vitals": _apply_vitals, "consent": _apply_consent,
                   "attachment": _apply_attachment}
VITALS_COLUMNS = {"systolic_mmhg", "diastolic_mmhg", "pulse_per_min", "respiratory_rate_per_min", "temperature_c",
                  "spo2_pct", "weight_kg", "height_cm", "glucose_mg_dl", "glucose_kind", "consciousness",
                  "on_supplemental_oxygen"}


def _json(payload: dict) -> str:
    import json

    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def enroll(store: Store, paths: DataPaths, hub_url: str, code: str, device_name: str, *, allow_http: bool = False,
           ca_bundle: str | None = None) -> str:
    """Generates this PC's Ed25519 key, registers it with the hub under the one-time code, keeps the key."""
    if store.get_setting(HUB_URL):
        raise EnrolmentFailed(_("This computer is already enrolled with {hub}.").format(hub=store.get_setting(HUB_URL)))
    try:
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise ValueError(_("The CA bundle file {path} does not exist.").format(path=ca_bundle))
        client = HubClient(hub_url, allow_plain_http=allow_http, ca_bundle=ca_bundle)
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
                     (HUB_FACILITY_NAME, result.facility_name), (HUB_ALLOW_HTTP, "1" if allow_http else ""),
                     (HUB_CA_BUNDLE, os.path.abspath(ca_bundle) if ca_bundle else "")):
            LocalSync._set(w, k, v)
        w.audit("enroll", "hub", result.facility_id, client.base_url)
    return result.facility_name


def make_engine(store: Store, paths: DataPaths) -> tuple[SyncEngine, LocalSync]:
    url = store.get_setting(HUB_URL)
    if not url or not key_path(paths).exists():
        raise NotEnrolled(_("This computer is not enrolled with a hub yet: run 'spoke-client enroll --hub URL --code CODE'."))
    key = load_pem_private_key(key_path(paths).read_bytes(), password=None)
    local = LocalSync(store, MediaFiles(paths.media))
    client = HubClient(url, device_id=store.device_id, key=key, next_counter=local.next_counter,
                       allow_plain_http=bool(store.get_setting(HUB_ALLOW_HTTP)), raise_counter=local.raise_counter,
                       ca_bundle=store.get_setting(HUB_CA_BUNDLE) or None)
    return SyncEngine(client, local, local, local), local


def sync_once(store: Store, paths: DataPaths, progress=None, cancel=None, verify: bool | None = None) -> SyncReport:
    """One round. verify: compare with the hub and resync if they differ (None: when the last check is older
    than CHECK_EVERY)."""
    engine, local = make_engine(store, paths)
    if verify is None:
        last = store.get_setting(LAST_CHECK)
        verify = not last or datetime.fromisoformat(last) < store.clock() - CHECK_EVERY
    report = engine.run_once(progress, cancel, verify=verify)
    with store.write(None) as w:
        if report.checked and report.error is None:
            LocalSync._set(w, LAST_CHECK, w.now.isoformat())
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
                      pending_cases=local.pending_cases(), pending_files=local.pending_files(), quarantined=len(local.refused()), last_sync=datetime.fromisoformat(last) if last else None,
                      last_error=store.get_setting(LAST_ERROR, "") or "")
