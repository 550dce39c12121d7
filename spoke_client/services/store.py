"""The one write path: a transaction that carries the data, its change-log entry and its audit entry."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import uuid_utils
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from spoke_client.db.models import AuditRow, ChangeRow, SettingRow
from spoke_client.domain.errors import SpokeError
from sync.hlc import MAX_AHEAD_MS, HybridLogicalClock, Stamp
from sync.payloads import payload_of
from spoke_client.i18n import _


class StorageFull(SpokeError):
    """The disk (or the database's size limit) is full: nothing of this save was written."""


class StorageBusy(SpokeError):
    """Another program holds the database for too long."""


def storage_error(exc: OperationalError) -> SpokeError | OperationalError:
    text_ = str(exc.orig).lower()
    if "disk is full" in text_ or "database or disk is full" in text_:
        return StorageFull(_("The disk of this computer is full, so this was not saved (nothing was half-saved). "
                             "Free some space, then save again."))
    if "locked" in text_ or "busy" in text_:
        return StorageBusy(_("The database is busy with another program; wait a moment and save again."))
    return exc


def new_id() -> str:
    """UUIDv7: generated on the device, time-ordered, never colliding across spokes."""
    return str(uuid.UUID(bytes=uuid_utils.uuid7().bytes))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Writer:
    """Handed to a service inside a write transaction."""

    def __init__(self, store: "Store", session: Session, user_id: str | None) -> None:
        self.store = store
        self.session = session
        self.user_id = user_id
        self.now = store.clock()
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Runs once the transaction has committed (removing a file the data no longer refers to, say)."""
        self._after_commit.append(action)

    def stamp(self) -> str:
        """A fresh clock stamp, for a change whose payload must carry it (field stamps)."""
        return self.store.hlc.now(int(self.now.timestamp() * 1000)).encode()

    def change(self, entity: str, entity_id: str, version: int, payload: Any, op: str = "upsert",
               stamp: str | None = None) -> str:
        """Adds the change-log entry; returns its clock stamp. The payload (a domain record, or a dict of its
        fields) is written in the form sync.payloads declares for the entity, and checked by it: a PC never
        logs a change the hub would refuse for its form."""
        if op == "upsert":
            payload = payload_of(entity, payload)
        stamp = Stamp.decode(stamp) if stamp else self.store.hlc.now(int(self.now.timestamp() * 1000))
        self.session.add(
            ChangeRow(
                change_id=new_id(),
                entity=entity,
                entity_id=entity_id,
                version=version,
                op=op,
                hlc=stamp.encode(),
                changed_at=self.now,
                user_id=self.user_id,
                device_id=self.store.device_id,
                payload=payload,
            )
        )
        return stamp.encode()

    def set_setting(self, key: str, value: str) -> None:
        """A setting written inside this transaction, with the data it goes with (no audit entry: for state
        such as the pull cursor, which moves with the page it belongs to)."""
        self.session.execute(text("INSERT INTO setting(key, value) VALUES (:k, :v) "
                                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value"), {"k": key, "v": value})

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        value = self.session.execute(text("SELECT value FROM setting WHERE key = :k"), {"k": key}).scalar()
        return default if value is None else value

    def audit(self, action: str, entity: str = "", entity_id: str = "", detail: str = "") -> None:
        self.session.add(
            AuditRow(at=self.now, user_id=self.user_id, action=action, entity=entity, entity_id=entity_id, detail=detail)
        )


class Store:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        # The database's key when it is encrypted (set by runtime.open_services): the media store seals its files
        # under a key derived from it. Never written anywhere.
        self.key: bytes | None = None
        self._read = sessionmaker(engine, expire_on_commit=False)
        # BEGIN IMMEDIATE takes the write lock up front: no deadlock between a reader turned writer and us.
        self._write = sessionmaker(engine.execution_options(sqlite_begin="BEGIN IMMEDIATE"), expire_on_commit=False)
        self._lock = threading.Lock()
        self._people_lock = threading.Lock()
        self._people_writing = 0     # writes of people (not of sync) in progress or waiting for the database
        self.device_id = self._ensure_device_id()
        self.hlc = HybridLogicalClock(self.device_id, self._last_stamp())

    def _last_stamp(self) -> Stamp | None:
        """Where this PC's clock resumes: after every stamp it made or saw, except those beyond the drift bound
        (made while its date was set far ahead; sync_outbox stamps those again once it is right)."""
        limit = f"{int(self.clock().timestamp() * 1000) + MAX_AHEAD_MS:015d}-99999-~"
        with self._read() as s:
            last = s.execute(text("SELECT max(h) FROM (SELECT max(hlc) AS h FROM change_log WHERE hlc <= :l "
                                  "UNION ALL SELECT max(hlc) FROM hub_inbox WHERE hlc <= :l)"), {"l": limit}).scalar()
        return Stamp.decode(last) if last else None

    def _ensure_device_id(self) -> str:
        with self._write.begin() as s:
            row = s.get(SettingRow, "device_id")
            if row is None:
                row = SettingRow(key="device_id", value=new_id())
                s.add(row)
            return row.value

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self, user_id: str | None, *, background: bool = False) -> Iterator[Writer]:
        """One write transaction. A background write (a page of a sync) first lets the writes of people go:
        SQLite has one writer, and a rebuild's pages, one after another, would otherwise keep a paramedic's save
        waiting for seconds."""
        if background:
            self._let_people_write_first()
        else:
            with self._people_lock:
                self._people_writing += 1
        try:
            with self._write.begin() as session:
                writer = Writer(self, session, user_id)
                yield writer
        except OperationalError as exc:
            raise storage_error(exc) from exc
        finally:
            if not background:
                with self._people_lock:
                    self._people_writing -= 1
        for action in writer._after_commit:
            try:
                action()
            except OSError:
                pass   # the data is committed; a leftover file is harmless

    def _let_people_write_first(self, patience_s: float = 2.0) -> None:
        deadline = time.monotonic() + patience_s
        while self._people_writing and time.monotonic() < deadline:
            time.sleep(0.005)

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.read() as s:
            row = s.get(SettingRow, key)
            return row.value if row else default

    def set_setting(self, key: str, value: str, user_id: str | None = None) -> None:
        with self.write(user_id) as w:
            row = w.session.get(SettingRow, key)
            if row is None:
                w.session.add(SettingRow(key=key, value=value))
            else:
                row.value = value
            w.audit("setting", "setting", key, value if "password" not in key else "")
