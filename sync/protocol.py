"""The sync wire contract shared by spoke and hub: versioned models, gzip framing, request signatures.

Imports nothing of the project but the clock's stamp format (sync.hlc, standard library only), so both ends
(and a third-party hub) can depend on it alone.
"""

from __future__ import annotations

import base64
import enum
import gzip
import hashlib
import uuid
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sync.hlc import STAMP_PATTERN

PROTOCOL_VERSION = 1
# Revision 2 adds optional fields to the hub's answers (a refusal's code). A spoke says which revision it reads
# in the Spoke-Protocol header; a hub leaves out what a spoke of revision 1 would not understand.
PROTOCOL_REVISION = 2
H_PROTOCOL = "Spoke-Protocol"
# Every answer of the hub carries its clock (Unix milliseconds), so a spoke can tell its user that the PC's
# date is wrong before its changes are refused for it.
H_HUB_TIME = "Spoke-Hub-Time"
# A refusal's code for a change stamped by a clock too far ahead of the hub's: the spoke keeps it queued (it
# is sent again once the PC's date is right) instead of holding it aside for the user.
REJECT_CLOCK_AHEAD = "clock_ahead"
MEDIA_TYPE = "application/json"
MAX_BATCH = 5_000                 # changes in one push
MAX_BODY_BYTES = 32 * 1024 * 1024  # decompressed, so a small gzip bomb cannot exhaust the hub

ENTITIES = frozenset({"facility", "user", "patient", "case", "vitals", "consent", "attachment", "prescription"})

# Request signature headers: the device, a counter that only grows (no trust in spoke clocks, which are
# often wrong by hours), and an Ed25519 signature over method, path, counter and the body's SHA-256.
H_DEVICE, H_COUNTER, H_SIGNATURE = "Spoke-Device", "Spoke-Counter", "Spoke-Signature"

HLC_PATTERN = STAMP_PATTERN   # ASCII digits only (sync.hlc)
ID_PATTERN = r"^[0-9A-Za-z-]{1,64}$"   # record and device ids: UUIDs (and short test ids), nothing a database chokes on

# Media (photos, recordings, documents) travel by their SHA-256, in chunks the hub confirms one by one, so a
# cut link resumes at the last confirmed byte and a file the hub already has is never sent again.
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_MEDIA_BYTES = 200 * 1024 * 1024
MAX_CHUNK_BYTES = 4 * 1024 * 1024
MEDIA_CONTENT_TYPE = "application/octet-stream"


# Who owns what of a case: the spoke its clinical record, the hub the consultation's outcome. A spoke's
# change never moves a case back from a hub-set state, and never carries the hub's note away.
PRE_CONSULTATION = frozenset({"draft", "ready", "queued"})
HUB_STATES = frozenset({"in_consultation", "info_requested", "prescribed"})
HUB_SETTABLE = frozenset({"queued", "in_consultation", "info_requested", "prescribed", "closed"})
FINAL_STATES = frozenset({"closed", "cancelled"})
HUB_OWNED_CASE_FIELDS = ("doctor_note",)


def merge_case_status(current: str | None, incoming_from_spoke: str) -> str:
    """The status a case has after a spoke's change meets the hub's state (the same rule at both ends)."""
    if current in HUB_STATES and incoming_from_spoke in PRE_CONSULTATION:
        return current
    return incoming_from_spoke


def hub_status_applies(local: str, from_hub: str) -> bool:
    """Whether the hub's status replaces the spoke's: any state the hub may set (taking a case, asking for more,
    releasing it back to the queue, prescribing), over anything but the spoke's final word (closed or
    cancelled at the spoke)."""
    return local not in FINAL_STATES and from_hub in HUB_SETTABLE


class Op(enum.StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class _Model(BaseModel):
    """A message the hub reads: a key it does not know is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Answer(BaseModel):
    """A message a spoke reads: keys a newer hub added are ignored, so hubs can grow without breaking spokes.
    (A hub answering a spoke of protocol 1, whose models refuse unknown keys, leaves its new keys out.)"""

    model_config = ConfigDict(extra="ignore", frozen=True)


INT32_MAX = 2**31 - 1
INT63_MAX = 2**63 - 1


class Change(_Model):
    """One entry of a change log: what changed, its version and clock stamp, and the new state (or a tombstone)."""

    change_id: uuid.UUID
    entity: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]
    entity_id: Annotated[str, Field(pattern=ID_PATTERN)]
    version: Annotated[int, Field(ge=1, le=INT32_MAX)]
    op: Op
    hlc: Annotated[str, Field(pattern=HLC_PATTERN)]
    device_id: Annotated[str, Field(pattern=ID_PATTERN)]
    payload: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _payload_matches_op(self) -> "Change":
        if (self.op == Op.UPSERT) != (self.payload is not None):
            raise ValueError("an upsert carries a payload and a delete (tombstone) does not")
        return self


class PushBatch(_Model):
    protocol: Literal[1] = PROTOCOL_VERSION
    batch_id: uuid.UUID
    changes: Annotated[list[Change], Field(max_length=MAX_BATCH)]


class PushEnvelope(_Model):
    """A push as the hub first reads it: the changes are read one by one afterwards (sync.hub.service), so
    that one malformed change is refused alone instead of failing its whole batch for ever."""

    protocol: Literal[1] = PROTOCOL_VERSION
    batch_id: uuid.UUID
    changes: Annotated[list[dict[str, Any]], Field(max_length=MAX_BATCH)]


class Rejection(_Answer):
    change_id: uuid.UUID
    reason: str
    # A machine code (clock_ahead, invalid, other_facility, unknown_entity...), for spokes of protocol 2.
    code: str | None = Field(default=None, exclude_if=lambda v: v is None)


class PushResult(_Answer):
    """accepted: applied now; duplicates: seen before (already applied, never twice); rejected: with the reason."""

    protocol: Literal[1] = PROTOCOL_VERSION
    batch_id: uuid.UUID
    accepted: list[uuid.UUID]
    duplicates: list[uuid.UUID]
    rejected: list[Rejection]


class PushOutcome(_Answer):
    """The answer to a push sent as columns (sync.wire): one letter per change, in the batch's order (a: accepted,
    d: a duplicate, r: refused), and the refusals with their reasons; a thousand ids need not travel back."""

    protocol: Literal[1] = PROTOCOL_VERSION
    batch_id: uuid.UUID
    outcome: Annotated[str, Field(pattern=r"^[adr]*$", max_length=MAX_BATCH)]
    rejected: list[Rejection]


def push_outcome(result: "PushResult", order: list[uuid.UUID]) -> PushOutcome:
    accepted, duplicates = set(result.accepted), set(result.duplicates)
    letters = "".join("a" if i in accepted else "d" if i in duplicates else "r" for i in order)
    return PushOutcome(batch_id=result.batch_id, outcome=letters, rejected=result.rejected)


def push_result(outcome: PushOutcome, order: list[uuid.UUID]) -> "PushResult":
    """Back to a PushResult, given the batch's change ids in order (a hub answering for another batch is garbage:
    the letters then do not match the batch)."""
    if len(outcome.outcome) != len(order):
        raise ProtocolError("the hub answered for another batch")
    refused = {r.change_id for r in outcome.rejected}
    picked = {letter: [i for i, x in zip(order, outcome.outcome) if x == letter] for letter in "adr"}
    if set(picked["r"]) != refused:
        raise ProtocolError("the hub's refusals do not match its answer")
    return PushResult(batch_id=outcome.batch_id, accepted=picked["a"], duplicates=picked["d"], rejected=outcome.rejected)


class HubChange(Change):
    model_config = ConfigDict(extra="ignore", frozen=True)
    seq: Annotated[int, Field(ge=1)]   # the hub's monotonic sequence: the pull cursor


class PullPage(_Answer):
    protocol: Literal[1] = PROTOCOL_VERSION
    changes: list[HubChange]
    next_cursor: Annotated[int, Field(ge=0)]
    more: bool
    remaining: Annotated[int, Field(ge=0)] = 0   # after this page: for progress and a time estimate


class EnrollRequest(_Model):
    protocol: Literal[1] = PROTOCOL_VERSION
    code: Annotated[str, Field(min_length=6, max_length=64)]
    public_key: Annotated[str, Field(min_length=40, max_length=64)]   # raw Ed25519 key, base64
    device_id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]       # the spoke's own id, stamped on its changes
    device_name: Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,100}$")]   # printable: shown to hub staff


class EnrollResult(_Answer):
    protocol: Literal[1] = PROTOCOL_VERSION
    device_id: str
    facility_id: str
    facility_name: str
    # The hub's prescription key (base64 of the raw Ed25519 public key), for spokes of revision 2.
    hub_key: str | None = Field(default=None, exclude_if=lambda v: v is None)


class BoxKeyRequest(_Model):
    """An enrolled device registers its X25519 key (for the USB bundles the hub seals for it), signed as any
    request of that device; the answer is the hub's own, for the bundles the device seals for the hub."""

    protocol: Literal[1] = PROTOCOL_VERSION
    box_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")]   # raw X25519 key, base64


class CallRequest(_Model):
    """A spoke rings the doctors of its hub about a case (signed as any request of the device)."""

    protocol: Literal[1] = PROTOCOL_VERSION
    case_id: Annotated[str, Field(pattern=ID_PATTERN)]
    caller: Annotated[str, Field(max_length=200)] = ""      # the health worker who rings, as the doctor sees them


class IceServer(_Answer):
    """A STUN or TURN server for the call's media (a TURN one with credentials that expire in a few hours)."""

    urls: Annotated[list[Annotated[str, Field(max_length=300, pattern=r"^(stun|stuns|turn|turns):")]],
                    Field(min_length=1, max_length=8)]
    username: Annotated[str, Field(max_length=200)] = ""
    credential: Annotated[str, Field(max_length=200)] = ""


class CallStart(_Answer):
    """The hub's answer: the call rings; signalling goes over the WebSocket /v1/calls/{call_id}/signal."""

    call_id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]
    ring_seconds: Annotated[int, Field(ge=1, le=600)]
    ice_servers: Annotated[list[IceServer], Field(max_length=8)] = []


class BoxKeyResult(_Answer):
    protocol: Literal[1] = PROTOCOL_VERSION
    hub_key_id: str
    hub_box_key: str


class MediaStatus(_Answer):
    """What the hub holds of one file for this facility: `received` bytes confirmed, of `size`."""

    protocol: Literal[1] = PROTOCOL_VERSION
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]
    size: Annotated[int, Field(ge=0, le=MAX_MEDIA_BYTES)]
    received: Annotated[int, Field(ge=0)]
    complete: bool

    @model_validator(mode="after")
    def _consistent(self) -> "MediaStatus":
        if self.received > self.size or self.complete != (self.received == self.size):
            raise ValueError("received must be at most size, and complete exactly when all is received")
        return self


class SetDigest(_Answer):
    """An order-free fingerprint of a set of change ids: their count and the sum of their hashes mod 2^64."""

    count: Annotated[int, Field(ge=0)]
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


class Digest(_Answer):
    """What the hub holds for this device's facility: the changes of others up to `cursor` (what a pull up to
    there brings), and every change of this device. The spoke computes the same from its side; a difference
    means the two disagree (a hub restored from a backup, a spoke restored from an old copy) and calls for a
    full resync."""

    protocol: Literal[1] = PROTOCOL_VERSION
    cursor: Annotated[int, Field(ge=0)]
    others: SetDigest
    own: SetDigest


def set_digest(change_ids) -> SetDigest:
    total, count = 0, 0
    for change_id in change_ids:
        total = (total + int.from_bytes(hashlib.sha256(str(change_id).encode()).digest()[:8], "big")) & 0xFFFFFFFFFFFFFFFF
        count += 1
    return SetDigest(count=count, hash=f"{total:016x}")


class ErrorBody(_Answer):
    """Every 4xx/5xx of the hub: a machine code and a sentence for the user."""

    code: str
    message: str


class Health(_Answer):
    protocol: Literal[1] = PROTOCOL_VERSION
    status: Literal["ok"] = "ok"
    service: Literal["spoke-hub"] = "spoke-hub"


class ProtocolError(Exception):
    """A body that is not a well-formed message of this protocol (a captive portal's HTML page, say)."""


M = TypeVar("M", bound=BaseModel)


def encode(message: BaseModel) -> bytes:
    """Compact JSON, gzip-compressed (sent with Content-Encoding: gzip)."""
    return gzip.compress(message.model_dump_json().encode("utf-8"), compresslevel=6, mtime=0)


def decode(model: type[M], body: bytes, content_encoding: str | None = None) -> M:
    try:
        if (content_encoding or "").lower() == "gzip" or body[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=__import__("io").BytesIO(body)) as f:
                body = f.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise ProtocolError("message too large")
        return model.model_validate_json(body)
    except (ValidationError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not a valid {model.__name__}: {str(exc)[:300]}") from exc


def signing_text(method: str, path_and_query: str, counter: int, body: bytes) -> bytes:
    return f"spoke-v1\n{method.upper()}\n{path_and_query}\n{counter}\n{hashlib.sha256(body).hexdigest()}".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
