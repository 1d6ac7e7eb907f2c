"""Bitwise-reproducible sums: exact fixed-point accumulation in int64 words.

In the manner of MOM6's ``reproducing_sum`` and E3SM's ``shr_reprosum``:
once every rank knows the global ``max |x|`` (from the step's reduction),
a power of two ``2**T > max |x|`` fixes a grid.  Each finite value is split,
exactly, into three parts on grids ``2**(T-33)``, ``2**(T-66)`` and
``2**(T-99)``: scale by ``2**(33-T)`` and peel 33-bit integer parts with
``rint`` (round half to even, the same on every machine); what lies below
``2**(T-100)`` is rounded away, the same way whatever the decomposition.
Each level's parts are integers below 2**33, so their float64 sums over
blocks of at most 2**20 values are exact; the block sums go into int64
words with carries normalised between levels.  Integer addition is
associative, so the global sum is one integer ``Allreduce`` and the result
is bit for bit the same for any number of ranks and any decomposition.

Words: ``[w0, w1, w2, w3]`` in units of ``2**T, 2**(T-33), 2**(T-66),
2**(T-99)``; after :func:`normalise`, ``w1..w3`` lie in ``[0, 2**33)``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .moments import PREFETCH, as_c_order_3d
from .simd import W, hsum, prefetch3, splat, vadd, vfinite_or_zero, vload3, vmul, vrint, vsub

BITS = 33
LEVELS = 3
WORDS = LEVELS + 1
BLOCK = 1 << 20
MIN_T = -900  # below this the grids would underflow; values are ~0 anyway


@numba.njit(cache=True, nogil=True)
def _normalise(w):  # pragma: no cover - compiled
    for k in range(3, 0, -1):
        carry = w[k] >> 33
        w[k] -= carry << 33
        w[k - 1] += carry


@numba.njit(cache=True, nogil=True)
def _levels(a, i, j0, j1, start, stop, scale, careful):  # pragma: no cover - compiled
    """The three levels' integer parts of ``a[i, j0:j1, start:stop]``, summed.

    Scale by 2**(33-T) (exact), then peel three 33-bit levels with rint
    (round half to even, exact).  Every part is an integer-valued float
    below 2**33 and every partial sum of up to 2**20 of them an exact
    integer below 2**53, so any order of additions gives the same sums;
    the order is nevertheless fixed, lane by lane in simd's vectors
    (kernels/simd.py; no fast-math anywhere).  NaN and Inf are skipped:
    the fast pass does not test for them, but one makes a level's sum
    non-finite, and the caller then redoes the block with ``careful`` set
    (each value tested, as a select).  Rows are indexed in place, never
    sliced (see simd.vload3)."""
    sc = splat(scale)
    big = splat(8589934592.0)   # 2**33
    h1 = splat(0.0)
    h2 = splat(0.0)
    h3 = splat(0.0)
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for j in range(j0, j1):
        k = start
        while k + W <= stop:
            prefetch3(a, i, j, k, PREFETCH)
            x = vload3(a, i, j, k)
            if careful:
                x = vfinite_or_zero(x)
            y = vmul(x, sc)
            q1 = vrint(y)
            r = vmul(vsub(y, q1), big)
            q2 = vrint(r)
            r = vmul(vsub(r, q2), big)
            h1 = vadd(h1, q1)
            h2 = vadd(h2, q2)
            h3 = vadd(h3, vrint(r))
            k += W
        for q in range(k, stop):
            x = np.float64(a[i, j, q])
            if careful and not abs(x) < np.inf:
                x = 0.0
            y = x * scale
            q1 = np.rint(y)
            r = (y - q1) * 8589934592.0
            q2 = np.rint(r)
            r = (r - q2) * 8589934592.0
            a1 += q1
            a2 += q2
            a3 += np.rint(r)
    return hsum(h1) + a1, hsum(h2) + a2, hsum(h3) + a3


@numba.njit(cache=True, nogil=True)
def _fixed3(a, T, w):  # pragma: no cover - compiled
    """Rows (or BLOCK pieces of long rows) are summed in groups of at most
    BLOCK values, whose level sums stay exact in float64, and each group's
    sums go into the int64 words at once: a short row (a halo-sliced
    field's) does not pay for a conversion and a carry each."""
    scale = 2.0 ** (33 - T)
    n0, n1, ncols = a.shape
    group = max(1, BLOCK // max(ncols, 1))
    for i in range(n0 if ncols > 0 else 0):
        for j in range(0, n1, group):
            j1 = min(j + group, n1)
            for start in range(0, ncols, BLOCK):
                stop = min(start + BLOCK, ncols)
                g1, g2, g3 = _levels(a, i, j, j1, start, stop, scale, False)
                if not (abs(g1) < np.inf and abs(g2) < np.inf and abs(g3) < np.inf):
                    g1, g2, g3 = _levels(a, i, j, j1, start, stop, scale, True)
                w[1] += np.int64(g1)
                w[2] += np.int64(g2)
                w[3] += np.int64(g3)
                _normalise(w)


def grid_exponent(max_abs: float) -> int:
    """The smallest ``T`` with ``2**T > max_abs`` (the same on every rank)."""
    if not (max_abs > 0.0) or not math.isfinite(max_abs):
        return MIN_T
    return max(math.frexp(max_abs)[1], MIN_T)


def local_words(view: np.ndarray, T: int, out: np.ndarray | None = None) -> np.ndarray:
    """This rank's sum of the finite values of ``view`` as int64 words.

    Every finite value must satisfy ``|x| < 2**T``; the caller takes ``T``
    from the global maximum, so this holds by construction."""
    if out is None:
        out = np.zeros(WORDS, dtype=np.int64)
    else:
        out[:] = 0
    if view.ndim == 4:  # slice by slice; integer words add exactly in any order
        from .slices import along, slowest_axis
        part = np.zeros(WORDS, dtype=np.int64)
        for s in along(view, slowest_axis(view)):
            out += local_words(s, T, part)
        return out
    a = as_c_order_3d(view)
    if a.flags.c_contiguous:
        a = a.reshape(1, 1, a.size)   # one long row
    _fixed3(a, int(T), out)
    return out


def to_float(words, T: int) -> float:
    """The value of (summed, possibly unnormalised) words, correctly rounded.

    Python integers are exact, so the result depends only on the words."""
    total = 0
    for k, w in enumerate(int(v) for v in words):
        total += w << (BITS * (LEVELS - k))
    # |total| < count * 2**99 units, far inside float range: one rounding.
    return math.ldexp(float(total), T - BITS * LEVELS)
