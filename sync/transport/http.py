"""The spoke's HTTP link to a hub: signed requests, explicit timeouts, and only well-formed answers count."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pydantic import ValidationError

from sync.files import PartialDownload, PlainPartial, sha256_blocks
from sync.protocol import (
    H_COUNTER,
    H_DEVICE,
    H_HUB_TIME,
    H_PROTOCOL,
    H_SIGNATURE,
    PROTOCOL_REVISION,
    MEDIA_CONTENT_TYPE,
    BoxKeyRequest,
    BoxKeyResult,
    CallRequest,
    CallStart,
    Digest,
    EnrollRequest,
    EnrollResult,
    ErrorBody,
    Health,
    MediaStatus,
    ProtocolError,
    PullPage,
    PushBatch,
    PushOutcome,
    PushResult,
    b64,
    decode,
    encode,
    push_result,
    signing_text,
)
from sync.wire import CHANGES_TYPE, H_WIRE, WIRE_COLUMNS, decode_changes, encode_changes

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60


class HubUnreachable(Exception):
    """No answer (no network, timeout, refused): nothing can be assumed delivered."""


class HubRefused(Exception):
    """The hub answered with an error it explained (revoked device, bad code...)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after   # seconds the hub asked us to wait (429/503), if it said


class HubGarbage(Exception):
    """Something answered, but not the hub (a captive portal, a proxy): treated as not delivered."""


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def check_url(url: str, allow_plain_http: bool = False) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return url.rstrip("/")
    if parts.scheme == "http" and (allow_plain_http or parts.hostname in ("127.0.0.1", "localhost", "::1")):
        return url.rstrip("/")
    raise ValueError("The hub address must start with https:// (plain http only to this computer, or when allowed).")


class HubClient:
    # A kept-alive connection may be closed by the hub (uvicorn closes idle ones after 5 s) just as a request goes
    # out on it: the classic keep-alive race, which only using the connection reveals. Such a request is sent once
    # more on a new connection; for a push that is safe, the hub applies each change once.
    retry_stale = True

    def __init__(self, base_url: str, *, device_id: str | None = None, key: Ed25519PrivateKey | None = None,
                 next_counter: Callable[[], int] | None = None, allow_plain_http: bool = False,
                 ca_bundle: str | None = None, session: requests.Session | None = None,
                 raise_counter: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.base_url = check_url(base_url, allow_plain_http)
        self.device_id, self.key, self.next_counter = device_id, key, next_counter
        self.raise_counter = raise_counter   # after a restore from an older copy: continue above the hub's last
        self.http = session or requests.Session()
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE in the environment override a
        # session's setting, and a configured bundle must win.
        self.verify: str | bool = ca_bundle or True
        self.clock_offset_ms: int | None = None   # the hub's clock minus ours, from its last answer
        self.clock = clock                        # this PC's clock, in seconds (what its records are stamped by)
        self.columns = False   # the hub said it reads and writes sync.wire's columns (set from its answers)
        self.prefer_columns = True   # False: the gzip JSON rows of release 0.1 (to compare, or to diagnose)

    # --- calls ----------------------------------------------------------------------------------
    def health(self) -> Health:
        return self._call("GET", "/v1/health", None, Health, signed=False)

    def enroll(self, code: str, key: Ed25519PrivateKey, device_id: str, device_name: str) -> EnrollResult:
        req = EnrollRequest(code=code.strip().upper(), public_key=public_key_b64(key), device_id=device_id,
                            device_name=device_name)
        return self._call("POST", "/v1/enroll", encode(req), EnrollResult, signed=False)

    def register_box_key(self, public_b64: str) -> BoxKeyResult:
        """Registers this PC's X25519 key (for USB bundles) and returns the hub's."""
        return self._call("POST", "/v1/box-key", encode(BoxKeyRequest(box_key=public_b64)), BoxKeyResult)

    def encode_push(self, batch: PushBatch) -> tuple[bytes, str | None]:
        """The body of a push and its content type: columns for a hub that reads them, gzip JSON for any other."""
        if self.columns:
            changes = [{"change_id": str(c.change_id), "entity": c.entity, "entity_id": c.entity_id, "version": c.version,
                        "op": c.op.value, "hlc": c.hlc, "device_id": c.device_id, "payload": c.payload}
                       for c in batch.changes]
            return encode_changes(changes, protocol=batch.protocol, batch_id=str(batch.batch_id)), CHANGES_TYPE
        return encode(batch), None

    def push(self, batch: PushBatch, body: bytes | tuple[bytes, str | None] | None = None) -> PushResult:
        """body: the batch already encoded, with its content type (the engine encodes the next batch while this
        one travels)."""
        if body is None:
            body = self.encode_push(batch)
        data, content_type = body if isinstance(body, tuple) else (body, None)
        if content_type == CHANGES_TYPE:
            outcome = self._call("POST", "/v1/push", data, PushOutcome, content_type=content_type)
            try:
                result = push_result(outcome, [c.change_id for c in batch.changes])
            except ProtocolError as exc:
                raise HubGarbage(f"The hub's answer does not fit the batch: {exc}") from None
        else:
            result = self._call("POST", "/v1/push", data, PushResult, content_type=content_type)
        if result.batch_id != batch.batch_id:
            raise HubGarbage("The hub answered for another batch.")
        return result

    def pull(self, after: int, limit: int = 500, own: bool = False, count: bool = True) -> PullPage:
        path = f"/v1/pull?after={after}&limit={limit}" + ("&own=true" if own else "") + ("" if count else "&count=false")
        r = self._send("GET", path, None,
                       accept=f"{CHANGES_TYPE}, application/json;q=0.5" if self.prefer_columns else "application/json")
        self._raise_for_error(r)
        if r.status_code != 200:
            raise HubGarbage(f"HTTP {r.status_code} (a redirect: a captive portal or proxy?)")
        if r.headers.get("Content-Type", "").split(";")[0].strip() != CHANGES_TYPE:
            try:
                return decode(PullPage, r.content)
            except ProtocolError as exc:
                raise HubGarbage("The answer was not a hub message (a captive portal or proxy page?).") from exc
        try:
            meta, changes = decode_changes(r.content)
            return PullPage(protocol=meta.get("protocol", 1), changes=changes, next_cursor=meta.get("next_cursor"),
                            more=meta.get("more"), remaining=meta.get("remaining", 0))
        except (ProtocolError, ValidationError) as exc:
            raise HubGarbage("The hub's page of changes could not be read.") from exc

    def digest(self, cursor: int) -> Digest:
        result = self._call("GET", f"/v1/digest?cursor={cursor}", None, Digest)
        if result.cursor != cursor:
            raise HubGarbage("The hub answered for another cursor.")
        return result

    def media_status(self, sha256: str, size: int) -> MediaStatus:
        return self._checked_status(self._call("GET", f"/v1/media/{sha256}/status?size={size}", None, MediaStatus),
                                    sha256, size)

    def media_put(self, sha256: str, offset: int, size: int, chunk: bytes) -> MediaStatus:
        status = self._call("PUT", f"/v1/media/{sha256}?offset={offset}&size={size}", chunk, MediaStatus,
                            content_type=MEDIA_CONTENT_TYPE)
        return self._checked_status(status, sha256, size)

    def media_get(self, sha256: str, dest: Path | PartialDownload, chunk_bytes: int = 1 << 16,
                  progress: Callable[[int], None] | None = None) -> None:
        """Downloads into dest (a path, or a PartialDownload the caller keeps, sealed or not), resuming a partial
        one by a Range request; the file is accepted only if its SHA-256 matches (a proxy's page or a cut stream
        never passes for the file)."""
        partial = PlainPartial(dest) if isinstance(dest, Path) else dest
        have = partial.size()
        headers = {"Range": f"bytes={have}-"} if have else {}
        r = self._send("GET", f"/v1/media/{sha256}", None, accept=MEDIA_CONTENT_TYPE, extra=headers, stream=True)
        try:
            if r.status_code == 416 and have:
                return self._verify_download(partial, sha256)   # we already had it all
            self._raise_for_error(r)
            if r.headers.get("Content-Type", "").split(";")[0] != MEDIA_CONTENT_TYPE:
                raise HubGarbage("The answer was not a file from the hub (a captive portal or proxy page?).")
            if r.status_code == 200:
                have = 0   # the server ignored the range: start over
            elif r.status_code != 206:
                raise HubGarbage(f"HTTP {r.status_code} while fetching a file")
            with partial.writer(have) as write:
                try:
                    for block in r.iter_content(chunk_bytes):
                        write(block)
                        if progress:
                            progress(len(block))
                except requests.RequestException as exc:
                    raise HubUnreachable(f"the link was cut during a download ({exc})") from exc
        finally:
            r.close()
        self._verify_download(partial, sha256)

    @staticmethod
    def _verify_download(partial: PartialDownload, sha256: str) -> None:
        try:
            whole = sha256_blocks(partial.blocks())
        except OSError:
            whole = None       # a kept download that no longer opens (damaged): fetched again
        if whole != sha256:
            partial.discard()
            raise HubGarbage("A file from the hub arrived damaged (checksum mismatch); it will be fetched again.")

    @staticmethod
    def _checked_status(status: MediaStatus, sha256: str, size: int) -> MediaStatus:
        if status.sha256 != sha256 or status.size != size:
            raise HubGarbage("The hub answered for another file.")
        return status

    def start_call(self, case_id: str, caller: str) -> CallStart:
        """Rings the doctors of the hub about a case; the answer names the call and its ICE servers."""
        return self._call("POST", "/v1/calls", encode(CallRequest(case_id=case_id, caller=caller[:200])), CallStart)

    def signed_headers(self, method: str, path: str) -> dict[str, str]:
        """The signature headers of a bodiless request (the WebSocket upgrade of a call's signalling)."""
        if not (self.device_id and self.key and self.next_counter):
            raise HubRefused(401, "not_enrolled", "This computer is not enrolled with a hub yet.")
        counter = self.next_counter()
        signature = self.key.sign(signing_text(method, path, counter, b""))
        return {H_DEVICE: self.device_id, H_COUNTER: str(counter), H_SIGNATURE: b64(signature),
                H_PROTOCOL: str(PROTOCOL_REVISION)}

    # --- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: bytes | None, model, *, signed: bool = True,
              content_type: str | None = None):
        r = self._send(method, path, body, signed=signed, content_type=content_type)
        self._raise_for_error(r)
        if r.status_code != 200:
            raise HubGarbage(f"HTTP {r.status_code} (a redirect: a captive portal or proxy?)")
        try:
            return decode(model, r.content)  # requests already undid Content-Encoding
        except ProtocolError as exc:
            raise HubGarbage("The answer was not a hub message (a captive portal or proxy page?).") from exc

    @staticmethod
    def _raise_for_error(r: requests.Response) -> None:
        if r.status_code < 400:
            return
        try:
            err = decode(ErrorBody, r.content)
        except ProtocolError:
            raise HubGarbage(f"HTTP {r.status_code} from something that is not the hub") from None
        raise HubRefused(r.status_code, err.code, err.message, retry_after=_retry_after(r))

    def _send(self, method: str, path: str, body: bytes | None, *, signed: bool = True, content_type: str | None = None,
              accept: str = "application/json", extra: dict[str, str] | None = None,
              stream: bool = False) -> requests.Response:
        headers = {"Accept": accept, "Accept-Encoding": "gzip", H_PROTOCOL: str(PROTOCOL_REVISION)} | (extra or {})
        if body is not None:
            if content_type:
                headers["Content-Type"] = content_type
            else:
                headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        for attempt in (1, 2):
            try:
                r = self._send_once(method, path, body, dict(headers), signed, stream)
            except _Closed as exc:
                if not self.retry_stale:
                    raise HubUnreachable(str(exc)) from exc
                try:   # once more, on a new connection, signed anew
                    r = self._send_once(method, path, body, dict(headers), signed, stream)
                except _Closed as again:
                    raise HubUnreachable(str(again)) from again
            self._note_hub_time(r)
            last = r.headers.get("Spoke-Counter-Last", "")
            if attempt == 1 and signed and r.status_code == 409 and last.isdigit() and self.raise_counter:
                r.close()
                self.raise_counter(int(last))   # our counter went back (a restored copy): continue above, once
                continue
            return r
        return r

    def _note_hub_time(self, r: requests.Response) -> None:
        if self.prefer_columns and WIRE_COLUMNS in r.headers.get(H_WIRE, ""):
            self.columns = True
        value = r.headers.get(H_HUB_TIME, "")
        if value.isascii() and value.isdigit() and len(value) <= 15:
            self.clock_offset_ms = int(value) - int(self.clock() * 1000)

    def _send_once(self, method: str, path: str, body: bytes | None, headers: dict[str, str], signed: bool,
                   stream: bool) -> requests.Response:
        if signed:
            if not (self.device_id and self.key and self.next_counter):
                raise HubRefused(401, "not_enrolled", "This computer is not enrolled with a hub yet.")
            counter = self.next_counter()
            signature = self.key.sign(signing_text(method, path, counter, body or b""))
            headers |= {H_DEVICE: self.device_id, H_COUNTER: str(counter), H_SIGNATURE: b64(signature)}
        try:
            return self.http.request(method, self.base_url + path, data=body, headers=headers, stream=stream,
                                     timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), allow_redirects=False,
                                     verify=self.verify)
        except requests.ConnectionError as exc:
            if _closed_by_the_other_end(exc):
                raise _Closed(str(exc)) from exc
            raise HubUnreachable(str(exc)) from exc
        except requests.RequestException as exc:  # a timeout is never success
            raise HubUnreachable(str(exc)) from exc


class _Closed(HubUnreachable):
    """The other end closed the connection before answering (not a timeout, not a refused connection)."""


def _closed_by_the_other_end(exc: BaseException) -> bool:
    import http.client

    if isinstance(exc, requests.Timeout):
        return False
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            return True
        nested = next((a for a in getattr(cause, "args", ()) if isinstance(a, BaseException)), None)
        reason = getattr(cause, "reason", None)   # urllib3 keeps the cause there (and ssl a string)
        cause = cause.__cause__ or cause.__context__ or nested or (reason if isinstance(reason, BaseException) else None)
    return False


def _retry_after(r: requests.Response) -> float | None:
    """Retry-After in seconds (RFC 9110: delay-seconds or an HTTP date), or None."""
    value = r.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime
        from datetime import datetime, timezone

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None
