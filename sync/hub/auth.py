"""Who is asking: enrolment with one-time codes, signed requests of enrolled devices, and a limit on guessing.

Every check that can be made without the body is made before it is read (the header's form, the device, its
counter), and a device's revocation (with its reason) is told only to a request that device really signed.
Failures are counted in the database, so all workers of `spoke-hub serve --workers N` count them together.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sync.hub.errors import HubError
from sync.hub.models import HubDevice, HubEnrollCode, HubFacility, HubThrottle
from sync.protocol import EnrollRequest, EnrollResult, H_COUNTER, H_DEVICE, H_SIGNATURE, signing_text, unb64

log = logging.getLogger(__name__)

ENROLL_CODE_TTL = timedelta(hours=24)
MAX_COUNTER = 2**63 - 1
# A request's counter may run ahead of the last one seen (requests lost on the way), but never by more than
# this: an honest PC sends far fewer requests in its life, and a jump to the top would leave it nowhere to go.
MAX_COUNTER_JUMP = 2**40
_DEVICE_ID = re.compile(r"[0-9a-f-]{36}")
_COUNTER = re.compile(r"[0-9]{1,19}")
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{86}==")

# At most this many failed attempts per key in a window: then 429 with Retry-After until the window ends.
THROTTLE_WINDOW = timedelta(minutes=15)
ENROLL_FAILURES_ALLOWED = 10      # wrong enrolment codes, per client address
SIGNATURE_FAILURES_ALLOWED = 20   # bad signatures, per device and client address


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Device:
    id: str
    facility_id: str


@dataclass(frozen=True)
class SignedHeaders:
    """The signature headers of a request, checked for their form (nothing read from the database yet)."""

    device_id: str
    counter: int
    signature: bytes


def signed_headers(headers: dict[str, str]) -> SignedHeaders:
    """The three signature headers, or 401 without reading the body: each must have the exact form a device
    writes (a counter of ASCII digits within 64 bits, a 64-byte signature in base64)."""
    device_id, counter, signature = (headers.get(h.lower(), "") for h in (H_DEVICE, H_COUNTER, H_SIGNATURE))
    if not (device_id or counter or signature):
        raise HubError(401, "unsigned", "This request is not signed by an enrolled device.")
    if not _DEVICE_ID.fullmatch(device_id):
        raise HubError(401, "bad_signature_headers", f"The {H_DEVICE} header is not a device id.")
    if not _COUNTER.fullmatch(counter) or int(counter) > MAX_COUNTER or int(counter) == 0:
        raise HubError(401, "bad_signature_headers", f"The {H_COUNTER} header must be a number from 1 to {MAX_COUNTER}.")
    if not _SIGNATURE.fullmatch(signature):
        raise HubError(401, "bad_signature_headers", f"The {H_SIGNATURE} header is not an Ed25519 signature in base64.")
    return SignedHeaders(device_id, int(counter), unb64(signature))


class HubAuth:
    """Enrolment and request authentication; mixed into sync.hub.service.Hub (needs .session)."""

    def create_facility(self, name: str, hwc_id: str) -> str:
        with self.session.begin() as s:
            existing = s.scalars(select(HubFacility).where(HubFacility.hwc_id == hwc_id)).first()
            if existing:
                return existing.id
            fid = str(uuid.uuid4())
            s.add(HubFacility(id=fid, name=name, hwc_id=hwc_id, created_at=utcnow()))
            return fid

    def enroll_code(self, facility_id: str) -> str:
        code = "-".join(secrets.token_hex(2).upper() for _ in range(3))  # e.g. 9F3A-11C2-7B0E, read over the phone
        with self.session.begin() as s:
            if s.get(HubFacility, facility_id) is None:
                raise HubError(404, "no_facility", "No such facility on this hub.")
            s.add(HubEnrollCode(code_hash=hash_code(code), facility_id=facility_id,
                                expires_at=utcnow() + ENROLL_CODE_TTL, used_at=None))
        return code

    def enroll(self, req: EnrollRequest, client: str = "") -> EnrollResult:
        throttle_key = f"enroll:{client}"
        self.throttle_check(throttle_key, ENROLL_FAILURES_ALLOWED)
        try:
            Ed25519PublicKey.from_public_bytes(unb64(req.public_key))
        except Exception as exc:  # noqa: BLE001 - any malformed key is the same refusal
            raise HubError(400, "bad_key", "The device's public key is not an Ed25519 key.") from exc
        with self.session.begin() as s:
            row = s.get(HubEnrollCode, hash_code(req.code), with_for_update=True)
            if row is None or row.used_at is not None or aware(row.expires_at) < utcnow():
                refusal = HubError(403, "bad_code", "This enrolment code is wrong, used or expired; ask the hub for a new one.")
            elif s.scalars(select(HubDevice).where(HubDevice.public_key == req.public_key)).first() or \
                    s.get(HubDevice, req.device_id) is not None:
                raise HubError(409, "already_enrolled", "This device is already enrolled with the hub.")
            else:
                refusal = None
                s.add(HubDevice(id=req.device_id, facility_id=row.facility_id, name=req.device_name,
                                public_key=req.public_key, last_counter=0, enrolled_at=utcnow(), revoked_at=None,
                                revoked_reason=""))
                row.used_at, row.used_by = utcnow(), req.device_id
                facility = s.get(HubFacility, row.facility_id)
                result = EnrollResult(device_id=req.device_id, facility_id=facility.id, facility_name=facility.name)
        if refusal is not None:
            self.throttle_fail(throttle_key)
            log.warning("enrolment refused: %s (from %s)", refusal.code, client or "?")
            raise refusal
        log.info("device %s enrolled for facility %s", req.device_id, result.facility_id)
        return result

    def revoke(self, device_id: str, reason: str = "") -> None:
        with self.session.begin() as s:
            device = s.get(HubDevice, device_id)
            if device is None:
                raise HubError(404, "no_device", "No such device.")
            device.revoked_at, device.revoked_reason = utcnow(), reason

    def authenticate(self, method: str, path_and_query: str, signed: SignedHeaders, body: bytes,
                     client: str = "") -> Device:
        throttle_key = f"sig:{signed.device_id}:{client}"
        self.throttle_check(throttle_key, SIGNATURE_FAILURES_ALLOWED)
        with self.session.begin() as s:
            device = s.get(HubDevice, signed.device_id, with_for_update=True)
            refusal = self._check_request(device, method, path_and_query, signed, body)
            if refusal is None:
                device.last_counter, device.seen_below = _seen(device.last_counter, device.seen_below, signed.counter)
                result = Device(device.id, device.facility_id)
        if refusal is not None:
            if refusal.code in ("unknown_device", "bad_signature"):
                self.throttle_fail(throttle_key)
            log.warning("request refused: %s (device %s)", refusal.code, signed.device_id)
            raise refusal
        return result

    @staticmethod
    def _check_request(device: HubDevice | None, method: str, path_and_query: str, signed: SignedHeaders,
                       body: bytes) -> HubError | None:
        if device is None:
            return HubError(401, "unknown_device", "This device is not enrolled with the hub.")
        try:
            Ed25519PublicKey.from_public_bytes(unb64(device.public_key)).verify(
                signed.signature, signing_text(method, path_and_query, signed.counter, body))
        except (InvalidSignature, ValueError):
            # Before the revocation: a stranger learns nothing of a device, not even that it was revoked or why.
            return HubError(401, "bad_signature", "The request's signature does not match this device.")
        if device.revoked_at is not None:
            when = aware(device.revoked_at).strftime("%d %b %Y")
            return HubError(403, "revoked", f"The hub refused this device: it was revoked on {when}."
                                            + (f" ({device.revoked_reason})" if device.revoked_reason else ""))
        if signed.counter <= device.last_counter and not _unseen_in_window(device.last_counter, device.seen_below,
                                                                           signed.counter):
            # Validly signed, so it is the device itself: a replay, or a PC restored from an older copy whose
            # counter went back. Telling it the last number seen lets it continue above (a replay gains nothing).
            return HubError(409, "replayed", "This request was already received (replayed counter).",
                            headers={"Spoke-Counter-Last": str(device.last_counter)})
        if signed.counter - device.last_counter > MAX_COUNTER_JUMP:
            return HubError(400, "counter_jump", "This request's number jumps too far ahead of the last one the hub "
                                                 "saw from this device; the hub refused it.",
                            headers={"Spoke-Counter-Last": str(device.last_counter)})
        return None

    # --- guessing limits ----------------------------------------------------------------------------------
    def throttle_check(self, key: str, allowed: int) -> None:
        with self.session() as s:
            row = s.get(HubThrottle, key)
            if row is None or row.failures < allowed:
                return
            ends = aware(row.window_start) + THROTTLE_WINDOW
            if ends <= utcnow():
                return
        wait = max(1, int((ends - utcnow()).total_seconds()) + 1)
        raise HubError(429, "too_many_failures", "Too many failed attempts from here; wait a few minutes and try again.",
                       retry_after=wait)

    def throttle_fail(self, key: str) -> None:
        """Counts one failure, in its own transaction (the request itself is refused and rolled back). One
        upsert, so two workers counting the first failure of a key at once do not collide."""
        now = utcnow()
        table = HubThrottle.__table__
        insert_ = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        stale = table.c.window_start <= now - THROTTLE_WINDOW
        statement = insert_(table).values(key=key, window_start=now, failures=1)
        statement = statement.on_conflict_do_update(index_elements=[table.c.key], set_={
            "failures": case((stale, 1), else_=table.c.failures + 1),
            "window_start": case((stale, now), else_=table.c.window_start)})
        with self.session.begin() as s:
            s.execute(statement)
            s.execute(delete(HubThrottle).where(HubThrottle.window_start < now - 4 * THROTTLE_WINDOW))


# Anti-replay window (as IPsec's): besides the highest number seen, which of the WINDOW numbers below it were seen,
# as bits. A spoke with two requests on the way may have the later one arrive first; each number is still taken
# at most once.
WINDOW = 62   # bits of a signed 64-bit column, with room to spare


def _unseen_in_window(last: int, seen_below: int, counter: int) -> bool:
    gap = last - counter
    return 0 < gap <= WINDOW and not (seen_below >> (gap - 1)) & 1


def _seen(last: int, seen_below: int, counter: int) -> tuple[int, int]:
    """(highest number seen, bits of the numbers seen below it) after `counter` was accepted."""
    if counter > last:
        shift = counter - last
        # The old highest becomes bit shift-1; the bits below it move along; whatever falls out of the window goes.
        moved = ((seen_below << shift) | (1 << (shift - 1))) if shift <= WINDOW else 0
        return counter, moved & ((1 << WINDOW) - 1)
    return last, seen_below | (1 << (last - counter - 1))


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()
