"""Review of the pointwise kernel's fast path (insitu.kernels.perpoint,
the unsigned test of the bits of v - m in kernels.simd_store.vall_nonneg)
on values its tests leave out: float32 and integer fields, subnormals and
signed zeros around a zero mean, values that flip between the largest
doubles, rows of 1-7 points (tails only) and 8k+1..8k+7.  The fast path
(told the samples before) and the general path must give the same bits,
count/min/max must equal numpy's exactly and mean/var be close."""
import numpy as np
import pytest

from insitu.kernels import perpoint as kp


def _run(frames, fast, var=True, minmax=True):
    v = np.zeros(frames.shape[1:], dtype=frames.dtype)
    mo = kp.memory_order(v)
    parts = [kp.state_like(v, dt, fill, mo) for dt, fill in
             ((np.int32, 0), (np.float64, 0.0), (np.float64, 0.0), (np.float64, np.inf),
              (np.float64, -np.inf))]
    named, mem = [p[0] for p in parts], [p[1] for p in parts]
    for k, x in enumerate(frames):
        v[...] = x
        kp.moments_update(kp.kernel_view(v, mo), *mem, var, minmax, k if fast else -1)
    return named


SUB = 5e-324
BIG = np.finfo(np.float64).max


def _frames(kind, npts, nsamples, rng):
    if kind == "zeros":       # signed zeros and subnormals around a zero mean
        pool = np.array([0.0, -0.0, SUB, -SUB, 2 * SUB, -3 * SUB, 2.2250738585072014e-308])
        return rng.choice(pool, size=(nsamples, npts))
    if kind == "big":         # the mean overflows and comes back
        pool = np.array([BIG, -BIG, 0.5 * BIG, -0.75 * BIG, 1.0, -1.0, 0.0])
        return rng.choice(pool, size=(nsamples, npts))
    if kind == "float32":
        x = rng.normal(288.0, 3.0, size=(nsamples, npts)).astype(np.float32)
        x[rng.random(x.shape) < 0.05] = np.float32(np.nan)
        x[rng.random(x.shape) < 0.02] = np.float32(np.inf)
        x[rng.random(x.shape) < 0.02] = np.finfo(np.float32).tiny / 4   # float32 subnormal
        return x
    if kind == "int32":
        return rng.integers(-2 ** 31, 2 ** 31, size=(nsamples, npts), dtype=np.int32)
    if kind == "int64":
        return rng.integers(-2 ** 62, 2 ** 62, size=(nsamples, npts), dtype=np.int64)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["zeros", "big", "float32", "int32", "int64"])
@pytest.mark.parametrize("npts", [1, 3, 7, 8, 9, 15, 23, 64])
def test_fast_path_is_right_on_awkward_values(kind, npts):
    rng = np.random.default_rng(npts * 31 + len(kind))
    frames = _frames(kind, npts, 9, rng)
    if kind in ("zeros", "big", "int32", "int64"):
        # a slow point: one steady value, then the pool's (an equal-to-mean run)
        frames[:4, 0] = frames[0, 0]
    with np.errstate(over="ignore", invalid="ignore"):
        fast = _run(frames, True)
        slow = _run(frames, False)
    for name, a, b in zip(("n", "mean", "m2", "lo", "hi"), fast, slow):
        assert a.tobytes() == b.tobytes(), name
    n, mean, m2, lo, hi = fast
    x = frames.astype(np.float64)      # the kernel reads every value as a double
    fin = np.isfinite(x)
    np.testing.assert_array_equal(n, fin.sum(axis=0))
    ok = n > 0
    lo_want = np.where(fin, x, np.inf).min(axis=0)
    hi_want = np.where(fin, x, -np.inf).max(axis=0)
    np.testing.assert_array_equal(lo[ok], lo_want[ok])
    np.testing.assert_array_equal(hi[ok], hi_want[ok])
    assert np.all(lo[~ok] == np.inf) and np.all(hi[~ok] == -np.inf)
    if kind != "big":
        with np.errstate(invalid="ignore"):
            want = np.nanmean(np.where(fin, x, np.nan), axis=0)
            wvar = np.nanvar(np.where(fin, x, np.nan), axis=0)
        np.testing.assert_allclose(mean[ok], want[ok], rtol=1e-12, atol=1e-300)
        scale = np.maximum(np.abs(want[ok]), 1.0) ** 2
        assert np.all(np.abs(m2[ok] / n[ok] - wvar[ok]) <= 1e-9 * scale)
    # the extremes lie within [lo, hi], and the mean with them (the fast path's premise)
    fine = ok & np.isfinite(mean)
    assert np.all((lo[fine] <= mean[fine]) & (mean[fine] <= hi[fine]))
