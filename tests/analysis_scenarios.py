"""One config with every analysis kind, on a 2-D field, checked against
numpy on the whole field.  Runs on the fake communicator and under MPI.

The region (rows 0-4) lies inside rank 0's slab for 2, 3 and 4 ranks, so
most ranks hold none of it and must still join every collective.
"""
from __future__ import annotations

import numpy as np
import pytest

from reference import _quantile_bins

from insitu import api
from insitu.decomposition import cartesian_box, process_grid

SHAPE = (24, 32)  # (y, x); 1-4 ranks split it into slabs that 4x4 blocks tile
BINS, RANGE, QS = 16, (270.0, 310.0), [0.1, 0.5, 0.9]
POINTS = [[0, 0], [23, 31], [11, 17], [12, 16]]
REGION = {"y": [0, 5], "x": [3, 30]}


def field(step):
    j, i = np.indices(SHAPE, dtype=np.float64)
    f = 288.0 + 12.0 * np.sin(0.3 * i + 0.05 * step) * np.cos(0.2 * j) + 0.1 * j
    f[5, 7] = np.nan
    f[20, 2] = np.inf
    return f


def weights():
    j, i = np.indices(SHAPE, dtype=np.float64)
    return np.cos(np.deg2rad(-60.0 + 5.0 * j)) + 0.0 * i   # cos(latitude) per row


def config(output=None):
    return {
        "output": {"overwrite": True},
        "fields": {"T": {"units": "K", "dims": ["y", "x"]}, "area": {"dims": ["y", "x"]}},
        "coords": {"y": {"start": -57.5, "step": 5.0, "units": "degrees_north",
                         "standard_name": "latitude"}},
        "analyses": [
            {"kind": "stats", "field": "T", "name": "Tc", "stats": ["mean", "std"],
             "weights": {"dim": "y", "values": "coslat"}},
            {"kind": "stats", "field": "T", "name": "Tv", "stats": ["mean"],
             "weights": {"dim": "x", "values": list(range(1, 33))}},
            {"kind": "stats", "field": "T", "name": "Tlat", "stats": ["count", "mean"],
             "region": {"y": {"from": -50.0, "to": -35.0}}},   # rows 2, 3, 4
            {"kind": "stats", "field": "T", "name": "Tw", "weights": "area",
             "stats": ["mean", "std"]},
            {"kind": "stats", "field": "T", "name": "Tr", "region": REGION,
             "stats": ["count", "mean", "min", "max"]},
            {"kind": "histogram", "field": "T", "bins": BINS, "range": list(RANGE),
             "quantiles": QS},
            {"kind": "probe", "field": "T", "points": POINTS},
            {"kind": "reduce", "field": "T", "over": ["x"], "op": "mean"},
            {"kind": "reduce", "field": "T", "over": ["y"], "op": "max"},
            {"kind": "coarsen", "field": "T", "factors": {"y": 4, "x": 4}},
        ],
    }


def run(comm, steps=2, output=None):
    grid = process_grid(comm.size, 2)
    coords = np.unravel_index(comm.rank, grid)
    off, shp = cartesian_box(SHAPE, grid, coords)
    sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
    api.init(comm, config(), output=output)
    try:
        for name in ("T", "area"):
            api.declare_field(name, np.float64, SHAPE, off, tuple(n + 2 for n in shp),
                              (1, 1), (1, 1), "C")
        area = np.full(tuple(n + 2 for n in shp), -1.0)
        area[1:-1, 1:-1] = weights()[sl]
        api.expose("area", area)
        out = {}
        for step in range(1, steps + 1):
            t = np.full(tuple(n + 2 for n in shp), 1e30)
            t[1:-1, 1:-1] = field(step)[sl]
            api.expose("T", t)
            out[step] = api.step(step, float(step))
    finally:
        api.finalize()
    return out


def expected(step):
    f = field(step)
    fin = np.where(np.isfinite(f), f, np.nan)
    w = weights()
    ok = np.isfinite(f)
    wm = np.average(f[ok], weights=w[ok])
    r = f[REGION["y"][0]:REGION["y"][1], REGION["x"][0]:REGION["x"][1]]
    r = r[np.isfinite(r)]
    counts, edges = np.histogram(f[ok], bins=BINS, range=RANGE)
    c = np.nanmean(fin.reshape(6, 4, 8, 4), axis=(1, 3))
    lat = f[2:5][np.isfinite(f[2:5])]
    coslat = np.broadcast_to(np.cos(np.deg2rad(-57.5 + 5.0 * np.arange(24)))[:, None], SHAPE)
    tc = np.average(f[ok], weights=coslat[ok])
    xw = np.broadcast_to(np.arange(1.0, 33.0)[None, :], SHAPE)
    return {
        "Tc_mean": tc, "Tc_std": np.sqrt(np.average((f[ok] - tc) ** 2, weights=coslat[ok])),
        "Tv_mean": np.average(f[ok], weights=xw[ok]),
        "Tlat_count": lat.size, "Tlat_mean": lat.mean(),
        "Tw_mean": wm, "Tw_std": np.sqrt(np.average((f[ok] - wm) ** 2, weights=w[ok])),
        "Tr_count": r.size, "Tr_mean": r.mean(), "Tr_min": r.min(), "Tr_max": r.max(),
        "T_hist": counts, "T_hist_below": int((f[ok] < RANGE[0]).sum()),
        "T_hist_above": int((f[~np.isnan(f)] > RANGE[1]).sum()),
        "T_probe": np.array([f[tuple(p)] for p in POINTS]),
        "T_mean_over_x": np.nanmean(fin, axis=1),
        "T_max_over_y": np.nanmax(fin, axis=0),
        "T_coarse": c,
        "_quantile_bins": _quantile_bins(f[ok], QS, edges),
    }


def check(step, got):
    """``got``: variable -> value for one step (distributed ones assembled)."""
    want = expected(step)
    for k in ("Tw_mean", "Tw_std", "Tr_mean", "Tr_min", "Tr_max", "Tlat_mean", "Tc_mean",
              "Tc_std", "Tv_mean"):
        assert got[k] == pytest.approx(want[k], rel=1e-12), k
    for k in ("Tr_count", "T_hist_below", "T_hist_above", "Tlat_count"):
        assert got[k] == want[k], k
    np.testing.assert_array_equal(got["T_hist"], want["T_hist"])
    assert got["T_hist"].dtype.kind == "i"
    lo, hi = want["_quantile_bins"]  # the bins that hold numpy's quantiles
    assert np.all((lo <= got["T_hist_quantile"]) & (got["T_hist_quantile"] <= hi)), \
        (got["T_hist_quantile"], lo, hi)
    np.testing.assert_array_equal(got["T_probe"], want["T_probe"])
    for k in ("T_mean_over_x", "T_max_over_y", "T_coarse"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=k)
