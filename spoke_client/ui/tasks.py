"""Work off the UI thread: one lane for database writes (a single worker), one for reads and searches, and one
for the network (a single worker: at most one sync job per hub at a time)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self.fn = fn
        self.signals = signals

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the UI, which explains it
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.signals.failed.emit(exc)
        else:
            self.signals.done.emit(result)


class TaskRunner(QObject):
    """Runs callables on worker threads; results come back by signal, on the main thread."""

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
            on_error: Callable[[Exception], None] | None = None, *, lane: str = "write") -> None:
        signals = _Signals()  # created here, on the main thread: its slots run on the main thread
        self._live.add(signals)

        def finish(_: object = None) -> None:
            self._live.discard(signals)

        if on_done:
            signals.done.connect(on_done)
        if on_error:
            signals.failed.connect(on_error)
        signals.done.connect(finish)
        signals.failed.connect(finish)
        {"write": self.writes, "read": self.reads, "network": self.network, "devices": self.devices}[lane].start(_Job(fn, signals))

    def wait(self, msecs: int = 30_000) -> bool:
        return all(pool.waitForDone(msecs) for pool in (self.network, self.devices, self.writes, self.reads))
