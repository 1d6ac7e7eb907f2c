"""Reductions of a slab over some of its axes: sums and counts of finite
values, or minima and maxima, into an array over the kept axes."""
from __future__ import annotations

import numba
import numpy as np

from .moments import padded_rows

SUM, MIN, MAX = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _fin(x):  # pragma: no cover - compiled
    return x if abs(x) < np.inf else 0.0


@numba.njit(cache=True, nogil=True)
def _row_sum(row):  # pragma: no cover - compiled
    """Sum and count of the finite values of a row, in a fixed order: four
    lanes each add every fourth value, then the lanes are added pairwise.
    No fast-math: under ``reassoc`` LLVM chose the order, which depends on
    the CPU's vector width and on whether numba compiled or loaded the
    kernel from its cache, so sums differed in the last bit between runs
    (issue 10, item 7)."""
    n = row.size
    m = n - n % 4
    s0 = s1 = s2 = s3 = 0.0
    c = 0
    for k in range(0, m, 4):
        x0 = np.float64(row[k])
        x1 = np.float64(row[k + 1])
        x2 = np.float64(row[k + 2])
        x3 = np.float64(row[k + 3])
        c += (abs(x0) < np.inf) + (abs(x1) < np.inf) + (abs(x2) < np.inf) + (abs(x3) < np.inf)
        s0 += _fin(x0)
        s1 += _fin(x1)
        s2 += _fin(x2)
        s3 += _fin(x3)
    for k in range(m, n):
        x = np.float64(row[k])
        c += abs(x) < np.inf
        s0 += _fin(x)
    return (s0 + s1) + (s2 + s3), float(c)


@numba.njit(cache=True, nogil=True)
def _row_extreme(row, op, init):  # pragma: no cover - compiled
    m = init
    for k in range(row.size):
        x = np.float64(row[k])
        if abs(x) < np.inf and ((op == 1 and x < m) or (op == 2 and x > m)):
            m = x
    return m


@numba.njit(cache=True, nogil=True)
def _row_into(row, acc, cnt, op):  # pragma: no cover - compiled
    for k in range(row.size):
        x = np.float64(row[k])
        if abs(x) < np.inf:
            if op == 0:
                acc[k] += x
                cnt[k] += 1.0
            elif op == 1:
                acc[k] = min(acc[k], x)
            else:
                acc[k] = max(acc[k], x)


@numba.njit(cache=True, nogil=True)
def _reduce3(a, ncols, k0, k1, k2, op, acc, cnt):  # pragma: no cover - compiled
    """``acc``/``cnt`` are 3-D with length 1 along reduced axes: row (i, j)
    goes to (i * k0, j * k1, :).  A reduced last axis is summed per row into
    a scalar (no dependency through memory); a kept one is added element
    by element."""
    n0, n1, n2 = a.shape
    init = np.inf if op == 1 else -np.inf
    for i in range(n0):
        for j in range(n1):
            row = a[i, j, :ncols]
            o0, o1 = i * k0, j * k1
            if k2 == 0:
                if op == 0:
                    s, c = _row_sum(row)
                    acc[o0, o1, 0] += s
                    cnt[o0, o1, 0] += c
                else:
                    m = _row_extreme(row, op, init)
                    if (op == 1 and m < acc[o0, o1, 0]) or (op == 2 and m > acc[o0, o1, 0]):
                        acc[o0, o1, 0] = m
            else:
                _row_into(row, acc[o0, o1, :], cnt[o0 if op == 0 else 0,
                                                   o1 if op == 0 else 0, :], op)


def reduce_axes(view: np.ndarray, axes, op: str):
    """Reduce ``view`` (1-4-D, any strides) over ``axes``; non-finite values
    are skipped.  Returns ``(values, counts)`` over the kept axes, in the
    view's axis order (counts only for ``sum``; None otherwise)."""
    axes = tuple(sorted(a % view.ndim for a in axes))
    if view.ndim == 4:
        return _reduce4(view, axes, op)
    code = {"sum": SUM, "min": MIN, "max": MAX}[op]
    # Put the view in 3-D, C-like memory order, remembering which axes are kept.
    a = view
    keep = [i not in axes for i in range(view.ndim)]
    if a.ndim > 1 and abs(a.strides[0]) < abs(a.strides[-1]):
        a, keep = a.T, keep[::-1]
    while a.ndim < 3:
        a, keep = a[np.newaxis], [False] + keep
    shape = tuple(n if k else 1 for n, k in zip(a.shape, keep))
    init = {SUM: 0.0, MIN: np.inf, MAX: -np.inf}[code]
    acc = np.full(shape, init)
    cnt = np.zeros(shape if code == SUM else (1, 1, shape[2]))
    _reduce3(padded_rows(a), a.shape[2], *(int(k) for k in keep), code, acc, cnt)
    # Back to the kept axes in the view's original order.
    flip = view.ndim > 1 and abs(view.strides[0]) < abs(view.strides[-1])
    kept_shape = tuple(n for i, n in enumerate(view.shape) if i not in axes)
    vals = acc.reshape([n for n, k in zip(a.shape, keep) if k])
    counts = cnt.reshape([n for n, k in zip(a.shape, keep) if k]) if code == SUM else None
    if flip:
        vals = vals.T
        counts = counts.T if counts is not None else None
    return vals.reshape(kept_shape), (counts.reshape(kept_shape) if counts is not None else None)


def _reduce4(view: np.ndarray, axes: tuple, op: str):
    """A 4-D view, slice by slice along its slowest axis ``k``: a reduced
    ``k`` combines the slices' results (sums and counts add, extremes are
    taken); a kept ``k`` stacks them."""
    from .slices import slowest_axis
    k = slowest_axis(view)
    sub = tuple(a - (a > k) for a in axes if a != k)   # the axes within a slice
    parts = [reduce_axes(view[(slice(None),) * k + (i,)], sub, op)
             for i in range(view.shape[k])]
    if k in axes:
        vals = parts[0][0].copy()
        counts = None if parts[0][1] is None else parts[0][1].copy()
        for v, c in parts[1:]:
            if op == "sum":
                vals += v
                counts += c
            elif op == "min":
                np.minimum(vals, v, out=vals)
            else:
                np.maximum(vals, v, out=vals)
        return vals, counts
    pos = sum(1 for a in range(k) if a not in axes)  # where k sits among the kept axes
    vals = np.stack([v for v, _ in parts], axis=pos)
    counts = None if op != "sum" else np.stack([c for _, c in parts], axis=pos)
    return vals, counts
