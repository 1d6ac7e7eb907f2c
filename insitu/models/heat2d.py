"""2-D heat diffusion, explicit 5-point stencil, fixed-temperature boundary.

The field ``T`` is float64, C-ordered ``(y, x)`` with a one-cell halo, and two
buffers that swap every step, so insitu sees a new pointer each step, as it
does from many real models.  ``examples/fortran/heat2d.f90`` is the same
model in Fortran (``T(x, y)``, column-major); both match :func:`reference`.
"""
from __future__ import annotations

import numpy as np

from .grid import Grid2D
from .restart_file import HaloFieldRestart

BOUNDARY = 280.0
ALPHA = 0.2
DT = 60.0

DEFAULT_CONFIG = """\
output: {path: heat2d.h5}
time: {units: "seconds since 2000-01-01 00:00:00", calendar: standard}
fields:
  T: {units: K, long_name: temperature, dims: [y, x]}
analyses:
  - {kind: stats, field: T, every: 10}
"""


def initial(j: np.ndarray, i: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Initial temperature at global indices (j, i); any decomposition agrees."""
    x = (i + 0.5) / nx
    y = (j + 0.5) / ny
    return (BOUNDARY + 40.0 * np.exp(-((x - 0.35) ** 2 + (y - 0.6) ** 2) / 0.01)
            + 10.0 * np.sin(2 * np.pi * x) * np.cos(np.pi * y))


def cell_area(j: np.ndarray, ny: int) -> np.ndarray:
    """Relative cell area of row ``j`` on a latitude grid: cos(latitude)."""
    return np.cos(np.deg2rad(-90.0 + 180.0 * (j + 0.5) / ny))


def stencil(t: np.ndarray, out: np.ndarray) -> None:
    """One explicit step on the interior; same arithmetic order as the Fortran."""
    c = t[1:-1, 1:-1]
    out[1:-1, 1:-1] = c + ALPHA * (t[1:-1, :-2] + t[1:-1, 2:] + t[:-2, 1:-1]
                                   + t[2:, 1:-1] - 4.0 * c)


class Heat2D(HaloFieldRestart):
    RESTART_FIELD = "T"
    name = "heat2d"
    DEFAULT_CONFIG = DEFAULT_CONFIG

    def __init__(self, comm, shape=(96, 128)) -> None:
        self.comm = comm
        self.grid = Grid2D(comm, shape, periodic=False)
        g = self.grid
        self.buffers = [np.full(g.local_shape, BOUNDARY), np.full(g.local_shape, BOUNDARY)]
        j, i = g.global_index()
        self.buffers[0][1:-1, 1:-1] = initial(j, i, *g.global_shape)
        # Cell areas, for area-weighted statistics (no halo).
        self.area = np.ascontiguousarray(np.broadcast_to(cell_area(j, g.global_shape[0]),
                                                         g.shape))
        self.current = 0
        self.step = 0
        self.time = 0.0

    @property
    def T(self) -> np.ndarray:
        return self.buffers[self.current]

    def declare(self, api) -> None:
        g = self.grid
        api.declare_field("T", np.float64, g.global_shape, g.offset, g.local_shape,
                          (1, 1), (1, 1), "C")
        api.declare_field("area", np.float64, g.global_shape, g.offset, g.shape)
        api.expose("area", self.area)

    def advance(self) -> None:
        g = self.grid
        old = self.buffers[self.current]
        g.exchange(old)
        new = self.buffers[1 - self.current]
        stencil(old, new)
        self.current = 1 - self.current
        self.step += 1
        self.time = self.step * DT

    def expose(self, api) -> None:
        api.expose("T", self.T)

    def free(self) -> None:
        self.grid.free()


def reference_area(shape=(96, 128)) -> np.ndarray:
    ny, nx = shape
    return np.broadcast_to(cell_area(np.arange(ny)[:, None], ny), shape)


def reference(shape=(96, 128), steps: int = 10):
    """Yield ``(step, time, T)`` of the whole domain, serially, after each step."""
    ny, nx = shape
    t = np.full((ny + 2, nx + 2), BOUNDARY)
    j, i = np.arange(ny)[:, None], np.arange(nx)[None, :]
    t[1:-1, 1:-1] = initial(j, i, ny, nx)
    new = t.copy()
    for step in range(1, steps + 1):
        stencil(t, new)
        t, new = new, t
        yield step, step * DT, t[1:-1, 1:-1].copy()
