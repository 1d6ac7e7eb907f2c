"""Batching every scalar result of a step into ONE reduction.

Each analysis reserves *slots* in a float64 record.  A slot is combined
across ranks by its kind:

``SUM``      added (counts, sums);
``MIN``      smallest, NaN-ignoring;
``MAX``      largest, NaN-ignoring;
``ARGMAX``   two slots ``(value, index)``: the larger value, and of equal
             values the lower index (a global flat index, exact in float64
             below 2**53), so the pair does not depend on which rank held
             what; ``(-inf, inf)`` is empty.  An argmin is the argmax of
             ``-x`` (negation is exact).
``MOMENTS``  four slots ``(n, mean, m2, mean_lo)`` merged with Chan et al.'s
             update, which keeps the variance accurate where ``sum(x**2)``
             would cancel catastrophically.  The mean is carried as an
             unevaluated double-double ``mean + mean_lo``: Chan's update
             needs the difference of two ranks' means, and for data at an
             offset ``c`` much larger than their spread a mean rounded to
             float64 is off by up to ``ulp(c)/2``, which enters the variance
             as a relative error of ``ulp(c)/spread`` (1e-8 at 1e8 + O(1)).
             With the low part the difference is exact to ``eps**2 * c``.

The merge is symmetric bit for bit (``merge(a, b) == merge(b, a)``), so every
rank ends with the same bits whatever pairing the MPI library chooses: the two
sides are first put in a canonical order (:func:`chan_merge`); MIN and MAX
follow the total order -0.0 < +0.0, as the kernels do within a rank (numpy's
``fmin`` returns its second argument of two equal zeros, so a rank's -0.0
could be lost to another's +0.0 depending on the pairing).  The
whole record travels as ONE element of a contiguous derived datatype, so the
MPI library can never split it across pipeline segments and hand the
combining function a piece whose slot layout it does not know.

The combine is one compiled pass over the record (:func:`_combine`, a code
per slot decided at :meth:`ReductionPlan.freeze`), not a numpy call per
kind: it runs inside the step's Allreduce right after the kernels have
swept the caches, where each numpy call on a few values cost microseconds
(a 1-analysis record took about 45 us to combine there, issue 12).  MPI
calls it without entering Python (:mod:`insitu.mpi_op`, a compiled MPI
operation that reads the record's length and slot codes from the message
it is handed: :attr:`ReductionPlan.message`).
"""
from __future__ import annotations

import numba
import numpy as np

SUM, MIN, MAX, MOMENTS, ARGMAX = "sum", "min", "max", "moments", "argmax"
_WIDTH = {SUM: 1, MIN: 1, MAX: 1, MOMENTS: 4, ARGMAX: 2}
_IDENTITY = {SUM: (0.0,), MIN: (np.inf,), MAX: (-np.inf,),
             MOMENTS: (0.0, np.nan, 0.0, 0.0), ARGMAX: (-np.inf, np.inf)}
#: the code of each kind's first slot in :attr:`ReductionPlan.code` (the
#: slots after a MOMENTS or ARGMAX first slot are covered by it)
_CODE = {SUM: 0, MIN: 1, MAX: 2, MOMENTS: 3, ARGMAX: 4}


def header_words(n: int) -> int:
    """The doubles before a record of ``n`` slots in its message: ``n``,
    then the ``n`` slot codes packed as int8 (:attr:`ReductionPlan.message`)."""
    return 1 + (n + 7) // 8


class ReductionPlan:
    """Where each analysis's partial results sit in the step's record.

    Build it once at the first step (:meth:`reserve` per analysis, then
    :meth:`freeze`); every step then reuses the same record and index
    arrays, so the hot path allocates nothing.

    After :meth:`freeze`, :attr:`message` is the buffer the step's
    reduction sends: ``[n, codes, record]``, the record's length and its
    slot codes (:attr:`code`, packed as int8 into ``ceil(n / 8)`` doubles)
    before the record itself, so that a compiled MPI operation made once
    for every plan (:mod:`insitu.mpi_op`) learns the layout from the
    buffers it is handed.  :attr:`record` is a view of the message's
    record part: analyses index it as before.
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

        For MOMENTS the quadruples are interleaved: value ``k`` starts at
        ``first + 4 * k``."""
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
        self.arg_idx = np.array(idx[ARGMAX], dtype=np.intp)
        ident = []
        i = 0
        while i < len(kinds):
            ident.extend(_IDENTITY[kinds[i]])
            i += _WIDTH[kinds[i]]
        self.identity = np.array(ident, dtype=np.float64)
        self.code = np.full(len(kinds), -1, dtype=np.int8)
        for k in _WIDTH:
            self.code[idx[k]] = _CODE[k]
        n = len(kinds)
        head = header_words(n)
        self.message = np.zeros(head + n, dtype=np.float64)
        self.message[0] = n
        self.message.view(np.int8)[8:8 + n] = self.code
        self.record = self.message[head:]
        self.record[:] = self.identity
        self.frozen = True

    @property
    def size(self) -> int:
        return len(self._kinds)

    def reset(self) -> np.ndarray:
        """Fill the record with identities (slots of analyses not due stay so)."""
        np.copyto(self.record, self.identity)
        return self.record

    def combine(self, a: np.ndarray, b: np.ndarray) -> None:
        """``b <- merge(a, b)`` for whole records (the MPI user function):
        one compiled pass (:func:`_combine`), the same bits as
        :meth:`combine_numpy` but for MIN and MAX of zeros, which follow
        the total order -0.0 < +0.0 here."""
        _combine(a, b, self.code)

    def combine_numpy(self, a: np.ndarray, b: np.ndarray) -> None:
        """The combine as numpy calls, one or a few per kind: the reference
        the compiled :meth:`combine` is tested against (MIN and MAX with
        ``fmin``/``fmax``: of two equal zeros, the second argument)."""
        if self.sum_idx.size:
            b[self.sum_idx] += a[self.sum_idx]
        if self.min_idx.size:
            b[self.min_idx] = np.fmin(a[self.min_idx], b[self.min_idx])
        if self.max_idx.size:
            b[self.max_idx] = np.fmax(a[self.max_idx], b[self.max_idx])
        if self.mom_idx.size:
            merge_moments(a, b, self.mom_idx)
        if self.arg_idx.size:
            merge_argmax(a, b, self.arg_idx)


def two_sum(x, y):
    """``(s, e)`` with ``s = fl(x + y)`` and ``s + e == x + y`` exactly (Knuth)."""
    s = x + y
    z = s - x
    return s, (x - (s - z)) + (y - z)


def _merge_ordered(nx, hx, qx, lx, ny, hy, qy, ly):
    """Chan's update of ``x`` by ``y`` (``x`` the side first in the
    canonical order, see :func:`chan_merge`): plain arithmetic only, so the
    same code runs on numpy arrays and on Python floats, with the same
    IEEE operations in the same order, hence the same bits."""
    n = nx + ny
    d, e = two_sum(hx, -hy)
    delta = d + (e + (lx - ly))          # mean_x - mean_y
    s, e = two_sum(hx, -(delta * (ny / n)))
    e = e + lx
    mean = s + e                         # renormalise (fast two-sum)
    mean_lo = e - (mean - s)
    q = (qx + qy) + delta * delta * (nx * (ny / n))
    return n, mean, q, mean_lo


def chan_merge(na, ha, qa, la, nb, hb, qb, lb):
    """Merge two ``(n, mean, m2, mean_lo)`` partials (arrays or scalars).

    The means are double-doubles ``h + l``.  The difference of the means is
    formed with :func:`two_sum`, so it is exact up to ``eps**2 * |mean|``
    however large the common offset; ``m2`` then adds three non-negative
    terms, so its relative error is a few ulps per merge.  The side with the
    larger ``(n, h, l, q)`` (lexicographically) is taken as ``x`` and the
    other as ``y``, so the result does not depend on the order of the
    arguments, bit for bit; ``y`` is then the side with fewer values, which
    keeps the update ``mean_x - delta * n_y / n`` small.  An empty side
    (``n == 0``) is the identity.
    """
    na, ha, qa, la, nb, hb, qb, lb = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (na, ha, qa, la, nb, hb, qb, lb)))
    a_first = (na > nb) | ((na == nb) & (
        (ha > hb) | ((ha == hb) & ((la > lb) | ((la == lb) & (qa >= qb))))))
    nx, hx, qx, lx = (np.where(a_first, u, v) for u, v in ((na, nb), (ha, hb), (qa, qb), (la, lb)))
    ny, hy, qy, ly = (np.where(a_first, v, u) for u, v in ((na, nb), (ha, hb), (qa, qb), (la, lb)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        n, mean, q, mean_lo = _merge_ordered(nx, hx, qx, lx, ny, hy, qy, ly)
    full = ny > 0                            # both sides hold values
    return (n, np.where(full, mean, hx), np.where(full, q, qx),
            np.where(full, mean_lo, lx))


def chan_merge_floats(na, ha, qa, la, nb, hb, qb, lb) -> tuple:
    """:func:`chan_merge` of one pair of partials given as Python floats,
    the same bits in about 2 us instead of about 30 (numpy's per-call cost
    on one-element arrays): the reduction's combine runs it when a record
    holds few MOMENTS values (every due step's reduction, inside MPI)."""
    if na > nb or (na == nb and (ha > hb or (ha == hb and (la > lb or (la == lb
                                                                       and qa >= qb))))):
        nx, hx, qx, lx, ny, hy, qy, ly = na, ha, qa, la, nb, hb, qb, lb
    else:
        nx, hx, qx, lx, ny, hy, qy, ly = nb, hb, qb, lb, na, ha, qa, la
    if not ny > 0:                           # y is empty: x, as chan_merge gives it
        return nx + ny, hx, qx, lx
    return _merge_ordered(nx, hx, qx, lx, ny, hy, qy, ly)


#: up to this many MOMENTS values, the combine merges them as Python floats
SCALAR_MOMENTS = 24


def merge_moments(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> None:
    """``b <- merge(a, b)`` for the MOMENTS quadruples starting at ``idx``
    (a few of them one by one as floats, :func:`chan_merge_floats`; more
    at once with numpy: the same bits either way)."""
    if idx.size <= SCALAR_MOMENTS:
        ai, bi = a.item, b.item
        for i in idx.tolist():
            b[i:i + 4] = chan_merge_floats(ai(i), ai(i + 1), ai(i + 2), ai(i + 3),
                                           bi(i), bi(i + 1), bi(i + 2), bi(i + 3))
        return
    n, mean, q, lo = chan_merge(a[idx], a[idx + 1], a[idx + 2], a[idx + 3],
                                b[idx], b[idx + 1], b[idx + 2], b[idx + 3])
    b[idx] = n
    b[idx + 1] = mean
    b[idx + 2] = q
    b[idx + 3] = lo


def merge_argmax(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> None:
    """``b <- merge(a, b)`` for the ARGMAX pairs ``(value, index)`` at ``idx``:
    the larger value wins, and of equal values the lower index, so the
    merge is commutative and associative bit for bit (it only selects)."""
    av, ai, bv, bi = a[idx], a[idx + 1], b[idx], b[idx + 1]
    take = (av > bv) | ((av == bv) & (ai < bi))
    b[idx] = np.where(take, av, bv)
    b[idx + 1] = np.where(take, ai, bi)


@numba.njit(cache=True, nogil=True)
def _min_total(x, y):  # pragma: no cover - compiled
    """The smaller of ``x`` and ``y``, NaN-ignoring, -0.0 below +0.0: the
    same whichever side is which."""
    if x < y or y != y:
        return x
    if y < x or x != x:
        return y
    return x if np.signbit(x) else y


@numba.njit(cache=True, nogil=True)
def _max_total(x, y):  # pragma: no cover - compiled
    """The larger of ``x`` and ``y``, NaN-ignoring, +0.0 above -0.0."""
    if x > y or y != y:
        return x
    if y > x or x != x:
        return y
    return y if np.signbit(x) else x


@numba.njit(cache=True, nogil=True)
def _chan(na, ha, qa, la, nb, hb, qb, lb):  # pragma: no cover - compiled
    """:func:`chan_merge_floats`, compiled: the same comparisons and the
    same IEEE operations in the same order (no fast-math, no FMA), hence
    the same bits."""
    if na > nb or (na == nb and (ha > hb or (ha == hb and (la > lb or (la == lb
                                                                       and qa >= qb))))):
        nx, hx, qx, lx, ny, hy, qy, ly = na, ha, qa, la, nb, hb, qb, lb
    else:
        nx, hx, qx, lx, ny, hy, qy, ly = nb, hb, qb, lb, na, ha, qa, la
    if not ny > 0:
        return nx + ny, hx, qx, lx
    n = nx + ny
    s = hx + -hy
    z = s - hx
    e = (hx - (s - z)) + (-hy - z)
    delta = s + (e + (lx - ly))
    t = -(delta * (ny / n))
    s = hx + t
    z = s - hx
    e = (hx - (s - z)) + (t - z)
    e = e + lx
    mean = s + e
    mean_lo = e - (mean - s)
    q = (qx + qy) + delta * delta * (nx * (ny / n))
    return n, mean, q, mean_lo


@numba.njit(cache=True, nogil=True)
def _combine(a, b, code):  # pragma: no cover - compiled
    """``b <- merge(a, b)`` slot by slot, by :attr:`ReductionPlan.code`."""
    i = 0
    n = code.size
    while i < n:
        c = code[i]
        if c == 0:
            b[i] = b[i] + a[i]
            i += 1
        elif c == 1:
            b[i] = _min_total(a[i], b[i])
            i += 1
        elif c == 2:
            b[i] = _max_total(a[i], b[i])
            i += 1
        elif c == 3:
            b[i], b[i + 1], b[i + 2], b[i + 3] = _chan(a[i], a[i + 1], a[i + 2], a[i + 3],
                                                       b[i], b[i + 1], b[i + 2], b[i + 3])
            i += 4
        elif c == 4:
            if a[i] > b[i] or (a[i] == b[i] and a[i + 1] < b[i + 1]):
                b[i] = a[i]
                b[i + 1] = a[i + 1]
            i += 2
        else:
            i += 1
