"""An e-prescription's signature: the hub signs the canonical JSON of the issued prescription with its Ed25519 key;
anyone with the hub's public key (a spoke learns it at enrolment; a pharmacist reads it off the printed QR code)
checks it offline. The same canonical form at both ends, so a changed byte anywhere fails the check.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# What the signature covers: the prescription as issued. A later cancellation (status, reason, time) is a new
# version of the record and does not touch the signed content.
UNSIGNED_FIELDS = frozenset({"signature", "status", "cancelled_reason", "cancelled_at"})


class SignatureInvalid(ValueError):
    """The prescription is not what the hub signed (changed, or signed by another key)."""


def canonical(payload: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes that are signed."""
    content = {k: v for k, v in payload.items() if k not in UNSIGNED_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of a public key (the first 16 hex digits of the SHA-256 of its raw bytes)."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(payload: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(canonical(payload))).decode("ascii")


def verify(payload: dict[str, Any], public_key: Ed25519PublicKey | bytes | str) -> None:
    """Raises SignatureInvalid unless `payload` carries the signature of `public_key` over its content."""
    if isinstance(public_key, str):
        public_key = base64.b64decode(public_key)
    if isinstance(public_key, bytes):
        public_key = Ed25519PublicKey.from_public_bytes(public_key)
    if payload.get("key_id") != key_id(public_key):
        raise SignatureInvalid("signed by another key")
    try:
        public_key.verify(base64.b64decode(str(payload.get("signature", "")), validate=True), canonical(payload))
    except (InvalidSignature, ValueError) as exc:
        raise SignatureInvalid("the prescription is not what the hub signed") from exc
