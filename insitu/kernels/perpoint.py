"""Per-point running state over time: spell lengths and running moments.

Both kernels update, for every point of a slab, a state kept on the rank
that owns the point (``kind: spell``, ``kind: pointwise``): no reduction
across ranks, one pass over the slab and the state per sample.

The slab is scanned in memory order (its axes sorted by stride, as
:mod:`insitu.kernels.weighted` does), and the state arrays are allocated
in that same order (:func:`state_like`), so both are read contiguously
whatever the field's declared order (C or Fortran) and halos.  Views are
padded to 4-D with length-1 axes; nothing is copied.

No fast-math: the sums are formed in sample order, point by point, so a
point's result does not depend on the decomposition, the CPU or the cache.

Cost.  A sample of all four ops reads the point's count (4 bytes), Welford
mean and M2 (8 each) and writes them back, besides reading the value; the
minimum and maximum (8 each) are read only on the side of the mean the
value lies, and written only where they move (:func:`_welford_rows`).  The
loop runs eight points at a time in explicit vectors (LLVM had left it
scalar), with no division for points that never missed a sample.  On the
benchmark's 8 x 180 x 360 field (the state, 18.7 MB, at the edge of this
machine's L3) the kernel went from ~425 to ~175-200 us a sample: about the
traffic of the count, mean and M2 alone (scripts/bench/climate_kinds.py
and docs/analyses.md have the figures).
"""
from __future__ import annotations

import numba
import numpy as np

from .simd import W, splat, vadd, vfinite_or, visfinite, vload, vmax, vmul, vstore_i32, vsub
from .simd_store import (prefetch, vall, vall_nonneg, vand, vany, vdiv, veq, vgt, vlt, vnotfinite, vor,
                         vstore, vstore_above, vstore_below, vwhere)

#: The extremes of a field that moves are read on one side of the mean,
#: in runs as long as its anomalies (a line here, none there), which the
#: hardware prefetcher follows badly (measured: the kernel 13% slower than
#: reading both everywhere); so where the last BLOCK vectors read more than
#: a quarter of their lines, both arrays are prefetched AHEAD points on.
#: A field whose values equal their means (a constant one) reads none.
BLOCK = 64
AHEAD = 256

#: the comparisons a spell counts (x op threshold)
OPS = {"gt": 0, "ge": 1, "lt": 2, "le": 3}


def memory_order(shape_strides_view: np.ndarray) -> list:
    """The axes of a view from the slowest in memory to the fastest."""
    v = shape_strides_view
    return sorted(range(v.ndim), key=lambda k: -abs(v.strides[k]))


def state_like(view: np.ndarray, dtype, fill, order: list) -> tuple:
    """``(state in the view's dims order, the same memory as the kernels see
    it)``: a C-contiguous array in the view's memory order, so that the
    kernel walks the slab and the state alike."""
    mem = np.full(tuple(view.shape[p] for p in order), fill, dtype=dtype)
    return mem.transpose(np.argsort(order)), _as4(mem)


def _as4(a: np.ndarray) -> np.ndarray:
    while a.ndim < 4:
        a = a[np.newaxis]
    return a


def kernel_view(view: np.ndarray, order: list) -> np.ndarray:
    """``view`` with its axes in memory order, padded to 4-D (no copy)."""
    return _as4(view.transpose(order))


@numba.njit(cache=True, nogil=True)
def _spell4(a, thr, op, cur, mx):  # pragma: no cover - compiled
    n0, n1, n2, n3 = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                for l in range(n3):
                    x = np.float64(a[i, j, k, l])
                    if op == 0:
                        hit = x > thr
                    elif op == 1:
                        hit = x >= thr
                    elif op == 2:
                        hit = x < thr
                    else:
                        hit = x <= thr
                    c = cur[i, j, k, l] + np.int32(1) if hit else np.int32(0)
                    cur[i, j, k, l] = c
                    if c > mx[i, j, k, l]:
                        mx[i, j, k, l] = c


def spell_update(view4: np.ndarray, threshold: float, op: str, cur4, mx4) -> None:
    """One sample: ``cur = cur + 1`` where ``x op threshold``, else 0 (a NaN
    compares False, so it ends a spell); ``mx = max(mx, cur)``."""
    _spell4(view4, float(threshold), OPS[op], cur4, mx4)


@numba.njit(cache=True, nogil=True)
def _row_sum(x, n, s1):  # pragma: no cover - compiled
    """``n += finite``, ``s1 += x`` where finite: selects, no branches
    (LLVM vectorises a row function like this; written inside the 4-D nest
    it did not, as in kernels/weighted.py)."""
    for l in range(x.size):
        v = np.float64(x[l])
        ok = abs(v) < np.inf
        n[l] += np.int32(1) if ok else np.int32(0)
        s1[l] += v if ok else 0.0


@numba.njit(cache=True, nogil=True)
def _row_sum_ext(x, n, s1, lo, hi):  # pragma: no cover - compiled
    """:func:`_row_sum` and the extremes in the same loop, eight points at
    a time (explicit vectors: with five arrays updated in place LLVM left
    the loop scalar), the extremes by masked stores: NaN compares False
    and +-Inf are replaced by the identity, so neither is ever stored."""
    size = x.size
    end = size - size % W
    zero = splat(0.0)
    for l in range(0, end, W):
        v = vload(x, l)
        ok = visfinite(v)
        vstore_i32(n, l, vadd(vload(n, l), ok))
        vstore(s1, l, vadd(vload(s1, l), vwhere(ok, v, zero)))
        vstore_below(lo, l, vfinite_or(v, np.inf))
        vstore_above(hi, l, vfinite_or(v, -np.inf))
    for l in range(end, size):
        v = np.float64(x[l])
        ok = abs(v) < np.inf
        n[l] += np.int32(1) if ok else np.int32(0)
        s1[l] += v if ok else 0.0
        if ok and v < lo[l]:
            lo[l] = v
        if ok and v > hi[l]:
            hi[l] = v


@numba.njit(cache=True, nogil=True, inline="always")
def _welford_tail(x, n, mean, m2, lo, hi, l, minmax):  # pragma: no cover - compiled
    """Point ``l`` alone, by the rule of the vectors (the scalar rest of a
    row): the same operations, so the same bits."""
    v = np.float64(x[l])
    ok = abs(v) < np.inf
    c = n[l] + (np.int32(1) if ok else np.int32(0))
    m = mean[l]
    d = v - m if ok else 0.0
    m_new = m + d * (1.0 / max(c, np.int32(1)))
    mean[l] = m_new
    m2[l] += d * (v - m_new) if ok else 0.0
    n[l] = c
    if minmax:
        if ok and v < lo[l]:
            lo[l] = v
        if ok and v > hi[l]:
            hi[l] = v


@numba.njit(cache=True, nogil=True, inline="always")
def _welford_rows(x, n, mean, m2, lo, hi, before, r, minmax):  # pragma: no cover - compiled
    """Welford's update of the running mean and sum of squared deviations
    (stable at any offset: a field at 288 K moving by millikelvins keeps
    its variance), and with ``minmax`` the extremes, eight points at a
    time (explicit vectors: with five arrays updated in place LLVM left
    the loop scalar), every op of a point from one load of its value.

    The rule, point by point: ``c`` the point's finite samples including
    this one, ``m += d * fl(1 / c)`` with ``d = v - m``, ``m2 += d * (v -
    m_new)``; a non-finite value changes nothing.  Eight points that all
    had a finite value at every sample so far (``n == before``) and have
    one now share ``c = before + 1``: their ``fl(1 / c)`` is ``r``, worked
    out once per sample, and they take no selects -- the bits are the same
    as the general path's, whatever the vectors a decomposition or a halo
    makes (tests/test_pointwise_kernel.py).

    The extremes are read only where they can move.  A point's running
    mean lies within its running minimum and maximum once it has a finite
    sample (``m + d * fl(1 / c)`` with ``c >= 2`` is a correctly rounded
    value between ``m`` and ``v``, and the first sample's mean is the
    sample itself), so a value above the old mean cannot be a new minimum,
    nor one below it a new maximum, and one equal to it neither.  The
    minima of eight points are read (a cache line) only when one of them
    is below its mean, or has no finite sample yet, or a deviation that is
    not finite (an overflowed mean is no bound); and stored only in the
    lanes that moved (:mod:`.simd_store`).  On a field that changes
    smoothly neighbouring points lie on the same side of their means, so
    at a sample most lines of one of the two arrays are not touched."""
    size = x.size
    end = size - size % W
    one = splat(1.0)
    zero = splat(0.0)
    full = splat(float(before))
    rv = splat(r)
    checked = 0          # extremes' lines read in this block of BLOCK vectors
    streaming = False    # the last block read most of them: prefetch both
    for l in range(0, end, W):
        if minmax and (l // W) % BLOCK == 0:
            streaming = checked > BLOCK // 4
            checked = 0
        v = vload(x, l)
        ok = visfinite(v)
        c0 = vload(n, l)
        m = vload(mean, l)
        dv = vsub(v, m)
        if before > 0 and vall(vand(ok, veq(c0, full))):
            m_new = vadd(m, vmul(dv, rv))
            vstore(mean, l, m_new)
            vstore(m2, l, vadd(vload(m2, l), vmul(dv, vsub(v, m_new))))
            vstore_i32(n, l, vadd(c0, one))
            if minmax:
                if streaming:
                    prefetch(lo, l + AHEAD)
                    prefetch(hi, l + AHEAD)
                # v >= m (finite): no new minimum; m >= v: no new maximum
                # (v == m: neither, as v - m and m - v are +0)
                if not vall_nonneg(dv):
                    vstore_below(lo, l, v)
                    checked += 1
                if not vall_nonneg(vsub(m, v)):
                    vstore_above(hi, l, v)
                    checked += 1
        else:
            c = vadd(c0, ok)
            d = vwhere(ok, dv, zero)
            m_new = vadd(m, vmul(d, vdiv(one, vmax(c, one))))
            vstore(mean, l, m_new)
            vstore(m2, l, vadd(vload(m2, l), vwhere(ok, vmul(d, vsub(v, m_new)), zero)))
            vstore_i32(n, l, c)
            if minmax:
                unsure = vand(ok, vor(vlt(c0, one), vnotfinite(dv)))
                if vany(vor(vand(ok, vlt(dv, zero)), unsure)):
                    vstore_below(lo, l, vfinite_or(v, np.inf))
                if vany(vor(vand(ok, vgt(dv, zero)), unsure)):
                    vstore_above(hi, l, vfinite_or(v, -np.inf))
    for l in range(end, size):
        _welford_tail(x, n, mean, m2, lo, hi, l, minmax)


@numba.njit(cache=True, nogil=True)
def _row_welford(x, n, mean, m2, before, r):  # pragma: no cover - compiled
    """:func:`_welford_rows` without the extremes."""
    _welford_rows(x, n, mean, m2, mean, mean, before, r, False)


@numba.njit(cache=True, nogil=True)
def _row_welford_ext(x, n, mean, m2, lo, hi, before, r):  # pragma: no cover - compiled
    """:func:`_welford_rows` with the extremes."""
    _welford_rows(x, n, mean, m2, lo, hi, before, r, True)


@numba.njit(cache=True, nogil=True)
def _row(x, n, s1, s2, lo, hi, var, minmax, before, r):  # pragma: no cover - compiled
    """One row (or a whole contiguous slab) of one sample, every op in one
    loop (the four loops are the four combinations of ops)."""
    if var and minmax:
        _row_welford_ext(x, n, s1, s2, lo, hi, before, r)
    elif var:
        _row_welford(x, n, s1, s2, before, r)
    elif minmax:
        _row_sum_ext(x, n, s1, lo, hi)
    else:
        _row_sum(x, n, s1)


@numba.njit(cache=True, nogil=True)
def _moments4(a, n, s1, s2, lo, hi, var, minmax, before, r):  # pragma: no cover - compiled
    n0, n1, n2, _ = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                _row(a[i, j, k], n[i, j, k], s1[i, j, k], s2[i, j, k], lo[i, j, k],
                     hi[i, j, k], var, minmax, before, r)


@numba.njit(cache=True, nogil=True)
def _moments1(a, n, s1, s2, lo, hi, var, minmax, before, r):  # pragma: no cover - compiled
    _row(a, n, s1, s2, lo, hi, var, minmax, before, r)


def moments_update(view4, n4, s1_4, s2_4, lo4, hi4, var: bool, minmax: bool,
                   before: int = -1) -> None:
    """One sample into the running per-point count, sums and extremes.
    With ``var``, ``s1`` is the running mean and ``s2`` the sum of squared
    deviations (Welford); otherwise ``s1`` is the plain sum.  Arrays not
    needed may be any 4-D array (unused).  ``before``: the samples already
    in the state (the window's), which lets the points that never missed
    one take the fast path of :func:`_welford_rows`; -1 (unknown) sends
    every point through the general path, to the same bits.

    Every op is updated in one loop over the points, from one load of each
    value.  A slab contiguous in memory order (no halo) is walked as one
    row: a row handed to the loop costs numba's reference counting of the
    slices (six arrays), about 0.3 us, which on a 360-point row is a tenth
    of the row's work."""
    r = 1.0 / (before + 1) if before >= 0 else 0.0
    if view4.flags.c_contiguous:
        def flat(a):
            return a.reshape(-1) if a.size == view4.size else a.reshape(-1)[:1]
        _moments1(view4.reshape(-1), n4.reshape(-1), s1_4.reshape(-1), flat(s2_4),
                  flat(lo4), flat(hi4), var, minmax, before, r)
    else:
        _moments4(view4, n4, s1_4, s2_4, lo4, hi4, var, minmax, before, r)
