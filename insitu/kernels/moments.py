"""One-pass statistics of a slab: count, sum, mean, M2, min, max, NaN and Inf counts.

The slab is read from memory once.  It is walked in blocks of at most
``BLOCK`` contiguous elements; each block is summed, then its squared
deviations from the block mean are summed while the block is still in cache
(a two-pass within the block, so no cancellation), and blocks are merged with
Chan et al.'s parallel update.  Block means are taken of ``x - shift``, where
``shift`` is the slab's first valid value, so the merge works with numbers of
the size of the spread, not of the mean (a field of 1e9 +- 1 keeps its
variance to ~1e-15).  This keeps the accuracy of numpy's two-pass
``var`` at the memory traffic of one pass.

Non-finite values are skipped and counted: NaNs in ``nan_count``, +-Inf in
``inf_count``.  The statistics are those of the finite values, so one
blown-up cell shows up as a count instead of turning every summary into
Inf or NaN.
"""
from __future__ import annotations

import numba
import numpy as np

BLOCK = 2048

#: Layout of the result vector returned by :func:`moments`.
FIELDS = ("count", "sum", "mean", "m2", "min", "max", "nan_count", "inf_count")
COUNT, SUM, MEAN, M2, MIN, MAX, NAN_COUNT, INF_COUNT = range(len(FIELDS))


@numba.njit(cache=True, nogil=True)
def _moments3(a, out):  # pragma: no cover - compiled
    n = 0.0
    total = 0.0
    mean = 0.0
    m2 = 0.0
    lo = np.inf
    hi = -np.inf
    nans = 0.0
    infs = 0.0
    n0, n1, n2 = a.shape
    shift = 0.0
    found = False
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = a[i, j, k]
                if x == x and abs(float(x)) != np.inf:
                    shift = float(x)
                    found = True
                    break
            if found:
                break
        if found:
            break
    for i in range(n0):
        for j in range(n1):
            start = 0
            while start < n2:
                stop = min(start + BLOCK, n2)
                bn = 0.0
                bs = 0.0
                by = 0.0
                for k in range(start, stop):
                    x = a[i, j, k]
                    xf = float(x)
                    if x != x:
                        nans += 1.0
                    elif abs(xf) == np.inf:
                        infs += 1.0
                    else:
                        bn += 1.0
                        bs += xf
                        by += xf - shift
                        if xf < lo:
                            lo = xf
                        if xf > hi:
                            hi = xf
                if bn > 0.0:
                    bmean = by / bn
                    bm2 = 0.0
                    for k in range(start, stop):
                        xf = float(a[i, j, k])
                        if xf == xf and abs(xf) != np.inf:
                            d = (xf - shift) - bmean
                            bm2 += d * d
                    nn = n + bn
                    delta = bmean - mean
                    mean = mean + delta * (bn / nn)
                    m2 = m2 + bm2 + delta * delta * (n * bn / nn)
                    n = nn
                    total += bs
                start = stop
    out[0] = n
    out[1] = total
    out[2] = shift + mean if n > 0.0 else np.nan
    out[3] = m2
    out[4] = lo
    out[5] = hi
    out[6] = nans
    out[7] = infs


def as_c_order_3d(view: np.ndarray) -> np.ndarray:
    """A 3-D view of ``view`` whose last axis is the fastest in memory.

    Global statistics do not depend on the order of the elements, so a
    Fortran-ordered view is transposed (a free re-labelling of strides) and
    padded with leading length-1 axes.  No data are copied.
    """
    a = view
    if a.ndim > 1 and abs(a.strides[0]) < abs(a.strides[-1]):
        a = a.T
    while a.ndim < 3:
        a = a[np.newaxis]
    if a.ndim != 3:
        raise ValueError(f"moments supports 1 to 3 dimensions, got {view.ndim}")
    return a


def moments(view: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Local statistics of ``view`` as a float64 vector laid out as :data:`FIELDS`.

    Parameters
    ----------
    view : ndarray
        A 1- to 3-D array of float32, float64, int32 or int64, any strides
        (halo-sliced views are strided).  It is not copied.
    out : ndarray, optional
        A float64 vector of length ``len(FIELDS)`` to fill, so the per-step
        path allocates nothing.

    Returns
    -------
    ndarray
        ``count`` (finite values), ``sum``, ``mean``, ``m2`` (sum of squared
        deviations from the mean), ``min``, ``max``, ``nan_count``,
        ``inf_count``.  An empty or all-non-finite slab gives count 0, sum 0, mean NaN, min +inf, max -inf,
        the identities of the cross-rank merge.
    """
    if not isinstance(view, np.ndarray):
        raise TypeError(f"moments needs a numpy array, got {type(view).__name__}")
    if view.dtype not in (np.float32, np.float64, np.int32, np.int64):
        raise TypeError(f"moments does not support dtype {view.dtype}")
    if out is None:
        out = np.empty(len(FIELDS), dtype=np.float64)
    elif out.dtype != np.float64 or out.shape != (len(FIELDS),):
        raise ValueError("out must be a float64 vector of length %d" % len(FIELDS))
    _moments3(as_c_order_3d(view), out)
    return out


@numba.njit(cache=True, nogil=True)
def _wmoments3(a, w, out):  # pragma: no cover - compiled
    """Weighted (W, mean, M2) of the finite values of ``a`` with weights ``w``
    (same shape; ``w`` may be a stride-0 broadcast).  Blockwise as above,
    shifted by the first valid value, blocks merged with Chan's update."""
    big_w = 0.0
    mean = 0.0
    m2 = 0.0
    n0, n1, n2 = a.shape
    shift = 0.0
    found = False
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = float(a[i, j, k])
                if x == x and abs(x) != np.inf:
                    shift = x
                    found = True
                    break
            if found:
                break
        if found:
            break
    for i in range(n0):
        for j in range(n1):
            start = 0
            while start < n2:
                stop = min(start + BLOCK, n2)
                bw = 0.0
                bs = 0.0
                for k in range(start, stop):
                    x = float(a[i, j, k])
                    if x == x and abs(x) != np.inf:
                        wk = float(w[i, j, k])
                        bw += wk
                        bs += wk * (x - shift)
                if bw > 0.0:
                    bmean = bs / bw
                    bm2 = 0.0
                    for k in range(start, stop):
                        x = float(a[i, j, k])
                        if x == x and abs(x) != np.inf:
                            d = (x - shift) - bmean
                            bm2 += float(w[i, j, k]) * d * d
                    nw = big_w + bw
                    delta = bmean - mean
                    mean = mean + delta * (bw / nw)
                    m2 = m2 + bm2 + delta * delta * (big_w * bw / nw)
                    big_w = nw
                start = stop
    out[0] = big_w
    out[1] = shift + mean if big_w > 0.0 else np.nan
    out[2] = m2


def weighted_moments(view: np.ndarray, weights: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:
    """``(sum of weights, weighted mean, weighted M2)`` over the finite values.

    ``weights`` must broadcast to ``view`` (a cos-latitude vector over one
    dimension, a cell-area field) and be non-negative; it is not copied.
    """
    if weights.shape != view.shape:
        weights = np.broadcast_to(weights, view.shape)
    if out is None:
        out = np.empty(3, dtype=np.float64)
    a = view
    w = weights
    if a.ndim > 1 and abs(a.strides[0]) < abs(a.strides[-1]):
        a, w = a.T, w.T
    while a.ndim < 3:
        a, w = a[np.newaxis], w[np.newaxis]
    _wmoments3(a, w, out)
    return out
