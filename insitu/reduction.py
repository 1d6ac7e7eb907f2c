"""Batching every scalar result of a step into ONE reduction.

Each analysis reserves *slots* in a float64 record.  A slot is combined
across ranks by its kind:

``SUM``      added (counts, sums);
``MIN``      smallest, NaN-ignoring;
``MAX``      largest, NaN-ignoring;
``MOMENTS``  three slots ``(n, mean, m2)`` merged with Chan et al.'s update,
             which keeps the variance accurate where ``sum(x**2)`` would
             cancel catastrophically.

The merge is symmetric bit for bit (``merge(a, b) == merge(b, a)``), so every
rank ends with the same bits whatever pairing the MPI library chooses.  The
whole record travels as ONE element of a contiguous derived datatype, so the
MPI library can never split it across pipeline segments and hand the
combining function a piece whose slot layout it does not know.
"""
from __future__ import annotations

import numpy as np

SUM, MIN, MAX, MOMENTS = "sum", "min", "max", "moments"
_WIDTH = {SUM: 1, MIN: 1, MAX: 1, MOMENTS: 3}
_IDENTITY = {SUM: (0.0,), MIN: (np.inf,), MAX: (-np.inf,), MOMENTS: (0.0, np.nan, 0.0)}


class ReductionPlan:
    """Where each analysis's partial results sit in the step's record.

    Build it once at the first step (:meth:`reserve` per analysis, then
    :meth:`freeze`); every step then reuses the same record and index
    arrays, so the hot path allocates nothing.
    """

    def __init__(self) -> None:
        self._kinds: list[str] = []
        self.frozen = False

    def reserve(self, kind: str) -> int:
        """Reserve the slots of one value of ``kind``; return its first index."""
        if self.frozen:
            raise RuntimeError("the reduction plan is frozen")
        if kind not in _WIDTH:
            raise ValueError(f"unknown reduction kind {kind!r}")
        start = len(self._kinds)
        self._kinds.extend([kind] * _WIDTH[kind])
        return start

    def reserve_many(self, kind: str, count: int) -> int:
        """Reserve ``count`` consecutive values of ``kind``; return the first index.

        For MOMENTS the triples are interleaved: value ``k`` starts at
        ``first + 3 * k``."""
        start = len(self._kinds)
        for _ in range(count):
            self.reserve(kind)
        return start

    def freeze(self) -> None:
        kinds = self._kinds
        idx = {k: [] for k in _WIDTH}
        i = 0
        while i < len(kinds):
            idx[kinds[i]].append(i)
            i += _WIDTH[kinds[i]]
        self.sum_idx = np.array(idx[SUM], dtype=np.intp)
        self.min_idx = np.array(idx[MIN], dtype=np.intp)
        self.max_idx = np.array(idx[MAX], dtype=np.intp)
        self.mom_idx = np.array(idx[MOMENTS], dtype=np.intp)
        ident = []
        i = 0
        while i < len(kinds):
            ident.extend(_IDENTITY[kinds[i]])
            i += _WIDTH[kinds[i]]
        self.identity = np.array(ident, dtype=np.float64)
        self.record = self.identity.copy()
        self.frozen = True

    @property
    def size(self) -> int:
        return len(self._kinds)

    def reset(self) -> np.ndarray:
        """Fill the record with identities (slots of analyses not due stay so)."""
        np.copyto(self.record, self.identity)
        return self.record

    def combine(self, a: np.ndarray, b: np.ndarray) -> None:
        """``b <- merge(a, b)`` for whole records (the MPI user function)."""
        if self.sum_idx.size:
            b[self.sum_idx] += a[self.sum_idx]
        if self.min_idx.size:
            b[self.min_idx] = np.fmin(a[self.min_idx], b[self.min_idx])
        if self.max_idx.size:
            b[self.max_idx] = np.fmax(a[self.max_idx], b[self.max_idx])
        if self.mom_idx.size:
            merge_moments(a, b, self.mom_idx)


def merge_moments(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> None:
    """Chan et al.'s merge of ``(n, mean, m2)`` triples starting at ``idx``.

    Written symmetrically in ``a`` and ``b`` so the result does not depend on
    which rank's partial comes first.  An empty side (``n == 0``) is the
    identity.
    """
    na, ma, qa = a[idx], a[idx + 1], a[idx + 2]
    nb, mb, qb = b[idx], b[idx + 1], b[idx + 2]
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        ma0 = np.where(na > 0, ma, 0.0)
        mb0 = np.where(nb > 0, mb, 0.0)
        mean = (na * ma0 + nb * mb0) / n
        delta = ma0 - mb0
        q = qa + qb + delta * delta * (na * nb / n)
    both = (na > 0) & (nb > 0)
    b[idx] = n
    b[idx + 1] = np.where(both, mean, np.where(na > 0, ma, mb))
    b[idx + 2] = np.where(both, q, np.where(na > 0, qa, qb))
