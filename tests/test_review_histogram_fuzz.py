"""Review of the histogram window (insitu.kernels.histogram: three slots
in registers, recentred one past the vector's first slot) on random
ranges whose edges are not representable (0.1 .. 0.7 in 3 bins), one bin,
many bins, tiny and huge ranges, values on the edges and an ulp either
side, walks up and down that make the window move both ways, NaN/+-Inf,
float32 and int32 fields, and row weights: the counts must be
numpy.histogram's on the values as doubles (the bins [below, ..., above],
NaN skipped)."""
import numpy as np
import pytest

from insitu.kernels import histogram as kh


def _numpy(x, lo, hi, nb, w=None):
    x = np.asarray(x, dtype=np.float64).ravel()
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=np.float64).ravel()
    keep = ~np.isnan(x)
    x, w = x[keep], w[keep]
    inr = (x >= lo) & (x <= hi)
    mid, _ = np.histogram(x[inr], nb, (lo, hi), weights=w[inr])
    return np.concatenate([[w[x < lo].sum()], mid, [w[x > hi].sum()]])


RANGES = [(0.1, 0.7, 3), (0.0, 1.0, 1), (-1.0, 1.0, 7), (200.0, 320.0, 64), (1e-300, 3e-300, 5),
          (-1e200, 1e200, 11), (1.0, 1.0 + 2 ** -40, 4), (-5.0, 5.0, 1000), (273.15, 273.9, 9)]


def _values(rng, lo, hi, nb, n):
    edges = np.linspace(lo, hi, nb + 1)
    kind = rng.integers(0, 4)
    if kind == 0:   # edges and their neighbouring doubles
        x = rng.choice(edges, n)
        step = rng.choice([-2, -1, 0, 0, 1, 2], n)
        x = np.where(step > 0, np.nextafter(x, np.inf), np.where(step < 0, np.nextafter(x, -np.inf), x))
    elif kind == 1:  # a walk up then down through every bin (the window moves both ways)
        t = np.concatenate([np.linspace(0, 1, n // 2), np.linspace(1, 0, n - n // 2)])
        x = lo - 0.1 * (hi - lo) + 1.2 * (hi - lo) * t
    elif kind == 2:  # jumps of several bins
        x = edges[rng.integers(0, nb + 1, n)] + (hi - lo) / nb * rng.random(n)
    else:
        x = lo + (hi - lo) * rng.random(n) * 1.3 - 0.15 * (hi - lo)
    x[rng.random(n) < 0.03] = np.nan
    x[rng.random(n) < 0.02] = np.inf
    x[rng.random(n) < 0.02] = -np.inf
    return x


@pytest.mark.parametrize("lo,hi,nb", RANGES)
def test_counts_equal_numpys_on_random_ranges_and_edges(lo, hi, nb):
    rng = np.random.default_rng(nb)
    for trial in range(12):
        n = int(rng.integers(1, 700))
        with np.errstate(over="ignore", invalid="ignore"):
            x = _values(rng, lo, hi, nb, n)
        np.testing.assert_array_equal(kh.histogram(x, lo, hi, nb), _numpy(x, lo, hi, nb),
                                      err_msg=f"trial {trial} n {n}")
        # strided rows (a halo) of 13: tails of 5 and windows that start over
        m = n - n % 13
        if m:
            buf = np.full((m // 13, 15), 7.7e7)
            buf[:, 1:-1] = x[:m].reshape(-1, 13)
            v = buf[:, 1:-1]
            np.testing.assert_array_equal(kh.histogram(v, lo, hi, nb), _numpy(v, lo, hi, nb))
            # weights per row (the row kernel) against numpy with the same weights
            wrow = rng.random(v.shape[0])[:, None]
            w = np.broadcast_to(wrow, v.shape)
            got = kh.weighted_histogram(v, w, lo, hi, nb)
            np.testing.assert_allclose(got, _numpy(v, lo, hi, nb, w), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_other_dtypes_count_their_values_as_doubles(dtype):
    rng = np.random.default_rng(3)
    if dtype == np.float32:
        x = rng.normal(280.0, 30.0, 5000).astype(np.float32)
        x[::97] = np.float32(np.nan)
        lo, hi, nb = 250.5, 301.25, 13
        x[::31] = np.float32(lo)       # exactly on the edges (representable in float32)
        x[::37] = np.float32(hi)
    else:
        x = rng.integers(-300, 300, 5000).astype(dtype)
        lo, hi, nb = -200.0, 200.0, 16   # integers on the edges (every 25)
    np.testing.assert_array_equal(kh.histogram(x, lo, hi, nb), _numpy(x, lo, hi, nb))
