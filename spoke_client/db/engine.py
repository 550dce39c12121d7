"""The SQLite engine: WAL, foreign keys and synchronous=FULL on every connection (power cuts are common).

With a key, the file is a SQLCipher database (AES-256 pages with an HMAC each): the same SQL, the same FTS5, opened
through the `sqlcipher3` module with the 32-byte key given raw (`PRAGMA key = "x'…'"`), so no second key
derivation runs at every connection (the key slots already ran Argon2id). Without one, plain sqlite3, as before
encryption: a database from an older release, until an administrator's sign-in converts it (services/vault.py).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from sync import jsontext

CLEAR_HEADER = b"SQLite format 3\x00"   # the first 16 bytes of every unencrypted SQLite file


def database_kind(db_path: Path) -> str:
    """"new" (no file, or an empty one), "clear" (plain SQLite) or "encrypted" (anything else: SQLCipher's first
    page is random-looking from its first byte, the salt)."""
    try:
        with open(db_path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return "new"
    if not head:
        return "new"
    return "clear" if head == CLEAR_HEADER else "encrypted"


def _key_pragma(key: bytes) -> str:
    if len(key) != 32:
        raise ValueError("a database key is 32 bytes")
    return f"PRAGMA key = \"x'{key.hex()}'\""


def connect(db_path: Path | str, key: bytes | None = None, *, readonly: bool = False, timeout: float = 30) -> Any:
    """A raw DB-API connection, keyed when `key` is given; a wrong key fails here ("file is not a database")."""
    target = f"file:{db_path}?mode=ro" if readonly else str(db_path)
    if key is None:
        return sqlite3.connect(target, uri=readonly, timeout=timeout)
    from sqlcipher3 import dbapi2 as sqlcipher

    con = sqlcipher.connect(target, uri=readonly, timeout=timeout)
    try:
        con.execute("PRAGMA cipher_log_level = NONE")   # a wrong key is our error to word, not SQLCipher's stderr line
        con.execute(_key_pragma(key))
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except Exception:
        con.close()
        raise
    return con


def make_engine(db_path: Path, key: bytes | None = None) -> Engine:
    common: dict[str, Any] = dict(
        hide_parameters=True,   # a database error's message (and so a log or a traceback) never quotes patient data
        json_serializer=jsontext.text, json_deserializer=jsontext.loads,   # sync reads and writes a lot of JSON
    )
    if key is None:
        engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30, "check_same_thread": False},
                               **common)
    else:
        # SQLAlchemy's pysqlcipher dialect sends `PRAGMA key = <password>` first on each connection; the password
        # is the raw-key form. A pool as the plain engine has (the dialect's default is one connection per thread).
        url = URL.create("sqlite+pysqlcipher", password=f"x'{key.hex()}'", database=str(db_path))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, poolclass=QueuePool,
                               **common)

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
        owner_only(db_path)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

    return engine


def owner_only(db_path: Path) -> None:
    """The database and its WAL and shared-memory files readable by this account only (SQLite makes them with the
    process's umask, 0644 on most desktops). POSIX modes; Windows keeps the folder's ACL."""
    if os.name != "posix":
        return
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(f"{db_path}{suffix}", 0o600)
        except OSError:
            pass


def integrity_problems(db_path: Path, key: bytes | None = None) -> list[str]:
    """PRAGMA integrity_check on a raw connection; [] when the file is sound."""
    if not db_path.exists():
        return []
    try:
        con = connect(db_path, key, readonly=True)
        # A damaged file can return garbage bytes in the report itself: never fail while reporting.
        con.text_factory = lambda b: b.decode("utf-8", "replace")
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
            if key is not None:
                rows += con.execute("PRAGMA cipher_integrity_check").fetchall()   # every page's HMAC
        finally:
            con.close()
    except (sqlite3.Error, UnicodeError, ValueError) as exc:
        return [str(exc) or exc.__class__.__name__]
    except Exception as exc:   # sqlcipher3's own error classes
        if type(exc).__module__.startswith("sqlcipher3"):
            return [str(exc) or exc.__class__.__name__]
        raise
    problems = [r[0] for r in rows if r[0] != "ok"]
    return problems


def backup_to(db_path: Path, target: Path, key: bytes | None = None) -> None:
    """A consistent copy through SQLite's online backup API (safe with WAL and open readers); an encrypted
    database's copy is encrypted with the same key."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.unlink(missing_ok=True)
    src = connect(db_path, key)
    try:
        dst = connect(tmp, key) if key is not None else sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    owner_only(tmp)
    tmp.replace(target)
