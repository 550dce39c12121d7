"""The client sync engine: push the outbox in batches, then pull pages after the cursor; resumable at any cut.

Generic over the local store (the Outbox and Inbox protocols), so it imports nothing of the spoke app.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sync.files import PartialDownload, sha256_file
from sync.protocol import MAX_CHUNK_BYTES, REJECT_CLOCK_AHEAD, Change, PullPage, PushBatch, PushResult, Rejection, SetDigest
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable


class Outbox(Protocol):
    def unsent(self, limit: int) -> list[Change]: ...
    def mark_sent(self, change_ids: list[str]) -> None: ...
    def quarantine(self, rejections: list[Rejection]) -> None: ...
    def pending(self) -> int: ...


class Inbox(Protocol):
    def cursor(self) -> int: ...
    # Stores the page and next_cursor in one transaction; `prepared` is what prepare() (if the inbox has it) made
    # of the page on the fetching thread: work that needs no database, done beside the SQL of the page before.
    def apply(self, page: PullPage, prepared: Any = None) -> int: ...
    def local_digest(self, cursor: int) -> tuple[SetDigest, SetDigest]: ...   # (others up to cursor, own sent)
    def prepare_resync(self, pull_again: bool, push_again: bool) -> None: ...  # unsent work is never touched
    def pull_own(self) -> bool: ...     # in a full resync: our own changes come back too
    def pull_done(self) -> None: ...


@dataclass(frozen=True)
class MediaItem:
    sha256: str
    size: int
    path: Path
    # The plain content of a file kept sealed at rest (the spoke's media store): read through this, not `path`.
    opener: Callable[[], BinaryIO] | None = None
    # Where a download goes, when not a plain file at `path` (a spoke keeps its downloads sealed as they arrive).
    partial: PartialDownload | None = None

    def open(self) -> BinaryIO:
        return self.opener() if self.opener is not None else open(self.path, "rb")


class MediaBox(Protocol):
    """The local file store as sync sees it: files to upload, files other PCs made that are still to fetch."""

    def media_to_upload(self) -> list[MediaItem]: ...
    def media_uploaded(self, sha256: str) -> None: ...
    def media_failed(self, sha256: str, reason: str) -> None: ...
    def media_to_fetch(self) -> list[MediaItem]: ...        # path: where the download goes (resumable)
    def media_fetched(self, item: MediaItem) -> None: ...


MIN_CHUNK, FIRST_CHUNK = 16 * 1024, 64 * 1024
PUSH_IN_FLIGHT = 2   # batches on the way at once: the hub applies one while the next travels
CHUNK_SECONDS = (2.0, 8.0)   # grow chunks while one takes under 2 s, shrink above 8 s: few requests, small re-sends


@dataclass
class SyncReport:
    pushed: int = 0
    already_there: int = 0
    quarantined: int = 0
    pulled: int = 0
    pending: int = 0
    files_uploaded: int = 0
    files_already_there: int = 0
    files_refused: int = 0
    files_fetched: int = 0
    bytes_uploaded: int = 0
    error: str | None = None
    error_kind: str | None = None   # unreachable | refused | busy | garbage | cancelled
    retry_after: float | None = None  # seconds, when the hub asked to wait
    checked: bool = False             # the divergence check ran
    resynced: str = ""                # what a full resync repaired: "", "pull", "push" or "pull+push"
    diverged: bool = False            # still different from the hub after a resync
    quarantine_reasons: list[str] = field(default_factory=list)
    clock_refused: int = 0            # changes the hub refused because this PC's clock is far ahead (kept queued)
    clock_offset_ms: int | None = None  # the hub's clock minus ours, from its last answer

    @property
    def ok(self) -> bool:
        return (self.error is None and self.quarantined == 0 and self.files_refused == 0 and not self.diverged
                and self.clock_refused == 0)


Progress = Callable[[str, int, int], None]  # (stage, done, total)


class SyncEngine:
    def __init__(self, client: HubClient, outbox: Outbox, inbox: Inbox, media: MediaBox | None = None, *,
                 batch_size: int = 1000, page_size: int = 2000) -> None:
        self.client, self.outbox, self.inbox, self.media = client, outbox, inbox, media
        self.batch_size, self.page_size = batch_size, page_size
        self.push_in_flight = PUSH_IN_FLIGHT
        self.chunk_bytes = FIRST_CHUNK

    def run_once(self, progress: Progress | None = None, cancel: threading.Event | None = None,
                 verify: bool = False) -> SyncReport:
        """One round: push, upload files, pull, fetch files; with verify, then compare digests with the hub and,
        where they differ, resync in full (pull everything again, offer every sent change again) and compare
        once more. Unsent local work is never touched by a resync."""
        report = SyncReport()
        try:
            self._round(report, progress, cancel)
            if verify:
                report.checked = True
                others_differ, push_again = self._differs()
                # Our own changes differ: offer them all again, and pull ours back too (a PC restored from an
                # older copy lost some of what it had sent).
                pull_again = others_differ or push_again
                if pull_again:
                    self.inbox.prepare_resync(pull_again, push_again)
                    report.resynced = "+".join(x for x, on in (("pull", pull_again), ("push", push_again)) if on)
                    self._round(report, progress, cancel)
                    report.diverged = any(self._differs())
        except HubUnreachable as exc:
            report.error, report.error_kind = f"The hub cannot be reached ({exc}).", "unreachable"
        except HubRefused as exc:
            busy = exc.status in (429, 503)
            report.error, report.error_kind = exc.message, "busy" if busy else "refused"
            report.retry_after = exc.retry_after
        except HubGarbage as exc:
            report.error, report.error_kind = str(exc), "garbage"
        except _Cancelled:
            report.error, report.error_kind = "Sync was stopped.", "cancelled"
        report.pending = self.outbox.pending()
        report.clock_offset_ms = getattr(self.client, "clock_offset_ms", None)
        return report

    def _push(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        """The outbox in batches, PUSH_IN_FLIGHT of them on the way at once (the hub works on one while the next
        travels), each acknowledged on its own: only what the hub acknowledged is marked sent, whatever order
        the answers come in."""
        total = self.outbox.pending()
        if not hasattr(self.outbox, "unsent_page"):   # an outbox read from its start each time: one at a time
            while True:
                _check(cancel)
                changes = self.outbox.unsent(self.batch_size)
                if not changes:
                    return
                batch = PushBatch(batch_id=uuid.uuid4(), changes=changes)
                self._settle(report, batch, self.client.push(batch), total, progress)
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        batches = _Prefetch(self.outbox, self.batch_size, self.client)
        in_flight: dict = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.push_in_flight, thread_name_prefix="sync-push") as pool:
            try:
                while True:
                    _check(cancel)
                    item = batches.next()
                    if item is None:
                        break
                    batch, body = item
                    in_flight[pool.submit(self.client.push, batch, body)] = batch
                    while len(in_flight) >= self.push_in_flight:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        for future in done:
                            self._settle(report, in_flight.pop(future), future.result(), total, progress)
            except BaseException as exc:  # noqa: BLE001 - the batches already on the way are still settled below
                failure = exc
            finally:
                batches.stop()
            for future in list(in_flight):    # what was already sent: acknowledged if it was, re-sent next time if not
                try:
                    self._settle(report, in_flight.pop(future), future.result(), total, progress)
                except BaseException as exc:  # noqa: BLE001
                    failure = failure or exc
        if failure is not None:
            raise failure

    def _settle(self, report: SyncReport, batch: PushBatch, result: PushResult, total: int,
                progress: Progress | None) -> None:
        # Only what the hub acknowledged is marked sent; a lost answer means the same batch goes again,
        # and the hub reports it as duplicates.
        self.outbox.mark_sent([str(i) for i in result.accepted + result.duplicates])
        self.outbox.quarantine(result.rejected)   # the outbox keeps those refused for our clock queued
        report.pushed += len(result.accepted)
        report.already_there += len(result.duplicates)
        clock = [r for r in result.rejected if r.code == REJECT_CLOCK_AHEAD]
        report.clock_refused += len(clock)
        report.quarantined += len(result.rejected) - len(clock)
        report.quarantine_reasons += [r.reason for r in result.rejected if r.code != REJECT_CLOCK_AHEAD]
        answered = len(result.accepted) + len(result.duplicates) + len(result.rejected)
        if answered < len(batch.changes):
            raise HubGarbage("The hub answered for only part of the batch.")
        if progress:
            progress("push", report.pushed + report.already_there + report.quarantined + report.clock_refused, total)

    def _round(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        self._push(report, progress, cancel)
        if self.media is not None:
            self._upload(report, progress, cancel)
        self._pull(report, progress, cancel)
        if self.media is not None:
            self._fetch(report, progress, cancel)

    def _differs(self) -> tuple[bool, bool]:
        cursor = self.inbox.cursor()
        remote = self.client.digest(cursor)
        others, own = self.inbox.local_digest(cursor)
        return others != remote.others, own != remote.own

    def _upload(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        """Each file: ask the hub how much it has, send the rest in chunks, each confirmed before the next."""
        items = self.media.media_to_upload()
        total, done = sum(i.size for i in items), 0
        for item in items:
            _check(cancel)
            if _sha256_of(item) != item.sha256:
                reason = "A file on this computer is damaged or missing; it cannot be sent."
                self.media.media_failed(item.sha256, reason)
                report.files_refused += 1
                report.quarantine_reasons.append(reason)
                continue
            try:
                sent = self._upload_one(item, report, cancel, lambda n: progress and progress("upload", done + n, total))
            except HubRefused as exc:
                if exc.status not in (400, 413, 422):
                    raise
                self.media.media_failed(item.sha256, exc.message)   # this file only; the others go on
                report.files_refused += 1
                report.quarantine_reasons.append(exc.message)
            else:
                if sent:
                    report.files_uploaded += 1
                else:
                    report.files_already_there += 1
                self.media.media_uploaded(item.sha256)
            done += item.size
            if progress:
                progress("upload", done, total)

    def _upload_one(self, item: MediaItem, report: SyncReport, cancel: threading.Event | None,
                    progress: Callable[[int], object]) -> bool:
        status = self.client.media_status(item.sha256, item.size)
        if status.complete:
            return False   # the hub has it: never sent again
        offset, damaged = status.received, 0
        with item.open() as f:
            while True:
                _check(cancel)
                f.seek(offset)
                chunk = f.read(self.chunk_bytes)
                started = time.monotonic()
                try:
                    status = self.client.media_put(item.sha256, offset, item.size, chunk)
                except HubRefused as exc:
                    if exc.code == "wrong_offset":          # our idea of the hub's bytes was stale: ask again
                        status = self.client.media_status(item.sha256, item.size)
                    elif exc.code == "damaged_upload" and damaged == 0:
                        damaged += 1                        # corrupted on the way: once more from the start
                        status = self.client.media_status(item.sha256, item.size)
                    else:
                        raise
                else:
                    report.bytes_uploaded += len(chunk)
                    self._adapt(time.monotonic() - started, len(chunk))
                    if status.received <= offset and not status.complete:
                        raise HubGarbage("The hub did not confirm the bytes it was sent.")
                if status.complete:
                    return True
                offset = status.received
                progress(offset)

    def _adapt(self, seconds: float, sent: int) -> None:
        if sent < self.chunk_bytes:
            return
        if seconds < CHUNK_SECONDS[0]:
            self.chunk_bytes = min(self.chunk_bytes * 2, MAX_CHUNK_BYTES)
        elif seconds > CHUNK_SECONDS[1]:
            self.chunk_bytes = max(self.chunk_bytes // 2, MIN_CHUNK)

    def _fetch(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        """Files other PCs of the facility attached: fetched (resuming a partial download), checked, kept."""
        items = self.media.media_to_fetch()
        total, done = sum(i.size for i in items), 0
        for item in items:
            _check(cancel)
            try:
                self.client.media_get(item.sha256, item.partial or item.path)
            except HubRefused as exc:
                if exc.status != 404:
                    raise
                continue   # its PC has not uploaded it yet: next round
            self.media.media_fetched(item)
            report.files_fetched += 1
            done += item.size
            if progress:
                progress("fetch", done, total)

    def _pull(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        """Pages after the cursor, each stored with its cursor in one transaction. The next page is fetched while
        this one is applied (the hub's work and ours overlap); a fetched page is only ever applied in order, and
        one fetched but not applied when the round stops is simply fetched again next time."""
        own = self.inbox.pull_own()
        pages = _PullAhead(self.client, self.inbox.cursor(), self.page_size, own, getattr(self.inbox, "prepare", None))
        remaining: int | None = None   # counted by the hub at the first page only, then by us
        try:
            while True:
                _check(cancel)
                page, prepared = pages.next()
                report.pulled += self.inbox.apply(page, prepared)
                remaining = page.remaining if remaining is None else max(remaining - len(page.changes), 0)
                if progress:
                    progress("pull", report.pulled, report.pulled + remaining)
                if not page.more:
                    self.inbox.pull_done()
                    return
        finally:
            pages.stop()


class _PullAhead:
    """Fetches pull pages one after another on a thread, one page ahead of the one being applied, each with what
    the inbox's prepare() made of it there."""

    def __init__(self, client, cursor: int, page_size: int, own: bool,
                 prepare: Callable[[PullPage], Any] | None = None) -> None:
        import queue

        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, cursor, page_size, own, prepare),
                                        name="sync-pull", daemon=True)
        self._thread.start()

    def _run(self, client, cursor: int, page_size: int, own: bool, prepare) -> None:
        import queue

        first = True
        try:
            while not self._stop.is_set():
                page = client.pull(cursor, page_size, own=own, count=first)
                first = False
                item = (page, prepare(page) if prepare is not None else None)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if not page.more:
                    return
                cursor = page.next_cursor
        except BaseException as exc:  # handed to the applying thread, which raises it
            while not self._stop.is_set():
                try:
                    self._queue.put(exc, timeout=0.2)
                    return
                except queue.Full:
                    continue

    def next(self) -> tuple[PullPage, Any]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class _Prefetch:
    """Reads and encodes the next batch from the outbox while the current one is on the wire (a thread, so the
    spoke's work overlaps the hub's). The outbox is read by position, so nothing is sent twice in a round."""

    def __init__(self, outbox, batch_size: int, client, depth: int = 2) -> None:
        import queue

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._outbox, self._size, self._client = outbox, batch_size, client
        self._thread = threading.Thread(target=self._run, name="sync-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import queue

        after = None
        try:
            while not self._stop.is_set():
                changes, after = self._outbox.unsent_page(self._size, after)
                item = None
                if changes:
                    batch = PushBatch(batch_id=uuid.uuid4(), changes=changes)
                    item = (batch, self._client.encode_push(batch))
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if item is None:
                    return
        except BaseException as exc:  # handed to the sending thread, which raises it
            self._queue.put(exc)

    def next(self):
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class _Cancelled(Exception):
    pass


def _sha256_of(item: MediaItem) -> str | None:
    """The content's SHA-256, or None when it cannot be read (missing, damaged, a sealed file that does not open)."""
    if item.opener is None:
        try:
            return sha256_file(item.path)
        except OSError:
            return None
    h = hashlib.sha256()
    try:
        with item.open() as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise _Cancelled()
