"""Hybrid logical clock: orders changes across devices whose wall clocks are wrong by hours or days (wire format).

A stamp is `WWWWWWWWWWWWWWW-CCCCC-node`: wall milliseconds (15 digits), a counter (5 digits) and the node, fixed
width so that string order is clock order. Two rules keep one bad clock from stalling everybody:
- the counter never overflows its five digits: at 99999 the clock moves its wall part on by 1 ms instead;
- a receiver refuses a stamp more than MAX_AHEAD_MS ahead of its own wall clock (`check_not_ahead`), so one
  device with a clock set years ahead cannot drag every other clock there with it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

# ASCII digits only: `\d` also matches Arabic-Indic and other digits, which sort after every real stamp.
STAMP_PATTERN = r"^[0-9]{15}-[0-9]{5}-[0-9A-Za-z-]{1,64}$"
_STAMP = re.compile(STAMP_PATTERN)
MAX_WALL_MS = 10**15 - 1
MAX_COUNTER = 10**5 - 1

# How far ahead of the receiver's clock a stamp may be. HWC PCs' clocks are often wrong by hours or days; a week
# strands none of those, and bounds what a bad clock can do: its changes win over honest ones for a week at most.
MAX_AHEAD_MS = 7 * 24 * 3600 * 1000


class StampAhead(ValueError):
    """A stamp from a clock too far ahead of ours."""

    def __init__(self, stamp: "Stamp", ahead_ms: int) -> None:
        super().__init__(f"clock stamp {ahead_ms // 3_600_000} hours ahead")
        self.stamp, self.ahead_ms = stamp, ahead_ms


@dataclass(frozen=True, order=True)
class Stamp:
    wall_ms: int
    counter: int
    node: str

    def encode(self) -> str:
        return f"{self.wall_ms:015d}-{self.counter:05d}-{self.node}"

    @classmethod
    def decode(cls, text: str) -> "Stamp":
        if not _STAMP.match(text):
            raise ValueError("not a clock stamp")
        wall, counter, node = text.split("-", 2)
        return cls(int(wall), int(counter), node)


def is_stamp(text: str) -> bool:
    return isinstance(text, str) and _STAMP.match(text) is not None


def check_not_ahead(stamp: Stamp, wall_ms: int, margin_ms: int = MAX_AHEAD_MS) -> None:
    """Raises StampAhead when `stamp` is more than the margin ahead of the receiver's wall clock."""
    if stamp.wall_ms > wall_ms + margin_ms:
        raise StampAhead(stamp, stamp.wall_ms - wall_ms)


def _next(wall_ms: int, counter: int, node: str) -> Stamp:
    """The stamp after (wall_ms, counter - 1): carries into the wall part instead of overflowing the counter."""
    if counter > MAX_COUNTER:
        wall_ms, counter = wall_ms + 1, 0
    return Stamp(min(wall_ms, MAX_WALL_MS), counter, node)


class HybridLogicalClock:
    """Kulkarni et al. HLC: never goes backwards, even when the wall clock does; merges remote stamps."""

    def __init__(self, node: str, last: Stamp | None = None) -> None:
        self._node = node
        self._last = last or Stamp(0, 0, node)
        self._lock = threading.Lock()

    @property
    def last(self) -> Stamp:
        return self._last

    def now(self, wall_ms: int) -> Stamp:
        with self._lock:
            if wall_ms > self._last.wall_ms:
                self._last = Stamp(min(wall_ms, MAX_WALL_MS), 0, self._node)
            else:
                self._last = _next(self._last.wall_ms, self._last.counter + 1, self._node)
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
            self._last = _next(top, counter, self._node)
            return self._last

    def reset(self, last: Stamp) -> None:
        """Starts again from `last` (may go back): only for a clock whose stamps were never seen elsewhere beyond
        it, such as a PC whose date was set far ahead and then corrected, re-stamping what it had not sent."""
        with self._lock:
            self._last = Stamp(last.wall_ms, last.counter, self._node)
