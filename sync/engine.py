"""The client sync engine: push the outbox in batches, then pull pages after the cursor; resumable at any cut.

Generic over the local store (the Outbox and Inbox protocols), so it imports nothing of the spoke app.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sync.protocol import Change, PullPage, PushBatch, Rejection
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable


class Outbox(Protocol):
    def unsent(self, limit: int) -> list[Change]: ...
    def mark_sent(self, change_ids: list[str]) -> None: ...
    def quarantine(self, rejections: list[Rejection]) -> None: ...
    def pending(self) -> int: ...


class Inbox(Protocol):
    def cursor(self) -> int: ...
    def apply(self, page: PullPage) -> int: ...  # stores the page and next_cursor in one transaction


@dataclass
class SyncReport:
    pushed: int = 0
    already_there: int = 0
    quarantined: int = 0
    pulled: int = 0
    pending: int = 0
    error: str | None = None
    error_kind: str | None = None   # unreachable | refused | garbage | cancelled
    quarantine_reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.quarantined == 0


Progress = Callable[[str, int, int], None]  # (stage, done, total)


class SyncEngine:
    def __init__(self, client: HubClient, outbox: Outbox, inbox: Inbox, *, batch_size: int = 1000,
                 page_size: int = 500) -> None:
        self.client, self.outbox, self.inbox = client, outbox, inbox
        self.batch_size, self.page_size = batch_size, page_size

    def run_once(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> SyncReport:
        report = SyncReport()
        try:
            self._push(report, progress, cancel)
            self._pull(report, progress, cancel)
        except HubUnreachable as exc:
            report.error, report.error_kind = f"The hub cannot be reached ({exc}).", "unreachable"
        except HubRefused as exc:
            report.error, report.error_kind = exc.message, "refused"
        except HubGarbage as exc:
            report.error, report.error_kind = str(exc), "garbage"
        except _Cancelled:
            report.error, report.error_kind = "Sync was stopped.", "cancelled"
        report.pending = self.outbox.pending()
        return report

    def _push(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        total = self.outbox.pending()
        while True:
            _check(cancel)
            changes = self.outbox.unsent(self.batch_size)
            if not changes:
                return
            result = self.client.push(PushBatch(batch_id=uuid.uuid4(), changes=changes))
            # Only what the hub acknowledged is marked sent; a lost answer means the same batch goes again,
            # and the hub reports it as duplicates.
            self.outbox.mark_sent([str(i) for i in result.accepted + result.duplicates])
            self.outbox.quarantine(result.rejected)
            report.pushed += len(result.accepted)
            report.already_there += len(result.duplicates)
            report.quarantined += len(result.rejected)
            report.quarantine_reasons += [r.reason for r in result.rejected]
            answered = len(result.accepted) + len(result.duplicates) + len(result.rejected)
            if answered < len(changes):
                raise HubGarbage("The hub answered for only part of the batch.")
            if progress:
                progress("push", report.pushed + report.already_there + report.quarantined, total)

    def _pull(self, report: SyncReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        while True:
            _check(cancel)
            page = self.client.pull(self.inbox.cursor(), self.page_size)
            report.pulled += self.inbox.apply(page)
            if progress:
                progress("pull", report.pulled, report.pulled + page.remaining)
            if not page.more:
                return


class _Cancelled(Exception):
    pass


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise _Cancelled()
