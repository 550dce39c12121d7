"""The wire as a spoke of release 0.1 speaks it, frozen here: gzip JSON both ways, no revision header, and
answer models that refuse any key they do not know. A newer hub must still be understood by it."""

from __future__ import annotations

import gzip
import uuid
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict

from sync.protocol import b64, signing_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rejection(_Strict):
    change_id: uuid.UUID
    reason: str


class PushResult(_Strict):
    protocol: Literal[1]
    batch_id: uuid.UUID
    accepted: list[uuid.UUID]
    duplicates: list[uuid.UUID]
    rejected: list[Rejection]


class HubChange(_Strict):
    change_id: uuid.UUID
    entity: str
    entity_id: str
    version: int
    op: Literal["upsert", "delete"]
    hlc: str
    device_id: str
    payload: dict[str, Any] | None = None
    seq: int


class PullPage(_Strict):
    protocol: Literal[1]
    changes: list[HubChange]
    next_cursor: int
    more: bool
    remaining: int = 0


class Protocol1Spoke:
    def __init__(self, url: str, device_id: str, key) -> None:
        self.url, self.device_id, self.key, self.counter = url, device_id, key, 0

    def _send(self, method: str, path: str, body: bytes = b"") -> requests.Response:
        self.counter += 1
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip", "Spoke-Device": self.device_id,
                   "Spoke-Counter": str(self.counter),
                   "Spoke-Signature": b64(self.key.sign(signing_text(method, path, self.counter, body)))}
        if body:
            headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return requests.request(method, self.url + path, data=body or None, headers=headers, timeout=30)

    def push(self, changes: list[dict]) -> PushResult:
        import json

        body = gzip.compress(json.dumps({"protocol": 1, "batch_id": str(uuid.uuid4()), "changes": changes}).encode())
        r = self._send("POST", "/v1/push", body)
        assert r.status_code == 200, r.text
        return PushResult.model_validate_json(r.content)

    def pull(self, after: int, limit: int = 500) -> PullPage:
        r = self._send("GET", f"/v1/pull?after={after}&limit={limit}")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"), r.headers
        return PullPage.model_validate_json(r.content)
