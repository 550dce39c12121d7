"""Hybrid logical clock: orders changes across devices whose wall clocks are wrong by hours or days (wire format)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Stamp:
    wall_ms: int
    counter: int
    node: str

    def encode(self) -> str:
        # Fixed width, so that string order is clock order.
        return f"{self.wall_ms:015d}-{self.counter:05d}-{self.node}"

    @classmethod
    def decode(cls, text: str) -> "Stamp":
        wall, counter, node = text.split("-", 2)
        return cls(int(wall), int(counter), node)


class HybridLogicalClock:
    """Kulkarni et al. HLC: never goes backwards, even when the wall clock does; merges remote stamps."""

    def __init__(self, node: str, last: Stamp | None = None) -> None:
        self._node = node
        self._last = last or Stamp(0, 0, node)
        self._lock = threading.Lock()

    def now(self, wall_ms: int) -> Stamp:
        with self._lock:
            if wall_ms > self._last.wall_ms:
                self._last = Stamp(wall_ms, 0, self._node)
            else:
                self._last = Stamp(self._last.wall_ms, self._last.counter + 1, self._node)
            return self._last

    def observe(self, remote: Stamp, wall_ms: int) -> Stamp:
        """Merge a stamp received from another device, so later local stamps order after it."""
        with self._lock:
            top = max(wall_ms, self._last.wall_ms, remote.wall_ms)
            if top == self._last.wall_ms == remote.wall_ms:
                counter = max(self._last.counter, remote.counter) + 1
            elif top == self._last.wall_ms:
                counter = self._last.counter + 1
            elif top == remote.wall_ms:
                counter = remote.counter + 1
            else:
                counter = 0
            self._last = Stamp(top, counter, self._node)
            return self._last
