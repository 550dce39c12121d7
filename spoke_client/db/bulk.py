"""Bulk inserts at the driver's speed: one executemany of plain tuples, each value bound exactly as SQLAlchemy
would bind it (the column types' own bind processors), without building SQLAlchemy's parameters row by row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta, timezone
from operator import itemgetter

from sqlalchemy import JSON, Boolean, Date, DateTime, Table
from sqlalchemy.orm import Session

from spoke_client.db.models import UTCDateTime
from sync import jsontext


def insert_many(session: Session, table: Table, rows: Sequence[dict], *, or_ignore: bool = False) -> None:
    """INSERT rows (dicts with the same keys) into `table` in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    processors = [_converter(table.c[name].type, dialect) for name in names]
    get = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    convert = [(i, p) for i, p in enumerate(processors) if p is not None]
    params = []
    for row in rows:
        values = list(get(row))
        for i, p in convert:
            values[i] = p(values[i])
        params.append(tuple(values))
    connection.exec_driver_sql(_insert_sql(table, names, or_ignore), params)


def insert_plain(session: Session, table: Table, names: Sequence[str], rows: Sequence[tuple], *,
                 same: dict | None = None, or_ignore: bool = False) -> None:
    """INSERT tuples of `names` whose values need no conversion (text, numbers, None: bound as they are), each
    followed by the columns of `same`, whose values are the same for every row and are converted once."""
    if not rows:
        return
    connection = session.connection()
    same = same or {}
    tail = tuple(p(v) if (p := _converter(table.c[k].type, connection.dialect)) is not None else v
                 for k, v in same.items())
    params = [row + tail for row in rows] if tail else rows
    connection.exec_driver_sql(_insert_sql(table, [*names, *same], or_ignore), params)


def _insert_sql(table: Table, names: Sequence[str], or_ignore: bool) -> str:
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    return f"{verb} INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


def _utc_text(value):
    # SQLAlchemy's SQLite DATETIME text (always with microseconds), of the UTC time, as UTCDateTime stores it.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    if value.utcoffset() == _ZERO:                      # already UTC (nearly always): one call
        return value.isoformat(" ", "microseconds")[:26]
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


_ZERO = timedelta(0)


def _json_text(value):
    return jsontext.text(value)   # None as JSON null, as the JSON type binds it


def _converter(kind, dialect):
    """The same text the column type would bind, by a quicker road for the types a sync page is full of (every
    value of a page passes here); any other type uses its own bind processor."""
    if isinstance(kind, UTCDateTime):
        return _utc_text
    if isinstance(kind, JSON):
        return _json_text
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else int(v)
    if isinstance(kind, Date) and not isinstance(kind, DateTime):
        return lambda v: None if v is None else v.isoformat()
    return kind._cached_bind_processor(dialect)


def among(column, values):
    """`column IN values` as ONE parameter (a JSON array read by json_each): rendering thousands of bind names
    costs more than the query itself."""
    from sqlalchemy import func, literal_column, select

    return column.in_(select(literal_column("value")).select_from(func.json_each(json.dumps(list(values)))))
