"""Exact quantiles from a histogram: the values of the slots that hold them.

After the histogram's counts are combined across ranks, every rank knows
which slot (below the range, a bin, above the range) holds the ``k``-th
smallest value of the whole field and how many values of that slot come
before it.  :func:`slot_values` is the second pass: it collects this rank's
values of those slots only, by the histogram's own rule
(:func:`insitu.kernels.histogram._exact_slot`, numpy's), so the values
found are exactly the ones counted.  :class:`CandidatePlan` then merges the
ranks' sorted candidates in one reduction (a merge that keeps the first
``L`` of each list), through the same ``reduce_record`` the step's record
uses (a user-defined MPI operation over a contiguous record).
"""
from __future__ import annotations

import numba
import numpy as np

from .histogram import _bins, _exact_slot


@numba.njit(cache=True, nogil=True)
def _guess_row(x, lo, norm, nbf, tol, guess):  # pragma: no cover - compiled
    """Each value's slot where it is certain, by the histogram kernel's
    argument (kernels/histogram.py): ``floor(t)`` clamped to
    ``[-1, nbins]``, plus one, when ``t = (x - lo) * norm`` is farther
    than ``tol`` from an integer; -1 when unsure (values within a few ulps
    of an edge, +-Inf); NaN to ``nbins + 2`` (never wanted).  Selects
    only, so LLVM vectorises it."""
    for l in range(x.size):
        v = np.float64(x[l])
        t = (v - lo) * norm
        g = np.floor(t)
        f = t - g
        sure = f > tol and 1.0 - f > tol
        g = -1.0 if g < -1.0 else g
        g = nbf if g > nbf else g
        s = np.int32(g + 1.0) if sure else np.int32(-1)
        guess[l] = s if v == v else np.int32(nbf + 2.0)


@numba.njit(cache=True, nogil=True)
def _collect4(a, lo, hi, norm, tol, edges, which, out, fill, guess):  # pragma: no cover
    """Append each value of ``a`` whose slot ``s`` has ``which[s] >= 0`` to
    ``out[which[s]]``; unsure slots take the exact rule
    (:func:`insitu.kernels.histogram._exact_slot`, numpy's)."""
    n0, n1, n2, n3 = a.shape
    nbf = float(edges.size - 1)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = a[i, j, k]
                _guess_row(x, lo, norm, nbf, tol, guess)
                for l in range(n3):
                    s = guess[l]
                    if s < 0:
                        s = _exact_slot(np.float64(x[l]), lo, hi, norm, edges)
                    q = which[s]
                    if q >= 0:
                        out[q, fill[q]] = x[l]
                        fill[q] += 1


def slot_values(view4: np.ndarray, lo: float, hi: float, nbins: int, slots, counts) -> list:
    """This rank's values in each of ``slots`` (0: below ``lo``, ``b + 1``:
    bin ``b``, ``nbins + 1``: above ``hi``), sorted; ``counts`` are this
    rank's counts of those slots from the first pass (the buffers' sizes).
    ``view4``: the slab as a 4-D view (any strides)."""
    edges, norm, tol = _bins(float(lo), float(hi), int(nbins))
    slots = np.asarray(slots, dtype=np.int64)
    which = np.full(nbins + 3, -1, dtype=np.int64)     # slot -> its place in slots
    which[slots] = np.arange(slots.size)
    out = np.empty((slots.size, max(int(np.max(counts, initial=0)), 1)))
    fill = np.zeros(slots.size, dtype=np.int64)
    guess = np.empty(view4.shape[3], dtype=np.int32)
    _collect4(view4, float(lo), float(hi), norm, tol, edges, which, out, fill, guess)
    for q in range(slots.size):
        if fill[q] != counts[q]:
            raise RuntimeError(f"exact quantile: found {fill[q]} values in slot {slots[q]} "
                               f"where the histogram counted {counts[q]}")
    return [np.sort(out[q, :fill[q]]) for q in range(slots.size)]


def order_index(n: int, q: float) -> int:
    """The 0-based index of ``numpy.quantile(x, q, method="inverted_cdf")``
    in ``n`` sorted values, computed as numpy does (in float64)."""
    idx = n * q - 1
    prev = np.floor(idx)
    k = prev + 1 if idx - prev > 0 else prev
    return int(max(k, 0))


class CandidatePlan:
    """``nq`` candidate lists of ``cap`` doubles each, reduced across ranks
    by merging: list ``i`` keeps the ``cap`` smallest values of the union
    (ascending), or, where ``descending[i]``, the ``cap`` largest
    (descending).  Unused places hold +inf (ascending) or -inf (descending),
    which sort after every value (a value equal to the padding is the same
    number).  Quacks like :class:`insitu.reduction.ReductionPlan` for
    ``BaseComm.reduce_record``."""

    def __init__(self, nq: int, cap: int) -> None:
        self.nq, self.cap = nq, cap
        self.size = nq * cap
        self.record = np.empty(self.size)
        self.descending = np.zeros(nq, dtype=bool)

    def fill(self, i: int, values: np.ndarray, descending: bool) -> None:
        """Put this rank's sorted ``values`` of list ``i``: the first ``cap``
        of them, or the last ``cap`` reversed."""
        sl = self.record[i * self.cap:(i + 1) * self.cap]
        self.descending[i] = descending
        part = values[::-1][:self.cap] if descending else values[:self.cap]
        sl[:part.size] = part
        sl[part.size:] = -np.inf if descending else np.inf

    def combine(self, a: np.ndarray, b: np.ndarray) -> None:
        """``b = merge(a, b)`` list by list (commutative)."""
        c = self.cap
        for i in range(self.nq):
            m = np.concatenate([a[i * c:(i + 1) * c], b[i * c:(i + 1) * c]])
            m.sort()
            b[i * c:(i + 1) * c] = m[::-1][:c] if self.descending[i] else m[:c]

    def value(self, i: int, rank: int) -> float:
        """The ``rank``-th (0-based) of list ``i`` after the reduction."""
        return float(self.record[i * self.cap + rank])
