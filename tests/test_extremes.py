"""Extremes (issue 16, item 4): stats' argmax/argmin (the global flat index
and the coordinates of the extreme, ties to the lowest global index for any
decomposition, NaN and Inf skipped, through the step's one reduction) and
kind: exceedance (count and area fraction past a threshold), against numpy
and xarray on the whole field, on fake ranks at 1 to 4 ranks with uneven
slabs.  tests/mpi/test_mpi_climate.py checks the same under real MPI from
the file."""
import itertools

import numpy as np
import pytest
import xarray as xr

from insitu import api
from insitu.analyses.stats import NO_INDEX
from insitu.comm import FakeWorld
from insitu.kernels.extremes import arg_extremes
from insitu.reduction import ARGMAX, ReductionPlan, merge_argmax


def _drive(comm, full, analyses, grid, order="C", coords=None, dims=None):
    """``full`` cut into a ``grid`` of uneven slabs (np.array_split), this
    rank's slab exposed in ``order``; the results of one step."""
    idx = np.unravel_index(comm.rank, grid)
    cuts = [np.array_split(np.arange(n), p)[i] for n, p, i in zip(full.shape, grid, idx)]
    off = tuple(int(c[0]) if c.size else 0 for c in cuts)
    shp = tuple(c.size for c in cuts)
    dims = dims or [f"d{k}" for k in range(full.ndim)]
    api.init(comm, {"fields": {"f": {"dims": dims}}, "coords": coords or {},
                    "analyses": analyses})
    try:
        api.declare_field("f", full.dtype, full.shape, off, shp, order=order)
        sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
        local = np.array(full[sl], order=order)
        api.expose("f", local)
        return api.step(1, 0.0)
    finally:
        api.finalize()


def _grids(ndim, nranks):
    """Every way to put ``nranks`` ranks on an ``ndim``-D process grid."""
    for g in itertools.product(range(1, nranks + 1), repeat=ndim):
        if int(np.prod(g)) == nranks:
            yield g


def _first(full, pick):
    """numpy's nanargmax/nanargmin over the finite values: the first (lowest
    C-order flat index) of equal extremes."""
    fin = np.where(np.isfinite(full), full, np.nan).astype(np.float64)
    return int(pick(fin))


ARG = [{"kind": "stats", "field": "f", "stats": ["argmax", "argmin", "max", "min"]}]


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_ties_go_to_the_lowest_global_index_for_every_decomposition(nranks):
    """Few distinct values (many ties), NaN and +-Inf, on every process grid
    of 1-4 ranks over a (7, 9) field; -0.0 and 0.0 tie as equal values."""
    rng = np.random.default_rng(nranks)
    full = rng.integers(-3, 4, size=(7, 9)).astype(np.float64)
    full[rng.random(full.shape) < 0.15] = np.nan
    full[2, 3], full[5, 1] = np.inf, -np.inf
    full[full == 0] = -0.0
    full[0, 0] = 0.0
    for grid in _grids(2, nranks):
        r = FakeWorld(nranks).run(_drive, full, ARG, grid)[0]
        assert r["f_argmax"] == _first(full, np.nanargmax), grid
        assert r["f_argmin"] == _first(full, np.nanargmin), grid
        assert full.ravel()[r["f_argmax"]] == r["f_max"]
        assert full.ravel()[r["f_argmin"]] == r["f_min"]
        assert (r["f_argmax_d0"], r["f_argmax_d1"]) == np.unravel_index(r["f_argmax"], full.shape)


@pytest.mark.parametrize("nranks,order", [(1, "F"), (3, "F"), (4, "C"), (4, "F")])
def test_three_dims_in_either_memory_order(nranks, order):
    """A (plev, lat, lon) field with ties, scanned in memory order whatever
    it is: the index is C order over the declared dims all the same, and the
    coordinates are xarray's argmax."""
    rng = np.random.default_rng(7)
    full = np.round(rng.normal(size=(4, 5, 6)), 1)
    full[rng.random(full.shape) < 0.1] = np.nan
    lat = np.linspace(-60, 60, 5)
    lon = np.arange(6) * 60.0
    coords = {"lat": {"start": -60.0, "step": 30.0, "units": "degrees_north"},
              "lon": {"start": 0.0, "step": 60.0, "units": "degrees_east"},
              "plev": {"values": [1000.0, 850.0, 500.0, 200.0], "units": "hPa"}}
    dims = ["plev", "lat", "lon"]
    da = xr.DataArray(full, dims=dims,
                      coords={"plev": [1000.0, 850.0, 500.0, 200.0], "lat": lat, "lon": lon})
    for grid in _grids(3, nranks):
        r = FakeWorld(nranks).run(_drive, full, ARG, grid, order, coords, dims)[0]
        for stat, pick in (("argmax", da.argmax), ("argmin", da.argmin)):
            at = pick(dim=dims)                      # xarray: {dim: index}
            flat = int(np.ravel_multi_index([int(at[d]) for d in dims], full.shape))
            assert r[f"f_{stat}"] == flat, (grid, stat)
            for d in dims:
                assert r[f"f_{stat}_{d}"] == float(da[d][int(at[d])]), (grid, stat, d)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_float32_and_integer_fields(dtype):
    full = (np.arange(60) % 7).reshape(6, 10).astype(dtype)
    r = FakeWorld(3).run(_drive, full, ARG, (3, 1))[0]
    assert r["f_argmax"] == int(np.argmax(full)) and r["f_argmin"] == int(np.argmin(full))


def test_a_field_or_region_without_a_finite_value():
    full = np.full((5, 4), np.nan)
    full[0, 0] = np.inf
    full[4, 3] = 2.0
    a = [{"kind": "stats", "field": "f", "stats": ["argmax", "argmin"]},
         {"kind": "stats", "field": "f", "stats": ["argmax"], "name": "box",
          "region": {"d0": [0, 3]}}]
    r = FakeWorld(2).run(_drive, full, a, (2, 1))[0]
    assert r["f_argmax"] == r["f_argmin"] == 19
    assert r["box_argmax"] == NO_INDEX and np.isnan(r["box_argmax_d0"])


def test_no_index_is_the_writers_integer_fill():
    """CF 2.5.1: the index's missing_value equals the _FillValue the writer
    gives int64 variables (when it gives one)."""
    from insitu.writer import NC_FILL
    assert NO_INDEX == NC_FILL[np.dtype(np.int64)]


def test_region_indices_are_global():
    full = np.arange(48.0).reshape(6, 8)
    a = [{"kind": "stats", "field": "f", "stats": ["argmax", "argmin"], "name": "box",
          "region": {"d0": [1, 4], "d1": [2, 5]}}]
    r = FakeWorld(4).run(_drive, full, a, (2, 2))[0]
    assert r["box_argmax"] == 3 * 8 + 4 and r["box_argmin"] == 1 * 8 + 2


def test_one_reduction_per_step():
    """argmax/argmin travel in the step's one record: no extra collective."""
    def count(comm, stats):
        api.init(comm, {"fields": {"f": {"dims": ["y"]}},
                        "analyses": [{"kind": "stats", "field": "f", "stats": stats}]})
        try:
            api.declare_field("f", np.float64, (8,), (4 * comm.rank,), (4,))
            api.expose("f", np.arange(4.0) * (comm.rank + 1))
            api.step(1, 0.0)
            before = comm.collectives
            api.step(2, 0.0)
            return comm.collectives - before
        finally:
            api.finalize()
    assert FakeWorld(2).run(count, ["max"]) == FakeWorld(2).run(count, ["max", "argmax",
                                                                        "argmin"])


def test_merge_is_commutative_and_associative_bit_for_bit():
    """Every order of merging rank candidates (value, index) gives the same
    pair, ties resolved to the lowest index."""
    plan = ReductionPlan()
    plan.reserve(ARGMAX)
    plan.freeze()
    cands = [np.array([3.0, 17.0]), np.array([3.0, 5.0]), np.array([1.0, 0.0]),
             np.array([-np.inf, np.inf]), np.array([3.0, 9.0])]
    results = set()
    for perm in itertools.permutations(cands):
        acc = perm[0].copy()
        for c in perm[1:]:
            plan.combine(c, acc)
        results.add(tuple(acc))
    assert results == {(3.0, 5.0)}
    a, b = np.array([2.0, 4.0]), np.array([2.0, 1.0])
    merge_argmax(a, b, np.array([0]))
    assert tuple(b) == (2.0, 1.0)


def test_kernel_on_strided_views():
    rng = np.random.default_rng(0)
    full = rng.integers(0, 5, size=(6, 7, 8)).astype(np.float64)
    v = np.asfortranarray(full)[1:5, ::2, 3:]
    out = arg_extremes(v, (1, 0, 3), (6, 4, 8))   # any consistent global frame
    g = np.zeros((6, 4, 8)) - np.inf
    g[1:5, :, 3:] = v
    assert int(out[1]) == int(np.argmax(g))
    g[g == -np.inf] = np.inf
    assert int(out[3]) == int(np.argmin(g))


@pytest.mark.parametrize("order", ["C", "F"])
def test_kernel_chunks_of_long_rows(order):
    """Rows longer than the kernel's chunk (kernels.extremes.CHUNK): chunks
    skipped by the vectorised count, ties in later chunks and in later rows
    (the lowest global index wins, whatever the memory order), NaN and
    +-Inf beside the extremes, a row length that is not a multiple of the
    chunk."""
    from insitu.kernels.extremes import CHUNK
    rng = np.random.default_rng(5)
    n = 3 * CHUNK + 17
    full = np.round(rng.normal(0, 3, size=(4, 5, n)))     # many equal values
    full[rng.random(full.shape) < 0.05] = np.nan
    full[0, 0, 1], full[3, 4, n - 1], full[2, 1, CHUNK] = np.inf, -np.inf, np.inf
    hi, lo = np.nanmax(np.where(np.isinf(full), np.nan, full)), \
        np.nanmin(np.where(np.isinf(full), np.nan, full))
    full[3, 2, 2 * CHUNK + 5] = hi          # ties, late in memory order
    full[1, 4, CHUNK - 1] = lo
    v = np.array(full, order=order)
    out = arg_extremes(v, (0, 0, 0), full.shape)
    g = np.where(np.isfinite(full), full, -np.inf)
    assert (out[0], int(out[1])) == (hi, int(np.argmax(g)))
    g = np.where(np.isfinite(full), full, np.inf)
    assert (out[2], int(out[3])) == (lo, int(np.argmin(g)))
    # a slab of a larger field, strided, in a global frame
    part = v[1:, ::2, 3:]
    out = arg_extremes(part, (1, 0, 3), (4, 3, n))
    g = np.full((4, 3, n), -np.inf)
    g[1:, :, 3:] = np.where(np.isfinite(part), part, -np.inf)
    assert int(out[1]) == int(np.argmax(g))


# -- exceedance ---------------------------------------------------------------------

@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_exceedance_counts_and_fractions(nranks):
    rng = np.random.default_rng(11)
    full = np.round(rng.normal(290, 8, size=(9, 7)))      # values equal to the threshold
    full[rng.random(full.shape) < 0.1] = np.nan
    full[1, 1], full[2, 2] = np.inf, -np.inf
    lat = np.linspace(-80, 80, 9)
    coords = {"y": {"start": -80.0, "step": 20.0, "units": "degrees_north"}}
    thr = 290.0
    a = [{"kind": "exceedance", "field": "f", "threshold": thr, "op": op, "name": op}
         for op in ("gt", "ge", "lt", "le")]
    a += [{"kind": "exceedance", "field": "f", "threshold": thr, "name": "w",
           "weights": {"dim": "y", "values": "coslat"}},
          {"kind": "exceedance", "field": "f", "threshold": thr, "name": "box",
           "region": {"y": {"from": -30.0, "to": 50.0}, "x": [1, 6]}}]
    grid = {1: (1, 1), 2: (2, 1), 3: (1, 3), 4: (2, 2)}[nranks]
    r = FakeWorld(nranks).run(_drive, full, a, grid, "C", coords, ["y", "x"])[0]
    ok = np.isfinite(full)
    for op, hit in (("gt", full > thr), ("ge", full >= thr), ("lt", full < thr),
                    ("le", full <= thr)):
        assert r[f"{op}_count"] == (ok & hit).sum(), op
        assert r[f"{op}_fraction"] == pytest.approx((ok & hit).sum() / ok.sum(), rel=1e-15)
    assert r["gt_count"] != r["ge_count"]   # the data hold the threshold itself
    w = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], full.shape)
    assert r["w_fraction"] == pytest.approx(w[ok & (full > thr)].sum() / w[ok].sum(),
                                            rel=1e-13)
    sub, okb = full[3:7, 1:6], ok[3:7, 1:6]   # y in [-30, 50]: -20, 0, 20, 40
    assert r["box_count"] == (okb & (sub > thr)).sum()
    assert r["box_fraction"] == pytest.approx((okb & (sub > thr)).sum() / okb.sum())


def test_exceedance_of_a_field_without_a_finite_value():
    full = np.full((4, 3), np.nan)
    r = FakeWorld(2).run(_drive, full, [{"kind": "exceedance", "field": "f",
                                         "threshold": -1.5}], (2, 1))[0]
    assert r["f_gt_m1p5_count"] == 0 and np.isnan(r["f_gt_m1p5_fraction"])


@pytest.mark.parametrize("analysis,message", [
    ({"kind": "exceedance", "field": "f"}, "analyses[0].threshold: missing required key"),
    ({"kind": "exceedance", "field": "f", "threshold": 1, "op": "above"},
     "analyses[0].op: expected one of gt, ge, lt, le, got 'above'"),
    ({"kind": "exceedance", "field": "f", "threshold": "warm"},
     "analyses[0].threshold: expected a number, got 'warm'"),
    ({"kind": "stats", "field": "f", "stats": ["argmax", "argmax"]},
     "analyses[0].stats[1]: duplicate value 'argmax'"),
])
def test_bad_extreme_configs(analysis, message):
    from insitu.options import ConfigError, parse
    with pytest.raises(ConfigError) as e:
        parse({"analyses": [analysis]})
    assert message in str(e.value) and "\n" not in str(e.value)
