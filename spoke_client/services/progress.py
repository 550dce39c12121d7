"""How long a long transfer has left, from its recent rate."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Estimate:
    """Seconds left in a stage of a sync (push, pull, files), from the rate over its last `window_s` seconds:
    the slow first page (the hub counts what is left), an earlier stage and a pause for a patient's save weigh
    on it only while they are recent. None until there is a rate to go by."""

    def __init__(self, window_s: float = 20.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.clock = window_s, clock
        self.stage: str | None = None
        self.samples: deque[tuple[float, int]] = deque()

    def update(self, stage: str, done: int, total: int) -> float | None:
        now = self.clock()
        if stage != self.stage or (self.samples and done < self.samples[-1][1]):
            self.stage = stage
            self.samples.clear()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window_s:
            self.samples.popleft()
        if total <= done:
            return None
        t0, d0 = self.samples[0]
        if now - t0 < 1 or done <= d0:
            return None
        return (total - done) * (now - t0) / (done - d0)
