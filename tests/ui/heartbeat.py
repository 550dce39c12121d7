"""How long the window froze: a 10 ms timer on the Qt main thread, whose longest gap between ticks is the longest
the event loop stood still. A freeze names its cause in the failure message: a watcher thread notes what every
thread was doing whenever a tick is overdue, and the garbage collector's pauses in the same time are counted (a
collection stops every thread, the UI's with them)."""

from __future__ import annotations

import gc
import sys
import threading
import time
import traceback

from PySide6.QtCore import QTimer


class Heartbeat:
    def __init__(self, overdue_s: float = 0.1) -> None:
        self.overdue_s = overdue_s
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.monotonic()))
        self.stalls: list[str] = []
        self.collections: list[tuple[int, float]] = []     # (generation, seconds) of each collection meanwhile
        self._collecting_since: float | None = None
        self._main = threading.main_thread().ident
        self._watching = threading.Event()

    def start(self) -> None:
        self.ticks = [time.monotonic()]
        gc.callbacks.append(self._gc)
        self.timer.start()
        self._watching.set()
        threading.Thread(target=self._watch, daemon=True, name="heartbeat-watch").start()

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._collecting_since = time.perf_counter()
        elif self._collecting_since is not None:
            self.collections.append((info["generation"], time.perf_counter() - self._collecting_since))
            self._collecting_since = None

    def _watch(self) -> None:
        while self._watching.is_set():
            time.sleep(0.05)
            if self.ticks and time.monotonic() - self.ticks[-1] > self.overdue_s and len(self.stalls) < 5:
                frames = sys._current_frames()
                names = {t.ident: t.name for t in threading.enumerate()}
                main = frames.pop(self._main, None)
                frames.pop(threading.get_ident(), None)
                if main is not None:   # the main thread first, then every other (one of them may hold the GIL)
                    self.stalls.append("".join(traceback.format_stack(main)[-8:]) + "".join(
                        f"  [thread {names.get(ident, ident)}]\n" + "".join(traceback.format_stack(f)[-3:])
                        for ident, f in frames.items()))

    def stop(self) -> float:
        """The longest gap between two ticks, in seconds."""
        self.timer.stop()
        self._watching.clear()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        self.ticks.append(time.monotonic())
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:]))

    def why(self) -> str:
        longest = max(self.collections, key=lambda c: c[1], default=None)
        text = (f"\n--- garbage collections meanwhile: {len(self.collections)}, the longest "
                f"{longest[1] * 1000:.0f} ms (generation {longest[0]})" if longest else "")
        if self.stalls:
            text += "\n--- the main thread, while a tick was overdue:\n" + "\n---\n".join(self.stalls)
        return text
