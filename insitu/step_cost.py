"""What each due step costs insitu itself, wall and CPU, when asked.

``INSITU_STEP_COST=<path>`` in a rank's environment makes the session time
every due step (from its handshake to its return: kernels, reductions,
results, the writer's row keep and any flush) with ``perf_counter`` and
``process_time``, and write them at finalize to ``<path>.<rank>`` as JSON.
``scripts/bench/overhead.py`` reads them, so its report says how much of
the loop's overhead is insitu's own work and how much is the model waiting
(a loaded machine makes the loop's figure swing by tens of percent; the
CPU seconds a step used move much less).  Off by default: then the step
pays one ``is None`` test.
"""
from __future__ import annotations

import json
import os
import time

ENV = "INSITU_STEP_COST"


class StepCost:
    """Per due step: wall seconds and this process's CPU seconds."""

    __slots__ = ("path", "wall", "cpu")

    def __init__(self, path: str) -> None:
        self.path = path
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @classmethod
    def from_environment(cls):
        path = os.environ.get(ENV)
        return cls(path) if path else None

    @staticmethod
    def start() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def stop(self, started: tuple[float, float]) -> None:
        self.wall.append(time.perf_counter() - started[0])
        self.cpu.append(time.process_time() - started[1])

    def write(self, rank: int) -> str:
        """``<path>.<rank>``: ``{"wall_s": [...], "cpu_s": [...]}``, due steps in order."""
        out = f"{self.path}.{rank}"
        with open(out, "w") as fh:
            json.dump({"rank": rank, "wall_s": self.wall, "cpu_s": self.cpu}, fh)
        return out
