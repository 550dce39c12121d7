"""The printed prescription's QR code: a compact summary of the prescription signed with the hub's Ed25519 key, so
a pharmacist (or `spoke-client verify-rx`) checks the paper offline with nothing but the hub's public key.

The hub makes the code when it issues the prescription (it alone holds the key) and puts its text in the
prescription's `qr` field, which the prescription's own signature covers; the spoke prints it as it came.

The code's text is compact ASCII JSON (a name in Devanagari travels as \\u escapes): short keys, and `s`, the
signature over the canonical form (sorted keys, no spaces, UTF-8) of every other key:
    {"v":1,"id":..., "d":"2026-12-01", "p":"Sunita Devi", "a":"34 y F", "r":"<doctor's registration number>",
     "k":"<key id>", "m":["PARACETAMOL 500 mg tablet|1 tablet|TDS|5", ...], "s":"<base64 signature>"}
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.prescriptions import key_id

VERSION = 1
MAX_TEXT = 1200           # characters (ASCII): what a QR code on an A5 page still gives back from a photo


class CodeInvalid(ValueError):
    """The text is not a Spoke prescription code (another QR code, or damaged)."""


@dataclass(frozen=True)
class Summary:
    prescription_id: str
    issued_on: str                  # YYYY-MM-DD
    patient: str
    age_sex: str                    # "34 y F"
    registration_number: str
    medicines: tuple[str, ...]      # "NAME strength form|dose|frequency|days"
    key_id: str


@dataclass(frozen=True)
class Checked:
    summary: Summary
    signature_ok: bool
    reason: str = ""                # why it fails, in words


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _text(content: dict[str, Any]) -> str:
    """The code's text: ASCII JSON (a Devanagari name as \\u escapes). A code holding UTF-8 needs an ECI header,
    which OpenCV's decoder does not read (2 of 40 codes with Hindi names failed to decode from a clean render)."""
    return json.dumps(content, separators=(",", ":"), ensure_ascii=True)


def medicine_line(m: dict[str, Any]) -> str:
    name = " ".join(x for x in (str(m.get("name", "")).upper(), str(m.get("strength", "")), str(m.get("form", ""))) if x)
    return "|".join((name, str(m.get("dose", "")), str(m.get("frequency", "")), str(m.get("duration_days", ""))))


def make(prescription: dict[str, Any], patient: str, age_sex: str, key: Ed25519PrivateKey) -> str:
    """The code's text for an issued prescription (its payload before the `qr` field), signed with `key`; with
    many medicines it keeps only their names, and "" when even that does not fit in a code."""
    content = {
        "v": VERSION, "id": prescription["id"], "d": str(prescription["issued_at"])[:10], "p": patient.strip(),
        "a": age_sex, "r": prescription["prescriber"]["registration_number"], "k": key_id(key.public_key()),
        "m": [medicine_line(m) for m in prescription.get("medicines") or ()],
    }
    content["s"] = base64.b64encode(key.sign(_canonical(content))).decode("ascii")
    text = _text(content)
    if len(text) > MAX_TEXT:   # many medicines: keep the code readable, the paper lists them all
        content["m"] = [line.split("|")[0] for line in content["m"]]
        del content["s"]
        content["s"] = base64.b64encode(key.sign(_canonical(content))).decode("ascii")
        text = _text(content)
    return text if len(text) <= MAX_TEXT else ""   # "": no code; the paper says it has none


def parse(text: str) -> tuple[Summary, dict[str, Any], str]:
    """The summary in a code's text, its signed content and its signature; CodeInvalid if it is not one."""
    try:
        content = json.loads(text)
    except (ValueError, TypeError):
        raise CodeInvalid("this is not a Spoke prescription code") from None
    if not isinstance(content, dict) or content.get("v") != VERSION or not isinstance(content.get("s"), str):
        raise CodeInvalid("this is not a Spoke prescription code")
    signature = content.pop("s")
    try:
        meds = content.get("m") or []
        if not isinstance(meds, list) or not all(isinstance(x, str) for x in meds):
            raise TypeError
        summary = Summary(prescription_id=str(content["id"]), issued_on=str(content["d"]), patient=str(content["p"]),
                          age_sex=str(content.get("a", "")), registration_number=str(content["r"]),
                          medicines=tuple(meds), key_id=str(content["k"]))
    except (KeyError, TypeError):
        raise CodeInvalid("the prescription code is incomplete") from None
    return summary, content, signature


def check(text: str, public_keys: list[str | bytes | Ed25519PublicKey]) -> Checked:
    """The code's summary and whether one of `public_keys` (the hub keys this PC knows) signed exactly it."""
    summary, content, signature = parse(text)
    keys = []
    for k in public_keys:
        try:
            if isinstance(k, str):
                k = base64.b64decode(k, validate=True)
            if isinstance(k, bytes):
                k = Ed25519PublicKey.from_public_bytes(k)
        except ValueError:   # not a key (a damaged setting, a mistyped --key): it signs nothing
            continue
        keys.append(k)
    key = next((k for k in keys if key_id(k) == summary.key_id), None)
    if key is None:
        return Checked(summary, False, "signed by a key this computer does not know (another hub, or a forgery)")
    try:
        key.verify(base64.b64decode(signature, validate=True), _canonical(content))
    except (InvalidSignature, ValueError):
        return Checked(summary, False, "the signature does not match: the code was changed or forged")
    return Checked(summary, True)
