"""Scenarios that run the same way on the fake communicator and under MPI.

Each rank builds its slab of a field that is a pure function of the global
index, fills its halos with garbage (so a halo leaking into a statistic is
caught), declares it, exposes it, and steps.  :func:`expected_stats`
computes the same statistics with numpy on the whole field.
"""
from __future__ import annotations

import numpy as np
import pytest

from insitu import api
from insitu.decomposition import cartesian_box, process_grid

HALO_GARBAGE = 1.0e30
STATS = ["count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count"]

CASES = {
    # name: (global shape, order, dtype, halo, NaN fraction)
    "c2d-even": ((96, 128), "C", np.float64, 1, 0.0),
    "c2d-uneven": ((97, 131), "C", np.float64, 1, 0.0),
    "f2d-uneven": ((131, 97), "F", np.float64, 2, 0.0),
    "f3d-nan": ((23, 17, 7), "F", np.float64, 1, 0.03),
    "c2d-allnan": ((9, 13), "C", np.float64, 1, 1.0),
    "c1d-f32": ((1001,), "C", np.float32, 3, 0.0),
    "c2d-i32": ((50, 61), "C", np.int32, 1, 0.0),
    "c3d-i64": ((9, 10, 11), "C", np.int64, 0, 0.0),
}


def global_field(shape, dtype, nan_frac, step):
    """The whole field at ``step``; every rank can compute any part of it."""
    idx = np.indices(shape, dtype=np.float64)
    x = sum((k + 1.7) * np.sin(0.37 * (k + 1) * i + 0.1 * step) for k, i in enumerate(idx))
    if np.dtype(dtype).kind == "f":
        f = 288.0 + 15.0 * x + 0.001 * step
        if nan_frac:
            h = (sum(i * (31 + 7 * k) for k, i in enumerate(idx)) * 2654435761.0) % 1000.0
            f[h < 1000.0 * nan_frac] = np.nan
            if nan_frac < 1:
                f.flat[::97] = np.inf  # some infinities, too
                f.flat[5::97] = -np.inf
        return f.astype(dtype)
    return np.round(1000.0 * x + step).astype(dtype)


def config(every=1, copies=1, reproducible=False):
    analyses = [{"kind": "stats", "field": "f", "every": every, "stats": STATS,
                 **({"name": f"f{c}"} if copies > 1 else {})} for c in range(copies)]
    return {"fields": {"f": {"units": "K"}}, "analyses": analyses,
            "output": {"overwrite": True}, "reproducible": reproducible}


def run_case(comm, case: str, steps: int = 2, output=None, copies: int = 1,
             reproducible: bool = False) -> dict:
    """Drive a session through ``steps`` steps; return {step: results} and counts."""
    gshape, order, dtype, halo, nan_frac = CASES[case]
    ndim = len(gshape)
    grid = process_grid(comm.size, ndim)
    coords = np.unravel_index(comm.rank, grid)
    offset, shape = cartesian_box(gshape, grid, coords)
    local_shape = tuple(n + 2 * halo for n in shape)
    interior = tuple(slice(halo, halo + n) for n in shape)
    src = tuple(slice(o, o + n) for o, n in zip(offset, shape))
    api.init(comm, config(copies=copies, reproducible=reproducible), output=output)
    try:
        api.declare_field("f", dtype, gshape, offset, local_shape, [halo] * ndim,
                          [halo] * ndim, order)
        out = {}
        before = comm.collectives
        for step in range(1, steps + 1):
            arr = np.full(local_shape, HALO_GARBAGE if np.dtype(dtype).kind == "f" else 10**9,
                          dtype=dtype, order=order)
            arr[interior] = global_field(gshape, dtype, nan_frac, step)[src]
            api.expose("f", arr)
            out[step] = api.step(step, float(step))
        per_step = (comm.collectives - before) / steps
    finally:
        api.finalize()
    return {"results": out, "collectives_per_step": per_step}


def expected_stats(case: str, step: int, prefix="f") -> dict:
    gshape, order, dtype, halo, nan_frac = CASES[case]
    a = global_field(gshape, dtype, nan_frac, step).astype(np.float64)
    fin = a[np.isfinite(a)]
    empty = fin.size == 0
    with np.errstate(all="ignore"):
        return {f"{prefix}_count": int(fin.size), f"{prefix}_sum": fin.sum(),
                f"{prefix}_mean": np.nan if empty else fin.mean(),
                f"{prefix}_min": np.nan if empty else fin.min(),
                f"{prefix}_max": np.nan if empty else fin.max(),
                f"{prefix}_std": np.nan if empty else fin.std(),
                f"{prefix}_var": np.nan if empty else fin.var(),
                f"{prefix}_nan_count": int(np.isnan(a).sum()),
                f"{prefix}_inf_count": int(np.isinf(a).sum())}


def check_against_numpy(case: str, results: dict, rel: float = 1e-12) -> None:
    _, _, dtype, _, _ = CASES[case]
    # float32 cases too: the reference widens to float64, as insitu must; a
    # kernel that summed float32 in float32 would be ~1e-6 off and fail.
    for step, got in results.items():
        want = expected_stats(case, step)
        assert set(got) == set(want), (sorted(got), sorted(want))
        for k, v in want.items():
            assert got[k] == (v if isinstance(v, int) else
                              pytest.approx(v, rel=rel, abs=1e-300, nan_ok=True)), \
                f"{case} step {step} {k}: insitu {got[k]!r} numpy {v!r}"
