"""Where the extremes of a slab are: the value and the GLOBAL flat index of
its largest and smallest finite value.

The index is the position in the whole field, in C order over the field's
dims as declared (``numpy.ravel_multi_index(idx, global_shape)``), so ranks
can compare their candidates directly.  Ties go to the lowest global index:
on one rank that is the first in C order, whatever the memory order the
slab is scanned in, and across ranks the reduction keeps the lowest index
among equal values (:func:`insitu.reduction.merge_argmax`), so the answer
is the same for any decomposition.  NaN and +-Inf are skipped (the extremes
are those ``stats`` writes as ``min`` and ``max``); -0.0 and 0.0 are equal
values, so they tie and the index decides.
"""
from __future__ import annotations

import numba
import numpy as np


#: values per chunk of a row: a chunk is scanned for its candidates only
#: when a test of the whole chunk says it holds one (see _argext4)
CHUNK = 64


@numba.njit(cache=True, nogil=True)
def _candidates(part, hi, lo):  # pragma: no cover - compiled
    """How many finite values of ``part`` (a piece of a row) are ``>= hi``
    or ``<= lo``: an integer sum of selects over the whole of an array,
    which LLVM vectorises (the same loop over ``a[i, j, k, l0:l1]``
    indexed in place did not: numba's negative-index wraparound on a
    variable start keeps it scalar)."""
    c = 0
    for l in range(part.size):
        x = np.float64(part[l])
        c += ((x >= hi) | (x <= lo)) & (abs(x) < np.inf)
    return c


@numba.njit(cache=True, nogil=True)
def _argext4(a, g0, g1, g2, g3, base, out):  # pragma: no cover - compiled
    """Scan ``a`` (4-D, last axis fastest in memory); ``g*`` are the global
    flat strides of its axes, ``base`` the global index of ``a[0, 0, 0, 0]``.
    ``out`` = (max, its index, min, its index), merged into (not reset).

    Each row goes by chunks of :data:`CHUNK` values: a vectorised count of
    the chunk's values that could change the answer (finite and at least
    the maximum so far, or at most the minimum), and only when there is one
    the chunk's values one by one with the tie rule.  On a field scanned in
    memory order, few chunks hold a new extreme, so most of the slab is
    read at the speed of the count."""
    hi = out[0]
    ihi = np.int64(out[1]) if out[1] < 9.2e18 else np.int64(0x7FFFFFFFFFFFFFFF)
    lo = out[2]
    ilo = np.int64(out[3]) if out[3] < 9.2e18 else np.int64(0x7FFFFFFFFFFFFFFF)
    n0, n1, n2, n3 = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                g = base + i * g0 + j * g1 + k * g2
                row = a[i, j, k]
                for l0 in range(0, n3, CHUNK):
                    l1 = min(l0 + CHUNK, n3)
                    if _candidates(row[l0:l1], hi, lo) == 0:
                        continue
                    for l in range(l0, l1):
                        x = np.float64(a[i, j, k, l])
                        if abs(x) < np.inf:
                            if x >= hi:
                                gi = g + l * g3
                                if x > hi or gi < ihi:
                                    hi = x
                                    ihi = gi
                            if x <= lo:
                                gi = g + l * g3
                                if x < lo or gi < ilo:
                                    lo = x
                                    ilo = gi
    out[0] = hi
    out[1] = np.float64(ihi) if hi > -np.inf else np.inf
    out[2] = lo
    out[3] = np.float64(ilo) if lo < np.inf else np.inf


def arg_extremes(view: np.ndarray, offset, global_shape, out: np.ndarray | None = None):
    """``(max, index of max, min, index of min)`` of the finite values of
    ``view``, the part of a field of ``global_shape`` starting at global
    index ``offset``; the indices are global C-order flat indices as float64
    (exact below 2**53).  An empty or all-non-finite view gives
    ``(-inf, inf, inf, inf)``, the identity of the reduction's merge."""
    if out is None:
        out = np.empty(4)
    out[:] = (-np.inf, np.inf, np.inf, np.inf)
    if view.size == 0:
        return out
    gstrides = [int(np.prod(global_shape[k + 1:])) for k in range(len(global_shape))]
    base = sum(int(o) * g for o, g in zip(offset, gstrides))
    # Scan in memory order (the fastest axis last): the tie rule compares
    # indices, so the order of the scan does not change the answer.
    order = sorted(range(view.ndim), key=lambda k: -abs(view.strides[k]))
    a = np.transpose(view, order)
    g = [gstrides[k] for k in order]
    while a.ndim < 4:
        a = a[np.newaxis]
        g = [0] + g
    _argext4(a, g[0], g[1], g[2], g[3], base, out)
    return out
