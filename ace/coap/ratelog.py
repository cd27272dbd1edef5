"""Log lines about what unauthenticated peers send, bounded: a flood of bad requests must not
become a flood of log lines (one 36-byte datagram cost 137 bytes of WARNING each)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW = 10.0  # seconds
PER_WINDOW = 10  # lines per window; the rest are counted and summed up in the next line


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, *, per_window: int = PER_WINDOW, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.per_window, self.window, self.clock = logger, per_window, window, clock
        self._start, self._lines, self._suppressed = clock(), 0, 0

    def log(self, level: int, msg: str, *args: object) -> None:
        now = self.clock()
        if now - self._start >= self.window:
            if self._suppressed:
                self.logger.log(level, "... %d more like it in the last %.0f s", self._suppressed, now - self._start)
            self._start, self._lines, self._suppressed = now, 0, 0
        if self._lines >= self.per_window:
            self._suppressed += 1
            return
        self._lines += 1
        self.logger.log(level, msg, *args)
