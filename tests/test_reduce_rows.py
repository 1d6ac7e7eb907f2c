"""The vector row sum of ``insitu.kernels.reduce`` (a zonal mean's kernel):
the sums and counts of the finite values of each row, added in the order
the kernel's docstring states, bit for bit.

The order is the contract that makes the sums the same on every CPU and
whether numba compiled the kernel or loaded it from its cache; a numpy
emulation of it (two vectors of W lanes, a fixed horizontal tree, the tail
in order) must give the same bits, for rows of every length around the
vector widths, NaN and +-Inf in the vectors and in the tail, float32 and
float64 (widened exactly), int32 and int64, C and Fortran order, halo views
and reductions that also fold rows together.
"""
from __future__ import annotations

import numpy as np
import pytest

from insitu.kernels.reduce import reduce_axes
from insitu.kernels.simd import W


def _row_sum(x: np.ndarray) -> tuple[float, float]:
    """One row's (sum, count) in the kernel's order, in numpy float64."""
    x = np.asarray(x, dtype=np.float64)
    fin = np.isfinite(x)
    z = np.where(fin, x, 0.0)
    f = fin.astype(np.float64)
    n = x.size
    s0, s1, c0, c1 = (np.zeros(W) for _ in range(4))
    k = 0
    while k + 2 * W <= n:
        s0, s1 = s0 + z[k:k + W], s1 + z[k + W:k + 2 * W]
        c0, c1 = c0 + f[k:k + W], c1 + f[k + W:k + 2 * W]
        k += 2 * W
    if k + W <= n:
        s0, c0 = s0 + z[k:k + W], c0 + f[k:k + W]
        k += W

    def tree(v):  # lane l + w/2 into lane l, halving: the kernel's hsum
        w = W
        while w > 1:
            w //= 2
            v = v[:w] + v[w:2 * w]
        return float(v[0])
    s, c = tree(s0 + s1), tree(c0 + c1)
    for q in range(k, n):
        if fin[q]:
            s += float(x[q])
            c += 1.0
    return s, c


def _reference(a: np.ndarray, fold_rows: bool):
    """Row sums of a 3-D C-ordered ``a`` over its last axis; with
    ``fold_rows`` also over axis 1, the rows added into the result one by
    one in order (the kernel's accumulation)."""
    n0, n1, _ = a.shape
    sums = np.zeros((n0, 1 if fold_rows else n1))
    counts = np.zeros_like(sums)
    for i in range(n0):
        for j in range(n1):
            s, c = _row_sum(a[i, j])
            sums[i, 0 if fold_rows else j] += s
            counts[i, 0 if fold_rows else j] += c
    return sums, counts


def _data(shape, dtype, rng):
    a = rng.normal(280.0, 40.0, shape) * 10.0 ** rng.integers(-3, 4, shape)
    if np.dtype(dtype).kind == "f":
        flat = a.reshape(-1)
        flat[rng.random(flat.size) < 0.05] = np.nan
        flat[rng.random(flat.size) < 0.02] = np.inf
        flat[rng.random(flat.size) < 0.02] = -np.inf
    return a.astype(dtype)


LENGTHS = [1, W - 1, W, W + 1, 2 * W - 1, 2 * W, 2 * W + 1, 3 * W, 3 * W + 5, 360]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("ncols", LENGTHS)
def test_row_sums_are_the_stated_order_bit_for_bit(dtype, ncols):
    rng = np.random.default_rng(ncols)
    a = _data((3, 5, ncols), dtype, rng)
    vals, counts = reduce_axes(a, (2,), "sum")
    want, wcounts = _reference(a, fold_rows=False)
    assert vals.tobytes() == want.tobytes()
    np.testing.assert_array_equal(counts, wcounts)
    # rows folded together: a reduction over the last two axes
    vals, counts = reduce_axes(a, (1, 2), "sum")
    want, wcounts = _reference(a, fold_rows=True)
    assert vals.tobytes() == want.reshape(-1).tobytes()
    np.testing.assert_array_equal(counts, wcounts.reshape(-1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_of_halo_and_fortran_views(dtype):
    """A halo-sliced slab (rows spaced by the padded length) and a
    Fortran-ordered one (rows are its first axis in memory) give the sums
    of the same rows as a C copy, bit for bit."""
    rng = np.random.default_rng(7)
    a = _data((4, 6, 37), dtype, rng)
    want, wcounts = _reference(a, fold_rows=False)
    padded = np.full((6, 8, 41), np.float64(1e30), dtype=dtype)  # halos that must not count
    padded[1:-1, 1:-1, 2:-2] = a
    vals, counts = reduce_axes(padded[1:-1, 1:-1, 2:-2], (2,), "sum")
    assert vals.tobytes() == want.tobytes()
    np.testing.assert_array_equal(counts, wcounts)
    f = np.asfortranarray(a.transpose(2, 1, 0))  # memory: a's last axis fastest
    vals, counts = reduce_axes(f, (0,), "sum")
    assert vals.T.tobytes() == want.tobytes()
    np.testing.assert_array_equal(counts.T, wcounts)


def test_all_non_finite_rows_count_zero():
    a = np.full((2, 3, 2 * W + 3), np.nan, dtype=np.float32)
    a[1, 2, :] = np.inf
    vals, counts = reduce_axes(a, (2,), "sum")
    assert not vals.any() and not counts.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_row_sums_into_the_record_are_reduce_axes_bits(dtype):
    """``row_sums_into`` (a zonal mean straight into the record's zeroed
    slots) gives the bits ``reduce_axes`` gives, C and halo views; where it
    does not apply it says so and writes nothing."""
    from insitu.kernels.reduce import row_sums_into
    rng = np.random.default_rng(11)
    a = _data((5, 7, 3 * W + 5), dtype, rng)
    padded = np.zeros((7, 9, 3 * W + 9), dtype=dtype)
    padded[1:-1, 1:-1, 2:-2] = a
    for view in (a, padded[1:-1, 1:-1, 2:-2]):
        record = np.zeros(2 * 35 + 3)
        acc, cnt = record[1:36], record[36:71]
        assert row_sums_into(view, acc, cnt)
        vals, counts = reduce_axes(view, (2,), "sum")
        assert acc.tobytes() == vals.reshape(-1).tobytes()
        assert cnt.tobytes() == counts.reshape(-1).tobytes()
        assert record[0] == 0 and not record[71:].any()
    acc, cnt = np.zeros(35), np.zeros(35)
    for other in (np.asfortranarray(a), a[0], np.zeros(a.shape, np.int16)):
        assert not row_sums_into(other, acc, cnt)
    assert not acc.any() and not cnt.any()
