"""Hard numerical cases for the global statistics, with an exact truth.

Shared by tests/test_numerics.py (fake ranks) and tests/mpi/test_mpi_numerics.py
(real MPI, real HDF5 writer).  The truth is computed with ``fractions`` on the
whole field, independently of insitu's code: the slabs are cut here by hand,
unevenly, and nothing from insitu is used to build or check them.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from insitu import api

N = 1009  # a prime: no rank count splits it evenly

#: Uneven relative slab sizes for 1-4 ranks (rank r gets WEIGHTS[r] parts).
WEIGHTS = (7, 2, 5, 3)


def slabs(n: int, nranks: int):
    """``[(offset, size)]`` of an uneven 1-D split of ``n`` points."""
    w = WEIGHTS[:nranks]
    cuts = [0] + [n * sum(w[:k + 1]) // sum(w) for k in range(nranks)]
    return [(cuts[r], cuts[r + 1] - cuts[r]) for r in range(nranks)]


def _noise(seed):
    return np.random.default_rng(seed).standard_normal(N)


#: name: (dtype, a function of the step giving the whole field)
CASES = {
    # data at 1e8 + O(1): the issue's first report
    "f64-1e8": (np.float64, lambda s: 1e8 + _noise(s)),
    # offset 1e12 times the spread, at two scales and both signs
    "f64-1e12": (np.float64, lambda s: 1e12 + _noise(s)),
    "f64-neg-1e12-tiny": (np.float64, lambda s: -1e12 * 1e-7 + 1e-7 * _noise(s)),
    # a spread of one part in 2**40 of the offset, with a trend along the field
    "f64-trend": (np.float64, lambda s: 3.0e6 + np.linspace(0, 1, N) * 2.0**-18
                  + 2.0**-20 * _noise(s)),
    # float32 input: 2**24 + small integers (offset ~1e6 times the spread)
    "f32-offset": (np.float32, lambda s: (2.0**24 + np.round(8 * _noise(s)) * 2)
                   .astype(np.float32)),
    "f32-ordinary": (np.float32, lambda s: (288.0 + 15.0 * _noise(s)).astype(np.float32)),
    # integers: int32 near the top of the range, int64 near 2**62 whose
    # sum overflows int64 (values kept exact in float64 so var is checkable)
    "i32-big": (np.int32, lambda s: (2**31 - 1 - np.abs(np.round(1e6 * _noise(s))))
                .astype(np.int32)),
    "i32-small": (np.int32, lambda s: np.round(1000 * _noise(s)).astype(np.int32)),
    "i64-huge": (np.int64, lambda s: (np.int64(2**62) + (np.round(2**20 * _noise(s))
                                                        .astype(np.int64) << 12))),
}

STATS = ["count", "sum", "mean", "var", "std", "min", "max"]


def exact(values: np.ndarray) -> dict:
    """Exact statistics of ``values`` as Fractions (integers stay exact)."""
    if values.dtype.kind == "i":
        xs = [Fraction(int(v)) for v in values]
    else:
        xs = [Fraction(float(v)) for v in values]
    n = len(xs)
    total = sum(xs)
    mean = total / n
    var = sum((x - mean) ** 2 for x in xs) / n
    return {"count": n, "sum": total, "mean": mean, "var": var,
            "min": min(xs), "max": max(xs)}


def check(name: str, got: dict, truth: dict, prefix: str = "f") -> None:
    """Exact for count, min, max and (integer fields) sum and mean; 1e-12
    relative for var and std; float sums and means to a few ulps."""
    dtype = CASES[name][0]
    g = {k: got[f"{prefix}_{k}"] for k in STATS if f"{prefix}_{k}" in got}
    assert int(g["count"]) == truth["count"], (name, g["count"])
    assert g["min"] == float(truth["min"]) and g["max"] == float(truth["max"]), name
    if np.dtype(dtype).kind == "i":
        # correctly rounded: the exact Fraction rounded once
        assert g["sum"] == float(truth["sum"]), (name, g["sum"], float(truth["sum"]))
        assert g["mean"] == float(truth["mean"]), (name, g["mean"], float(truth["mean"]))
    else:
        scale = float(max(abs(truth["min"]), abs(truth["max"])))
        assert abs(Fraction(g["mean"]) - truth["mean"]) <= 4 * 2.0**-53 * scale, name
    var = truth["var"]
    rel = abs(Fraction(g["var"]) - var) / var
    assert rel <= Fraction(1, 10**12), f"{name}: var relative error {float(rel):.3g}"
    std = math.sqrt(float(var))   # within an ulp of the exact root
    srel = abs(g["std"] - std) / std
    assert srel <= 1e-12, f"{name}: std relative error {srel:.3g}"


#: Weights for the weighted case: small integers, so the truth is exact.
WVALUES = [1.0 + (k * 7) % 5 for k in range(N)]


def exact_weighted(values: np.ndarray) -> dict:
    """Exact weighted mean and var (weights :data:`WVALUES`) as Fractions."""
    xs = [Fraction(float(v)) for v in values]
    ws = [Fraction(w) for w in WVALUES]
    big_w = sum(ws)
    mean = sum(w * x for w, x in zip(ws, xs)) / big_w
    return {"mean": mean, "var": sum(w * (x - mean) ** 2 for w, x in zip(ws, xs)) / big_w}


def run(comm, name: str, steps: int = 2, output=None) -> dict:
    """Drive one session over the case's field; return {step: results}.

    Two analyses: plain stats ``f_*`` and weighted mean/var ``fw_*``."""
    dtype, make = CASES[name]
    offset, size = slabs(N, comm.size)[comm.rank]
    cfg = {"fields": {"f": {"units": "1", "dims": ["x"]}},
           "analyses": [{"kind": "stats", "field": "f", "stats": STATS},
                        {"kind": "stats", "field": "f", "name": "fw",
                         "stats": ["mean", "var"],
                         "weights": {"dim": "x", "values": WVALUES}}],
           "output": {"overwrite": True}}
    api.init(comm, cfg, output=output)
    out = {}
    try:
        # a one-cell halo of garbage on each side: it must not leak in
        api.declare_field("f", dtype, (N,), (offset,), (size + 2,), (1,), (1,))
        for step in range(1, steps + 1):
            arr = np.full(size + 2, 7, dtype=dtype)
            arr[1:-1] = make(step)[offset:offset + size]
            api.expose("f", arr)
            out[step] = dict(api.step(step, float(step)))
    finally:
        api.finalize()
    return out


def window_series(s: int) -> float:
    """A slowly varying global mean: 288 K moving by microkelvins."""
    return 288.0 + 1e-6 * np.sin(0.7 * s) + 3e-7 * s


WINDOW_STEPS = 4
WINDOW_TOTAL = 12


def run_window(comm, output=None):
    """A constant-in-space field whose value follows :func:`window_series`;
    a window of var over the stats mean.  Returns the session's writer."""
    offset, size = slabs(N, comm.size)[comm.rank]
    cfg = {"fields": {"f": {"units": "K", "dims": ["x"]}},
           "analyses": [{"kind": "stats", "field": "f", "stats": ["mean"]},
                        {"kind": "window", "source": "f", "steps": WINDOW_STEPS,
                         "ops": ["mean", "var"]}],
           "output": {"overwrite": True}}
    s = api.init(comm, cfg, output=output)
    try:
        api.declare_field("f", np.float64, (N,), (offset,), (size,))
        # steps 0..TOTAL: the windows [kW, (k+1)W) are whole, and the last
        # step reaches the last one's end
        for step in range(0, WINDOW_TOTAL + 1):
            api.expose("f", np.full(size, window_series(step)))
            api.step(step, float(step))
    finally:
        api.finalize()
    return s.writer


def window_truth():
    """Exact var of each window of the series (the means the window sees)."""
    out = []
    for w in range(WINDOW_TOTAL // WINDOW_STEPS):
        xs = [Fraction(window_series(s)) for s in
              range(w * WINDOW_STEPS, (w + 1) * WINDOW_STEPS)]
        m = sum(xs) / len(xs)
        out.append(sum((x - m) ** 2 for x in xs) / len(xs))
    return out


def check_weighted(name: str, got: dict, truth: dict, scale: float) -> None:
    """Weighted mean to a few ulps of the data's size, var to 1e-12 relative."""
    assert abs(Fraction(got["fw_mean"]) - truth["mean"]) <= 4 * 2.0**-53 * scale, name
    rel = abs(Fraction(got["fw_var"]) - truth["var"]) / truth["var"]
    assert rel <= Fraction(1, 10**12), f"{name}: weighted var relative error {float(rel):.3g}"
