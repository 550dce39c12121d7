"""JSON text for the databases of both ends: orjson, several times quicker than the standard library (sync reads
and writes a payload per change), with the standard library for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str | None:
    """Compact JSON text (UTF-8, no ASCII escapes), or None for None."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:   # an integer beyond 64 bits
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:   # a NaN an older version may have stored in SQLite, a number beyond 64 bits
        return json.loads(text)


def text(value: Any) -> str:
    """JSON text of any value, None included ("null"): what SQLAlchemy's JSON type stores for it."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
