"""Field-by-field merge of records both ends may edit (patient demographics), the same at hub and spoke.

Each group of fields carries the clock stamp of the edit that set it and the stamp of the value that edit
replaced (its base): `payload["_fields"] = {group: [stamp, base]}`. The greater stamp wins, per group, so
the result does not depend on the order in which changes arrive (a last-writer-wins map: commutative,
associative, idempotent). A losing value is a conflict, kept for the user, when the winning edit could not
have seen it: the loser is newer than the value the winner replaced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sync.hlc import Stamp

FIELD_META = "_fields"

# Fields that only make sense together move together (an approximate birth date and its flag).
PATIENT_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "sex": ("sex",),
    "birth_date": ("birth_date", "birth_date_approximate"),
    "relative": ("relative_name", "relative_relation"),
    "phone": ("phone",),
    "village": ("village",),
    "address": ("address",),
    "abha_number": ("abha_number",),
    "abha_address": ("abha_address",),
    "allergies": ("allergies",),
}


@dataclass(frozen=True)
class FieldConflict:
    group: str
    kept: dict[str, Any]
    lost: dict[str, Any]
    lost_stamp: str
    lost_device: str


def group_values(payload: dict[str, Any], group: str, groups: dict[str, tuple[str, ...]] = PATIENT_GROUPS) -> dict[str, Any]:
    return {f: payload.get(f) for f in groups[group]}


def changed_groups(before: dict[str, Any], after: dict[str, Any], groups: dict[str, tuple[str, ...]] = PATIENT_GROUPS) -> list[str]:
    return [g for g in groups if group_values(before, g, groups) != group_values(after, g, groups)]


def stamp_edit(meta: dict[str, list[str]], groups_changed: list[str], stamp: str) -> dict[str, list[str]]:
    """The field stamps after a local edit of groups_changed at `stamp` (each remembers what it replaced)."""
    out = {g: list(v) for g, v in meta.items()}
    for g in groups_changed:
        out[g] = [stamp, meta.get(g, ["", ""])[0]]
    return out


def _meta(payload: dict[str, Any], record_stamp: str, groups: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, str]]:
    # A payload from before field stamps (an older spoke): every group as of the whole change, replacing nothing.
    # With stamps, a group without one was never edited since (a record older than the stamps): the oldest.
    if FIELD_META not in payload:
        return {g: (record_stamp, "") for g in groups}
    given = payload[FIELD_META] or {}
    return {g: tuple(given.get(g) or ("", "")) for g in groups}  # type: ignore[misc]


def merge(current: dict[str, Any], current_stamp: str, incoming: dict[str, Any], incoming_stamp: str,
          groups: dict[str, tuple[str, ...]] = PATIENT_GROUPS) -> tuple[dict[str, Any], list[FieldConflict]]:
    """The merged payload (with its field stamps) and the conflicts this merge found."""
    cur_meta, in_meta = _meta(current, current_stamp, groups), _meta(incoming, incoming_stamp, groups)
    newer_record = incoming_stamp > current_stamp
    merged = dict(incoming if newer_record else current)   # fields outside the groups: the later change's
    merged["version"] = max(int(current.get("version") or 0), int(incoming.get("version") or 0)) or merged.get("version")
    meta: dict[str, list[str]] = {}
    conflicts: list[FieldConflict] = []
    for g in groups:
        cur_values, in_values = group_values(current, g, groups), group_values(incoming, g, groups)
        (cs, cb), (is_, ib) = cur_meta[g], in_meta[g]
        incoming_wins = (is_, _key(in_values)) > (cs, _key(cur_values))
        win_values, win_meta, lose_values, lose_meta = (
            (in_values, (is_, ib), cur_values, (cs, cb)) if incoming_wins else (cur_values, (cs, cb), in_values, (is_, ib)))
        merged.update(win_values)
        meta[g] = list(win_meta)
        if lose_values != win_values and lose_meta[0] > win_meta[1]:
            conflicts.append(FieldConflict(g, win_values, lose_values, lose_meta[0], _device(lose_meta[0])))
    merged[FIELD_META] = meta
    return merged, conflicts


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)   # a deterministic tie-break, never reached in practice


def _device(stamp: str) -> str:
    try:
        return Stamp.decode(stamp).node
    except (ValueError, IndexError):
        return ""
