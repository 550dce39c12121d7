"""The SQLite engine: WAL, foreign keys and synchronous=FULL on every connection (power cuts are common)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event

from sync import jsontext


def make_engine(db_path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": 30, "check_same_thread": False},
        hide_parameters=True,   # a database error's message (and so a log or a traceback) never quotes patient data
        json_serializer=jsontext.text, json_deserializer=jsontext.loads,   # sync reads and writes a lot of JSON
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy, not the driver, open transactions (SQLAlchemy's documented pysqlite recipe):
        # DDL then runs inside them too, and writers can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

    return engine


def integrity_problems(db_path: Path) -> list[str]:
    """PRAGMA integrity_check on a raw connection; [] when the file is sound."""
    if not db_path.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        # A damaged file can return garbage bytes in the report itself: never fail while reporting.
        con.text_factory = lambda b: b.decode("utf-8", "replace")
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
    except (sqlite3.Error, UnicodeError, ValueError) as exc:
        return [str(exc) or exc.__class__.__name__]
    problems = [r[0] for r in rows if r[0] != "ok"]
    return problems


def backup_to(db_path: Path, target: Path) -> None:
    """A consistent copy through SQLite's online backup API (safe with WAL and open readers)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    src = sqlite3.connect(db_path, timeout=30)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    tmp.replace(target)
