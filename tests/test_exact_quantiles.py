"""histogram quantile_method: exact (issue 16, item 6): exact to the value,
numpy.quantile(x, q, method="inverted_cdf") over the non-NaN values (+-Inf
included), at 1 to 4 fake ranks on every process grid (uneven slabs),
with NaN, +-Inf, ties, quantiles below and above the range, a region and
a float32 field.  The merge costs one more collective per output step.
tests/mpi/test_mpi_exact_quantiles.py checks the same under real MPI."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld
from insitu.kernels.quantiles import CandidatePlan, order_index
from insitu.options import ConfigError, parse

import test_extremes as te

QS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.29, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]


def field(shape, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    f = rng.normal(280.0, 12.0, size=shape)
    f[rng.random(shape) < 0.05] = np.nan
    f[rng.random(shape) < 0.01] = np.inf
    f[rng.random(shape) < 0.01] = -np.inf
    f.flat[::17] = np.round(f.flat[::17])          # ties
    return f.astype(dtype)


def want(x, qs):
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    return np.array([np.quantile(x, q, method="inverted_cdf") for q in qs])


def hist(bins=20, rng=(260.0, 300.0), **kw):
    return {"kind": "histogram", "field": "f", "bins": bins, "range": list(rng),
            "quantiles": QS, "quantile_method": "exact", "name": "h", **kw}


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_exact_quantiles_equal_numpy_inverted_cdf_on_every_grid(nranks):
    full = field((9, 14), nranks)
    for grid in te._grids(2, nranks):
        outs = FakeWorld(nranks).run(lambda c: te._drive(c, full, [hist()], grid))
        for out in outs:   # the same on every rank
            np.testing.assert_array_equal(out["h_quantile"], want(full, QS))


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_3d_field_a_float32_field_and_few_bins(order):
    full = field((4, 7, 9), 5, np.float32)
    for bins, rng in ((1, (270.0, 290.0)), (3, (200.0, 400.0)), (50, (279.0, 281.0))):
        outs = FakeWorld(3).run(lambda c: te._drive(c, full, [hist(bins, rng)], (1, 3, 1),
                                                    order=order))
        np.testing.assert_array_equal(outs[0]["h_quantile"], want(full, QS))


def test_a_region_and_an_all_nan_field():
    full = field((10, 12), 7)
    an = [hist(region={"d0": [2, 8], "d1": [1, 11]})]
    outs = FakeWorld(4).run(lambda c: te._drive(c, full, an, (2, 2)))
    np.testing.assert_array_equal(outs[0]["h_quantile"], want(full[2:8, 1:11], QS))
    nan = np.full((5, 6), np.nan)
    outs = FakeWorld(2).run(lambda c: te._drive(c, nan, [hist()], (2, 1)))
    assert np.isnan(outs[0]["h_quantile"]).all()


def test_the_binned_quantiles_are_unchanged_by_default():
    full = field((9, 14), 1)
    a = hist()
    del a["quantile_method"]
    exact = FakeWorld(2).run(lambda c: te._drive(c, full, [hist()], (1, 2)))[0]
    binned = FakeWorld(2).run(lambda c: te._drive(c, full, [a], (1, 2)))[0]
    assert not np.array_equal(exact["h_quantile"], binned["h_quantile"])
    assert np.all(np.abs(exact["h_quantile"] - binned["h_quantile"])[2:-2] <= 2.0)  # a bin


def test_order_index_is_numpys():
    rng = np.random.default_rng(3)
    for _ in range(3000):
        n, q = int(rng.integers(1, 500)), float(np.round(rng.random(), int(rng.integers(1, 4))))
        q = min(max(q, 1e-6), 1 - 1e-6)
        assert np.quantile(np.arange(n), q, method="inverted_cdf") == order_index(n, q)


def test_the_merge_keeps_the_smallest_or_the_largest():
    a, b = CandidatePlan(2, 4), CandidatePlan(2, 4)
    a.fill(0, np.array([1.0, 5.0, 7.0]), False)
    b.fill(0, np.array([2.0, 3.0, 4.0, 8.0, 9.0]), False)
    a.fill(1, np.array([1.0, 5.0]), True)
    b.fill(1, np.array([2.0, 3.0, np.inf]), True)
    b.combine(a.record, b.record)
    # the lists are kept unordered (selections, no sort)
    assert sorted(b.record[:4]) == [1.0, 2.0, 3.0, 4.0]
    assert sorted(b.record[4:]) == [2.0, 3.0, 5.0, np.inf]
    assert [b.value(0, r) for r in range(4)] == [1.0, 2.0, 3.0, 4.0]
    assert [b.value(1, r) for r in range(4)] == [np.inf, 5.0, 3.0, 2.0]   # r-th largest


def test_the_histogram_pass_copies_exactly_the_values_it_counts():
    """Collector: the values of the wanted slots, copied while counting,
    are the ones numpy.histogram puts there (edges, +-Inf, NaN, a halo-sliced
    and a Fortran-ordered view, a row whose length is not a multiple of
    the vector width); a slot that outgrows its room says so."""
    from insitu.kernels.histogram import Collector, histogram
    rng = np.random.default_rng(4)
    lo, hi, nb = 270.0, 290.0, 8
    edges = np.linspace(lo, hi, nb + 1)
    x = rng.normal(280.0, 8.0, size=(7, 13, 21))
    x.flat[::11] = rng.choice(edges, size=x.flat[::11].size)      # on the edges
    x.flat[5::29] = np.nan
    x.flat[3::31] = np.inf
    x.flat[7::37] = -np.inf
    views = {"C": x, "halo": x[1:-1, 2:-1, 1:-2], "F": np.asfortranarray(x)}
    for name, v in views.items():
        fin = v[~np.isnan(v)]
        counts, _ = np.histogram(fin[np.isfinite(fin)], nb, (lo, hi))
        below, above = (fin < lo).sum(), (fin > hi).sum()
        c = Collector(nb)
        for slots in ([0], [1, 4], [3, nb + 1], list(range(nb + 2))):
            c.arm(slots, v.size)
            got = histogram(v, lo, hi, nb, None, c)
            np.testing.assert_array_equal(got, [below, *counts, above])
            for s in slots:
                if s == 0:
                    truth = fin[fin < lo]
                elif s == nb + 1:
                    truth = fin[fin > hi]
                else:
                    b = s - 1
                    inb = (fin >= edges[b]) & ((fin < edges[b + 1]) if b < nb - 1
                                               else (fin <= hi))
                    truth = fin[inb]
                np.testing.assert_array_equal(np.sort(c.values(s)), np.sort(truth),
                                              err_msg=f"{name} slot {s}")
        c = Collector(nb)   # a fresh one: an armed collector keeps its larger buffers
        c.arm([4], 3)
        histogram(v, lo, hi, nb, None, c)
        assert c.values(4) is None and c.fill[0] == counts[3]   # ran out of room


def test_the_parts_of_a_bin_are_the_kernels_bins():
    """slots_of: each value's slot and the slots' counts equal what
    histogram() counts and numpy's edges say, values on the edges included
    (a bin cut into 64 parts, as the exact quantiles cut it)."""
    from insitu.kernels.histogram import histogram, slots_of
    rng = np.random.default_rng(6)
    lo, hi = 209.375, 211.25
    edges = np.linspace(lo, hi, 65)
    for n in (0, 1, 7, 8, 9, 1000, 28203):
        x = rng.uniform(lo, hi, n)
        x[::13] = rng.choice(edges, size=x[::13].size)
        idx, counts = np.empty(n, dtype=np.int32), np.zeros(67, dtype=np.int64)
        slots_of(x, lo, hi, 64, idx, counts)
        np.testing.assert_array_equal(counts[:66], histogram(x, lo, hi, 64))
        assert counts[66] == 0
        b = np.clip(np.searchsorted(edges, x, side="right"), 1, 64)   # numpy's rule
        np.testing.assert_array_equal(idx, b)


def _steps(comm, fulls, analysis, grid):
    """``fulls`` exposed one per step (uneven slabs); each step's results
    and the analysis's count of fused and second passes."""
    idx = np.unravel_index(comm.rank, grid)
    full = fulls[0]
    cuts = [np.array_split(np.arange(n), p)[i] for n, p, i in zip(full.shape, grid, idx)]
    off = tuple(int(c[0]) if c.size else 0 for c in cuts)
    shp = tuple(c.size for c in cuts)
    sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
    api.init(comm, {"fields": {"f": {"dims": ["d0", "d1"]}}, "analyses": [analysis]})
    try:
        api.declare_field("f", full.dtype, full.shape, off, shp)
        local = np.array(full[sl])
        api.expose("f", local)
        outs = []
        for k, f in enumerate(fulls):
            local[...] = f[sl]
            outs.append(api.step(k + 1, float(k)))
        sampler = [a for a in api._current().analyses if a.kind == "histogram"][0]
        return outs, dict(sampler.passes)
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks,grid,dtype", [(1, (1, 1), np.float64),
                                               (3, (3, 1), np.float64),
                                               (4, (2, 2), np.float32)])
def test_steps_whose_quantile_bins_stay_move_and_grow(nranks, grid, dtype):
    """From the second output step on, the values of the slots the last
    step wanted are copied in the histogram's own pass, and their
    sub-histograms narrow the merge to the part of the bin that holds the
    quantile; when a quantile's bin moves (the field shifted by most of a
    bin), or a bin grows past its room (values squeezed towards the
    median), that step takes one more pass.  Exact at every step, on every
    rank, for float64 and float32 fields."""
    base = field((12, 17), 20, dtype)
    an = hist(bins=10, rng=(260.0, 300.0))
    # 1: no prediction; 2: the same bins; 3: moved; 4: the same again
    fulls = [(base + d).astype(dtype) for d in (0.0, 0.01, 3.0, 3.01)]
    for outs, passes in FakeWorld(nranks).run(lambda c: _steps(c, fulls, an, grid)):
        for out, full in zip(outs, fulls):
            np.testing.assert_array_equal(out["h_quantile"], want(full, QS))
        assert passes == {"fused": 2, "second": 2}, passes
    base = field((60, 70), 21, dtype)   # enough values that the room's slack (64) is small
    med = want(base, [0.5])[0]
    squeezed = np.where(np.abs(base - med) < 8.0, med + 0.01 * (base - med), base).astype(dtype)
    fulls = [base, squeezed, squeezed]   # 2: the median's bin holds far more values
    an = hist(bins=10, rng=(260.0, 300.0), quantiles=[0.5])
    for outs, passes in FakeWorld(nranks).run(lambda c: _steps(c, fulls, an, grid)):
        for out, full in zip(outs, fulls):
            np.testing.assert_array_equal(out["h_quantile"], want(full, [0.5]))
        assert passes == {"fused": 1, "second": 2}, passes


def test_exact_config_errors():
    parse({"analyses": [{**hist(), "field": "T"}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.quantile_method: exact needs"):
        parse({"analyses": [{**hist(), "quantiles": []}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.quantile_method: exact quantiles "
                                          r"are not available with weights"):
        parse({"analyses": [{**hist(), "weights": "area"}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.quantile_method"):
        parse({"analyses": [{**hist(), "quantile_method": "median"}]})
