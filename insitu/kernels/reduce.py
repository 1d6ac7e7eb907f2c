"""Reductions of a slab over some of its axes: sums and counts of finite
values, or minima and maxima, into an array over the kept axes."""
from __future__ import annotations

import numba
import numpy as np

from .moments import padded_rows
from .simd import W, hsum, splat, vadd, vfinite_or, visfinite, vload3

SUM, MIN, MAX = 0, 1, 2

#: value types the vector row sum loads (:func:`insitu.kernels.simd.vload3`)
_VECTOR_TYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32),
                 np.dtype(np.int64))


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


@numba.njit(cache=True, nogil=True)
def _row_sums3(a, ncols, k0, k1, acc, cnt):  # pragma: no cover - compiled
    """The sums and counts of the finite values of every row ``a[i, j,
    :ncols]`` (the last axis reduced), into ``acc``/``cnt`` at ``(i * k0,
    j * k1, 0)``, W lanes at a time (:mod:`insitu.kernels.simd`).

    A zonal mean is this kernel: the scalar :func:`_row_sum` it replaces
    ran at about 1 value a cycle (4 scalar chains of float64 additions
    after a widening load), 45 ms a replay for the benchmark's 144 records
    of 19 x 90 x 360 float32 (docs/replay.md); the vectors load, widen,
    test and add 16 values an iteration.  The order of the additions is
    fixed in the source: two vectors of W lanes, added lane by lane, then
    one fixed horizontal tree, then the tail in order; so the bits are the
    same on every CPU, compiled or loaded from numba's cache (no
    fast-math), though not the bits of the 4-lane scalar order."""
    n0, n1 = a.shape[0], a.shape[1]
    for i in range(n0):
        for j in range(n1):
            s0 = splat(0.0)
            s1 = splat(0.0)
            c0 = splat(0.0)
            c1 = splat(0.0)
            k = 0
            while k + 2 * W <= ncols:
                x0 = vload3(a, i, j, k)
                x1 = vload3(a, i, j, k + W)
                s0 = vadd(s0, vfinite_or(x0, 0.0))
                s1 = vadd(s1, vfinite_or(x1, 0.0))
                c0 = vadd(c0, visfinite(x0))
                c1 = vadd(c1, visfinite(x1))
                k += 2 * W
            if k + W <= ncols:
                x0 = vload3(a, i, j, k)
                s0 = vadd(s0, vfinite_or(x0, 0.0))
                c0 = vadd(c0, visfinite(x0))
                k += W
            s = hsum(vadd(s0, s1))
            c = hsum(vadd(c0, c1))
            for q in range(k, ncols):
                x = np.float64(a[i, j, q])
                if abs(x) < np.inf:
                    s += x
                    c += 1.0
            acc[i * k0, j * k1, 0] += s
            cnt[i * k0, j * k1, 0] += c


def row_sums_into(view: np.ndarray, acc: np.ndarray, cnt: np.ndarray) -> bool:
    """Add the sums and counts of the finite values of each row of a 3-D
    ``view`` (its last axis reduced, as a zonal mean of ``(plev, lat,
    lon)`` reduces ``lon``) into ``acc`` and ``cnt``: contiguous float64
    arrays of ``view.shape[0] * view.shape[1]`` values in C order, such as
    an analysis's slots in the step's reduction record (zeroed at each
    step).  No array is made on the way: :func:`reduce_axes` allocates
    its results and the caller copied them into the record, about 20 us a
    step beside a 70 us kernel for the replay benchmark's 19 x 90 x 360
    slab.  The same kernel and order as :func:`reduce_axes`, so the same
    bits.  Returns False, having done nothing, where that kernel does not
    apply: not 3-D, a type it cannot load, or a view whose first axis is
    its fastest in memory (a Fortran-ordered one: :func:`reduce_axes`
    transposes it)."""
    if view.ndim != 3 or view.dtype not in _VECTOR_TYPES or \
            abs(view.strides[0]) < abs(view.strides[-1]):
        return False
    n0, n1 = view.shape[0], view.shape[1]
    _row_sums3(padded_rows(view), view.shape[2], 1, 1, acc.reshape(n0, n1, 1),
               cnt.reshape(n0, n1, 1))
    return True


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
    rows = padded_rows(a)
    if code == SUM and not keep[2] and rows.dtype in _VECTOR_TYPES:
        _row_sums3(rows, a.shape[2], int(keep[0]), int(keep[1]), acc, cnt)
    else:
        _reduce3(rows, a.shape[2], *(int(k) for k in keep), code, acc, cnt)
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
