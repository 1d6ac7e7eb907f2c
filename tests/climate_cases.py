"""The weighted reductions, extremes and exceedance of issue 16, as one set of
cases run on fake ranks (tests/test_weights_everywhere.py,
tests/test_extremes.py) and under real MPI through the parallel HDF5 writer
(tests/mpi/test_mpi_climate.py), checked against xarray and numpy on the
whole field.

Fields (C order, uneven slabs cut here, not by insitu):

* ``T`` (plev, lat, lon) = (5, 13, 11), with a halo of one cell on every
  side filled with garbage; NaN in a whole row, a whole column and single
  points, +-Inf, and its maximum and minimum each tied at three points on
  different ranks;
* ``area`` (lat, lon) and ``dpf`` (plev, lat, lon): weight fields
  decomposed like ``T``.  Where the ranks split ``plev`` (2 ranks), a
  (lat, lon) field cannot be declared (every rank would hold the same box),
  so ``area`` is then declared over (plev, lat, lon) with the same values;
* ``U`` (ya, xa) = (12, 16), slabs aligned to blocks of 2 x 4 (coarsen).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from insitu import api
from insitu.analyses import Piece

SHAPE = (5, 13, 11)
USHAPE = (12, 16)
LAT = -84.0 + 14.0 * np.arange(13)
LON = 15.0 + 30.0 * np.arange(11)
PLEV = np.array([100000.0, 85000.0, 70000.0, 50000.0, 25000.0])
DP = np.array([10000.0, 15000.0, 15000.0, 17500.0, 25000.0])
YA = -82.5 + 15.0 * np.arange(12)
MAX_TIES = [(4, 2, 1), (1, 11, 8), (0, 6, 5)]      # the lowest flat index: (0, 6, 5)
MIN_TIES = [(2, 0, 10), (4, 12, 0), (3, 7, 3)]     # the lowest: (2, 0, 10)
HIST = (230.0, 300.0, 14)
THRESHOLD = 262.0

COORDS = {
    "lat": {"start": -84.0, "step": 14.0, "units": "degrees_north",
            "standard_name": "latitude"},
    "lon": {"start": 15.0, "step": 30.0, "units": "degrees_east",
            "standard_name": "longitude"},
    "plev": {"values": PLEV.tolist(), "units": "Pa", "standard_name": "air_pressure"},
    "ya": {"start": -82.5, "step": 15.0, "units": "degrees_north"},
}
FIELDS = {"T": {"units": "K", "long_name": "temperature", "dims": ["plev", "lat", "lon"]},
          "area": {"units": "m2", "dims": ["lat", "lon"]},
          "dpf": {"units": "Pa", "dims": ["plev", "lat", "lon"]},
          "U": {"units": "m s-1", "dims": ["ya", "xa"]}}
COSLAT = {"dim": "lat", "values": "coslat"}
DPW = {"dim": "plev", "values": DP.tolist(), "units": "Pa"}
REGION = {"lon": [2, 9], "lat": {"from": -40.0, "to": 50.0}}   # lat [4, 10)

ANALYSES = [
    {"kind": "reduce", "field": "T", "over": ["lon"], "weights": "area", "name": "zonal"},
    {"kind": "reduce", "field": "T", "over": ["lat", "lon"], "weights": COSLAT,
     "name": "profile"},
    {"kind": "reduce", "field": "T", "over": ["plev"], "op": "integral", "weights": DPW,
     "name": "column"},
    {"kind": "reduce", "field": "T", "over": ["plev"], "op": "integral", "weights": "dpf",
     "name": "column_f"},
    {"kind": "reduce", "field": "T", "over": ["lon"], "weights": COSLAT, "region": REGION,
     "name": "zonal_box"},
    {"kind": "reduce", "field": "T", "over": ["lon"], "op": "max", "region": {"lat": [3, 9]},
     "name": "zonal_max_box"},
    {"kind": "reduce", "field": "T", "over": ["lat"], "op": "mean", "region": {"lat": [3, 9]},
     "name": "band"},
    {"kind": "coarsen", "field": "U", "factors": {"ya": 2, "xa": 4},
     "weights": {"dim": "ya", "values": "coslat"}, "name": "U_w"},
    {"kind": "coarsen", "field": "U", "factors": {"ya": 2, "xa": 4},
     "region": {"ya": [1, 9], "xa": [3, 14]}, "name": "U_r"},
    {"kind": "coarsen", "field": "U", "factors": {"ya": 2, "xa": 4},
     "weights": {"dim": "xa", "values": [float(1 + (i % 3)) for i in range(16)]},
     "region": {"xa": [5, 16]}, "name": "U_wr"},
    {"kind": "histogram", "field": "T", "bins": HIST[2], "range": list(HIST[:2]),
     "weights": "area", "quantiles": [0.1, 0.5, 0.9], "name": "T_hist_w"},
    {"kind": "histogram", "field": "T", "bins": HIST[2], "range": list(HIST[:2]),
     "weights": COSLAT, "region": REGION, "name": "T_hist_wr"},
    {"kind": "stats", "field": "T", "stats": ["max", "min", "argmax", "argmin", "count"]},
    {"kind": "stats", "field": "T", "stats": ["argmax", "argmin"], "region": REGION,
     "name": "T_box"},
    {"kind": "stats", "field": "U", "stats": ["argmax", "argmin"]},
    {"kind": "exceedance", "field": "T", "threshold": THRESHOLD},
    {"kind": "exceedance", "field": "T", "threshold": THRESHOLD, "weights": COSLAT,
     "name": "T_warm_area"},
    {"kind": "exceedance", "field": "T", "threshold": THRESHOLD, "op": "le",
     "weights": "area", "region": REGION, "name": "T_cold_box"},
]


def splits_plev(size: int) -> bool:
    return GRIDS[size][0] > 1


def config(size: int = 1):
    fields = {k: dict(v) for k, v in FIELDS.items()}
    if splits_plev(size):
        fields["area"]["dims"] = ["plev", "lat", "lon"]
    return {"fields": fields, "coords": COORDS, "analyses": ANALYSES,
            "time": {"units": "days since 2000-01-01", "calendar": "noleap"}}


def whole(step: int):
    """``(T, area, dpf, U)`` on the whole grid at ``step``."""
    z, y, x = np.indices(SHAPE, dtype=np.float64)
    T = (250.0 + 30.0 * np.cos(np.deg2rad(LAT))[None, :, None] - 4.0 * z
         + 6.0 * np.sin(0.7 * x + 0.3 * step) * np.cos(0.5 * y) + 0.01 * step)
    T[1, 3, :] = np.nan          # a whole row along lon
    T[:, 5, 7] = np.nan          # a whole column along plev
    T[3, 10, 9] = np.nan
    T[2, 8, 2] = np.inf
    T[0, 0, 0] = -np.inf
    top, bottom = np.nanmax(T[np.isfinite(T)]) + 1.0, np.nanmin(T[np.isfinite(T)]) - 1.0
    for p in MAX_TIES:
        T[p] = top
    for p in MIN_TIES:
        T[p] = bottom
    area = np.cos(np.deg2rad(LAT))[:, None] * (1.0 + 0.3 * np.sin(0.9 * np.arange(11)))[None, :]
    dpf = DP[:, None, None] * (1.0 + 0.05 * np.cos(y + 2 * x))
    j, i = np.indices(USHAPE, dtype=np.float64)
    U = 10.0 * np.sin(0.4 * i + 0.1 * step) + j
    U[3, 5] = np.nan
    U[8:10, 12:16] = np.nan      # a whole block of 2 x 4
    U[0, 0] = np.inf
    return T, area, dpf, U


#: process grids of T over (plev, lat, lon): each reduced dim is split somewhere
GRIDS = {1: (1, 1, 1), 2: (2, 1, 1), 3: (1, 3, 1), 4: (1, 2, 2)}


def split(n: int, parts: int) -> list:
    return [(int(c[0]), len(c)) for c in np.array_split(np.arange(n), parts)]


def boxes(size: int, rank: int):
    """This rank's (offset, shape) of T (and area, dpf) and of U: uneven,
    decomposed along reduced and kept dims alike; U along block edges."""
    tgrid = GRIDS[size]
    pz, py, px = np.unravel_index(rank, tgrid)
    (oz, nz), (oy, ny), (ox, nx) = (split(n, p)[q] for n, p, q in
                                    zip(SHAPE, tgrid, (pz, py, px)))
    ugrid = {1: (1, 1), 2: (1, 2), 3: (3, 1), 4: (2, 2)}[size]
    uy, ux = np.unravel_index(rank, ugrid)
    ubox = [((USHAPE[0] // ugrid[0]) * uy, (USHAPE[1] // ugrid[1]) * ux),
            (USHAPE[0] // ugrid[0], USHAPE[1] // ugrid[1])]
    return ((oz, oy, ox), (nz, ny, nx)), ubox


def declare(rank: int, size: int):
    """Declare the fields; return ``expose(step)``."""
    (to, ts), (uo, us) = boxes(size, rank)
    api.declare_field("T", np.float64, SHAPE, to, tuple(n + 2 for n in ts),
                      (1, 1, 1), (1, 1, 1), "C")
    three = splits_plev(size)
    if three:
        api.declare_field("area", np.float64, SHAPE, to, ts)
    else:
        api.declare_field("area", np.float64, SHAPE[1:], to[1:], ts[1:])
    api.declare_field("dpf", np.float64, SHAPE, to, ts)
    api.declare_field("U", np.float64, USHAPE, uo, us)
    sl = tuple(slice(o, o + n) for o, n in zip(to, ts))
    usl = tuple(slice(o, o + n) for o, n in zip(uo, us))
    keep = {}

    def expose(step):
        T, area, dpf, U = whole(step)
        t = np.full(tuple(n + 2 for n in ts), 1e30)   # garbage halos
        t[1:-1, 1:-1, 1:-1] = T[sl]
        a = np.broadcast_to(area, SHAPE)[sl] if three else area[sl[1:]]
        keep.update(T=t, area=np.ascontiguousarray(a),
                    dpf=np.ascontiguousarray(dpf[sl]), U=np.ascontiguousarray(U[usl]))
        for k, v in keep.items():
            api.expose(k, v)
    return expose


def run(comm, steps=(1, 2), output=None):
    """On a fake or real rank: the results of each step (pieces on their
    writers); with ``output``, the parallel HDF5 file too."""
    api.init(comm, config(comm.size), output=output)
    try:
        expose = declare(comm.rank, comm.size)
        out = {}
        for step in steps:
            expose(step)
            out[step] = api.step(step, float(step))
        return out
    finally:
        api.finalize()


def assemble(outs: list, step: int) -> dict:
    """Replicated results from rank 0; distributed pieces put together (each
    point written exactly once)."""
    got = {k: v for k, v in outs[0][step].items() if not isinstance(v, Piece) and v is not None}
    shapes = {}
    for out in outs:
        for k, v in out[step].items():
            if isinstance(v, Piece):
                shapes.setdefault(k, []).append(v)
    for k, pieces in shapes.items():
        shape = tuple(np.max([[s + n for s, n in zip(p.start, p.values.shape)]
                              for p in pieces], axis=0))
        full = np.full(shape, np.nan)
        written = np.zeros(shape, dtype=int)
        for p in pieces:
            sl = tuple(slice(s, s + n) for s, n in zip(p.start, p.values.shape))
            full[sl] = p.values
            written[sl] += 1
        assert (written == 1).all(), f"{k}: every point written exactly once"
        got[k] = full
    return got


# -- the truth, from xarray and numpy on the whole field -----------------------

def _da(T):
    return xr.DataArray(np.where(np.isfinite(T), T, np.nan), dims=("plev", "lat", "lon"),
                        coords={"plev": PLEV, "lat": LAT, "lon": LON})


def _weighted_mean(da, w, dims):
    return da.weighted(w).mean(dims).values


def _integral(da, w, dim):
    """The weighted sum, NaN where no finite value has weight (xarray gives 0)."""
    s = da.weighted(w).sum(dim).values
    return np.where(da.notnull().any(dim).values, s, np.nan)


def weighted_quantile_bins(x, w, qs, edges):
    """The [low, high] edges of the bin holding each weighted quantile: the
    first value whose cumulative weight reaches q * total."""
    order = np.argsort(x, kind="stable")
    xs, cw = x[order], np.cumsum(w[order])
    lo, hi = [], []
    for q in qs:
        v = xs[np.searchsorted(cw, q * cw[-1], side="left")]
        k = min(max(np.searchsorted(edges, v, side="right") - 1, 0), len(edges) - 2)
        lo.append(edges[k])
        hi.append(edges[k + 1])
    return np.array(lo), np.array(hi)


def truth(step: int) -> dict:
    T, area, dpf, U = whole(step)
    da = _da(T)
    cos = xr.DataArray(np.cos(np.deg2rad(LAT)), dims="lat", coords={"lat": LAT})
    A = xr.DataArray(area, dims=("lat", "lon"), coords={"lat": LAT, "lon": LON})
    want = {}
    want["zonal"] = _weighted_mean(da, A, "lon")
    want["profile"] = _weighted_mean(da, cos, ["lat", "lon"])
    want["column"] = _integral(da, xr.DataArray(DP, dims="plev", coords={"plev": PLEV}), "plev")
    want["column_f"] = _integral(da, xr.DataArray(dpf, dims=da.dims, coords=da.coords), "plev")
    box = xr.zeros_like(da, dtype=bool)
    box[:, 4:10, 2:9] = True
    want["zonal_box"] = _weighted_mean(da.where(box), cos, "lon")
    band = xr.zeros_like(da, dtype=bool)
    band[:, 3:9, :] = True
    want["zonal_max_box"] = da.where(band).max("lon").values
    want["band"] = da.where(band).mean("lat").values
    # coarse fields: (sum of w x) / (sum of w) over the finite values in the box
    du = xr.DataArray(np.where(np.isfinite(U), U, np.nan), dims=("ya", "xa"))

    def coarse(w, mask):
        x = du.where(mask)
        wb = xr.DataArray(np.broadcast_to(w, USHAPE), dims=("ya", "xa")).where(x.notnull())
        num = (x * wb).coarsen(ya=2, xa=4).sum()
        den = wb.coarsen(ya=2, xa=4).sum()
        return (num / den).where(den > 0).values
    every = np.ones(USHAPE, dtype=bool)
    want["U_w"] = coarse(np.cos(np.deg2rad(YA))[:, None], every)
    r = np.zeros(USHAPE, dtype=bool)
    r[1:9, 3:14] = True
    want["U_r"] = coarse(np.ones(USHAPE), r)
    r2 = np.zeros(USHAPE, dtype=bool)
    r2[:, 5:16] = True
    want["U_wr"] = coarse(np.array([1.0 + (i % 3) for i in range(16)])[None, :], r2)
    # weighted histograms: numpy's, with -Inf below and +Inf above
    lo, hi, nb = HIST
    edges = np.linspace(lo, hi, nb + 1)
    for name, w, sl in (("T_hist_w", np.broadcast_to(area, SHAPE), np.s_[:, :, :]),
                        ("T_hist_wr", np.broadcast_to(np.cos(np.deg2rad(LAT))[:, None], SHAPE[1:]),
                         np.s_[:, 4:10, 2:9])):
        w = np.broadcast_to(w, SHAPE)[sl]
        x = T[sl]
        ok = ~np.isnan(x)
        counts, _ = np.histogram(x[np.isfinite(x)], nb, (lo, hi), weights=w[np.isfinite(x)])
        want[name] = counts
        want[f"{name}_below"] = w[ok & (x < lo)].sum()
        want[f"{name}_above"] = w[ok & (x > hi)].sum()
        want[f"{name}_qbins"] = (x[ok], w[ok], edges)
    # extremes: numpy's first occurrence (the lowest flat index) and xarray's argmax
    fin = np.where(np.isfinite(T), T, np.nan)
    for name, sl, shape in (("T", np.s_[:, :, :], SHAPE), ("T_box", np.s_[:, 4:10, 2:9], None)):
        sub = np.full(SHAPE, np.nan)
        sub[sl] = fin[sl]
        for stat, f in (("argmax", np.nanargmax), ("argmin", np.nanargmin)):
            k = int(f(sub))
            want[f"{name}_{stat}"] = k
            at = np.unravel_index(k, SHAPE)
            want[f"{name}_{stat}_plev"] = PLEV[at[0]]
            want[f"{name}_{stat}_lat"] = LAT[at[1]]
            want[f"{name}_{stat}_lon"] = LON[at[2]]
    want["T_max"], want["T_min"] = np.nanmax(fin), np.nanmin(fin)
    want["T_count"] = int(np.isfinite(T).sum())
    ufin = np.where(np.isfinite(U), U, np.nan)
    for stat, f in (("argmax", np.nanargmax), ("argmin", np.nanargmin)):
        k = int(f(ufin))
        want[f"U_{stat}"] = k
        want[f"U_{stat}_ya"] = YA[np.unravel_index(k, USHAPE)[0]]
        want[f"U_{stat}_xa"] = float(np.unravel_index(k, USHAPE)[1])   # no coords: index
    # exceedance
    ok = np.isfinite(T)
    want["T_gt_262_count"] = int((ok & (T > THRESHOLD)).sum())
    want["T_gt_262_fraction"] = (ok & (T > THRESHOLD)).sum() / ok.sum()
    wcos = np.broadcast_to(np.cos(np.deg2rad(LAT))[None, :, None], SHAPE)
    want["T_warm_area_count"] = want["T_gt_262_count"]
    want["T_warm_area_fraction"] = wcos[ok & (T > THRESHOLD)].sum() / wcos[ok].sum()
    wa = np.broadcast_to(area, SHAPE)[:, 4:10, 2:9]
    tb, okb = T[:, 4:10, 2:9], ok[:, 4:10, 2:9]
    want["T_cold_box_count"] = int((okb & (tb <= THRESHOLD)).sum())
    want["T_cold_box_fraction"] = wa[okb & (tb <= THRESHOLD)].sum() / wa[okb].sum()
    return want


def check(got: dict, want: dict) -> None:
    """Every result of the cases against the truth."""
    for k, v in want.items():
        if k.endswith("_qbins"):
            continue
        assert k in got, f"{k} missing from the results ({sorted(got)})"
        g = np.asarray(got[k])
        if isinstance(v, (int, np.integer)):
            # an integer result (xarray decodes one with a missing_value to float)
            assert g.dtype.kind in "iuf" and float(g) == v, (k, g, v)
        else:
            np.testing.assert_allclose(g, v, rtol=1e-12, atol=0, equal_nan=True, err_msg=k)
    from insitu.kernels.histogram import quantiles_from_counts  # noqa: F401 - the same rule
    x, w, edges = want["T_hist_w_qbins"]
    lo, hi = weighted_quantile_bins(x, w, [0.1, 0.5, 0.9], edges)
    q = np.asarray(got["T_hist_w_quantile"])
    assert np.all((lo <= q) & (q <= hi)), (q, lo, hi)
