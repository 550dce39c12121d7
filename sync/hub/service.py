"""What the hub does, independent of HTTP: exactly-once push of checked records, paged pull, the hub's own writes.

Enrolment and request authentication are in sync.hub.auth, the file store in sync.hub.media.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ARRAY, JSON, DateTime, Engine, String, any_, cast, create_engine, event, func, insert, literal, literal_column, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from sync import jsontext
from sync.hlc import HybridLogicalClock, Stamp, StampAhead, check_not_ahead
from sync.hub import casebook
from sync.hub.auth import Device, HubAuth
from sync.hub.bundles import HubBundles
from sync.hub.calls import HubCalls
from sync.hub.clinic import HubClinic
from sync.hub.staff import HubStaffing
from sync.hub.errors import HubError
from sync.hub.media import HubMedia
from sync.hub.models import HubChangeRow, HubDevice, HubRecord
from sync.merge import FIELD_META, PATIENT_GROUPS, changed_groups, merge, stamp_edit
from sync.payloads import PAYLOADS, PayloadInvalid, validate
from sync.protocol import (
    HUB_OWNED_CASE_FIELDS,
    REJECT_CLOCK_AHEAD,
    Change,
    Digest,
    HubChange,
    Op,
    PullPage,
    PushEnvelope,
    PushResult,
    Rejection,
    merge_case_status,
    set_digest,
)

log = logging.getLogger(__name__)

HUB_DEVICE_ID = "hub"
MAX_PULL_PAGE = 2_000
BUSY_RETRY_AFTER_S = 30
CLOCK_SEED_ROWS = 1_000   # the hub's clock starts above the newest stamps it holds


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def wall_ms() -> int:
    return int(time.time() * 1000)


def make_hub_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True,
                               json_serializer=jsontext.text, json_deserializer=jsontext.loads)

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
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True,
                         json_serializer=jsontext.text, json_deserializer=jsontext.loads)


def default_media_dir(engine: Engine) -> Path:
    """Next to a SQLite file; in the per-user data folder for a server database."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        return Path(database).resolve().parent / "media"
    import platformdirs

    return Path(platformdirs.user_data_dir("SpokeHub", "Spoke")) / "media"


class Hub(HubAuth, HubMedia, HubStaffing, HubClinic, HubBundles, HubCalls):
    def __init__(self, engine: Engine, media_dir: Path | None = None) -> None:
        self.engine = engine
        self.media_dir = Path(media_dir) if media_dir else default_media_dir(engine)
        self.session = sessionmaker(engine, expire_on_commit=False)
        self.postgres = engine.dialect.name == "postgresql"
        self.hlc = HybridLogicalClock(HUB_DEVICE_ID)
        self._clock_seeded = False
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
        with self.session.begin() as s:
            casebook.rebuild_missing(s)

    # --- the hub's clock ----------------------------------------------------------------------------
    def clock(self, s: Session | None = None) -> HybridLogicalClock:
        """The hub's clock, seeded once from the newest stamps in its database (after a restart, or in a new
        worker, it never stamps below what it already holds), ignoring any beyond the drift bound. Inside a
        write transaction, pass its session (SQLite has one writer: a second session would wait for it)."""
        if not self._clock_seeded:
            with self._lock:
                if not self._clock_seeded:
                    query = select(HubChangeRow.hlc).order_by(HubChangeRow.seq.desc()).limit(CLOCK_SEED_ROWS)
                    if s is not None:
                        stamps = s.scalars(query).all()
                    else:
                        with self.session() as own:
                            stamps = own.scalars(query).all()
                    now = wall_ms()
                    for stamp in stamps:
                        self._observe(stamp, now)
                    self._clock_seeded = True
        return self.hlc

    def _observe(self, stamp: str, now: int) -> None:
        try:
            parsed = Stamp.decode(stamp)
            check_not_ahead(parsed, now)
        except ValueError:   # a stamp from before the drift bound, far ahead: not followed
            log.warning("a stored clock stamp is not valid or too far ahead; the hub's clock does not follow it")
            return
        self.hlc.observe(parsed, now)

    def stamp_after(self, s: Session, record: HubRecord | None) -> str:
        """A stamp for a hub write: after the record it changes (whichever worker wrote that), and after the
        newest stamp this worker has seen."""
        now = wall_ms()
        clock = self.clock(s)
        if record is not None and record.hlc:
            self._observe(record.hlc, now)
        return clock.now(now).encode()

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

    def push(self, device: Device, batch: PushEnvelope) -> PushResult:
        with self.busy_guard():
            return self._push(device, batch)

    def _push(self, device: Device, batch: PushEnvelope) -> PushResult:
        """Applies each change exactly once: a change id seen before is acknowledged, never applied again. Each
        change is checked on its own (its form, its payload, its clock, its facility) and refused with a
        reason without stopping the rest. One transaction, bulk statements: applied whole or not at all."""
        with self.session.begin() as s:
            return self.push_in(s, device, batch)

    def push_in(self, s: Session, device: Device, batch: PushEnvelope) -> PushResult:
        """A push inside the caller's transaction (a USB bundle's batches are applied together, or not at all)."""
        accepted: list[uuid.UUID] = []
        duplicates: list[uuid.UUID] = []
        rejected: list[Rejection] = []
        changes, unreadable = parse_changes(batch.changes)
        rejected.extend(unreadable)
        now_ms = wall_ms()
        self._lock_facility(s, device.facility_id)
        ids = [str(c.change_id) for c in changes]
        seen = set(s.scalars(select(HubChangeRow.change_id).where(self._among(HubChangeRow.change_id, ids)))) if ids else set()
        keys = {(c.entity, c.entity_id) for c in changes}
        records = {(r.entity, r.entity_id): r for r in self._records(s, keys)}
        current = {key: (r.facility_id, r.hlc) for key, r in records.items()}
        now = utcnow()
        rows: list[dict] = []
        latest: dict[tuple[str, str], Change] = {}
        merged_fields: dict[tuple[str, str], list[Change]] = {}
        for c in changes:
            if str(c.change_id) in seen:
                duplicates.append(c.change_id)
                continue
            refusal = self._refusal(device, c, current.get((c.entity, c.entity_id)), now_ms)
            if isinstance(refusal, Rejection):
                rejected.append(refusal)
                continue
            c = refusal   # the change, its payload in the checked form
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
            s.flush()
            casebook.refresh_cases(s, {k[1] for k in latest if k[0] == "case"},
                                   {k[1] for k in latest if k[0] == "patient"})
            answers = [c for k, c in latest.items() if k[0] == "answer" and c.payload is not None]
            if answers:
                self._answered(s, answers)
            self.clock(s)
            self._observe(max(r["hlc"] for r in rows), now_ms)
        if rejected:
            log.info("push from device %s: %d accepted, %d refused (first: %s)", device.id, len(accepted),
                     len(rejected), rejected[0].code)
        return PushResult(batch_id=batch.batch_id, accepted=accepted, duplicates=duplicates, rejected=rejected)

    def _answered(self, s: Session, answers: list[Change]) -> None:
        """A spoke answered a doctor's question: the question is marked answered and the case, if it still waits
        for that answer, goes back to the queue (hub writes its spokes pull)."""
        for answer in answers:
            question = s.get(HubRecord, ("question", answer.payload.get("question_id")), with_for_update=True)
            if question is None or question.payload.get("status") != "open":
                continue
            self._hub_write(s, question, self.stamp_after(s, question), {**question.payload, "status": "answered"})
            case = s.get(HubRecord, ("case", question.payload.get("case_id")), with_for_update=True)
            if case is not None and (case.payload or {}).get("status") == "info_requested":
                self._hub_write(s, case, self.stamp_after(s, case), {**case.payload, "status": "queued"})

    def _write_records(self, s: Session, facility_id: str, latest: dict[tuple[str, str], Change],
                       records: dict[tuple[str, str], HubRecord], merged_fields: dict[tuple[str, str], list[Change]],
                       texts: dict[int, str | None] | None = None) -> None:
        """Cases merge by ownership (the spoke's clinical record, the hub's outcome); demographics field by field
        (sync.merge); other records: last writer wins by hybrid logical clock."""
        new, newer = [], []
        for key, c in latest.items():
            values = dict(entity=c.entity, entity_id=c.entity_id, facility_id=facility_id, version=c.version, hlc=c.hlc,
                          deleted=c.op == Op.DELETE, payload=c.payload,
                          parent_id=(c.payload or {}).get("case_id") if c.entity != "case" else None)
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
        """Many rows in one statement, in the same transaction: COPY on PostgreSQL (several times faster than a
        pipelined INSERT per row), the driver's executemany on SQLite. Either way a payload shared by a change
        and its record is encoded to JSON once, not once per column type."""
        table = model.__table__
        if len(rows) < 50:
            s.execute(insert(table), rows)
            return
        columns = list(rows[0])
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        time_columns = {c.name for c in table.columns if isinstance(c.type, DateTime)}
        texts = {} if texts is None else texts

        def as_text(value):
            key = id(value)
            if key not in texts:
                texts[key] = _json_text(value)
            return texts[key]

        if not self.postgres:
            convert = [(i, as_text if c in json_columns else _sqlite_time if c in time_columns else None)
                       for i, c in enumerate(columns)]
            convert = [(i, f) for i, f in convert if f is not None]
            params = []
            for row in rows:
                values = [row[c] for c in columns]
                for i, f in convert:
                    if values[i] is not None:
                        values[i] = f(values[i])
                params.append(tuple(int(v) if v is True or v is False else v for v in values))
            marks = ", ".join("?" for _ in columns)
            s.connection().exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", params)
            return
        cursor = s.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([as_text(row[c]) if c in json_columns else row[c] for c in columns])

    def _refusal(self, device: Device, c: Change, record: tuple[str, str] | None, now_ms: int) -> Change | Rejection:
        """The change, with its payload in the checked form, or why it is refused."""
        def refuse(code: str, reason: str) -> Rejection:
            return Rejection(change_id=c.change_id, reason=reason, code=code)

        if c.entity not in PAYLOADS:
            return refuse("unknown_entity", f"The hub does not know records of type '{c.entity}' from a device.")
        if c.device_id != device.id:
            return refuse("not_own_change", "A device may only push its own changes.")
        if record is not None and record[0] != device.facility_id:
            return refuse("other_facility", "This record belongs to another facility.")
        try:
            check_not_ahead(Stamp.decode(c.hlc), now_ms)
        except StampAhead as exc:
            days = exc.ahead_ms / 86_400_000
            return refuse(REJECT_CLOCK_AHEAD, f"This change was made when this computer's clock was {days:,.0f} days ahead "
                                         "of the hub's; set the computer's date and time right, and it will be sent "
                                         "again.")
        if c.op == Op.DELETE:
            return c
        try:
            payload = validate(c.entity, c.payload, entity_id=c.entity_id, strict_keys=True)
        except PayloadInvalid as exc:
            return refuse("invalid", f"The hub refused this {c.entity} record: {exc}.")
        return c.model_copy(update={"payload": payload.wire()})

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
    def pull(self, device: Device, after: int, limit: int, own: bool = False, count: bool = True,
             bundle: bool = False) -> PullPage:
        """The facility's changes after the cursor; a device's own changes only when it asks (own=True: a
        full resync of a PC restored from an older copy, which lost some of what it had sent). `bundle`: read for
        a return bundle, not asked by the device (what it has seen is not learnt from it)."""
        rows, more, remaining = self.pull_rows(device, after, limit, own, count, bundle)
        changes = [HubChange(seq=r["seq"], change_id=uuid.UUID(r["change_id"]), entity=r["entity"],
                             entity_id=r["entity_id"], version=r["version"], op=Op(r["op"]), hlc=r["hlc"],
                             device_id=r["device_id"], payload=r["payload"]) for r in rows]
        return PullPage(changes=changes, next_cursor=rows[-1]["seq"] if rows else after, more=more, remaining=remaining)

    def pull_rows(self, device: Device, after: int, limit: int, own: bool = False,
                  count: bool = True, bundle: bool = False) -> tuple[list[dict], bool, int]:
        """One page as plain dicts (what sync.wire encodes straight from the rows), whether more follow, and how
        many (counted only when asked: a spoke counts once, at its first page, and goes on from there)."""
        limit = max(1, min(limit, MAX_PULL_PAGE))
        c = HubChangeRow.__table__.c
        mine = c.device_id != device.id if not own else literal(True)
        with self.session() as s:
            rows = [dict(r._mapping) for r in s.execute(
                select(c.seq, c.change_id, c.entity, c.entity_id, c.version, c.op, c.hlc, c.device_id, c.payload)
                .where(c.facility_id == device.facility_id, c.seq > after, mine).order_by(c.seq).limit(limit + 1))]
            more = len(rows) > limit
            rows = rows[:limit]
            remaining = 0
            if more and count:
                remaining = s.scalar(select(func.count()).select_from(HubChangeRow.__table__).where(
                    c.facility_id == device.facility_id, c.seq > rows[-1]["seq"], mine)) or 0
            if not bundle:
                # What the device has seen, as far as the hub can tell: the cursor it asks after (a spoke asks
                # for the next page while it applies this one, so it may be a page or two ahead if that apply
                # fails). A return bundle made for it later starts there, rather than at its last USB bundle's
                # cursor or at the facility's beginning for a PC that never sent one; the spoke keeps its own
                # cursor where a return bundle starts beyond it, so too far ahead loses nothing.
                if s.execute(update(HubDevice).where(HubDevice.id == device.id, HubDevice.bundle_cursor != after)
                             .values(bundle_cursor=after)).rowcount:
                    s.commit()
        return rows, more, remaining

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
            stamp = self.stamp_after(s, record)
            return self._hub_write(s, record, stamp, {**(record.payload or {}), **fields})

    def _hub_write(self, s: Session, record: HubRecord, stamp: str, payload: dict) -> HubChange:
        """A change made by the hub itself: checked like a device's (so no spoke is ever sent a record it cannot
        apply), logged for the facility's spokes to pull, and the record updated."""
        try:
            return casebook.hub_write(s, record, stamp, payload)
        except PayloadInvalid as exc:
            raise HubError(400, "invalid", f"{exc}.") from None

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
            stamp = self.stamp_after(s, record)
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


def parse_changes(raw: list[dict[str, Any]]) -> tuple[list[Change], list[Rejection]]:
    """Each change of a batch read on its own: one malformed change (an old clock stamp, a bad version) is
    refused with its reason, and the rest of the batch goes on. A change without a readable id cannot even be
    refused: then the whole batch is (400), which an honest spoke never sends."""
    changes: list[Change] = []
    rejected: list[Rejection] = []
    for item in raw:
        try:
            changes.append(Change.model_validate(item))
        except ValidationError as exc:
            try:
                change_id = uuid.UUID(str(item.get("change_id")))
            except ValueError:
                raise HubError(400, "bad_message", "A change in this batch has no valid change_id.") from None
            first = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            rejected.append(Rejection(change_id=change_id, reason=f"The hub refused this change: {field}: {first['msg']}.",
                                      code="invalid"))
    return changes, rejected


def _sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's DateTime stores it in SQLite (UTC, microseconds, no zone), so it reads back the same."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _json_text(value) -> str | None:
    return jsontext.dumps(value)


