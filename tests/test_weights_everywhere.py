"""Weights in every reduction (issue 16, item 1) on fake ranks: reduce
(weighted mean, integral), coarsen (area-weighted blocks), histogram
(weighted counts and quantiles), with regions, against xarray and numpy on
the whole field at 1 to 4 ranks with uneven slabs and NaN present; the bad
configs; the CF units and cell_methods.  The same cases run under real MPI
through the writer in tests/mpi/test_mpi_climate.py."""
import numpy as np
import pytest
import xarray as xr

import climate_cases as cc
from insitu import api
from insitu.analyses import AnalysisError, Piece
from insitu.analyses.weights import product_units
from insitu.comm import FakeWorld
from insitu.kernels.weighted import (OPS, Prepared, accumulate, exceedance,
                                     exceedance_prepared, weighted_histogram)
from insitu.options import ConfigError


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_every_weighted_option_equals_xarray(nranks):
    outs = FakeWorld(nranks).run(cc.run)
    for step in (1, 2):
        cc.check(cc.assemble(outs, step), cc.truth(step))


def test_the_cases_split_every_reduced_dim():
    """The cases are only worth their ranks if the slabs cut each dim the
    reductions combine across: plev (integral), lat and lon."""
    split = set()
    for n in (2, 3, 4):
        for r in range(n):
            (off, shp), _ = cc.boxes(n, r)
            split |= {d for d, o, s, g in zip(("plev", "lat", "lon"), off, shp, cc.SHAPE)
                      if s != g}
    assert split == {"plev", "lat", "lon"}


# -- Fortran order and halos ----------------------------------------------------

FSHAPE = (8, 6, 4)   # (x, y, z), Fortran order, x fastest


def _fortran(comm):
    """A Fortran-ordered (x, y, z) field with halos, split along y and x."""
    px = 2 if comm.size in (2, 4) else 1
    py = comm.size // px
    ry, rx = divmod(comm.rank, px)
    xs = np.array_split(np.arange(FSHAPE[0]), px)[rx]
    ys = np.array_split(np.arange(FSHAPE[1]), py)[ry]
    x, y, z = np.meshgrid(np.arange(8.0), np.arange(6.0), np.arange(4.0), indexing="ij")
    full = np.sin(x + 2 * y) * 3 + z
    full[2, 1, :] = np.nan
    full[5, 4, 3] = np.inf
    w = np.array([1.0, 2.0, 3.0, 0.5])
    api.init(comm, {"fields": {"T": {"units": "K"}},
                    "analyses": [
                        {"kind": "reduce", "field": "T", "over": ["z"], "op": "integral",
                         "weights": {"dim": "z", "values": w.tolist(), "units": "m"},
                         "name": "col"},
                        {"kind": "reduce", "field": "T", "over": ["x"],
                         "weights": {"dim": "z", "values": w.tolist()}, "name": "zm",
                         "region": {"x": [1, 7]}},
                        {"kind": "coarsen", "field": "T", "factors": {"z": 2},
                         "weights": {"dim": "z", "values": w.tolist()}, "name": "cz"}]})
    try:
        lo = (int(xs[0]), int(ys[0]), 0)
        n = (len(xs), len(ys), FSHAPE[2])
        api.declare_field("T", np.float64, FSHAPE, lo, tuple(k + 2 for k in n),
                          (1, 1, 1), (1, 1, 1), "F")
        a = np.full(tuple(k + 2 for k in n), -1e300, order="F")
        a[1:-1, 1:-1, 1:-1] = full[xs[0]:xs[-1] + 1, ys[0]:ys[-1] + 1]
        api.expose("T", a)
        return api.step(1, 0.0), full, w
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 3, 4])
def test_fortran_order_with_halos(nranks):
    outs = FakeWorld(nranks).run(_fortran)
    full, w = outs[0][1], outs[0][2]
    got = cc.assemble([{1: o[0]} for o in outs], 1)
    da = xr.DataArray(np.where(np.isfinite(full), full, np.nan), dims=("x", "y", "z"))
    wz = xr.DataArray(w, dims="z")
    col = da.weighted(wz).sum("z").values
    col[~da.notnull().any("z").values] = np.nan
    np.testing.assert_allclose(got["col"], col, rtol=1e-13)
    np.testing.assert_allclose(got["zm"], da[1:7].weighted(wz).mean("x").values, rtol=1e-13)
    num = (da * wz).coarsen(z=2).sum()
    den = wz.where(da.notnull()).coarsen(z=2).sum()
    np.testing.assert_allclose(got["cz"], (num / den).values, rtol=1e-13)


# -- kernels --------------------------------------------------------------------

@pytest.mark.parametrize("along", ["row", "column"])
def test_weighted_histogram_kernel_is_numpys(along):
    """A weight per value (float counters) and a weight per row (integer
    counts times the row's weight)."""
    rng = np.random.default_rng(4)
    edges = np.linspace(-2, 2, 41)   # the values on the edges and an ulp either side
    x = np.concatenate([rng.normal(0, 1, 2916), edges, np.nextafter(edges, -3),
                        np.nextafter(edges, 3), [np.nan, np.inf, -np.inf]]).reshape(78, 39)
    w = (rng.uniform(0, 2, x.shape[1])[None, :] if along == "row"
         else rng.uniform(0, 2, x.shape[0])[:, None])
    got = weighted_histogram(x, w, -2.0, 2.0, 40)
    ww = np.broadcast_to(w, x.shape)
    fin = np.isfinite(x)
    want, _ = np.histogram(x[fin], 40, (-2, 2), weights=ww[fin])
    np.testing.assert_allclose(got[1:-1], want, rtol=1e-13)
    ok = ~np.isnan(x)
    assert got[0] == pytest.approx(ww[ok & (x < -2)].sum())
    assert got[-1] == pytest.approx(ww[ok & (x > 2)].sum())


def test_accumulate_maps_every_index_once():
    """Weighted sums into blocks of a strided (non-contiguous) view."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 10, 4))[:, ::2, :]
    w = rng.uniform(size=(6, 1, 4))
    acc, wacc = np.zeros((3, 5, 1)), np.zeros((3, 5, 1))
    accumulate(a, w, [np.arange(6) // 2, np.arange(5), np.zeros(4, dtype=int)], acc, wacc)
    ww = np.broadcast_to(w, a.shape)
    np.testing.assert_allclose(acc[..., 0], (a * ww).reshape(3, 2, 5, 4).sum(axis=(1, 3)),
                               rtol=1e-13)
    np.testing.assert_allclose(wacc[..., 0], ww.reshape(3, 2, 5, 4).sum(axis=(1, 3)),
                               rtol=1e-13)


def _accumulate_by_element(v, w, maps, shape):
    acc, wacc = np.zeros(shape), np.zeros(shape)
    w = np.broadcast_to(w, v.shape)
    for idx in np.ndindex(v.shape):
        if np.isfinite(v[idx]):
            o = tuple(m[i] for m, i in zip(maps, idx))
            acc[o] += w[idx] * v[idx]
            wacc[o] += w[idx]
    return acc, wacc


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("halo", [0, 1])
def test_accumulate_rows_of_one_weight(order, halo):
    """The row kernel (kernels.weighted._accumulate_rows: rows with one
    weight, contiguous in memory) against the sums element by element: a
    vertical integral, blocks along every axis, reduced axes inside and
    outside, C and Fortran order, halo views, sub-slabs (a region),
    NaN and +-Inf."""
    rng = np.random.default_rng(3)
    full = rng.normal(size=(6 + 2 * halo, 12 + 2 * halo, 10 + 2 * halo))
    full[rng.random(full.shape) < 0.1] = np.nan
    full.flat[::13] = np.inf
    full = np.array(full, order=order)
    v = full[halo:halo + 6, halo:halo + 12, halo:halo + 10]
    cases = [([np.zeros(6, int), np.arange(12), np.arange(10)], (1, 12, 10)),
             ([np.arange(6), np.arange(12) // 3, np.arange(10) // 2], (6, 4, 5)),
             ([np.arange(6) // 2, np.arange(12) // 6, np.arange(10) // 5], (3, 2, 2)),
             ([np.arange(6), np.zeros(12, int), np.arange(10)], (6, 1, 10)),
             ([np.arange(6) // 3, np.arange(12), np.zeros(10, int)], (2, 12, 1))]
    for wshape in [(6, 1, 1), (1, 12, 1), (1, 1, 10), (1, 1, 1)]:
        w = rng.uniform(0, 2, wshape)
        for maps, shape in cases:
            for sl in [(slice(None),) * 3, (slice(1, 5), slice(2, 11), slice(0, 7))]:
                vv, ww = v[sl], np.broadcast_to(w, v.shape)[sl]
                mm = [m[q] for m, q in zip(maps, sl)]
                acc, wacc = np.zeros(shape), np.zeros(shape)
                accumulate(vv, ww, mm, acc, wacc)
                want = _accumulate_by_element(vv, ww, mm, shape)
                np.testing.assert_allclose(acc, want[0], rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(wacc, want[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op, compare", [("gt", np.greater), ("ge", np.greater_equal),
                                         ("lt", np.less), ("le", np.less_equal)])
def test_exceedance_kernel_is_numpys(op, compare):
    """Both of the kernel's paths (a weight per row, counted in integers;
    a weight per value, in four lanes), C and Fortran order, a strided view,
    values on the threshold, NaN and +-Inf, rows not a multiple of 4."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 7, 13))
    x.flat[::7] = np.nan
    x.flat[3::11] = np.inf
    x.flat[5::17] = -np.inf
    x.flat[2::9] = 0.25          # on the threshold
    per_value = rng.uniform(0, 2, x.shape)
    per_row = rng.uniform(0, 2, (5, 7, 1))
    for xx, w in [(x, per_value), (x, per_row), (np.asfortranarray(x), per_value),
                  (x[:, ::2, 1:], per_value[:, ::2, 1:]), (x, np.float64(1.0))]:
        ww = np.broadcast_to(w, xx.shape)
        ok = np.isfinite(xx)
        past = ok & compare(xx, 0.25)
        want = [past.sum(), ok.sum(), ww[past].sum(), ww[ok].sum()]
        np.testing.assert_allclose(exceedance(xx, w, 0.25, op), want, rtol=1e-13)


def test_prepared_slab_follows_the_view_object():
    """The kernel's layout is kept while the same view objects come back,
    and made again for another view (a model exposing other memory)."""
    a, b = np.zeros((4, 6)), np.full((4, 6), 2.0)
    prep, out = Prepared(), np.zeros(4)
    exceedance_prepared(prep.get(a, np.float64(1.0), (a, None)), 1.0, OPS["gt"], out)
    assert out[0] == 0
    a[:] = 5.0                     # the same memory, new values: seen
    exceedance_prepared(prep.get(a, np.float64(1.0), (a, None)), 1.0, OPS["gt"], out)
    assert out[0] == 24
    exceedance_prepared(prep.get(b[:2], np.float64(1.0), (b, None)), 3.0, OPS["lt"], out)
    assert list(out[:2]) == [12, 12]


# -- bad configs: one line naming the key path, the same on every rank ------------

def _error(analysis, nranks=2):
    shape = (5, 12, 8)

    def body(comm):
        rows = np.array_split(np.arange(shape[1]), comm.size)[comm.rank]
        try:
            api.init(comm, {"fields": {"T": {"dims": ["plev", "y", "x"]},
                                       "area": {"dims": ["y", "x"]}},
                            "coords": {"x": {"start": 0.0, "step": 45.0, "units": "degrees_east"}},
                            "analyses": [analysis]})
        except ConfigError as exc:
            return str(exc)
        try:
            api.declare_field("T", np.float64, shape, (0, int(rows[0]), 0),
                              (5, len(rows), 8))
            api.declare_field("area", np.float64, shape[1:], (int(rows[0]), 0), (len(rows), 8))
            api.expose("T", np.zeros((5, len(rows), 8)))
            api.expose("area", np.ones((len(rows), 8)))
            api.step(1, 0.0)
        except (AnalysisError, ConfigError) as exc:
            return str(exc)
        finally:
            api.finalize()
        return "no error"
    messages = FakeWorld(nranks).run(body)
    assert all(m == messages[0] for m in messages), messages
    assert "\n" not in messages[0]
    return messages[0]


R = {"kind": "reduce", "field": "T", "over": ["plev"]}


@pytest.mark.parametrize("analysis,message", [
    ({**R, "op": "integral"},
     "analyses[0].weights: op: integral is the weighted sum sum(w * x) and needs weights"),
    ({**R, "op": "max", "weights": "area"},
     "analyses[0].weights: weights apply to op: mean and op: integral, not op: max"),
    ({**R, "op": "sum", "weights": "area"}, "a weighted sum is op: integral"),
    ({**R, "op": "integral", "weights": {"dim": "plev", "values": [1.0, 2.0, 3.0]}},
     "analyses[0].weights.values: 3 values for the 5 points along 'plev'"),
    ({**R, "op": "integral", "weights": {"dim": "z", "values": [1.0]}},
     "analyses[0].weights.dim: field 'T' has no dimension 'z'"),
    ({**R, "weights": {"dim": "plev", "values": [1.0, -2.0, 1, 1, 1]}},
     "analyses[0].weights.values[1]: expected a number >= 0.0, got -2.0"),
    ({**R, "weights": {"dim": "plev", "values": [1.0] * 5, "unit": "Pa"}},
     "analyses[0].weights.unit: unknown key (known keys: dim, values, units)"),
    ({**R, "weights": {"dim": "plev"}}, "analyses[0].weights.values: missing required key"),
    ({**R, "weights": 3.0}, "analyses[0].weights: expected a field name"),
    ({**R, "weights": {"dim": "y", "values": "coslat"}},
     "analyses[0].weights.values: coslat needs a 'coords: y:' entry"),
    ({**R, "weights": {"dim": "x", "values": "coslat", "units": "m2"}},
     "analyses[0].weights.units: coslat weights are dimensionless"),
    ({**R, "weights": {"dim": "x", "values": "coslat"}},
     "analyses[0].weights.values: weights must not be negative"),   # 'latitudes' up to 315
    ({**R, "weights": "dp"}, "analyses[0].weights: field 'dp' is not declared"),
    ({**R, "region": {"q": [0, 1]}}, "analyses[0].region.q: field 'T' has no dimension 'q'"),
    ({"kind": "coarsen", "field": "T", "factors": {"y": 2}, "weights": "nope"},
     "analyses[0].weights: field 'nope' is not declared"),
    ({"kind": "coarsen", "field": "T", "factors": {"y": 2}, "region": {"y": [4, 99]}},
     "analyses[0].region.y: [4, 99) is empty or outside the global range [0, 12)"),
    ({"kind": "histogram", "field": "T", "bins": 4, "range": [0, 1],
      "weights": {"dim": "x", "values": [1.0] * 7}},
     "analyses[0].weights.values: 7 values for the 8 points along 'x'"),
    ({"kind": "stats", "field": "T", "weights": {"dim": "y", "values": [1.0] * 3}},
     "analyses[0].weights.values: 3 values for the 12 points along 'y'"),
])
def test_bad_weights_are_one_line_naming_the_key(analysis, message):
    assert message in _error(analysis)


# -- CF metadata -----------------------------------------------------------------

def test_units_of_a_weighted_sum():
    assert product_units("K", "Pa") == "K Pa"
    assert product_units("kg kg-1", "kg m-2") == "(kg kg-1) (kg m-2)"
    assert product_units("1", "Pa") == "Pa" and product_units("K", "1") == "K"
    cf_units = pytest.importorskip("cf_units")
    assert cf_units.Unit("(kg kg-1) (kg m-2)") == cf_units.Unit("kg m-2")
    assert cf_units.Unit("K Pa") == cf_units.Unit("K") * cf_units.Unit("Pa")


def test_metadata_of_the_weighted_outputs():
    def body(comm):
        api.init(comm, cc.config(1))
        try:
            cc.declare(0, 1)(1)
            api.step(1, 1.0)
            return {k: v.attrs for k, v in api.session().writer.variables.items()}
        finally:
            api.finalize()
    attrs = FakeWorld(1).run(body)[0]
    assert attrs["column"]["units"] == "K Pa"
    assert attrs["column"]["long_name"] == "integral over plev of temperature"
    assert attrs["profile"]["cell_methods"] == \
        "lat_extent: lon_extent: mean (weighted by cos(latitude) along lat)"
    assert attrs["zonal_box"]["coordinates"] == "lon_extent_2_9"
    assert attrs["zonal_box"]["insitu_region"] == "plev: [0, 5), lat: [4, 10), lon: [2, 9)"
    assert attrs["U_wr"]["cell_methods"] == \
        "ya_c2: xa_c4: mean (weighted by the given weights along xa)"
    assert attrs["T_hist_w"]["units"] == "m2" and "count weighted by area" in \
        attrs["T_hist_w"]["cell_methods"]
    assert attrs["T_hist_w_quantile"]["units"] == "K"


def test_weighted_histogram_counts_are_float():
    outs = FakeWorld(1).run(cc.run)
    r = outs[0][1]
    assert r["T_hist_w"].dtype == np.float64 and isinstance(r["T_hist_w_below"], float)
    assert r["T_hist_w"].sum() > 0
    assert not isinstance(r["zonal"], Piece) or r["zonal"].values.shape == (5, 13)


def _transposed_weights(comm):
    """A weight field declared with its dims in the other order (x, y) than
    the field's (y, x), decomposed alike: laid along the field by strides."""
    shape = (6, 9)
    py, px = {1: (1, 1), 2: (1, 2), 3: (3, 1), 4: (2, 2)}[comm.size]
    ry, rx = divmod(comm.rank, px)
    ys = np.array_split(np.arange(shape[0]), py)[ry]
    xs = np.array_split(np.arange(shape[1]), px)[rx]
    j, i = np.indices(shape, dtype=np.float64)
    T = np.sin(i + 0.5 * j) + 0.1 * j
    T[2, 3] = np.nan
    W = (1.0 + i) * (2.0 + np.cos(j))          # varies along both dims
    api.init(comm, {"fields": {"T": {"dims": ["y", "x"]}, "wt": {"dims": ["x", "y"]}},
                    "analyses": [{"kind": "reduce", "field": "T", "over": ["x"],
                                  "weights": "wt", "name": "m"},
                                 {"kind": "exceedance", "field": "T", "threshold": 0.3,
                                  "weights": "wt", "name": "e"}]})
    try:
        sl = np.ix_(ys, xs)
        api.declare_field("T", np.float64, shape, (int(ys[0]), int(xs[0])), (len(ys), len(xs)))
        api.declare_field("wt", np.float64, shape[::-1], (int(xs[0]), int(ys[0])),
                          (len(xs), len(ys)))
        api.expose("T", np.ascontiguousarray(T[sl]))
        api.expose("wt", np.ascontiguousarray(W[sl].T))
        return api.step(1, 0.0), T, W
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_a_weight_field_with_its_dims_in_another_order(nranks):
    outs = FakeWorld(nranks).run(_transposed_weights)
    T, W = outs[0][1], outs[0][2]
    got = cc.assemble([{1: o[0]} for o in outs], 1)
    da = xr.DataArray(T, dims=("y", "x"))
    w = xr.DataArray(W, dims=("y", "x"))
    np.testing.assert_allclose(got["m"], da.weighted(w).mean("x").values, rtol=1e-13)
    ok = np.isfinite(T)
    assert got["e_fraction"] == pytest.approx(W[ok & (T > 0.3)].sum() / W[ok].sum(), rel=1e-13)
