"""The one write path: a transaction that carries the data, its change-log entry and its audit entry."""

from __future__ import annotations

import dataclasses
import enum
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any

import uuid_utils
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from spoke_client.db.models import AuditRow, ChangeRow, SettingRow
from spoke_client.domain.errors import SpokeError
from sync.hlc import HybridLogicalClock, Stamp
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


def to_payload(obj: Any) -> Any:
    """A JSON-ready snapshot of a domain dataclass (enums by value, dates in ISO 8601)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_payload(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, tuple | list):
        return [to_payload(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_payload(v) for k, v in obj.items()}
    return obj


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
        """Adds the change-log entry; returns its clock stamp."""
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
                payload=to_payload(payload),
            )
        )
        return stamp.encode()

    def audit(self, action: str, entity: str = "", entity_id: str = "", detail: str = "") -> None:
        self.session.add(
            AuditRow(at=self.now, user_id=self.user_id, action=action, entity=entity, entity_id=entity_id, detail=detail)
        )


class Store:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self._read = sessionmaker(engine, expire_on_commit=False)
        # BEGIN IMMEDIATE takes the write lock up front: no deadlock between a reader turned writer and us.
        self._write = sessionmaker(engine.execution_options(sqlite_begin="BEGIN IMMEDIATE"), expire_on_commit=False)
        self._lock = threading.Lock()
        self.device_id = self._ensure_device_id()
        with self._read() as s:
            last = s.scalar(select(func.max(ChangeRow.hlc)))
        self.hlc = HybridLogicalClock(self.device_id, Stamp.decode(last) if last else None)

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
    def write(self, user_id: str | None) -> Iterator[Writer]:
        try:
            with self._write.begin() as session:
                writer = Writer(self, session, user_id)
                yield writer
        except OperationalError as exc:
            raise storage_error(exc) from exc
        for action in writer._after_commit:
            try:
                action()
            except OSError:
                pass   # the data is committed; a leftover file is harmless

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
