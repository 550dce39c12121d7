"""What the hub does, independent of HTTP: enrolment, request authentication, exactly-once push, paged pull."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ARRAY, JSON, Engine, String, any_, cast, create_engine, event, func, insert, literal, literal_column, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from sync.files import fsync_dir as _fsync_dir, sha256_file as _sha256_file
from sync.hlc import HybridLogicalClock, Stamp
from sync.merge import FIELD_META, PATIENT_GROUPS, changed_groups, merge, stamp_edit
from sync.hub.models import HubBlob, HubChangeRow, HubDevice, HubEnrollCode, HubFacility, HubMediaUpload, HubRecord
from sync.protocol import (
    ENTITIES,
    HUB_OWNED_CASE_FIELDS,
    MAX_CHUNK_BYTES,
    MAX_MEDIA_BYTES,
    SHA256_PATTERN,
    Digest,
    MediaStatus,
    Change,
    EnrollRequest,
    EnrollResult,
    HubChange,
    Op,
    PullPage,
    PushBatch,
    PushResult,
    Rejection,
    merge_case_status,
    set_digest,
    signing_text,
    unb64,
)

HUB_DEVICE_ID = "hub"
ENROLL_CODE_TTL = timedelta(hours=24)
MAX_PULL_PAGE = 2_000


class HubError(Exception):
    """An error with an HTTP status, a machine code and a sentence for the spoke's user."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after
        self.headers = headers or {}


BUSY_RETRY_AFTER_S = 30


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def make_hub_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", "busy_timeout=30000"):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # one writer at a time, and seq order is commit order

        return engine
    # hide_parameters: an error's message (so the log) never quotes a payload, which holds patient data.
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


@dataclass(frozen=True)
class Device:
    id: str
    facility_id: str


def default_media_dir(engine: Engine) -> Path:
    """Next to a SQLite file; in the per-user data folder for a server database."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        return Path(database).resolve().parent / "media"
    import platformdirs

    return Path(platformdirs.user_data_dir("SpokeHub", "Spoke")) / "media"


class Hub:
    def __init__(self, engine: Engine, media_dir: Path | None = None) -> None:
        self.engine = engine
        self.media_dir = Path(media_dir) if media_dir else default_media_dir(engine)
        self.session = sessionmaker(engine, expire_on_commit=False)
        self.postgres = engine.dialect.name == "postgresql"
        self.hlc = HybridLogicalClock(HUB_DEVICE_ID)
        self._lock = threading.Lock()
        # Load shedding: beyond this many pushes and uploads at once, a spoke is told to come back later
        # (429 with Retry-After) instead of queueing on the database until its link times out.
        self.max_concurrent_writes = 32
        self._writes = 0
        self._writes_lock = threading.Lock()

    def create_schema(self) -> None:
        """Brings the database to the current schema by the hub's Alembic migrations."""
        from sync.hub.migrate import upgrade

        upgrade(self.engine)

    # --- facilities and enrolment ---------------------------------------------------------------
    def create_facility(self, name: str, hwc_id: str) -> str:
        with self.session.begin() as s:
            existing = s.scalars(select(HubFacility).where(HubFacility.hwc_id == hwc_id)).first()
            if existing:
                return existing.id
            fid = str(uuid.uuid4())
            s.add(HubFacility(id=fid, name=name, hwc_id=hwc_id, created_at=utcnow()))
            return fid

    def enroll_code(self, facility_id: str) -> str:
        code = "-".join(secrets.token_hex(2).upper() for _ in range(3))  # e.g. 9F3A-11C2-7B0E, read over the phone
        with self.session.begin() as s:
            if s.get(HubFacility, facility_id) is None:
                raise HubError(404, "no_facility", "No such facility on this hub.")
            s.add(HubEnrollCode(code_hash=_hash_code(code), facility_id=facility_id,
                                expires_at=utcnow() + ENROLL_CODE_TTL, used_at=None))
        return code

    def enroll(self, req: EnrollRequest) -> EnrollResult:
        try:
            key = unb64(req.public_key)
            Ed25519PublicKey.from_public_bytes(key)
        except Exception as exc:
            raise HubError(400, "bad_key", "The device's public key is not an Ed25519 key.") from exc
        with self.session.begin() as s:
            row = s.get(HubEnrollCode, _hash_code(req.code), with_for_update=True)
            if row is None or row.used_at is not None or _aware(row.expires_at) < utcnow():
                raise HubError(403, "bad_code", "This enrolment code is wrong, used or expired; ask the hub for a new one.")
            if s.scalars(select(HubDevice).where(HubDevice.public_key == req.public_key)).first() or \
                    s.get(HubDevice, req.device_id) is not None:
                raise HubError(409, "already_enrolled", "This device is already enrolled with the hub.")
            device_id = req.device_id
            s.add(HubDevice(id=device_id, facility_id=row.facility_id, name=req.device_name, public_key=req.public_key,
                            last_counter=0, enrolled_at=utcnow(), revoked_at=None, revoked_reason=""))
            row.used_at, row.used_by = utcnow(), device_id
            facility = s.get(HubFacility, row.facility_id)
            return EnrollResult(device_id=device_id, facility_id=facility.id, facility_name=facility.name)

    def revoke(self, device_id: str, reason: str = "") -> None:
        with self.session.begin() as s:
            device = s.get(HubDevice, device_id)
            if device is None:
                raise HubError(404, "no_device", "No such device.")
            device.revoked_at, device.revoked_reason = utcnow(), reason

    def authenticate(self, method: str, path_and_query: str, headers: dict[str, str], body: bytes) -> Device:
        device_id, counter_text, signature = (headers.get(h.lower(), "") for h in ("Spoke-Device", "Spoke-Counter", "Spoke-Signature"))
        if not (device_id and counter_text.isdigit() and signature):
            raise HubError(401, "unsigned", "This request is not signed by an enrolled device.")
        counter = int(counter_text)
        with self.session.begin() as s:
            device = s.get(HubDevice, device_id, with_for_update=True)
            if device is None:
                raise HubError(401, "unknown_device", "This device is not enrolled with the hub.")
            if device.revoked_at is not None:
                when = _aware(device.revoked_at).strftime("%d %b %Y")
                raise HubError(403, "revoked", f"The hub refused this device: it was revoked on {when}."
                                               + (f" ({device.revoked_reason})" if device.revoked_reason else ""))
            try:
                Ed25519PublicKey.from_public_bytes(unb64(device.public_key)).verify(
                    unb64(signature), signing_text(method, path_and_query, counter, body))
            except (InvalidSignature, ValueError) as exc:
                raise HubError(401, "bad_signature", "The request's signature does not match this device.") from exc
            if counter <= device.last_counter:
                # Validly signed, so it is the device itself: a replay, or a PC restored from an older copy whose
                # counter went back. Telling it the last number seen lets it continue above (a replay gains nothing).
                raise HubError(409, "replayed", "This request was already received (replayed counter).",
                               headers={"Spoke-Counter-Last": str(device.last_counter)})
            device.last_counter = counter
            return Device(device.id, device.facility_id)

    # --- push -----------------------------------------------------------------------------------
    def busy_guard(self):
        """A context manager that admits a write or refuses it with 429 and Retry-After."""
        from contextlib import contextmanager

        @contextmanager
        def guard():
            with self._writes_lock:
                if self._writes >= self.max_concurrent_writes:
                    raise HubError(429, "busy", "The hub is busy; Spoke will send this later.",
                                   retry_after=BUSY_RETRY_AFTER_S)
                self._writes += 1
            try:
                yield
            finally:
                with self._writes_lock:
                    self._writes -= 1

        return guard()

    def push(self, device: Device, batch: PushBatch) -> PushResult:
        with self.busy_guard():
            return self._push(device, batch)

    def _push(self, device: Device, batch: PushBatch) -> PushResult:
        """Applies each change exactly once: a change id seen before is acknowledged, never applied again.
        One transaction, bulk statements: the batch is applied whole or not at all."""
        accepted: list[uuid.UUID] = []
        duplicates: list[uuid.UUID] = []
        rejected: list[Rejection] = []
        with self.session.begin() as s:
            self._lock_facility(s, device.facility_id)
            ids = [str(c.change_id) for c in batch.changes]
            seen = set(s.scalars(select(HubChangeRow.change_id).where(self._among(HubChangeRow.change_id, ids)))) if ids else set()
            keys = {(c.entity, c.entity_id) for c in batch.changes}
            records = {(r.entity, r.entity_id): r for r in self._records(s, keys)}
            current = {key: (r.facility_id, r.hlc) for key, r in records.items()}
            now = utcnow()
            rows: list[dict] = []
            latest: dict[tuple[str, str], Change] = {}
            merged_fields: dict[tuple[str, str], list[Change]] = {}
            for c in batch.changes:
                if str(c.change_id) in seen:
                    duplicates.append(c.change_id)
                    continue
                reason = self._refusal(device, c, current.get((c.entity, c.entity_id)))
                if reason:
                    rejected.append(Rejection(change_id=c.change_id, reason=reason))
                    continue
                seen.add(str(c.change_id))
                rows.append(_change_row(device.facility_id, c, now))
                key = (c.entity, c.entity_id)
                if c.entity == "patient" and c.payload is not None:
                    merged_fields.setdefault(key, []).append(c)
                if key not in latest or c.hlc > latest[key].hlc:
                    latest[key] = c
                accepted.append(c.change_id)
            if rows:
                texts: dict[int, str | None] = {}
                self._bulk_insert(s, HubChangeRow, rows, texts)
                self._write_records(s, device.facility_id, latest, records, merged_fields, texts)
                self.hlc.observe(Stamp.decode(max(r["hlc"] for r in rows)), int(time.time() * 1000))
        return PushResult(batch_id=batch.batch_id, accepted=accepted, duplicates=duplicates, rejected=rejected)

    def _write_records(self, s: Session, facility_id: str, latest: dict[tuple[str, str], Change],
                       records: dict[tuple[str, str], HubRecord], merged_fields: dict[tuple[str, str], list[Change]],
                       texts: dict[int, str | None] | None = None) -> None:
        """Cases merge by ownership (the spoke's clinical record, the hub's outcome); demographics field by field
        (sync.merge); other records: last writer wins by hybrid logical clock."""
        new, newer = [], []
        for key, c in latest.items():
            values = dict(entity=c.entity, entity_id=c.entity_id, facility_id=facility_id, version=c.version, hlc=c.hlc,
                          deleted=c.op == Op.DELETE, payload=c.payload)
            record = records.get(key)
            if key in merged_fields and c.op == Op.UPSERT:
                payload, stamp = (record.payload, record.hlc) if record is not None and record.payload else (None, "")
                for change in merged_fields[key]:
                    payload = dict(change.payload) if payload is None else merge(payload, stamp, change.payload, change.hlc)[0]
                    stamp = max(stamp, change.hlc)
                values |= dict(payload=payload, hlc=stamp, version=max(c.version, record.version if record else 0))
                (new if record is None else newer).append(values)
                continue
            if record is None:
                new.append(values)
            elif c.entity == "case" and c.payload is not None and record.payload is not None:
                merged = dict(c.payload)
                merged["status"] = merge_case_status(record.payload.get("status"), c.payload.get("status"))
                for name in HUB_OWNED_CASE_FIELDS:
                    if name in record.payload:
                        merged[name] = record.payload[name]
                newer.append(values | dict(payload=merged, version=max(c.version, record.version),
                                           hlc=max(c.hlc, record.hlc)))
            elif c.hlc > record.hlc:
                newer.append(values)
        if new:
            self._bulk_insert(s, HubRecord, new, texts)
        if newer:
            s.execute(update(HubRecord), newer)  # ORM bulk UPDATE by primary key

    def _bulk_insert(self, s: Session, model, rows: list[dict], texts: dict[int, str | None] | None = None) -> None:
        """Many rows in one statement: COPY on PostgreSQL (several times faster than a pipelined INSERT per
        row), executemany on SQLite. Same transaction either way."""
        if not self.postgres or len(rows) < 50:
            s.execute(insert(model), rows)
            return
        columns = list(rows[0])
        json_columns = {c.name for c in model.__table__.columns if isinstance(c.type, JSON)}
        texts = {} if texts is None else texts   # a payload shared by a change and its record is encoded once

        def as_text(value):
            key = id(value)
            if key not in texts:
                texts[key] = _json_text(value)
            return texts[key]

        cursor = s.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([as_text(row[c]) if c in json_columns else row[c] for c in columns])

    def _refusal(self, device: Device, c: Change, record: tuple[str, str] | None) -> str | None:
        if c.entity not in ENTITIES:
            return f"The hub does not know records of type '{c.entity}'."
        if c.device_id != device.id:
            return "A device may only push its own changes."
        if record is not None and record[0] != device.facility_id:
            return "This record belongs to another facility."
        return None

    def _records(self, s: Session, keys: set[tuple[str, str]]) -> list[HubRecord]:
        if not keys:
            return []
        by_entity: dict[str, list[str]] = {}
        for entity, entity_id in keys:
            by_entity.setdefault(entity, []).append(entity_id)
        out: list[HubRecord] = []
        for entity, entity_ids in by_entity.items():
            out.extend(s.scalars(select(HubRecord).where(HubRecord.entity == entity, self._among(HubRecord.entity_id, entity_ids))))
        return out

    def _among(self, column, values: list[str]):
        """column IN values, as ONE array parameter: rendering thousands of bind names costs more than the query."""
        if self.postgres:
            return column == any_(cast(literal(values), ARRAY(String)))
        return column.in_(select(literal_column("value")).select_from(func.json_each(json.dumps(values))))

    def _lock_facility(self, s: Session, facility_id: str) -> None:
        # One writer per facility at a time: its seq values then commit in order, so a pull by cursor never
        # skips a change that commits late. (SQLite: BEGIN IMMEDIATE already serialises all writers.)
        if self.postgres:
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:f))"), {"f": facility_id})

    # --- pull -----------------------------------------------------------------------------------
    def pull(self, device: Device, after: int, limit: int, own: bool = False) -> PullPage:
        """The facility's changes after the cursor; a device's own changes only when it asks (own=True: a
        full resync of a PC restored from an older copy, which lost some of what it had sent)."""
        limit = max(1, min(limit, MAX_PULL_PAGE))
        mine = HubChangeRow.device_id != device.id if not own else literal(True)
        with self.session() as s:
            rows = list(s.scalars(
                select(HubChangeRow)
                .where(HubChangeRow.facility_id == device.facility_id, HubChangeRow.seq > after, mine)
                .order_by(HubChangeRow.seq).limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            remaining = 0
            if more:
                remaining = s.scalar(select(func.count()).select_from(HubChangeRow).where(
                    HubChangeRow.facility_id == device.facility_id, HubChangeRow.seq > rows[-1].seq,
                    mine)) or 0
        changes = [HubChange(seq=r.seq, change_id=uuid.UUID(r.change_id), entity=r.entity, entity_id=r.entity_id,
                             version=r.version, op=Op(r.op), hlc=r.hlc, device_id=r.device_id, payload=r.payload)
                   for r in rows]
        return PullPage(changes=changes, next_cursor=rows[-1].seq if rows else after, more=more, remaining=remaining)

    # --- divergence check -----------------------------------------------------------------------
    def digest(self, device: Device, cursor: int) -> Digest:
        if cursor < 0:
            raise HubError(400, "bad_cursor", "The cursor must be 0 or more.")
        c = HubChangeRow.__table__.c
        with self.session() as s:
            others = s.scalars(select(c.change_id).where(c.facility_id == device.facility_id, c.seq <= cursor,
                                                        c.device_id != device.id)).yield_per(10_000)
            others_digest = set_digest(others)
            own = s.scalars(select(c.change_id).where(c.facility_id == device.facility_id,
                                                     c.device_id == device.id)).yield_per(10_000)
            return Digest(cursor=cursor, others=others_digest, own=set_digest(own))

    # --- media ----------------------------------------------------------------------------------
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
            return self._media_put(device, sha256, offset, size, data)

    def _media_put(self, device: Device, sha256: str, offset: int, size: int, data: bytes) -> MediaStatus:
        """Appends one chunk at `offset`, which must be exactly the bytes already confirmed. The chunk is on disk
        (fsync) before it is confirmed; the last chunk is confirmed only once the whole file's SHA-256 matches."""
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
                if _sha256_file(partial) != sha256:
                    partial.unlink(missing_ok=True)
                    up.received, damaged = 0, True
                else:
                    blob = self.blob_path(sha256)
                    blob.parent.mkdir(parents=True, exist_ok=True)
                    if blob.exists():
                        partial.unlink()
                    else:
                        os.replace(partial, blob)
                        _fsync_dir(blob.parent)
                    if s.get(HubBlob, sha256) is None:
                        s.add(HubBlob(sha256=sha256, size=size, stored_at=utcnow()))
                    up.completed_at = utcnow()
            status = self._status(up, device.facility_id)
        if damaged:
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

    # --- the hub's own writes (the doctor's side) -------------------------------------------------
    def update_case(self, case_id: str, fields: dict) -> HubChange:
        """The hub acts on a case (status, doctor's notes): a hub-origin change the spoke will pull."""
        with self.session.begin() as s:
            record = s.get(HubRecord, ("case", case_id), with_for_update=True)
            if record is None or record.deleted:
                raise HubError(404, "no_case", "No such case on the hub.")
            if (record.payload or {}).get("status") in ("closed", "cancelled"):
                raise HubError(409, "case_finished", "This case was closed or cancelled at the spoke.")
            self._lock_facility(s, record.facility_id)
            stamp = self.hlc.now(int(time.time() * 1000)).encode()
            return self._hub_write(s, record, stamp, {**(record.payload or {}), **fields})

    def _hub_write(self, s: Session, record: HubRecord, stamp: str, payload: dict) -> HubChange:
        """A change made by the hub itself: logged for the facility's spokes to pull, and the record updated."""
        change = Change(change_id=uuid.uuid4(), entity=record.entity, entity_id=record.entity_id,
                        version=record.version + 1, op=Op.UPSERT, hlc=stamp, device_id=HUB_DEVICE_ID, payload=payload)
        s.execute(insert(HubChangeRow), [_change_row(record.facility_id, change, utcnow())])
        record.version, record.hlc, record.payload = change.version, stamp, payload
        s.flush()
        seq = s.scalar(select(HubChangeRow.seq).where(HubChangeRow.change_id == str(change.change_id)))
        return HubChange(seq=seq, **change.model_dump())

    def update_patient(self, patient_id: str, fields: dict) -> HubChange:
        """The hub corrects demographics (a doctor fixes an age or a phone number): field stamps move only for
        what changed, so a spoke's concurrent edit of another field survives, and of the same field is kept."""
        allowed = {f for group in PATIENT_GROUPS.values() for f in group}
        unknown = set(fields) - allowed
        if unknown:
            raise HubError(400, "unknown_field", f"These are not demographic fields: {', '.join(sorted(unknown))}.")
        with self.session.begin() as s:
            record = s.get(HubRecord, ("patient", patient_id), with_for_update=True)
            if record is None or record.deleted or not record.payload:
                raise HubError(404, "no_patient", "No such patient on the hub.")
            self._lock_facility(s, record.facility_id)
            stamp = self.hlc.now(int(time.time() * 1000)).encode()
            before = dict(record.payload)
            after = before | fields
            meta = before.get(FIELD_META) or {}
            if FIELD_META not in before:   # a record from before field stamps: everything as of the record
                meta = {g: [record.hlc, ""] for g in PATIENT_GROUPS}
            after[FIELD_META] = stamp_edit(meta, changed_groups(before, after), stamp)
            return self._hub_write(s, record, stamp, after)

    def record(self, entity: str, entity_id: str) -> HubRecord | None:
        with self.session() as s:
            return s.get(HubRecord, (entity, entity_id))


def _change_row(facility_id: str, c: Change, now: datetime) -> dict:
    return dict(change_id=str(c.change_id), facility_id=facility_id, entity=c.entity, entity_id=c.entity_id,
                version=c.version, op=c.op.value, hlc=c.hlc, device_id=c.device_id, payload=c.payload, received_at=now)


def _json_text(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


