"""Relaying a spoke's bundle to its hub from any PC with a network (`spoke-hub bundle upload FILE --hub URL`).

The relay reads only the bundle's readable header; it cannot open the sealed part, and needs no key and no
enrolment: the hub checks the sending PC's signature. Each part goes in chunks the hub confirms one by one, so a
cut link resumes at the last confirmed byte, on the next try or the next day. Parts may be relayed on different
days, from different PCs: the hub imports the bundle when its last part arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from sync import bundle
from sync.bundle import BundleError
from sync.transport.http import check_url

CHUNK = 1024 * 1024
ATTEMPTS = 8                       # tries in a row without any progress before giving up
FIRST_ATTEMPTS = 3                 # ... when the hub never answered at all in this run (a dead link, a wrong address)
BACKOFF_S = (1, 2, 5, 10, 20, 30)
TIMEOUT_S = (10, 120)


class RelayFailed(Exception):
    """The hub could not be reached or answered garbage; what it confirmed is kept for the next try."""


@dataclass(frozen=True)
class RelayReport:
    parts_sent: tuple[int, ...]       # parts this relay sent (or found already complete)
    waiting: tuple[int, ...]          # parts the hub still waits for (from another drive, another day)
    outcome: str                      # the hub's sentence once the whole bundle was imported
    bytes_sent: int


def relay(path: Path, hub_url: str, *, allow_plain_http: bool = False, ca_bundle: str | None = None,
          progress: Callable[[int, int], None] | None = None, session: requests.Session | None = None,
          chunk: int = CHUNK, sleep: Callable[[float], None] = time.sleep) -> RelayReport:
    base = check_url(hub_url, allow_plain_http)
    header = bundle.read_header(Path(path))
    if header.kind != "spoke":
        raise BundleError("other_hub", "This is a return bundle for a spoke PC: copy it to that PC's drive; it does "
                                       "not go to the hub.")
    here = [(n, p) for n, p in enumerate(bundle.part_paths(_first(Path(path), header), header.parts), start=1)
            if p.exists()]
    http = session or requests.Session()
    verify: str | bool = ca_bundle or True
    total = sum(p.stat().st_size for _n, p in here)
    sent_bytes = done = 0
    status: dict = {}
    for n, part_path in here:
        h = header if n == header.part else bundle.read_header(part_path)
        if h.bundle_id != header.bundle_id:
            continue
        status = _send_part(http, verify, base, h, part_path, chunk, sleep,
                            lambda d, offset=done: progress and progress(offset + d, total))
        sent_bytes += status.pop("_sent", 0)
        done += part_path.stat().st_size
    return RelayReport(tuple(n for n, _p in here), tuple(status.get("waiting", ())), status.get("outcome", ""),
                       sent_bytes)


def _first(path: Path, header: bundle.Header) -> Path:
    name = path.name
    if header.part > 1:
        name = name.replace(f".part{header.part}{bundle.SUFFIX}", bundle.SUFFIX)
    return path.with_name(name)


def _send_part(http: requests.Session, verify, base: str, header: bundle.Header, path: Path, chunk: int,
               sleep, progress) -> dict:
    url = f"{base}/v1/bundles/{header.bundle_id}/{header.part}"
    failures, sent, answered = 0, 0, False
    status = None
    with open(path, "rb") as f:
        while True:
            try:
                if status is None:
                    status = _answer(http.get(url, timeout=TIMEOUT_S, verify=verify))
                    answered = True
                if status["complete"]:
                    status["_sent"] = sent
                    return status
                offset = int(status["received"])
                f.seek(offset)
                data = f.read(max(chunk, bundle.PREFIX_BYTES) if offset == 0 else chunk)
                r = http.put(url, params={"offset": offset, "size": header.size}, data=data, timeout=TIMEOUT_S,
                             verify=verify, headers={"Content-Type": "application/octet-stream"})
                if r.status_code == 409:
                    status = None    # our idea of what the hub has was stale: ask again
                    continue
                status = _answer(r)
                if int(status["received"]) <= offset and not status["complete"]:
                    raise RelayFailed("The hub did not confirm the bytes it was sent.")
                sent += len(data)
                failures = 0
                progress(int(status["received"]))
            except (requests.ConnectionError, requests.Timeout, RelayFailed) as exc:
                failures += 1
                status = None
                if failures >= (ATTEMPTS if answered else FIRST_ATTEMPTS):
                    raise RelayFailed(f"The hub cannot be reached ({exc}); what it confirmed is kept: run the same "
                                      "command again to go on from there.") from None
                sleep(BACKOFF_S[min(failures - 1, len(BACKOFF_S) - 1)])


def _answer(r: requests.Response) -> dict:
    try:
        body = r.json()
    except ValueError:
        raise RelayFailed(f"HTTP {r.status_code} from something that is not the hub (a captive portal?)") from None
    if r.status_code == 422 and isinstance(body, dict):
        raise BundleError(str(body.get("code", "damaged")), str(body.get("message", "The hub refused the bundle.")))
    if r.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(body, dict) and body.get("code") == "too_much_pending":
            raise BundleError("refused", message or "The hub holds too much of this PC's unfinished bundles.")
        if r.status_code in (429, 503):
            raise RelayFailed(message or "The hub is busy.")
        raise BundleError("refused", message or f"The hub refused the bundle (HTTP {r.status_code}).")
    if not (isinstance(body, dict) and isinstance(body.get("received"), int) and isinstance(body.get("complete"), bool)):
        raise RelayFailed("The hub's answer was not a bundle upload status.")
    return body
