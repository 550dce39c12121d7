"""Bulk inserts at the driver's speed: one executemany of plain tuples, each value bound exactly as SQLAlchemy
would bind it (the column types' own bind processors), without building SQLAlchemy's parameters row by row."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.orm import Session


def insert_many(session: Session, table: Table, rows: Sequence[dict], *, or_ignore: bool = False) -> None:
    """INSERT rows (dicts with the same keys) into `table` in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    sql = f"{verb} INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    pairs = list(zip(names, processors))
    params = [tuple(p(row[n]) if p is not None else row[n] for n, p in pairs) for row in rows]
    connection.exec_driver_sql(sql, params)
