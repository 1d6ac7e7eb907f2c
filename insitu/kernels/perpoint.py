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
"""
from __future__ import annotations

import numba
import numpy as np

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
def _row_welford(x, n, mean, m2):  # pragma: no cover - compiled
    """Welford's update of the running mean and sum of squared deviations
    (stable at any offset: a field at 288 K moving by millikelvins keeps
    its variance), by selects: a non-finite value changes nothing."""
    for l in range(x.size):
        v = np.float64(x[l])
        ok = abs(v) < np.inf
        c = n[l] + (np.int32(1) if ok else np.int32(0))
        m = mean[l]
        d = v - m if ok else 0.0
        m_new = m + d / max(c, np.int32(1))
        mean[l] = m_new
        m2[l] += d * (v - m_new) if ok else 0.0
        n[l] = c


@numba.njit(cache=True, nogil=True)
def _row_extremes(x, lo, hi):  # pragma: no cover - compiled
    """NaN compares False and +-Inf are excluded, so both keep their value."""
    for l in range(x.size):
        v = np.float64(x[l])
        ok = abs(v) < np.inf
        lo[l] = min(lo[l], v if ok else np.inf)
        hi[l] = max(hi[l], v if ok else -np.inf)


@numba.njit(cache=True, nogil=True)
def _moments4(a, n, s1, s2, lo, hi, var, minmax):  # pragma: no cover - compiled
    n0, n1, n2, _ = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = a[i, j, k]
                if var:
                    _row_welford(x, n[i, j, k], s1[i, j, k], s2[i, j, k])
                else:
                    _row_sum(x, n[i, j, k], s1[i, j, k])
                if minmax:
                    _row_extremes(x, lo[i, j, k], hi[i, j, k])


def moments_update(view4, n4, s1_4, s2_4, lo4, hi4, var: bool, minmax: bool) -> None:
    """One sample into the running per-point count, sums and extremes.
    With ``var``, ``s1`` is the running mean and ``s2`` the sum of squared
    deviations (Welford); otherwise ``s1`` is the plain sum.  Arrays not
    needed may be any 4-D array (unused)."""
    _moments4(view4, n4, s1_4, s2_4, lo4, hi4, var, minmax)
