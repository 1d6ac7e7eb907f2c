"""A one-line progress bar for terminals (rank 0 only; silent in pipes and CI)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, enabled: bool, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.total = max(total, 1)
        self.enabled = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.width = width
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self._last < 0.1:
            return
        self._last = now
        filled = int(self.width * done / self.total)
        rate = done / max(now - self.start, 1e-9)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done}/{self.total} steps {rate:7.1f}/s {note[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
