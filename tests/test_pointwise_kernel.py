"""The per-point moments kernel's paths (insitu.kernels.perpoint): eight
points that never missed a sample take a division-free path with the
sample's ``fl(1 / c)``, the rest the general one; the running minimum and
maximum are read only on the side of the mean a value lies.  Each path
must give the bits of the other, whatever the vectors a decomposition, a
halo or a memory order makes, and the extremes must stay exact."""
import numpy as np
import pytest

from insitu.kernels import perpoint as kp


def _state(v):
    mo = kp.memory_order(v)
    parts = [kp.state_like(v, dt, fill, mo) for dt, fill in
             ((np.int32, 0), (np.float64, 0.0), (np.float64, 0.0), (np.float64, np.inf),
              (np.float64, -np.inf))]
    return mo, [p[0] for p in parts], [p[1] for p in parts]


def _run(frames, var, minmax, fast, cuts=None, halo=False, order="C", axis=0):
    """The state after ``frames``, on the whole slab or on sub-slabs cut
    along ``axis`` at ``cuts`` (each with a state of its own, as ranks
    have), assembled; ``fast``: the kernel is told the samples before."""
    shape = frames[0].shape
    bounds = [0, *(cuts or []), shape[axis]]
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sub = list(shape)
        sub[axis] = b - a
        sub = tuple(sub)
        if halo:
            buf = np.zeros(tuple(s + 2 for s in sub), order=order)
            v = buf[tuple(slice(1, -1) for _ in sub)]
        else:
            buf = v = np.zeros(sub, order=order)
        mo, named, mem = _state(v)
        sl = [slice(None)] * len(shape)
        sl[axis] = slice(a, b)
        parts.append((tuple(sl), v, mo, named, mem))
    for k, x in enumerate(frames):
        for sl, v, mo, named, mem in parts:
            v[...] = x[sl]
            kp.moments_update(kp.kernel_view(v, mo), *mem, var, minmax, k if fast else -1)
    return [np.concatenate([p[3][i] for p in parts], axis=axis) for i in range(5)]


def _frames(rng, shape, nsamples):
    """Most points never miss a sample (their vectors take the fast path);
    those of a few lines miss now and then (NaN, +-Inf)."""
    base = rng.normal(288.0, 5.0, size=shape)
    out = np.array([base + rng.normal(0.0, 1.0, size=shape) * rng.choice([1e-3, 1.0, 30.0])
                    for _ in range(nsamples)])
    # a point that misses one sample amid points that never do
    out[3, 1, 2, 5] = np.nan
    # the points of two lines miss now and then
    for line in (out[:, 4, 1, :], out[:, 2, :, 7]):
        line[rng.random(line.shape) < 0.2] = np.nan
        line[rng.random(line.shape) < 0.05] = np.inf
        line[rng.random(line.shape) < 0.05] = -np.inf
    # a point without a finite sample until late
    out[:-2, 0, 0, 0] = np.nan
    return out


def _equal(a, b, what):
    for name, x, y in zip(("n", "s1", "s2", "lo", "hi"), a, b):
        np.testing.assert_array_equal(x, y, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("ops", [(True, True), (True, False), (False, True), (False, False)])
def test_fast_and_general_paths_give_the_same_bits_on_any_decomposition(ops):
    """Rows of 21 points (two vectors and a scalar rest), uneven cuts, C
    and Fortran order, halos: the fast path's bits equal the general
    path's, and a slab cut in two equals it uncut, bit for bit."""
    var, minmax = ops
    rng = np.random.default_rng(7)
    frames = _frames(rng, (19, 4, 21), 12)
    ref = _run(frames, var, minmax, fast=False)
    for order in ("C", "F"):
        for halo in (False, True):
            # cuts along the fastest axis in memory move every point to
            # another lane of another vector
            for axis, cuts in ((0, None), (0, [1]), (0, [2, 11]), (2, [3]), (2, [5, 14])):
                if order == "F":
                    axis = 2 - axis
                got = _run(frames, var, minmax, True, cuts, halo, order, axis)
                _equal(got, ref, f"order {order} halo {halo} axis {axis} cuts {cuts}")
    # and right: numpy's per-point reductions over the finite samples
    fin = np.where(np.isfinite(frames), frames, np.nan)
    n, s1, s2, lo, hi = ref
    np.testing.assert_array_equal(n, np.isfinite(frames).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 if var else s1 / n
        want = np.nanmean(fin, axis=0)
    ok = n > 0
    np.testing.assert_allclose(mean[ok], want[ok], rtol=1e-13)
    if var:
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(s2[ok] / n[ok], np.nanvar(fin, axis=0)[ok],
                                       rtol=1e-9, atol=1e-12)
    if minmax:
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(lo[ok], np.nanmin(fin, axis=0)[ok])
            np.testing.assert_array_equal(hi[ok], np.nanmax(fin, axis=0)[ok])
        assert np.all(lo[~ok] == np.inf) and np.all(hi[~ok] == -np.inf)


@pytest.mark.parametrize("fast", [False, True])
def test_extremes_stay_exact_where_the_mean_is_no_guide(fast):
    """The extremes are read only on the side of the old mean a value lies
    (a new minimum lies below the mean): values an ulp apart around a
    constant, a point whose mean overflows (values near the largest
    double: the deviation is infinite and both extremes are checked), a
    first finite sample after NaNs (the mean 0 is no bound yet), and a
    value equal to the mean (changes neither)."""
    x0 = 288.15
    up, down = np.nextafter(x0, np.inf), np.nextafter(x0, -np.inf)
    seq = [x0, up, x0, down, up, x0, down, down, up, x0, x0, up]
    frames = np.full((len(seq), 2, 16), x0)
    frames[:, 0, 3] = seq                                       # an ulp either way
    big = np.finfo(np.float64).max
    frames[:, 0, 9] = [big, -big, big, 1.0, -big, 2.0, big, -3.0, 5.0, big, -big, 7.0]
    # the mean overflows to -inf, then a new minimum comes (its deviation
    # from the mean is +inf): in a vector without a miss (0, 12) and in
    # one with (1, 1, beside the NaNs of 1, 4)
    for where in ((0, 12), (1, 1)):
        frames[:, where[0], where[1]] = [0.6 * big, -0.6 * big, -0.9 * big, 1.0, 2.0, -3.0,
                                         0.5 * big, -0.7 * big, 4.0, 0.0, 1.0, 2.0]
    frames[:5, 1, 4] = np.nan                                   # first finite at sample 5
    frames[5:, 1, 4] = [-1.0, 3.0, 3.0, -2.0, 10.0, -5.0, 0.0]
    frames[:, 1, 12] = 0.0                                      # equal to its mean
    frames[6, 1, 12] = -0.0
    with np.errstate(over="ignore", invalid="ignore"):
        n, s1, s2, lo, hi = _run(frames, True, True, fast)
    fin = np.where(np.isfinite(frames), frames, np.nan)
    np.testing.assert_array_equal(lo, np.nanmin(fin, axis=0))
    np.testing.assert_array_equal(hi, np.nanmax(fin, axis=0))
    assert lo[0, 3] == down and hi[0, 3] == up
    assert lo[0, 9] == -big and hi[0, 9] == big
    assert lo[0, 12] == -0.9 * big and lo[1, 1] == -0.9 * big
