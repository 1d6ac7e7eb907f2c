"""Weighted kernels: weighted sums into a smaller array (a weighted reduction
over some axes, an area-weighted block mean), weighted histograms, and
threshold exceedance.

Every kernel takes the slab and a weight array of the same shape that is
usually a broadcast view (stride 0 along the axes the weights do not vary
along: a cos-latitude column, layer thicknesses), so nothing is copied.
Values that are not finite are skipped, with their weights; unweighted
callers pass a broadcast 1.0, which makes the weight sums counts.

Slabs are scanned in memory order (the fastest axis innermost), whatever
the field's declared order, after a transpose of the views only.  No
fast-math: sums are formed in the order of the loops, so a rank's partials
do not depend on the CPU or on numba's cache (as in kernels/reduce.py).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .histogram import CHUNK as HCHUNK
from .histogram import COPIES as HCOPIES
from .histogram import _bins  # numpy.histogram's edges, made once per range
from .histogram import _exact_slot, _settle, _tally
from .histogram import _slots as _hslots
from .rows import padded
from .simd import (VEC, W, hmax, hmin, hsum, splat, vadd, visfinite, vload3, vmax, vmin,
                   vmul, vstore_i32)


def _memory_order(view: np.ndarray) -> list:
    """The axes of ``view`` from the slowest in memory to the fastest."""
    return sorted(range(view.ndim), key=lambda k: -abs(view.strides[k]))


def _as4(*arrays):
    """Prepend length-1 axes up to 4-D (views)."""
    out = []
    for a in arrays:
        while a.ndim < 4:
            a = a[np.newaxis]
        out.append(a)
    return out


#: how the last (fastest) axis maps to the output, for _accumulate4
INNER_REDUCED, INNER_KEPT, INNER_BLOCKS = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _row_kept(row, ar, wr, wc):  # pragma: no cover - compiled
    """``ar += wc * row`` and ``wr += wc`` where ``row`` is finite (a select:
    LLVM vectorises this loop; written inside _accumulate4's nest it did
    not)."""
    for l in range(row.size):
        x = np.float64(row[l])
        ok = abs(x) < np.inf
        ar[l] += wc * x if ok else 0.0
        wr[l] += wc if ok else 0.0


@numba.njit(cache=True, nogil=True)
def _accumulate4(a, w, w_row_const, m0, m1, m2, m3, inner, acc, wacc):  # pragma: no cover
    """``acc[m(i)] += w[i] * a[i]`` and ``wacc[m(i)] += w[i]`` over the finite
    values of ``a``, where ``m(i) = (m0[i0], m1[i1], m2[i2], m3[i3])`` maps
    each index of ``a`` to a cell of the (smaller) output.

    The last axis, the fastest in memory, is done one of three ways
    (``inner``): reduced (:data:`INNER_REDUCED`: each row summed in four
    lanes, added pairwise, a fixed order), kept (:data:`INNER_KEPT`: ``m3``
    is ``arange + m3[0]``, the row added element by element, which LLVM
    vectorises) or in blocks (:data:`INNER_BLOCKS`, through ``m3``).  A
    non-finite value adds 0 to both sums, by a select, not a branch."""
    n0, n1, n2, n3 = a.shape
    for i in range(n0):
        o0 = m0[i]
        for j in range(n1):
            o1 = m1[j]
            for k in range(n2):
                o2 = m2[k]
                if inner == 0:
                    s0 = s1 = s2 = s3 = 0.0
                    t0 = t1 = t2 = t3 = 0.0
                    m = n3 - n3 % 4
                    for l in range(0, m, 4):
                        x0 = np.float64(a[i, j, k, l])
                        x1 = np.float64(a[i, j, k, l + 1])
                        x2 = np.float64(a[i, j, k, l + 2])
                        x3 = np.float64(a[i, j, k, l + 3])
                        w0 = np.float64(w[i, j, k, l]) if abs(x0) < np.inf else 0.0
                        w1 = np.float64(w[i, j, k, l + 1]) if abs(x1) < np.inf else 0.0
                        w2 = np.float64(w[i, j, k, l + 2]) if abs(x2) < np.inf else 0.0
                        w3 = np.float64(w[i, j, k, l + 3]) if abs(x3) < np.inf else 0.0
                        s0 += w0 * x0 if w0 != 0.0 else 0.0
                        s1 += w1 * x1 if w1 != 0.0 else 0.0
                        s2 += w2 * x2 if w2 != 0.0 else 0.0
                        s3 += w3 * x3 if w3 != 0.0 else 0.0
                        t0 += w0
                        t1 += w1
                        t2 += w2
                        t3 += w3
                    for l in range(m, n3):
                        x0 = np.float64(a[i, j, k, l])
                        w0 = np.float64(w[i, j, k, l]) if abs(x0) < np.inf else 0.0
                        s0 += w0 * x0 if w0 != 0.0 else 0.0
                        t0 += w0
                    o3 = m3[0]
                    acc[o0, o1, o2, o3] += (s0 + s1) + (s2 + s3)
                    wacc[o0, o1, o2, o3] += (t0 + t1) + (t2 + t3)
                elif inner == 1 and w_row_const:
                    # one weight for the row (a cos(lat) or a dp): the loop
                    # has no strided load left, and LLVM vectorises it
                    off = m3[0]
                    _row_kept(a[i, j, k], acc[o0, o1, o2, off:off + n3],
                              wacc[o0, o1, o2, off:off + n3], np.float64(w[i, j, k, 0]))
                elif inner == 1:
                    ar = acc[o0, o1, o2]
                    wr = wacc[o0, o1, o2]
                    off = m3[0]
                    for l in range(n3):
                        x = np.float64(a[i, j, k, l])
                        ok = abs(x) < np.inf
                        ww = np.float64(w[i, j, k, l])
                        ar[off + l] += ww * x if ok else 0.0
                        wr[off + l] += ww if ok else 0.0
                else:
                    for l in range(n3):
                        x = np.float64(a[i, j, k, l])
                        ok = abs(x) < np.inf
                        ww = np.float64(w[i, j, k, l])
                        o3 = m3[l]
                        acc[o0, o1, o2, o3] += ww * x if ok else 0.0
                        wacc[o0, o1, o2, o3] += ww if ok else 0.0


@numba.njit(cache=True, nogil=True)
def _flush_row(acc, wacc, ob, a3, m3, kept, off, ts, tw):  # pragma: no cover - compiled
    """Add a row of partial sums ``ts``/``tw`` into the flat outputs at
    ``ob`` (``a3`` their element stride along the row): element by element
    (``kept``, output index ``off + l``) or into blocks through ``m3``; then
    zero the row.  Unsigned indices: numba adds no negative-index
    wraparound, and LLVM vectorises the kept case with unit stride."""
    n = np.uint64(ts.size)
    base = np.uint64(ob)
    if kept and a3 == 1:
        base += np.uint64(off)
        for l in range(n):
            acc[base + l] += ts[l]
            wacc[base + l] += tw[l]
            ts[l] = 0.0
            tw[l] = 0.0
    else:
        step = np.uint64(a3)
        for l in range(n):
            q = base + np.uint64(m3[l]) * step
            acc[q] += ts[l]
            wacc[q] += tw[l]
            ts[l] = 0.0
            tw[l] = 0.0


@numba.njit(cache=True, nogil=True)
def _accumulate_rows(flat, s0, s1, s2, n0, n1, n2, n3, w, m0, m1, m2, m3, kept,
                     acc, a0, a1, a2, a3, wacc, ts, tw):  # pragma: no cover - compiled
    """:func:`_accumulate4` for rows that are contiguous in memory and have
    one weight each (a broadcast 1.0, a cos(lat), a dp): ``flat`` is the
    slab's memory from its first value, ``s*`` the element strides of its
    outer axes; ``acc``/``wacc`` the outputs' flat memory, ``a*`` their
    element strides.  Consecutive rows that go to the same output row are
    added element by element into the fine row ``ts``/``tw`` (a select
    per value, unsigned in-place indices: LLVM vectorises it), and that row
    is added into the output (element by element, or by blocks through
    ``m3``) when the output row changes: a vertical integral adds its levels
    in cache, a block mean its rows, before one pass over the output."""
    n3u = np.uint64(n3)
    off = m3[0]
    po0 = po1 = po2 = -1
    for i in range(n0):
        o0 = m0[i]
        for j in range(n1):
            o1 = m1[j]
            for k in range(n2):
                o2 = m2[k]
                if o0 != po0 or o1 != po1 or o2 != po2:
                    if po0 >= 0:
                        _flush_row(acc, wacc, po0 * a0 + po1 * a1 + po2 * a2, a3, m3, kept,
                                   off, ts, tw)
                    po0, po1, po2 = o0, o1, o2
                wc = np.float64(w[i, j, k, 0])
                base = np.uint64(i * s0 + j * s1 + k * s2)
                for l in range(n3u):
                    x = np.float64(flat[base + l])
                    ok = abs(x) < np.inf
                    ts[l] += wc * x if ok else 0.0
                    tw[l] += wc if ok else 0.0
    if po0 >= 0:
        _flush_row(acc, wacc, po0 * a0 + po1 * a1 + po2 * a2, a3, m3, kept, off, ts, tw)


def _flat(a: np.ndarray):
    """``a``'s memory as a 1-D array from its first element to its last,
    and its strides in elements; None when a stride is negative or not a
    multiple of the item size (then the general kernel runs)."""
    size = a.itemsize
    if any(st < 0 or st % size for st in a.strides):
        return None
    span = 1 + sum((n - 1) * st // size for n, st in zip(a.shape, a.strides))
    flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(size,),
                                           writeable=a.flags.writeable)
    return flat, [st // size for st in a.strides]


def accumulate(view: np.ndarray, weights: np.ndarray, maps, acc: np.ndarray,
               wacc: np.ndarray) -> None:
    """Add the weighted sums of ``view``'s finite values into ``acc`` and
    their weights into ``wacc`` (same shape, the output's).

    ``maps[k]`` is an int64 array giving, for each index along axis ``k`` of
    ``view``, the output index along the same axis: all zeros for an axis
    reduced over (with length-1 output), ``arange(n) + offset`` for a kept
    axis, ``(arange(n) + offset) // f`` for blocks of ``f``.  ``weights``
    broadcasts to ``view``."""
    Accumulation(view, weights, maps, acc, wacc).run()


class Accumulation:
    """:func:`accumulate` with its layout decided once: the transposes, the
    maps, the kernel and its arguments (some 24 us of Python a call), for
    an analysis that sums the same views into the same outputs at every
    step (it keeps one while the model hands the same view objects)."""

    __slots__ = ("_args", "_kernel", "key")

    def __init__(self, view, weights, maps, acc, wacc, key=None):
        #: what the analysis made this from (compared by identity)
        self.key = key
        self._kernel = None
        if view.size == 0:
            return
        weights = np.broadcast_to(weights, view.shape)
        order = _memory_order(view)
        # Of the outer axes, those reduced over go innermost: an output row
        # is then summed over them while it sits in cache (a vertical
        # integral adds every level into one (lat, lon) row before the
        # next), instead of streaming the whole output once per level.
        reduced = [k for k in order[:-1] if acc.shape[k] == 1 and view.shape[k] > 1]
        order = [k for k in order[:-1] if k not in reduced] + reduced + order[-1:]
        a, w = np.transpose(view, order), np.transpose(weights, order)
        acc_t, wacc_t = np.transpose(acc, order), np.transpose(wacc, order)
        ms = [np.ascontiguousarray(maps[k], dtype=np.int64) for k in order]
        last = ms[-1]
        if acc_t.shape[-1] == 1 and not last.any():
            inner = INNER_REDUCED
        elif np.array_equal(last, last[0] + np.arange(last.size)):
            inner = INNER_KEPT
        else:
            inner = INNER_BLOCKS
        while len(ms) < 4:
            ms.insert(0, np.zeros(1, dtype=np.int64))
        a, w, acc_t, wacc_t = _as4(a, w, acc_t, wacc_t)
        row_const = bool(w.strides[-1] == 0 or w.shape[-1] == 1)
        if row_const and inner != INNER_REDUCED and a.strides[-1] == a.itemsize \
                and acc.dtype == np.float64 and wacc.dtype == np.float64:
            fa, fo, fw = _flat(a), _flat(acc_t), _flat(wacc_t)
            if fa is not None and fo is not None and fw is not None and fo[1] == fw[1]:
                n = a.shape[-1]
                self._kernel = _accumulate_rows
                self._args = (fa[0], *fa[1][:3], *a.shape, w, ms[0], ms[1], ms[2], ms[3],
                              inner == INNER_KEPT, fo[0], *fo[1], fw[0],
                              np.zeros(n), np.zeros(n))
                return
        self._kernel = _accumulate4
        self._args = (a, w, row_const, ms[0], ms[1], ms[2], ms[3], inner, acc_t, wacc_t)

    def run(self) -> None:
        """Add the view's current values into the outputs."""
        if self._kernel is not None:
            self._kernel(*self._args)


#: values per chunk of a row: slots are found for a chunk, then counted
CHUNK = 512
#: interleaved copies of the weighted counters (see _whist4)
COPIES = 8


@numba.njit(cache=True, nogil=True)
def _slots(row, lo, hi, norm, nbf, tol, idx):  # pragma: no cover - compiled
    """The slot of each value of ``row`` where it is certain: ``bin + 1``,
    0 below ``lo`` (-Inf too), ``nb + 1`` above ``hi`` (+Inf too),
    ``nb + 2`` for NaN, and -1 where it is not.

    ``t = (x - lo) * norm`` is a non-decreasing function of ``x`` (two
    rounded monotone operations), so when ``t`` is farther than ``tol``
    (the largest distance of an edge's own ``t`` from its integer, doubled)
    from an integer, ``floor(t)`` is the bin numpy's edges give.  Selects
    only, no branch: LLVM vectorises the loop."""
    for q in range(row.size):
        x = np.float64(row[q])
        t = (x - lo) * norm
        f = np.floor(t)
        frac = t - f
        sure = (x >= lo) & (x <= hi) & (f < nbf) & (frac > tol) & (1.0 - frac > tol)
        other = -1.0 if x == x else nbf + 2.0
        other = nbf + 1.0 if x > hi else other
        other = 0.0 if x < lo else other
        idx[q] = np.int32(f + 1.0 if sure else other)


@numba.njit(cache=True, nogil=True)
def _exact_slots(row, lo, norm, edges, idx):  # pragma: no cover - compiled
    """numpy.histogram's rule for the values :func:`_slots` left unsure
    (within a few ulps of an edge, or equal to ``hi``): a first guess
    corrected against the edges themselves."""
    nb = edges.size - 1
    for q in range(row.size):
        if idx[q] < 0:
            x = np.float64(row[q])
            b = min(int((x - lo) * norm), nb - 1)
            if x < edges[b]:
                b -= 1
            elif b < nb - 1 and x >= edges[b + 1]:
                b += 1
            idx[q] = b + 1


@numba.njit(cache=True, nogil=True)
def _whist4(a, w, w_row_const, lo, hi, norm, edges, tol, out):  # pragma: no cover - compiled
    """Weighted counts of ``a`` (4-D, last axis fastest) into ``out``
    (nb + 2: below, the bins, above).  Each chunk of a row gets its slots
    first (vectorised).  Where the row has one weight (``w_row_const``: a
    cos(lat), a dp, a broadcast 1.0) its values are counted in integers,
    value ``q`` into copy ``q % COPIES`` of the counters, and at the row's
    end each slot the row touched gets the weight times its count (one
    rounding per slot and row); otherwise each value's weight is added,
    into copy ``q % COPIES`` of float counters: a smooth field puts long
    runs of values into one bin, and with one counter every addition would
    wait for the previous one.  The copies are added in a fixed order at
    the end."""
    nb = edges.size - 1
    nbf = float(nb)
    sub = np.zeros((nb + 3) * COPIES)
    icnt = np.zeros((nb + 3) * COPIES, dtype=np.int64)
    idx = np.empty(CHUNK, dtype=np.int32)
    n0, n1, n2, n3 = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                row = a[i, j, k]
                wrow = w[i, j, k]
                smin = nb + 2
                smax = 0
                for c0 in range(0, n3, CHUNK):
                    m = min(CHUNK, n3 - c0)
                    part = row[c0:c0 + m]
                    ids = idx[:m]
                    _slots(part, lo, hi, norm, nbf, tol, ids)
                    least = 0
                    for q in range(m):
                        least = min(least, ids[q])
                    if least < 0:
                        _exact_slots(part, lo, norm, edges, ids)
                    if w_row_const:
                        for q in range(m):
                            b = ids[q]
                            smin = min(smin, b)
                            smax = max(smax, b)
                            icnt[np.uint64(b) * np.uint64(COPIES) + np.uint64(q % COPIES)] += 1
                    else:
                        for q in range(m):
                            sub[np.uint64(ids[q]) * np.uint64(COPIES)
                                + np.uint64(q % COPIES)] += np.float64(wrow[c0 + q])
                if w_row_const and n3 > 0:
                    ww = np.float64(wrow[0])
                    for b in range(smin, min(smax, nb + 1) + 1):   # nb + 2: NaN
                        t = 0
                        for c in range(COPIES):
                            t += icnt[b * COPIES + c]
                            icnt[b * COPIES + c] = 0
                        if t:
                            sub[b * COPIES] += ww * t
                    if smax == nb + 2:
                        for c in range(COPIES):
                            icnt[(nb + 2) * COPIES + c] = 0
    for b in range(nb + 2):   # slot nb + 2 holds the NaNs: not counted
        t = 0.0
        for c in range(COPIES):
            t += sub[b * COPIES + c]
        out[b] += t


@numba.njit(cache=True, nogil=True)
def _whist_rows(a3, w, i0, lo, hi, norm, edges, tol, idx, icnt, sub):  # pragma: no cover
    """The weighted counts of ``a3 = a[i0]`` (3-D, last axis contiguous or
    not: kernels.simd.vload3 decides) whose rows have one weight each: the
    unweighted histogram's slots, eight values at a time
    (kernels.histogram._slots, numpy's rule for the few unsure values),
    counted in integers into interleaved copies (``icnt``), and at each
    row's end its weight times the count of every slot it touched added to
    ``sub``: one rounding per slot and row, where adding each value's
    weight made one per value."""
    nb = edges.size - 1
    nbf = float(nb)
    n1, n2, n3 = a3.shape
    m = n3 - n3 % W
    for j in range(n1):
        for k in range(n2):
            least = splat(nbf + 2.0)
            most = splat(-1.0)
            for c0 in range(0, m, HCHUNK):
                c = min(HCHUNK, m - c0)
                cl = splat(nbf + 2.0)
                for q in range(0, c, W):
                    sv = _hslots(vload3(a3, j, k, c0 + q), lo, norm, nbf, tol)
                    cl = vmin(sv, cl)
                    most = vmax(sv, most)
                    vstore_i32(idx, q, sv)
                if hmin(cl) < 0.0:
                    _settle(a3, j, k, c0, c, lo, hi, norm, edges, idx, 0)
                    for q in range(c):
                        b = float(idx[q])
                        cl = vmin(splat(b), cl)
                        most = vmax(splat(b), most)
                least = vmin(cl, least)
                _tally(idx, c, icnt)
            smin = int(hmin(least))
            smax = int(hmax(most))
            for q in range(m, n3):
                b = _exact_slot(np.float64(a3[j, k, q]), lo, hi, norm, edges)
                icnt[b * COPIES] += 1
                smin = min(smin, b)
                smax = max(smax, b)
            if smax < 0:
                continue
            ww = np.float64(w[i0, j, k, 0])
            for b in range(max(smin, 0), smax + 1):
                t = 0
                for c in range(COPIES):
                    t += icnt[b * COPIES + c]
                    icnt[b * COPIES + c] = 0
                if t and b < nb + 2:       # slot nb + 2 holds the NaNs
                    sub[b * COPIES] += ww * t


@numba.njit(cache=True, nogil=True)
def _whist_rowconst(a, w, lo, hi, norm, edges, tol, out):  # pragma: no cover - compiled
    nb = edges.size - 1
    sub = np.zeros((nb + 3) * COPIES)
    icnt = np.zeros((nb + 3) * COPIES, dtype=np.int64)
    idx = np.empty(HCHUNK, dtype=np.int32)
    for i0 in range(a.shape[0]):
        _whist_rows(a[i0], w, i0, lo, hi, norm, edges, tol, idx, icnt, sub)
    for b in range(nb + 2):
        t = 0.0
        for c in range(COPIES):
            t += sub[b * COPIES + c]
        out[b] += t


def weighted_histogram(view: np.ndarray, weights: np.ndarray, lo: float, hi: float,
                       nbins: int, out: np.ndarray | None = None) -> np.ndarray:
    """Weighted counts of ``view``: ``out`` (nbins + 2) gets the summed
    weights below ``lo``, in each of the ``nbins`` equal bins of
    ``[lo, hi]`` (numpy's bin rule, the last bin closed), and above ``hi``.
    NaN is skipped; -Inf counts below and +Inf above, as in the unweighted
    kernel.  ``numpy.histogram(x, bins, (lo, hi), weights=w)`` gives the
    middle part.  ``out`` is zeroed first."""
    if out is None:
        out = np.zeros(nbins + 2)
    out[:] = 0.0
    if view.size == 0:
        return out
    lo, hi = float(lo), float(hi)
    edges, norm, tol = _bins(lo, hi, int(nbins))
    weights = np.broadcast_to(weights, view.shape)
    order = _memory_order(view)
    a, w = _as4(np.transpose(view, order), np.transpose(weights, order))
    if (w.strides[-1] == 0 or w.shape[-1] == 1) and HCOPIES == COPIES:
        _whist_rowconst(a, w, lo, hi, norm, edges, tol, out)
    else:
        _whist4(a, w, w.strides[-1] == 0 or w.shape[-1] == 1, lo, hi, norm, edges, tol, out)
    return out


#: exceedance comparisons, by config name
OPS = {"gt": 0, "ge": 1, "lt": 2, "le": 3}


@intrinsic
def _vpast(typingctx, v, threshold, op):
    """Lane-wise 1.0 where ``x`` is past ``threshold`` by the comparison
    ``op`` (a code of :data:`OPS`: ``>``, ``>=``, ``<``, ``<=``), else 0.0;
    NaN is past nothing (ordered comparisons).  ``op`` is a run-time value
    that does not change within a kernel call: four vector comparisons and
    three selects on it, which LLVM unswitches out of the row loop."""
    if v != VEC:
        raise TypingError("_vpast needs a vector")

    def codegen(context, builder, sig, args):
        vt = args[0].type
        i32 = ir.IntType(32)
        t = context.cast(builder, args[1], sig.args[1], types.float64)
        one = builder.insert_element(ir.Constant(vt, ir.Undefined), t, ir.Constant(i32, 0))
        tv = builder.shuffle_vector(one, ir.Constant(vt, ir.Undefined),
                                    ir.Constant(ir.VectorType(i32, W), [0] * W))
        op = context.cast(builder, args[2], sig.args[2], types.int64)
        code = [builder.fcmp_ordered(c, args[0], tv) for c in (">", ">=", "<", "<=")]
        pick = code[3]
        for k in (2, 1, 0):
            pick = builder.select(builder.icmp_signed("==", op, ir.Constant(op.type, k)),
                                  code[k], pick)
        return builder.select(pick, ir.Constant(vt, [1.0] * W), ir.Constant(vt, [0.0] * W))
    return VEC(VEC, threshold, op), codegen


@intrinsic
def _vwhere(typingctx, mask, v):
    """Lane-wise ``v if mask != 0 else 0.0``: a weight kept where its value
    counts, dropped (not multiplied by 0, which would keep a NaN weight's
    NaN) where it does not."""
    if mask != VEC or v != VEC:
        raise TypingError("_vwhere needs two vectors")

    def codegen(context, builder, sig, args):
        vt = args[0].type
        zero = ir.Constant(vt, [0.0] * W)
        return builder.select(builder.fcmp_unordered("une", args[0], zero), args[1], zero)
    return VEC(VEC, VEC), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _past(x, threshold, op):  # pragma: no cover - compiled
    return ((op == 0) & (x > threshold)) | ((op == 1) & (x >= threshold)) | \
        ((op == 2) & (x < threshold)) | ((op == 3) & (x <= threshold))


@numba.njit(cache=True, nogil=True)
def _exceed_rows(a, w, ncols, row_const, threshold, op, out):  # pragma: no cover - compiled
    """The four sums of :func:`exceedance` over the rows of ``a`` (3-D, the
    last axis contiguous: a C-contiguous padded-rows description of a
    halo view, whose first ``ncols`` values of each row are the slab's), with
    ``w`` laid out alike (or one weight per row, ``row_const``: then
    ``w[i, j, 0]`` is the row's weight).

    Each row is read :data:`~insitu.kernels.simd.W` values at a time
    (kernels/simd.py): the finite mask and the comparison are lane-wise,
    and the counts are lane sums of 1.0 (exact integers: their order does
    not matter, and they equal the integer counts bit for bit).  With one
    weight per row, the row's weight multiplies its counts: one rounding
    per row, the bits of the kernel before (``_exceed4``).  With a weight
    per value, the weights of the row's finite values (and of those past
    the threshold) are added lane by lane, each lane every W-th value of
    the row, the lanes in simd's fixed tree (``hsum``), then the row's last
    ``ncols % W`` values one by one, and the row's sum into the slab's:
    an order written out in the source, so the bits are the same on every
    CPU and cached or not (no fast-math).  The scalar 4-lane loop before it
    read a Fortran-order halo view at about 1.7 ns a value (issue 12)."""
    n0, n1, _ = a.shape
    m = ncols - ncols % W
    c = np.int64(0)
    n = np.int64(0)
    cw = 0.0
    nw = 0.0
    for i in range(n0):
        for j in range(n1):
            vc = splat(0.0)
            vn = splat(0.0)
            tc = 0
            tn = 0
            if row_const:
                for k in range(0, m, W):
                    x = vload3(a, i, j, k)
                    f = visfinite(x)
                    vn = vadd(vn, f)
                    vc = vadd(vc, vmul(f, _vpast(x, threshold, op)))
                for k in range(m, ncols):
                    x = np.float64(a[i, j, k])
                    ok = abs(x) < np.inf
                    tn += ok
                    tc += ok & _past(x, threshold, op)
                rc = np.int64(hsum(vc)) + tc
                rn = np.int64(hsum(vn)) + tn
                ww = np.float64(w[i, j, 0])
                cw += ww * rc if rc else 0.0
                nw += ww * rn if rn else 0.0
            else:
                vcw = splat(0.0)
                vnw = splat(0.0)
                for k in range(0, m, W):
                    x = vload3(a, i, j, k)
                    wv = vload3(w, i, j, k)
                    f = visfinite(x)
                    p = vmul(f, _vpast(x, threshold, op))
                    vn = vadd(vn, f)
                    vc = vadd(vc, p)
                    vnw = vadd(vnw, _vwhere(f, wv))
                    vcw = vadd(vcw, _vwhere(p, wv))
                scw = hsum(vcw)
                snw = hsum(vnw)
                for k in range(m, ncols):
                    x = np.float64(a[i, j, k])
                    ok = abs(x) < np.inf
                    p = ok & _past(x, threshold, op)
                    tn += ok
                    tc += p
                    wk = np.float64(w[i, j, k])
                    snw += wk if ok else 0.0
                    scw += wk if p else 0.0
                rc = np.int64(hsum(vc)) + tc
                rn = np.int64(hsum(vn)) + tn
                cw += scw
                nw += snw
            c += rc
            n += rn
    out[0] += float(c)
    out[1] += float(n)
    out[2] += cw
    out[3] += nw


class Prepared:
    """A slab and its weights laid out for :func:`_exceed_rows` once (memory
    order, length-1 axes prepended, the axes before the last two merged
    when their strides allow, rows re-described as :func:`padded` rows),
    kept while the model hands the same view objects: an analysis's step
    then pays one identity test instead of the broadcast, the sort and the
    transposes (some 10 us a step)."""

    __slots__ = ("source", "a", "w", "row_const", "size", "ncols")

    def __init__(self):
        self.source = (None, None)

    def get(self, view: np.ndarray, weights: np.ndarray, source):
        """The prepared ``(a, w)``; ``source`` is what the layout depends
        on (the field's view object and the weight field's, or None)."""
        if self.source[0] is not source[0] or self.source[1] is not source[1]:
            self.size = view.size
            weights = np.broadcast_to(weights, view.shape)
            order = _memory_order(view)
            a, w = _as4(np.transpose(view, order), np.transpose(weights, order))
            self.row_const = bool(w.strides[-1] == 0 or w.shape[-1] == 1)
            self.ncols = a.shape[-1]
            a3, w3 = _rows3(a), _rows3(w)
            if a3.ndim == w3.ndim == 3:   # else both stay 4-D
                a, w = a3, w3
            self.a = padded(a)
            self.w = w[..., :1] if self.row_const else padded(w)
            self.source = source
        return self


def _rows3(a: np.ndarray) -> np.ndarray:
    """A 4-D view as 3-D, its first two axes merged, when that is a view (a
    2-D or 3-D field, whose leading axes :func:`_as4` made of length 1, or
    a 4-D one whose two outer axes are one run of memory); else ``a``."""
    n0, n1 = a.shape[:2]
    if n0 == 1 or n1 == 1 or a.strides[0] == n1 * a.strides[1]:
        st0 = a.strides[0] if n1 == 1 else a.strides[1]
        return np.lib.stride_tricks.as_strided(
            a, shape=(n0 * n1,) + a.shape[2:], strides=(st0,) + a.strides[2:],
            writeable=False)
    return a


def exceedance_prepared(p: Prepared, threshold: float, op: int, out: np.ndarray) -> np.ndarray:
    """:func:`exceedance` on a :class:`Prepared` slab (``op`` a code of
    :data:`OPS`)."""
    out[:] = 0.0
    if p.size:
        a, w = p.a, p.w
        if a.ndim == 3:
            _exceed_rows(a, w, p.ncols, p.row_const, threshold, op, out)
        else:   # a 4-D slab whose first two axes do not merge: one 3-D slab at a time
            for i in range(a.shape[0]):
                _exceed_rows(a[i], w[i], p.ncols, p.row_const, threshold, op, out)
    return out


def exceedance(view: np.ndarray, weights: np.ndarray, threshold: float, op: str,
               out: np.ndarray | None = None) -> np.ndarray:
    """``(values past the threshold, finite values, their weights, the
    finite values' weights)`` of ``view``; non-finite values are skipped.
    ``op`` is ``gt``, ``ge``, ``lt`` or ``le`` (``x > threshold``...).
    ``out`` is zeroed first."""
    if out is None:
        out = np.zeros(4)
    p = Prepared().get(view, weights, (view, weights))
    return exceedance_prepared(p, float(threshold), OPS[op], out)
