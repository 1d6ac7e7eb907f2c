"""Per-point kinds of issue 16 (spell, pointwise) as one set of cases, run on
fake ranks (tests/test_spell.py, tests/test_pointwise.py) and under real MPI
through the parallel HDF5 writer (tests/mpi/test_mpi_perpoint.py), checked
against numpy and xarray on the whole field's series.

The field ``T`` (lat, lon) = (7, 10) is cut into uneven slabs on a process
grid (np.array_split), exposed with a halo of garbage, in C or Fortran
order; it has NaN at fixed points, a NaN that comes and goes, a point that
is NaN at every step, and +-Inf now and then.  Time is daily in a noleap
calendar, so a run of 800 steps crosses 26 months.
"""
from __future__ import annotations

import itertools

import cftime
import numpy as np
import xarray as xr

from insitu import api
from insitu.analyses import Piece

SHAPE = (7, 10)
UNITS = "days since 2000-01-01"
CAL = "noleap"
THRESHOLD = 0.3
GRIDS = {1: (1, 1), 2: (1, 2), 3: (3, 1), 4: (2, 2)}


def field(step: int) -> np.ndarray:
    """T at ``step``: smooth, crossing the threshold often, with NaN and Inf."""
    y, x = np.indices(SHAPE, dtype=np.float64)
    T = np.sin(0.37 * step + 0.9 * x) * np.cos(0.21 * step - 0.5 * y) + 0.2 * np.sin(0.05 * step)
    T[2, 3] = np.nan                      # NaN at every step
    if step % 5 == 0:
        T[4, 1] = np.nan                  # a NaN that comes and goes (ends spells)
    if step % 7 == 3:
        T[1, 8] = np.inf
    if step % 11 == 4:
        T[6, 0] = -np.inf
    T[0, 9] = 270.0 + 1e-3 * np.sin(step)  # a large offset, a small spread
    return T


def box(size: int, rank: int):
    grid = GRIDS[size]
    idx = np.unravel_index(rank, grid)
    cuts = [np.array_split(np.arange(n), p)[i] for n, p, i in zip(SHAPE, grid, idx)]
    return tuple(int(c[0]) for c in cuts), tuple(c.size for c in cuts)


def run(comm, analyses, steps, order="C", output=None, first=1, dt=1.0, derived=None,
        checkpoint=None, restart=None):
    """Drive ``analyses`` over ``steps`` steps on this (fake or real) rank;
    returns the session's writer (the MemoryWriter on fake ranks)."""
    off, shp = box(comm.size, comm.rank)
    s = api.init(comm, {"fields": {"T": {"dims": ["lat", "lon"], "units": "K"}},
                        "time": {"units": UNITS, "calendar": CAL},
                        "output": {"overwrite": True}, "analyses": analyses,
                        "derived": derived or {}},
                 output=output, restart=restart)
    try:
        api.declare_field("T", np.float64, SHAPE, off, tuple(n + 2 for n in shp),
                          (1, 1), (1, 1), order)
        sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
        buf = np.full(tuple(n + 2 for n in shp), 1e30, order=order)
        for step in range(first, first + steps):
            buf[1:-1, 1:-1] = field(step)[sl]
            api.expose("T", buf)
            api.step(step, step * dt)
            if step == checkpoint:
                api.checkpoint(step)
        return s.writer
    finally:
        api.finalize()


def rows(writers, axis):
    """The rows of ``axis`` with distributed pieces assembled from every
    rank (each point written exactly once): [(step, time, bounds, values)]."""
    out = []
    for parts in zip(*(w.axes[axis] for w in writers)):
        step, time, bounds, _ = parts[0]
        values = {k: v for k, v in parts[0][3].items() if not isinstance(v, Piece)
                  and v is not None}
        pieces = {}
        for p in parts:
            for k, v in p[3].items():
                if isinstance(v, Piece):
                    pieces.setdefault(k, []).append(v)
        for k, ps in pieces.items():
            full = np.full(SHAPE, np.nan)
            seen = np.zeros(SHAPE, dtype=int)
            for p in ps:
                sl = tuple(slice(s, s + n) for s, n in zip(p.start, p.values.shape))
                full[sl] = p.values
                seen[sl] += 1
            assert (seen == 1).all(), f"{k}: every point written exactly once"
            values[k] = full
        out.append((step, time, bounds, values))
    return out


def spell_truth(samples: list, threshold: float, op: str):
    """(current, max) run lengths over a list of whole fields, by numpy's
    comparison (NaN is False), one step at a time."""
    cmp = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}[op]
    cur = np.zeros(SHAPE, dtype=int)
    mx = np.zeros(SHAPE, dtype=int)
    with np.errstate(invalid="ignore"):
        for f in samples:
            cur = np.where(cmp(f, threshold), cur + 1, 0)
            mx = np.maximum(mx, cur)
    return cur, mx


def series(steps, every=1, first=1, dt=1.0) -> xr.DataArray:
    """The sampled series as a DataArray with cftime times, +-Inf as NaN
    (insitu skips non-finite values, xarray's skipna skips NaN)."""
    st = [s for s in range(first, first + steps) if s % every == 0]
    data = np.array([field(s) for s in st])
    data = np.where(np.isfinite(data), data, np.nan)
    t = xr.CFTimeIndex(cftime.num2date(np.array(st) * dt, UNITS, CAL))
    return xr.DataArray(data, dims=("time", "lat", "lon"), coords={"time": t})


def grids(nranks):
    for g in itertools.product(range(1, nranks + 1), repeat=2):
        if g[0] * g[1] == nranks:
            yield g
