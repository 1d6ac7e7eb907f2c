"""Every kernel against numpy, through one table (numbagg style)."""
import numpy as np
import pytest

from insitu.kernels import moments as km

# (statistic, position in the kernel's result, numpy reference)
TABLE = [
    ("count", km.COUNT, lambda a: np.count_nonzero(~np.isnan(a))),
    ("sum", km.SUM, lambda a: np.nansum(a.astype(np.float64))),
    ("mean", km.MEAN, lambda a: np.nanmean(a.astype(np.float64))),
    ("m2", km.M2, lambda a: np.nanvar(a.astype(np.float64)) * np.count_nonzero(~np.isnan(a))),
    ("min", km.MIN, lambda a: np.nanmin(a)),
    ("max", km.MAX, lambda a: np.nanmax(a)),
    ("nan_count", km.NAN_COUNT, lambda a: np.count_nonzero(np.isnan(a))),
]


def _arrays():
    rng = np.random.default_rng(42)
    base = rng.normal(288.0, 15.0, (17, 23, 9))
    withnan = base.copy()
    withnan[rng.random(base.shape) < 0.05] = np.nan
    yield "f64-3d", base
    yield "f64-nan", withnan
    yield "f32", base.astype(np.float32)
    yield "i32", rng.integers(-1000, 1000, (31, 40)).astype(np.int32)
    yield "i64", rng.integers(-10**12, 10**12, 1000).astype(np.int64)
    yield "1d-long", rng.normal(0, 1, 5000)  # longer than a kernel block
    yield "halo-view", base[1:-1, 2:-1, 1:-2]
    yield "fortran-view", np.asfortranarray(base)[1:-1, 1:-1, :]
    yield "offset-mean", rng.normal(1e9, 1.0, 4000)  # cancellation-prone


ARRAYS = list(_arrays())


@pytest.mark.parametrize("stat,pos,ref", TABLE, ids=[t[0] for t in TABLE])
@pytest.mark.parametrize("name,arr", ARRAYS, ids=[a[0] for a in ARRAYS])
def test_moments_matches_numpy(name, arr, stat, pos, ref):
    got = km.moments(arr)[pos]
    want = float(ref(arr))
    tol = 1e-5 if arr.dtype == np.float32 and stat in ("mean", "m2", "sum") else 1e-12
    assert got == pytest.approx(want, rel=tol, abs=1e-300), f"{stat} of {name}"


def test_all_nan_and_empty_give_identities():
    m = km.moments(np.full((4, 5), np.nan))
    assert m[km.COUNT] == 0 and m[km.NAN_COUNT] == 20 and np.isnan(m[km.MEAN])
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
