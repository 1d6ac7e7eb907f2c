"""Every kernel against numpy, through one table (numbagg style)."""
import numpy as np
import pytest

from insitu.kernels import moments as km

def finite(a):
    """The finite values as float64: what the statistics are taken over."""
    a = np.asarray(a, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


# (statistic, position in the kernel's result, numpy reference)
TABLE = [
    ("count", km.COUNT, lambda a: finite(a).size),
    ("sum", km.SUM, lambda a: finite(a).sum()),
    ("mean", km.MEAN, lambda a: finite(a).mean()),
    ("m2", km.M2, lambda a: finite(a).var() * finite(a).size),
    ("min", km.MIN, lambda a: finite(a).min()),
    ("max", km.MAX, lambda a: finite(a).max()),
    ("nan_count", km.NAN_COUNT, lambda a: np.count_nonzero(np.isnan(a))),
    ("inf_count", km.INF_COUNT, lambda a: np.count_nonzero(np.isinf(a))),
]


def _arrays():
    rng = np.random.default_rng(42)
    base = rng.normal(288.0, 15.0, (17, 23, 9))
    withnan = base.copy()
    withnan[rng.random(base.shape) < 0.05] = np.nan
    yield "f64-3d", base
    yield "f64-nan", withnan
    withinf = withnan.copy()
    withinf[0, 0, :3] = [np.inf, -np.inf, np.inf]
    yield "f64-nan-inf", withinf
    f32inf = base.astype(np.float32)
    f32inf[1, 1, 1] = np.float32(np.inf)
    yield "f32-inf", f32inf
    yield "f32", base.astype(np.float32)
    yield "i32", rng.integers(-1000, 1000, (31, 40)).astype(np.int32)
    yield "i64", rng.integers(-10**12, 10**12, 1000).astype(np.int64)
    yield "1d-long", rng.normal(0, 1, 20000)  # longer than a kernel block
    mixed = rng.normal(0, 3, (40, 300)).astype(np.float32)  # negatives: min/max keys
    mixed[0, :2] = [-0.0, 0.0]
    yield "f32-mixed-sign", mixed
    yield "f64-all-negative", -rng.gamma(2.0, 2.0, 9000)
    yield "halo-view", base[1:-1, 2:-1, 1:-2]
    yield "fortran-view", np.asfortranarray(base)[1:-1, 1:-1, :]
    yield "offset-mean", rng.normal(1e9, 1.0, 4000)  # cancellation-prone


ARRAYS = list(_arrays())


@pytest.mark.parametrize("stat,pos,ref", TABLE, ids=[t[0] for t in TABLE])
@pytest.mark.parametrize("name,arr", ARRAYS, ids=[a[0] for a in ARRAYS])
def test_moments_matches_numpy(name, arr, stat, pos, ref):
    got = km.moments(arr)[pos]
    want = float(ref(arr))
    # float32 data too: the reference sums them in float64, and so must the
    # kernel; one that adds float32 in float32 is ~1e-6 off and fails here.
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300), f"{stat} of {name}"


def test_all_nan_and_empty_give_identities():
    m = km.moments(np.full((4, 5), np.nan))
    assert m[km.COUNT] == 0 and m[km.NAN_COUNT] == 20 and np.isnan(m[km.MEAN])
    i = km.moments(np.full(7, np.inf))
    assert i[km.COUNT] == 0 and i[km.INF_COUNT] == 7 and np.isnan(i[km.MEAN])
    assert m[km.MIN] == np.inf and m[km.MAX] == -np.inf
    e = km.moments(np.empty((0, 3)))
    assert e[km.COUNT] == 0 and e[km.NAN_COUNT] == 0


def test_wrapper_checks_arguments():
    with pytest.raises(TypeError, match="dtype"):
        km.moments(np.zeros(3, dtype=np.complex128))
    with pytest.raises(TypeError, match="numpy array"):
        km.moments([1.0, 2.0])
    with pytest.raises(ValueError, match="out"):
        km.moments(np.zeros(3), out=np.zeros(3))


def test_no_copy_for_fortran_views():
    a = np.asfortranarray(np.zeros((6, 7)))[1:-1, 1:-1]
    c = km.as_c_order_3d(a)
    assert np.shares_memory(a, c) and c.ndim == 3


@pytest.mark.parametrize("name,arr", [a for a in ARRAYS if a[1].ndim > 1],
                         ids=[a[0] for a in ARRAYS if a[1].ndim > 1])
@pytest.mark.parametrize("op", ["sum", "min", "max"])
def test_reduce_axes_matches_numpy(name, arr, op):
    from insitu.kernels.reduce import reduce_axes
    a = np.asarray(arr, dtype=np.float64)
    fin = np.isfinite(a)
    for axes in [(0,), (a.ndim - 1,), tuple(range(a.ndim - 1))]:
        vals, counts = reduce_axes(arr, axes, op)
        if op == "sum":
            np.testing.assert_allclose(vals, np.where(fin, a, 0).sum(axis=axes), rtol=1e-12)
            np.testing.assert_array_equal(counts, fin.sum(axis=axes))
        else:
            fill = np.inf if op == "min" else -np.inf
            want = getattr(np.where(fin, a, fill), op)(axis=axes)
            np.testing.assert_array_equal(vals, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduce_and_coarsen_kernels_widen_float32(dtype):
    """numba's float(x) of a float32 stays float32; the kernels must add in
    float64, like the float64 reference here (a float32 sum is ~1e-7 off)."""
    from insitu.kernels.coarsen import coarsen_mean
    from insitu.kernels.reduce import reduce_axes
    rng = np.random.default_rng(3)
    a = (rng.random((12, 1000)) * 300).astype(dtype)
    a[0, 5] = np.nan
    a[3, 7] = np.inf
    ref = np.where(np.isfinite(a), a, 0).astype(np.float64)
    for axes in ((1,), (0,), (0, 1)):
        vals, counts = reduce_axes(a, axes, "sum")
        np.testing.assert_allclose(vals.ravel(), ref.sum(axis=axes).ravel(), rtol=1e-13)
        np.testing.assert_array_equal(counts.ravel(),
                                      np.isfinite(a).sum(axis=axes).ravel())
    b = np.where(np.isfinite(a), a, np.float32(1.0)).astype(dtype)
    got = coarsen_mean(b, (4, 100))
    want = b.astype(np.float64).reshape(3, 4, 10, 100).mean(axis=(1, 3))
    np.testing.assert_allclose(got, want, rtol=1e-13)


# -- float32 accuracy: the bound the moments kernel states, on hard data ------------------

def _exact_sum(x) -> float:
    """The exact sum of the values, rounded once (math.fsum)."""
    import math
    return math.fsum(np.asarray(x, dtype=np.float64).ravel())


def _hard_float32_fields():
    rng = np.random.default_rng(2024)
    n = 11_000_003   # past 1e7, and no multiple of any block or vector length
    yield "offset-1e4-11M", (1e4 + rng.standard_normal(n)).astype(np.float32)
    a = (1e6 * (1.0 + rng.random(1_000_000))).astype(np.float32)
    tiny = rng.standard_normal(1_000_000).astype(np.float32)
    cancel = np.concatenate([a, -a + tiny, tiny])
    rng.shuffle(cancel)
    yield "cancelling", cancel
    mags = (10.0 ** rng.uniform(-3, 6, 2_000_000) * rng.choice([-1, 1], 2_000_000))
    yield "magnitudes-1e-3-to-1e6", mags.astype(np.float32)
    # rows of 7 values: every value goes to the scalar rest of its row
    yield "short-rows", (288.0 + 15 * rng.standard_normal((300_001, 7))).astype(np.float32)
    yield "halo-view", (288.0 + 15 * rng.standard_normal((2002, 1503))).astype(
        np.float32)[1:-1, 1:-1]


HARD32 = list(_hard_float32_fields())


def _sum_bound(x) -> float:
    """The moments kernel's stated bound: (BLOCK + 8) * 2**-53 * sum(|x|)."""
    return (km.BLOCK + 8) * 2.0**-53 * _exact_sum(np.abs(x.astype(np.float64)))


@pytest.mark.parametrize("name,x", HARD32, ids=[h[0] for h in HARD32])
def test_float32_sum_mean_var_within_the_stated_bound(name, x):
    """Sum within (BLOCK + 8) * 2**-53 * sum|x| of the exact sum (the
    module's docstring), mean and var within 1e-12 relative of exact
    references, on float32 data: offsets, cancellation, 1e-3..1e6
    magnitudes, 1.1e7 values, short rows, a halo view."""
    import math
    m = km.moments(x)
    exact = _exact_sum(x)
    n = x.size
    assert m[km.COUNT] == n
    assert abs(m[km.SUM] - exact) <= _sum_bound(x) + math.ulp(exact), name
    mean = exact / n
    dd = m[km.MEAN] + m[km.MEAN_LO]
    spread = float(np.std(x.astype(np.float64)))
    assert abs(dd - mean) <= 1e-12 * spread + 4 * math.ulp(mean), name
    d = x.astype(np.float64).ravel() - mean
    var = math.fsum(d * d) / n          # two-pass, exact sums: ~2 ulp
    assert abs(m[km.M2] / n - var) <= 1e-12 * var, name


@pytest.mark.parametrize("name,x", HARD32[:2], ids=[h[0] for h in HARD32[:2]])
def test_a_float32_accumulator_fails_that_bound(name, x):
    """The tolerance above can fail: sums kept in float32, sequentially or
    pairwise as numpy.sum does for float32, are far outside it."""
    exact = _exact_sum(x)
    sequential = float(np.cumsum(x, dtype=np.float32)[-1])
    pairwise = float(np.sum(x, dtype=np.float32))
    bound = _sum_bound(x)
    assert abs(sequential - exact) > 10 * bound, name
    assert abs(pairwise - exact) > 10 * bound, name
    mean = exact / x.size
    var32 = float(np.var(x, dtype=np.float32))
    d = x.astype(np.float64) - mean
    assert abs(var32 - float(np.mean(d * d))) > 1e-9 * float(np.mean(d * d)), name


# -- the same bits, every call and any layout of the same values ------------------------

def test_same_bits_on_every_call_and_for_copies():
    """moments, histogram and the reproducible words: the same slab gives
    the same bits on every call and for a copy laid out alike (a copy of a
    view's base, sliced the same way); histogram counts and reproducible
    words (exact) also for a halo view, a Fortran copy and a contiguous copy
    of the same values.  (moments of a contiguous copy of a view may differ
    in the last bit: its blocks are cut elsewhere.)"""
    from insitu.kernels import histogram as kh
    from insitu.kernels import reprosum as rs
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        base = (288 + 15 * rng.standard_normal((203, 517))).astype(dtype)
        base[5, 7] = np.nan
        base[9, 9] = -np.inf
        view = base[1:-1, 2:-3]
        for v, twin in ((base, base.copy()), (view, base.copy()[1:-1, 2:-3])):
            a, b = km.moments(v).tobytes(), km.moments(twin).tobytes()
            assert a == b == km.moments(v).tobytes()
        T = rs.grid_exponent(float(np.nanmax(np.abs(view[np.isfinite(view)]))))
        layouts = (view, view.copy(), np.asfortranarray(view), view.T)
        words = {rs.local_words(v, T).tobytes() for v in layouts}
        counts = {kh.histogram(v, 250.0, 330.0, 17).tobytes() for v in layouts}
        assert len(words) == 1 and len(counts) == 1


def test_min_and_max_follow_the_total_order_of_signed_zeros():
    """A zero minimum is -0.0 exactly when a -0.0 is present (in any block,
    lane or row), a zero maximum +0.0 exactly when a +0.0 is."""
    for dtype in (np.float32, np.float64):
        x = np.full((40, 1000), 5.0, dtype=dtype)
        x[-1, -1] = -0.0                 # in the last block, the row's rest
        x[0, 3] = 0.0
        m = km.moments(x)
        assert m[km.MIN] == 0 and np.signbit(m[km.MIN])
        y = -x
        m = km.moments(y)                # max over {-5, -0.0, +0.0}: +0.0
        assert m[km.MAX] == 0 and not np.signbit(m[km.MAX])
        z = np.full(50_000, -0.0, dtype=dtype)
        m = km.moments(z)
        assert np.signbit(m[km.MIN]) and np.signbit(m[km.MAX])
        z[12_345] = 0.0                  # far from the first block
        m = km.moments(z[1:-1])
        assert np.signbit(m[km.MIN]) and not np.signbit(m[km.MAX])


# -- the histogram kernel against numpy, edges and all -----------------------------------

def _histogram_cases():
    rng = np.random.default_rng(21)
    for trial in range(120):
        dtype = [np.float32, np.float64, np.int32, np.int64][trial % 4]
        nb = int(rng.integers(1, 150))
        lo, hi = [(-3.0, 7.0), (0.0, float(nb)), (1e8, 1e8 + 1e-7 * nb),
                  tuple(sorted(rng.normal(0, 10, 2))), (-1e300, 1e300)][trial % 5]
        shape = tuple(int(v) for v in rng.integers(1, 60, rng.integers(1, 4)))
        if np.dtype(dtype).kind == "i":
            x = rng.integers(-50, 250, shape).astype(dtype)
        else:
            width = hi - lo
            x = rng.uniform(lo - 0.1 * width, hi + 0.1 * width, shape)
            edges = np.linspace(lo, hi, nb + 1)
            x.flat[::3] = rng.choice(edges, x.size)[::3]           # on an edge
            x.flat[1::7] = np.nextafter(rng.choice(edges, x.size)[1::7], -np.inf)
            x.flat[2::11] = np.nextafter(hi, np.inf)                   # just above hi
            with np.errstate(over="ignore"):
                x = x.astype(dtype)
            if trial % 3 == 0:
                x.flat[rng.integers(0, x.size, 3)] = [np.nan, np.inf, -np.inf]
        if x.ndim >= 2 and min(x.shape) > 2 and trial % 2:
            x = x[1:-1, 1:-1]
        if trial % 7 == 0:
            x = np.asfortranarray(x)
        yield trial, x, lo, hi, nb


@pytest.mark.parametrize("trial,x,lo,hi,nb", list(_histogram_cases()),
                         ids=[f"case{c[0]}" for c in _histogram_cases()])
def test_histogram_counts_equal_numpys(trial, x, lo, hi, nb):
    """Values on and one ulp below the edges, integer edges, bins of 1e-7 at
    1e8, a range of +-1e300, NaN and +-Inf, halo and Fortran views, float
    and integer dtypes: numpy's counts, -Inf below and +Inf above."""
    from insitu.kernels.histogram import histogram
    got = histogram(x, lo, hi, nb)
    f = np.asarray(x, dtype=np.float64).ravel()
    want, _ = np.histogram(f[np.isfinite(f)], nb, (lo, hi))
    np.testing.assert_array_equal(got[1:-1], want)
    assert got[0] == np.count_nonzero(f < lo) and got[-1] == np.count_nonzero(f > hi)


@pytest.mark.parametrize("rows", [73, 74, 75, 147, 148])
def test_histogram_counts_every_value_of_short_strided_rows(rows):
    """Rows of 15 values in a halo view: 7 of each row are staged; at 74 and
    148 rows the stage passes a whole chunk at the last row (the rest of
    it was once dropped)."""
    from insitu.kernels.histogram import histogram
    x = np.random.default_rng(rows).uniform(0.0, 1.0, (rows, 17))[:, 1:-1]
    got = histogram(x, 0.0, 1.0, 10)
    np.testing.assert_array_equal(got[1:-1], np.histogram(x, 10, (0.0, 1.0))[0])
    assert got.sum() == x.size


def test_histogram_checks_its_arguments():
    from insitu.kernels.histogram import histogram
    with pytest.raises(ValueError, match="out must be"):
        histogram(np.zeros(5), 0.0, 1.0, 4, np.zeros(5))   # one short: never written past
    with pytest.raises(ValueError, match="finite and increasing"):
        histogram(np.zeros(5), 1.0, 1.0, 4)
    with pytest.raises(ValueError, match="at least one bin"):
        histogram(np.zeros(5), 0.0, 1.0, 0)
    out = np.full(6, 7.0)
    assert histogram(np.array([0.5, np.nan, 2.0]), 0.0, 1.0, 4, out) is out
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 0, 1])   # overwritten, not added to


def test_histogram_benchmark_runs(tmp_path):
    """scripts/bench/histogram.py --quick still runs (the other benchmarks'
    quick runs are in tests/test_benchmarks.py)."""
    import json
    from conftest import PYTHON, ROOT, mpi_env, run
    run([PYTHON, ROOT / "scripts" / "bench" / "histogram.py", "--quick"], timeout=600,
        env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    rows = json.loads((tmp_path / "histogram.json").read_text())["rows"]
    assert rows and all(r["new_ns"]["median"] > 0 for r in rows)


# -- the explicit lanes (kernels/simd.py) --------------------------------------------------

def test_simd_lanes_load_any_layout_and_add_in_the_documented_tree():
    import numba
    from insitu.kernels import simd

    @numba.njit
    def lanes(a, i, j, k):
        v = simd.vload3(a, i, j, k)
        return [simd.lane(v, l) for l in range(simd.W)], simd.hsum(v), simd.hmin(v)

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 40)) * 10.0 ** rng.integers(-8, 9, (3, 5, 40))
    for a in (x, x[:, 1:-1, 3:], x[:, :, ::2], x[::-1], x.astype(np.float32),
              (x * 1e3).astype(np.int64)[:, :, 1:]):
        got, total, least = lanes(a, 1, 2, 3)
        want = np.asarray(a[1, 2, 3:3 + simd.W], dtype=np.float64)
        np.testing.assert_array_equal(got, want)
        v = want
        tree = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
        assert total == tree and least == v.min()
    orders = set()
    for _ in range(50):    # the tree is not the element order: the order is fixed, not free
        v = rng.standard_normal(8) * 10.0 ** rng.integers(-8, 9, 8)
        _, total, _ = lanes(v.reshape(1, 1, 8), 0, 0, 0)
        orders.add(total == sum(v.tolist()))
    assert orders == {True, False}


# -- NaN and Inf: the masked pass -----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_pass_adds_like_the_fast_pass(dtype):
    """A block with a NaN or an Inf is redone with them masked out; on a
    clean block the masked pass must give the fast pass's bits, so which
    one ran (the kernel starts with the masked one after a masked block)
    never changes a result."""
    rng = np.random.default_rng(12)
    for shape in [(1, 1, 8192), (1, 7, 1000), (1, 3, 37), (1, 200, 5), (2, 3, 17)]:
        a = (1e3 + rng.standard_normal(shape)).astype(dtype)
        a.flat[3] = -0.0 if dtype == np.float32 else a.flat[3]
        bits = a.view(np.int32 if dtype == np.float32 else np.int64)
        sign = -2**31 if dtype == np.float32 else -2**63
        for i in range(shape[0]):
            ok, *fast = km._fast_group(a, bits, i, 0, shape[1], 0, shape[2], 999.5, sign, True)
            n, s, y, lo, hi, m2, nans, infs = km._masked_group(a, bits, i, 0, shape[1], 0,
                                                                shape[2], 999.5, sign)
            assert ok and nans == 0 and infs == 0
            assert np.array([n, s, y, lo, hi, m2]).tobytes() == np.array(fast[:6]).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_moments_of_masked_fields(dtype):
    """A land mask (a third of the cells NaN, in patches), scattered NaN
    and a few +-Inf, on a halo view: counts, min and max exact, sum, mean
    and var to 1e-12 of numpy's on the finite values."""
    rng = np.random.default_rng(13)
    base = (280 + 20 * rng.random((602, 903))).astype(dtype)
    yy, xx = np.mgrid[0:602, 0:903]
    land = base.copy()
    land[(np.sin(xx / 90.0) + np.cos(yy / 70.0)) > 0.6] = np.nan
    scattered = base.copy()
    scattered[rng.random(base.shape) < 0.3] = np.nan
    scattered.flat[rng.integers(0, base.size, 5)] = np.inf
    scattered.flat[rng.integers(0, base.size, 3)] = -np.inf
    for field in (land, scattered):
        v = field[1:-1, 1:-1]
        m = km.moments(v)
        f = v.astype(np.float64)
        fin = f[np.isfinite(f)]
        assert m[km.COUNT] == fin.size and m[km.NAN_COUNT] == np.isnan(f).sum()
        assert m[km.INF_COUNT] == np.isinf(f).sum()
        assert m[km.MIN] == fin.min() and m[km.MAX] == fin.max()
        assert m[km.SUM] == pytest.approx(fin.sum(), rel=1e-12)
        assert m[km.MEAN] == pytest.approx(fin.mean(), rel=1e-12)
        assert m[km.M2] / fin.size == pytest.approx(fin.var(), rel=1e-12)
