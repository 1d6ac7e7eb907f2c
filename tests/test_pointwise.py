"""kind: pointwise (issue 16, item 5): per-point running mean, min, max and
var over the whole run or over windows, against xarray on the whole series
(``mean("time")``, ``resample(time=...)``), at 1 to 4 fake ranks with
uneven slabs, C and Fortran order, NaN and +-Inf present (skipped point by
point: xarray's skipna on the series with Inf masked).
tests/mpi/test_mpi_perpoint.py checks the same from the parallel file."""
import numpy as np
import pytest

from insitu.comm import FakeWorld
from insitu.options import ConfigError, parse

import perpoint_cases as pc

OPS = ["mean", "min", "max", "var"]


def _close(got, want, op):
    np.testing.assert_allclose(got, want, rtol=1e-12 if op != "var" else 1e-9,
                               atol=1e-15, equal_nan=True, err_msg=op)


@pytest.mark.parametrize("nranks,order", [(1, "C"), (2, "F"), (3, "C"), (4, "F"), (4, "C")])
@pytest.mark.parametrize("ddof", [0, 1])
def test_whole_run_equals_xarray_reductions_over_time(nranks, order, ddof):
    an = [{"kind": "pointwise", "field": "T", "ops": OPS, "ddof": ddof, "name": "pw"}]
    writers = FakeWorld(nranks).run(lambda c: pc.run(c, an, 60, order))
    rows = pc.rows(writers, "time_pw")
    assert len(rows) == 1                       # written once, at the end
    step, time, bounds, v = rows[0]
    assert bounds == (1.0, 60.0) and v["pw_samples"] == 60
    da = pc.series(60)
    for op in OPS:
        want = da.var("time", ddof=ddof) if op == "var" else getattr(da, op)("time")
        _close(v[f"pw_{op}"], want.values, op)
    np.testing.assert_array_equal(v["pw_count"], da.count("time").values)
    assert np.isnan(v["pw_mean"][2, 3]) and v["pw_count"][2, 3] == 0     # NaN throughout
    assert v["pw_count"][4, 1] == 60 - 12                                # NaN every 5th
    # the point at 270 K moving by 1e-3 K keeps its variance
    assert v["pw_var"][0, 9] == pytest.approx(float(da.var("time", ddof=ddof)[0, 9]),
                                              rel=1e-9)


@pytest.mark.parametrize("nranks", [1, 3, 4])
def test_monthly_and_seasonal_windows_equal_xarray_resample(nranks):
    """800 daily samples from 1 January (noleap): 26 months; the last,
    partial month is dropped (complete_only), the seasons are written
    whole or partial with their sample counts (complete_only: false)."""
    an = [{"kind": "pointwise", "field": "T", "ops": OPS, "calendar_period": "month",
           "name": "mon"},
          {"kind": "pointwise", "field": "T", "ops": ["mean", "max"], "every": 2,
           "calendar_period": "season", "complete_only": False, "name": "sea"}]
    writers = FakeWorld(nranks).run(lambda c: pc.run(c, an, 800, "C", first=0))
    da = pc.series(800, first=0)
    r = da.resample(time="MS")
    months = pc.rows(writers, "time_mon")
    assert len(months) == 26                     # the 27th month is cut by the run's end
    for i, (_, _, bounds, v) in enumerate(months):
        assert v["mon_samples"] == int(r.count().isel(time=i).max())
        for op in OPS:
            _close(v[f"mon_{op}"], getattr(r, op)().isel(time=i).values, op)
    assert months[0][2] == (0.0, 31.0) and months[1][2] == (31.0, 59.0)
    da2 = pc.series(800, every=2, first=0)
    r2 = da2.resample(time="QS-DEC")
    seasons = pc.rows(writers, "time_sea")
    assert len(seasons) == r2.count().sizes["time"]   # the first and last are partial
    for i, (_, _, bounds, v) in enumerate(seasons):
        assert v["sea_samples"] == int(r2.count().isel(time=i).max())
        _close(v["sea_mean"], r2.mean().isel(time=i).values, "mean")
        _close(v["sea_max"], r2.max().isel(time=i).values, "max")


def test_steps_windows_and_a_sampling_cadence():
    """``steps: 4`` with ``every: 3``: windows of 4 samples (12 steps)."""
    an = [{"kind": "pointwise", "field": "T", "ops": ["mean", "var"], "every": 3,
           "steps": 4, "name": "w"}]
    writers = FakeWorld(3).run(lambda c: pc.run(c, an, 50, "F", first=0))
    rows = pc.rows(writers, "time_w")
    da = pc.series(50, every=3, first=0)
    assert len(rows) == 4                        # samples 0..47; 48 opens a fifth, cut off
    for i, (_, _, _, v) in enumerate(rows):
        part = da.isel(time=slice(4 * i, 4 * i + 4))
        _close(v["w_mean"], part.mean("time").values, "mean")
        _close(v["w_var"], part.var("time").values, "var")


def test_pointwise_config_errors():
    base = {"kind": "pointwise", "field": "T"}
    parse({"analyses": [base]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]: give at most one"):
        parse({"analyses": [{**base, "steps": 3, "calendar_period": "month"}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.ops"):
        parse({"analyses": [{**base, "ops": ["median"]}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.complete_only"):
        parse({"analyses": [{**base, "steps": 3, "complete_only": False}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.calendar_period"):
        parse({"analyses": [{**base, "calendar_period": "week"}]})


@pytest.mark.parametrize("ops", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # numpy's nan* on the all-NaN point
def test_the_kernel_gives_the_same_bits_on_a_slab_with_and_without_halo(ops):
    """A slab contiguous in memory order (C or Fortran, no halo) is updated
    as one row, a halo-sliced one row by row: the same bits, equal to
    numpy's per-point reductions over the samples (NaN and +-Inf skipped);
    every combination of the ops (var: Welford; min/max) in one loop."""
    from insitu.kernels import perpoint as kp
    var, minmax = ops
    rng = np.random.default_rng(2)
    xs = rng.normal(288.0, 3.0, size=(9, 5, 6, 7))
    xs[rng.random(xs.shape) < 0.1] = np.nan
    xs[rng.random(xs.shape) < 0.03] = np.inf
    xs[:, 1, 2, 3] = np.nan
    results = {}
    for name in ("C", "F", "halo C", "halo F"):
        order = name[-1]
        buf = np.zeros((5 + 2, 6 + 2, 7 + 2), order=order) if "halo" in name else \
            np.zeros((5, 6, 7), order=order)
        v = buf[1:-1, 1:-1, 1:-1] if "halo" in name else buf
        mo = kp.memory_order(v)
        k = kp.kernel_view(v, mo)
        assert k.flags.c_contiguous == ("halo" not in name)
        n, n4 = kp.state_like(v, np.int32, 0, mo)
        s1, s14 = kp.state_like(v, np.float64, 0.0, mo)
        s2, s24 = kp.state_like(v, np.float64, 0.0, mo)
        lo, lo4 = kp.state_like(v, np.float64, np.inf, mo)
        hi, hi4 = kp.state_like(v, np.float64, -np.inf, mo)
        for x in xs:
            v[...] = x
            kp.moments_update(k, n4, s14, s24, lo4, hi4, var, minmax)
        results[name] = [a.copy() for a in (n, s1, s2, lo, hi)]
    for name, got in results.items():
        for a, b in zip(got, results["halo C"]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    fin = np.where(np.isfinite(xs), xs, np.nan)
    n, s1, s2, lo, hi = results["C"]
    np.testing.assert_array_equal(n, np.isfinite(xs).sum(axis=0))
    ok = n > 0   # (a point with no finite sample is NaN in the output: pointwise._values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 if var else s1 / n
        np.testing.assert_allclose(mean[ok], np.nanmean(fin, axis=0)[ok], rtol=1e-13)
        if var:
            np.testing.assert_allclose((s2 / n)[ok], np.nanvar(fin, axis=0)[ok], rtol=1e-9)
    if minmax:
        np.testing.assert_array_equal(lo[ok], np.nanmin(fin, axis=0)[ok])
        np.testing.assert_array_equal(hi[ok], np.nanmax(fin, axis=0)[ok])
