"""Conway's Game of Life on a torus: insitu's original demonstration.

The field ``alive`` is int32 (1 = live), C-ordered ``(y, x)`` with a
one-cell periodic halo.  Its global statistics are the live-cell count
(``alive_sum``) and the density (``alive_mean``).
"""
from __future__ import annotations

import numpy as np

from .grid import Grid2D
from .restart_file import HaloFieldRestart

DEFAULT_CONFIG = """\
output: {path: life.h5}
fields:
  alive: {units: "1", long_name: live cell indicator, dims: [y, x]}
analyses:
  - {kind: stats, field: alive, every: 1, stats: [count, sum, mean, std]}
"""


def initial(j: np.ndarray, i: np.ndarray) -> np.ndarray:
    """A reproducible ~30 % random soup, a pure function of the global index."""
    h = (j.astype(np.uint64) * np.uint64(2654435761) + i.astype(np.uint64) * np.uint64(40503)
         + np.uint64(12345)) * np.uint64(2246822519)
    h ^= h >> np.uint64(29)
    return ((h % np.uint64(1000)) < np.uint64(300)).astype(np.int32)


def rule(a: np.ndarray, out: np.ndarray) -> None:
    """One generation on the interior of ``a`` (halo filled)."""
    n = (a[:-2, :-2] + a[:-2, 1:-1] + a[:-2, 2:] + a[1:-1, :-2] + a[1:-1, 2:]
         + a[2:, :-2] + a[2:, 1:-1] + a[2:, 2:])
    c = a[1:-1, 1:-1]
    out[1:-1, 1:-1] = ((n == 3) | ((c == 1) & (n == 2))).astype(np.int32)


class Life(HaloFieldRestart):
    RESTART_FIELD = "alive"
    name = "life"
    DEFAULT_CONFIG = DEFAULT_CONFIG

    def __init__(self, comm, shape=(64, 96)) -> None:
        self.comm = comm
        self.grid = Grid2D(comm, shape, periodic=True)
        g = self.grid
        self.buffers = [np.zeros(g.local_shape, np.int32), np.zeros(g.local_shape, np.int32)]
        j, i = g.global_index()
        self.buffers[0][1:-1, 1:-1] = initial(j, i)
        self.current = 0
        self.step = 0
        self.time = 0.0

    @property
    def alive(self) -> np.ndarray:
        return self.buffers[self.current]

    def declare(self, api) -> None:
        g = self.grid
        api.declare_field("alive", np.int32, g.global_shape, g.offset, g.local_shape,
                          (1, 1), (1, 1), "C")

    def advance(self) -> None:
        old = self.buffers[self.current]
        self.grid.exchange(old)
        rule(old, self.buffers[1 - self.current])
        self.current = 1 - self.current
        self.step += 1
        self.time = float(self.step)

    def expose(self, api) -> None:
        api.expose("alive", self.alive)

    def free(self) -> None:
        self.grid.free()


def reference(shape=(64, 96), steps: int = 10):
    """Yield ``(step, time, alive)`` of the whole torus, serially."""
    ny, nx = shape
    a = initial(np.arange(ny)[:, None], np.arange(nx)[None, :])
    for step in range(1, steps + 1):
        p = np.pad(a, 1, mode="wrap")
        out = np.empty_like(p)
        rule(p, out)
        a = out[1:-1, 1:-1].copy()
        yield step, float(step), a
