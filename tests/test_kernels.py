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
