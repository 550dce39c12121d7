"""Work off the UI thread: one lane for database writes (a single worker), one for reads and searches, and one
for the network (a single worker: at most one sync job per hub at a time)."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from spoke_client.domain.errors import SpokeError

log = logging.getLogger(__name__)


def job_name(fn: Callable[..., Any]) -> str:
    """Where a job was written ("CaseEditor.save.<locals>.work"), never its arguments: they may be patient data."""
    target = getattr(fn, "func", fn)   # a functools.partial names its function
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(target).__name__)}"


class Task:
    """A handle on one job. Callers get its answer by signal; `wait` is for the rare one that needs it now."""

    def __init__(self, name: str, lane: str) -> None:
        self.name, self.lane = name, lane
        self.result: Any = None
        self.error: Exception | None = None
        self._finished = threading.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def _settle(self, result: Any = None, error: Exception | None = None) -> None:
        self.result, self.error = result, error
        self._finished.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._finished.wait(timeout_s)


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals, task: Task) -> None:
        super().__init__()
        self.fn = fn
        self.signals = signals
        self.task = task

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # noqa: BLE001 - every failure is logged, then goes back to the UI, which explains it
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            # The job's name says where it was written; its arguments, which may be patient data, are not logged.
            if isinstance(exc, SpokeError):
                # Expected (a wrong password, a refused value): the user is told; its sentence may quote what
                # was typed, so only its kind is logged.
                log.info("background job %s on the %s lane: %s", self.task.name, self.task.lane, type(exc).__name__)
            else:
                log.error("background job %s on the %s lane failed", self.task.name, self.task.lane, exc_info=exc)
            self.task._settle(error=exc)
            self.signals.failed.emit(exc)
        else:
            self.task._settle(result)
            self.signals.done.emit(result)


def details_of(exc: BaseException) -> str:
    """The traceback of a failed job (kept by the worker), or of any exception."""
    text = getattr(exc, "__traceback_text__", None)
    return text or "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class TaskRunner(QObject):
    """Runs callables on worker threads; results come back by signal, on the main thread.

    A failure goes to `on_error` when the caller gave one. An unexpected one (not a SpokeError, which callers turn
    into a sentence) that nobody handles is emitted as `unexpected`, with its traceback: the app shows it."""

    unexpected = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.writes = QThreadPool(self)
        self.writes.setMaxThreadCount(1)  # SQLite has one writer: queue writes instead of contending
        self.reads = QThreadPool(self)
        self.reads.setMaxThreadCount(2)
        self.network = QThreadPool(self)
        self.network.setMaxThreadCount(1)
        self.devices = QThreadPool(self)
        self.devices.setMaxThreadCount(1)   # one Bluetooth conversation at a time, never behind a sync
        self._live: set[_Signals] = set()

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[Exception], None] | None = None, *, lane: str = "write") -> Task:
        pools = {"write": self.writes, "read": self.reads, "network": self.network, "devices": self.devices}
        task = Task(job_name(fn), lane)
        signals = _Signals()  # created here, on the main thread: its slots run on the main thread
        self._live.add(signals)

        def finish(_: object = None) -> None:
            self._live.discard(signals)

        if on_done:
            signals.done.connect(on_done)
        signals.failed.connect(on_error if on_error else self._unhandled)
        signals.done.connect(finish)
        signals.failed.connect(finish)
        try:
            pools[lane].start(_Job(fn, signals, task))
        except RuntimeError:      # the runner is gone (the app shutting down): a job asked for now is not run
            self._live.discard(signals)
            log.info("a background job was asked for after shutdown and not run: %s", task.name)
        return task

    def _unhandled(self, exc: Exception) -> None:
        if not isinstance(exc, SpokeError):   # an expected error with no one to show it is in the log already
            self.unexpected.emit(details_of(exc))

    def wait(self, msecs: int = 30_000) -> bool:
        return all(pool.waitForDone(msecs) for pool in (self.network, self.devices, self.writes, self.reads))
