"""Exact quantiles from a histogram: the values of the slots that hold them.

After the histogram's counts are combined across ranks, every rank knows
which slot (below the range, a bin, above the range) holds the ``k``-th
smallest value of the whole field and how many values of that slot come
before it.  The values of those slots are copied out by the histogram
kernel itself while it counts (:class:`insitu.kernels.histogram.Collector`,
by the kernel's own slot rule, numpy's, so the values found are exactly
the ones counted): in the histogram's own pass when the slots were known
before it (predicted from the previous output step), otherwise in one more
pass that copies only those slots (:func:`slot_values`).
:class:`CandidatePlan` then merges the ranks' candidates in one reduction
(a merge that keeps the ``L`` smallest, or largest, of each list), through
the same ``reduce_record`` the step's record uses (a user-defined MPI
operation over a contiguous record).

Nothing is sorted: each rank keeps its ``L`` smallest candidates by a
selection (``numpy.partition``, linear in the slot's count), the merge
keeps the ``L`` smallest of two lists by another, and the answer is the
``j``-th smallest of the merged list, by a third.  A selection is exact
(it moves values, it computes none), so the result is the value
``numpy.quantile(..., method="inverted_cdf")`` gives.
"""
from __future__ import annotations

import math

import numpy as np

from .histogram import Collector, histogram


def slot_values(view: np.ndarray, lo: float, hi: float, nbins: int, slots, counts,
                collector: Collector | None = None) -> list:
    """This rank's values in each of ``slots`` (0: below ``lo``, ``b + 1``:
    bin ``b``, ``nbins + 1``: above ``hi``), unordered, in one pass of the
    histogram kernel that copies only those slots; ``counts`` are this
    rank's counts of those slots from the first pass (the buffers' sizes,
    checked).  ``collector`` (kept by the caller) holds the buffers."""
    slots = [int(s) for s in slots]
    c = collector if collector is not None else Collector(nbins)
    c.arm(slots, max(int(max(counts, default=0)), 1))
    histogram(view, lo, hi, nbins, np.empty(nbins + 2), c)
    out = []
    for s, n in zip(slots, counts):
        v = c.values(s)
        if v is None or v.size != n:
            raise RuntimeError(f"exact quantile: found {c.fill[c.slots.index(s)]} values in "
                               f"slot {s} where the histogram counted {n}")
        out.append(v)
    return out


def order_index(n: int, q: float) -> int:
    """The 0-based index of ``numpy.quantile(x, q, method="inverted_cdf")``
    in ``n`` sorted values, computed as numpy does (in float64)."""
    idx = n * q - 1            # float64, as numpy computes it
    prev = math.floor(idx)     # (numpy's floor on a Python float: 5 us a call)
    k = prev + 1 if idx - prev > 0 else prev
    return int(max(k, 0))


class CandidatePlan:
    """``nq`` candidate lists of ``cap`` doubles each, reduced across ranks
    by merging: list ``i`` keeps the ``cap`` smallest values of the union,
    or, where ``descending[i]``, the ``cap`` largest, in no particular
    order.  Unused places hold +inf (smallest kept) or -inf (largest
    kept), which rank after every value (a value equal to the padding is
    the same number).  Quacks like :class:`insitu.reduction.ReductionPlan`
    for ``BaseComm.reduce_record``."""

    def __init__(self, nq: int, cap: int) -> None:
        self.nq, self.cap = nq, cap
        self.size = nq * cap
        self.record = np.empty(self.size)
        self.descending = np.zeros(nq, dtype=bool)

    def fill(self, i: int, values: np.ndarray, descending: bool) -> None:
        """Put this rank's ``values`` (any order; reordered in place) into
        list ``i``: the ``cap`` smallest of them, or the ``cap`` largest."""
        sl = self.record[i * self.cap:(i + 1) * self.cap]
        self.descending[i] = descending
        self._keep(values, sl, descending)

    def _keep(self, values: np.ndarray, sl: np.ndarray, descending: bool) -> None:
        """The ``cap`` smallest (largest) of ``values`` into ``sl``, padded;
        ``values`` is reordered in place (a selection, no copy)."""
        c, n = self.cap, values.size
        if n > c:
            values.partition(n - c if descending else c - 1)
            values = values[n - c:] if descending else values[:c]
            n = c
        sl[:n] = values
        sl[n:] = -np.inf if descending else np.inf

    def combine(self, a: np.ndarray, b: np.ndarray) -> None:
        """``b = merge(a, b)`` list by list (commutative)."""
        c = self.cap
        for i in range(self.nq):
            m = np.concatenate([a[i * c:(i + 1) * c], b[i * c:(i + 1) * c]])
            self._keep(m, b[i * c:(i + 1) * c], bool(self.descending[i]))

    def value(self, i: int, rank: int) -> float:
        """After the reduction: the ``rank``-th (0-based) smallest of list
        ``i``, or, where ``descending[i]``, its ``rank``-th largest."""
        seg = self.record[i * self.cap:(i + 1) * self.cap]
        r = self.cap - 1 - rank if self.descending[i] else rank
        seg.partition(r)   # in place: the list's order means nothing
        return float(seg[r])
