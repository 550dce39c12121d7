"""The spoke's HTTP link to a hub: signed requests, explicit timeouts, and only well-formed answers count."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sync.protocol import (
    H_COUNTER,
    H_DEVICE,
    H_SIGNATURE,
    EnrollRequest,
    EnrollResult,
    ErrorBody,
    Health,
    ProtocolError,
    PullPage,
    PushBatch,
    PushResult,
    b64,
    decode,
    encode,
    signing_text,
)

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60


class HubUnreachable(Exception):
    """No answer (no network, timeout, refused): nothing can be assumed delivered."""


class HubRefused(Exception):
    """The hub answered with an error it explained (revoked device, bad code...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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
    def __init__(self, base_url: str, *, device_id: str | None = None, key: Ed25519PrivateKey | None = None,
                 next_counter: Callable[[], int] | None = None, allow_plain_http: bool = False,
                 ca_bundle: str | None = None, session: requests.Session | None = None) -> None:
        self.base_url = check_url(base_url, allow_plain_http)
        self.device_id, self.key, self.next_counter = device_id, key, next_counter
        self.http = session or requests.Session()
        if ca_bundle:
            self.http.verify = ca_bundle

    # --- calls ----------------------------------------------------------------------------------
    def health(self) -> Health:
        return self._call("GET", "/v1/health", None, Health, signed=False)

    def enroll(self, code: str, key: Ed25519PrivateKey, device_id: str, device_name: str) -> EnrollResult:
        req = EnrollRequest(code=code.strip().upper(), public_key=public_key_b64(key), device_id=device_id,
                            device_name=device_name)
        return self._call("POST", "/v1/enroll", encode(req), EnrollResult, signed=False)

    def push(self, batch: PushBatch) -> PushResult:
        result = self._call("POST", "/v1/push", encode(batch), PushResult)
        if result.batch_id != batch.batch_id:
            raise HubGarbage("The hub answered for another batch.")
        return result

    def pull(self, after: int, limit: int = 500) -> PullPage:
        return self._call("GET", f"/v1/pull?after={after}&limit={limit}", None, PullPage)

    # --- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: bytes | None, model, *, signed: bool = True):
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
        if body is not None:
            headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if signed:
            if not (self.device_id and self.key and self.next_counter):
                raise HubRefused(401, "not_enrolled", "This computer is not enrolled with a hub yet.")
            counter = self.next_counter()
            signature = self.key.sign(signing_text(method, path, counter, body or b""))
            headers |= {H_DEVICE: self.device_id, H_COUNTER: str(counter), H_SIGNATURE: b64(signature)}
        try:
            r = self.http.request(method, self.base_url + path, data=body, headers=headers,
                                  timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), allow_redirects=False)
        except requests.RequestException as exc:  # a timeout is never success
            raise HubUnreachable(str(exc)) from exc
        if r.status_code >= 400:
            try:
                err = decode(ErrorBody, r.content)
            except ProtocolError:
                raise HubGarbage(f"HTTP {r.status_code} from something that is not the hub") from None
            raise HubRefused(r.status_code, err.code, err.message)
        if r.status_code != 200:
            raise HubGarbage(f"HTTP {r.status_code} (a redirect: a captive portal or proxy?)")
        try:
            return decode(model, r.content)  # requests already undid Content-Encoding
        except ProtocolError as exc:
            raise HubGarbage("The answer was not a hub message (a captive portal or proxy page?).") from exc
