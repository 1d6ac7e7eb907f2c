"""Fixed-bin histogram of the finite values of a slab, numpy's bin rule.

Bins are ``edges = linspace(lo, hi, nbins + 1)``; a value ``x`` goes to bin
``k`` with ``edges[k] <= x < edges[k + 1]``, the last bin also taking
``x == hi``, exactly as ``numpy.histogram`` assigns them (including its
corrections for rounding at the edges).  Values below ``lo`` and above
``hi`` are counted apart; NaN is skipped, and -Inf and +Inf count as below
and above.

The kernel runs in two steps over chunks of a row.  First, eight values
at a time (kernels/simd.py), each value's slot: its bin when the bin is
certain, below, above, NaN, or "unsure".  ``t = (x - lo) * norm`` is a
non-decreasing function of ``x`` (two rounded, monotone operations), so if
``t`` lies strictly between ``t(edges[k])`` and ``t(edges[k + 1])``, then
``edges[k] <= x < edges[k + 1]``: the bin is ``floor(t)`` whenever ``t`` is
farther than ``tol = max_k |t(edges[k]) - k|`` (doubled for the rounding
of that difference) from an integer.  By the same argument such a ``t``
below 0 means ``x < lo`` (``t(lo)`` is 0), and one above ``nbins`` means
``x > hi``: ``floor(t)`` clamped to ``[-1, nbins]`` is the slot, with no
test of the range.  Only values within a few ulps of an edge (``hi``
itself among them) and +-Inf are unsure, and they take numpy's rule with
the edges themselves, value by value.  Then the slots are counted eight at
a time into a window of five adjacent slots held in registers (see the
comment above :func:`_hist3`): a smooth field's eight neighbours lie in one
or two adjacent bins, so most vectors cost a few vector operations; the
others are counted value by value.  Counts are float64 lanes, exact to
2**53.  (:func:`_tally`, value by value into eight interleaved copies of
int64 counters, is kept for kernels.weighted's per-value kernel.)
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .moments import as_c_order_3d
from .simd import (VEC, W, hmin, lane, splat, vadd, vload, vload3, vmin, vmul, vsub,
                   vstore_i32)
from .simd_store import vall, veq, vge, vstore

#: Values per chunk: slots are computed for a chunk, then counted.
CHUNK = 512
#: Copies of the counters (see the module's docstring); slots are produced
#: W at a time, so every count of slots handed to :func:`_tally` is a
#: multiple of COPIES.
COPIES = W


@intrinsic
def _slots(typingctx, v, lo, norm, nbins, tol):
    """The slot of each lane of ``v``, as a float: ``bin + 1`` when certain,
    0 below ``lo``, ``nbins + 1`` above ``hi``, ``nbins + 2`` for NaN, -1
    when unsure (+-Inf too; to be done by :func:`_exact_slot`)."""
    sig = VEC(VEC, types.float64, types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.DoubleType(), W)
        x = args[0]

        def bcast(val):
            one = builder.insert_element(ir.Constant(vt, ir.Undefined), val,
                                         ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(one, ir.Constant(vt, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), W), [0] * W))

        def const(c):
            return ir.Constant(vt, [float(c)] * W)
        lo, norm, nb, tol = (bcast(a) for a in args[1:])
        floor = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt]),
                                               f"llvm.floor.v{W}f64")
        t = builder.fmul(builder.fsub(x, lo), norm)
        f = builder.call(floor, [t])
        frac = builder.fsub(t, f)
        # Certain when t is more than tol from an integer (NaN and +-Inf
        # never are); then t < -tol means x < lo, t > nbins + tol x > hi,
        # and otherwise the bin is floor(t) (see the module's docstring):
        # floor(t) clamped to [-1, nbins] plus one is the slot.
        sure = builder.and_(builder.fcmp_ordered(">", frac, tol),
                            builder.fcmp_ordered(">", builder.fsub(const(1), frac), tol))
        g = builder.select(builder.fcmp_ordered("<", f, const(-1)), const(-1), f)
        g = builder.select(builder.fcmp_ordered(">", g, nb), nb, g)
        other = builder.select(builder.fcmp_ordered("==", x, x), const(-1),
                               builder.fadd(nb, const(2)))
        return builder.select(sure, builder.fadd(g, const(1)), other)
    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _exact_slot(x, lo, hi, norm, edges):  # pragma: no cover - compiled
    """The slot of one value by numpy's rule: a first guess from ``t``, then
    corrected against the edges themselves."""
    nb = edges.size - 1
    if x != x:
        return nb + 2
    if x < lo:
        return 0
    if x > hi:
        return nb + 1
    b = min(int((x - lo) * norm), nb - 1)
    if x < edges[b]:
        b -= 1
    elif b < nb - 1 and x >= edges[b + 1]:
        b += 1
    return b + 1


@numba.njit(cache=True, nogil=True)
def _settle(src, i, j, k, c, lo, hi, norm, edges, idx, pos):  # pragma: no cover - compiled
    """Settle the unsure slots among ``idx[pos:pos + c]`` (of the values
    ``src[i, j, k:k + c]``) by the exact rule."""
    for q in range(c):
        if idx[pos + q] < 0:
            idx[pos + q] = _exact_slot(np.float64(src[i, j, k + q]), lo, hi, norm, edges)


@numba.njit(cache=True, nogil=True)
def _tally(idx, c, sub):  # pragma: no cover - compiled
    """Count the slots ``idx[:c]`` (``c`` a multiple of COPIES) into ``sub``,
    a flat ``(slots, COPIES)`` array of int64 counters: slot ``q`` into copy
    ``q % COPIES`` (unsigned indices: no wraparound test)."""
    for q in range(0, c, COPIES):
        for l in range(COPIES):
            sub[np.uint64(idx[q + l]) * np.uint64(COPIES) + np.uint64(l)] += 1


@numba.njit(cache=True, nogil=True)
def _pick(src, i, j, k, c, idx, pos, slots, bufs, fill, s_lo, s_hi):  # pragma: no cover
    """Copy the values ``src[i, j, k:k + c]`` of each wanted slot ``slots[r]``
    within ``[s_lo, s_hi]`` (their slots ``idx[pos:pos + c]``, settled;
    ``c`` a multiple of W) to row ``r`` of ``bufs``.  W values at a time:
    a group without a value of the slot costs one vector comparison; in a
    group with one, every value is stored at the row's next free place and
    the place moves on only for a value of the slot (no branch per value:
    a field crossing a bin edge back and forth mispredicts nothing).  The
    last column is the scratch place of a full row; ``fill`` counts every
    value of the slot, so a row that ran out of room shows as ``fill >
    bufs.shape[1] - 1``."""
    room = bufs.shape[1] - 1
    for r in range(slots.size):
        s = slots[r]
        if s < s_lo or s > s_hi:
            continue
        f = fill[r]
        ur = np.uint64(r)
        for q0 in range(0, c, W):
            hit = 0
            for l in range(W):
                hit |= np.int64(idx[pos + q0 + l] == s)
            if hit:
                for l in range(W):   # unsigned indices: no wraparound test
                    bufs[ur, np.uint64(min(f, room))] = np.float64(src[i, j, k + q0 + l])
                    f += np.int64(idx[pos + q0 + l] == s)
        fill[r] = f


@intrinsic
def _add_lanes(typingctx, arr, i, v):
    """``arr[i:i + W] += v`` (``arr`` 1-D C-contiguous float64)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype == types.float64 and v == VEC):
        raise TypingError(f"_add_lanes needs a 1-D C-contiguous float64 array, got {arr}")

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.DoubleType(), W)
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        at = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = builder.bitcast(builder.gep(ary.data, [at]), vt.as_pointer())
        builder.store(builder.fadd(builder.load(ptr, align=8), args[2]), ptr, align=8)
        return context.get_dummy_value()
    return types.none(arr, i, v), codegen


@intrinsic
def _flush(typingctx, sub, cb, nv, s1, s2, s3, s4, ww):
    """Add the window's counts times the weight ``ww`` to ``sub`` (slot
    ``s`` at ``(s + 1) * W``), lane by lane, one rounding each (none for
    1.0); nothing when ``cb < 0`` (no window).  The window's five slots
    ``cb - 2 .. cb + 2`` are counted as ``nv`` vectors and the lanes' sums
    ``s1 .. s4`` of ``d``, ``d**2``, ``d**3``, ``d**4``, ``d = slot - cb``
    (small integers: every sum exact); a lane's count of each ``d`` is
    the Lagrange solution of those five moments, exact too::

        n(+-2) = (s4 +- 2 s3 - s2 -+ 2 s1) / 24
        n(+-1) = (-s4 -+ s3 + 4 s2 +- 4 s1) / 6
        n(0)   = (s4 - 5 s2 + 4 nv) / 4

    An intrinsic, not a function: a numba function handed an array, even
    inlined, increfs and decrefs it (atomic operations, some 45 ns a
    call)."""
    if not (isinstance(sub, types.Array) and sub.ndim == 1 and sub.layout == "C"
            and sub.dtype == types.float64):
        raise TypingError(f"_flush needs a 1-D C-contiguous float64 array, got {sub}")

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.DoubleType(), W)
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        cb = context.cast(builder, args[1], sig.args[1], types.float64)
        nv = context.cast(builder, args[2], sig.args[2], types.float64)
        ww = context.cast(builder, args[7], sig.args[7], types.float64)

        def splat_(x):
            v = builder.insert_element(ir.Constant(vt, ir.Undefined), x,
                                       ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), W), [0] * W))

        def c(x):
            return ir.Constant(vt, [float(x)] * W)
        s1, s2, s3, s4 = args[3:7]
        wv = splat_(ww)
        nvv = splat_(nv)
        add, sub_, mul = builder.fadd, builder.fsub, builder.fmul
        two_s3, two_s1 = mul(c(2), s3), mul(c(2), s1)
        four_s2, four_s1 = mul(c(4), s2), mul(c(4), s1)
        counts = [
            builder.fdiv(add(sub_(sub_(s4, two_s3), s2), two_s1), c(24)),        # d = -2
            builder.fdiv(sub_(add(add(builder.fneg(s4), s3), four_s2), four_s1), c(6)),  # -1
            builder.fdiv(add(sub_(s4, mul(c(5), s2)), mul(c(4), nvv)), c(4)),    # 0
            builder.fdiv(add(add(sub_(builder.fneg(s4), s3), four_s2), four_s1), c(6)),  # +1
            builder.fdiv(sub_(sub_(add(s4, two_s3), s2), two_s1), c(24)),        # +2
        ]
        with builder.if_then(builder.fcmp_ordered(">=", cb, ir.Constant(ir.DoubleType(), 0.0))):
            # slot cb - 2 + r at (cb - 2 + r + 1) * W
            at = builder.mul(builder.sub(builder.fptosi(cb, cgutils.intp_t),
                                         ir.Constant(cgutils.intp_t, 1)),
                             ir.Constant(cgutils.intp_t, W))
            for r, n in enumerate(counts):
                ptr = builder.bitcast(
                    builder.gep(ary.data, [builder.add(at, ir.Constant(cgutils.intp_t, r * W))]),
                    vt.as_pointer())
                builder.store(builder.fadd(builder.load(ptr, align=8), mul(n, wv)), ptr, align=8)
        return context.get_dummy_value()
    return types.none(sub, cb, nv, s1, s2, s3, s4, ww), codegen


@intrinsic
def _vstore_at(typingctx, arr, r, c, v):
    """``arr[r, c:c + W] = v`` (``arr`` 2-D C-contiguous float64; no bounds
    check, as in a numba loop)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C"
            and arr.dtype == types.float64 and v == VEC):
        raise TypingError(f"_vstore_at needs a 2-D C-contiguous float64 array, got {arr}")

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.DoubleType(), W)
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, ary.shape, 2)
        r = context.cast(builder, args[1], sig.args[1], types.intp)
        c = context.cast(builder, args[2], sig.args[2], types.intp)
        at = builder.add(builder.mul(r, shape[1]), c)
        ptr = builder.bitcast(builder.gep(ary.data, [at]), vt.as_pointer())
        builder.store(args[3], ptr, align=8)
        return context.get_dummy_value()
    return types.none(arr, r, c, v), codegen


@intrinsic
def _store_run(typingctx, arr, r, f, room, v, m):
    """If the lanes of the mask ``m`` (1.0/0.0) that are on form one run,
    lanes ``k`` to ``k + n - 1`` (or none), and ``f + n <= room``: store them at
    ``arr[r, f:f + n]`` by one masked store of ``v`` at ``f - k`` (the
    lanes off are not written: no value before ``f`` is touched, and a
    masked-off lane never faults), and return ``n``; else -1 (store
    nothing).  ``arr`` is 2-D C-contiguous float64."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C"
            and arr.dtype == types.float64 and v == VEC and m == VEC):
        raise TypingError(f"_store_run needs a 2-D C-contiguous float64 array, got {arr}")

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.DoubleType(), W)
        iw = ir.IntType(W)
        i64 = ir.IntType(64)
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, ary.shape, 2)
        r = context.cast(builder, args[1], sig.args[1], types.intp)
        f = context.cast(builder, args[2], sig.args[2], types.intp)
        room = context.cast(builder, args[3], sig.args[3], types.intp)
        on = builder.fcmp_ordered("!=", args[5], ir.Constant(vt, [0.0] * W))
        bits = builder.bitcast(on, iw)
        cttz = cgutils.get_or_insert_function(builder.module, ir.FunctionType(iw, [iw, ir.IntType(1)]),
                                              f"llvm.cttz.i{W}")
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(iw, [iw]),
                                               f"llvm.ctpop.i{W}")
        k = builder.call(cttz, [bits, ir.Constant(ir.IntType(1), 0)])
        none = builder.icmp_unsigned("==", bits, ir.Constant(iw, 0))
        k = builder.select(none, ir.Constant(iw, 0), k)   # (no lane: an empty run, n = 0)
        n = builder.call(ctpop, [bits])
        run = builder.lshr(bits, k)                        # the run at bit 0 ...
        one_run = builder.icmp_unsigned("==", builder.and_(run, builder.add(run, ir.Constant(iw, 1))),
                                        ir.Constant(iw, 0))  # ... is 2**n - 1
        n64 = builder.zext(n, i64)
        fits = builder.icmp_signed("<=", builder.add(f, n64), room)
        ok = builder.and_(one_run, fits)
        with builder.if_then(ok):
            at = builder.sub(builder.add(builder.mul(r, shape[1]), f), builder.zext(k, i64))
            ptr = builder.bitcast(builder.gep(ary.data, [at]), vt.as_pointer())
            store = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [vt, vt.as_pointer(), ir.IntType(32),
                                                ir.VectorType(ir.IntType(1), W)]),
                f"llvm.masked.store.v{W}f64.p0v{W}f64")
            builder.call(store, [args[4], ptr, ir.Constant(ir.IntType(32), 8), on])
        return builder.select(ok, n64, ir.Constant(i64, -1))
    return types.int64(arr, r, f, room, v, m), codegen


#: The counters' slots: -1 (an unsure value, never counted), 0 (below),
#: the bins, nb + 1 (above), nb + 2 (NaN, never counted), and nb + 3 and
#: nb + 4, which only a window centred on the NaN slot reaches (it flushes
#: its five slots, counts of 0 there): the counters hold nb + 6 slots.

#: the window's middle slot when there is none (matches no slot)
_NO_SLOT = -10.0


@intrinsic
def _fits(typingctx, d):
    """Every lane of ``d`` (slot - the window's middle) is within 2: the
    vector's slots are the window's (one comparison of ``|d|``).  The
    compiler is told it usually is (``llvm.expect``)."""
    if d != VEC:
        raise TypingError("_fits needs a vector")

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.DoubleType(), W)
        fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt]),
                                              f"llvm.fabs.v{W}f64")
        ok = builder.fcmp_ordered("<=", builder.call(fabs, [args[0]]),
                                  ir.Constant(vt, [2.0] * W))
        allb = builder.icmp_unsigned("==", builder.bitcast(ok, ir.IntType(W)),
                                     ir.Constant(ir.IntType(W), (1 << W) - 1))
        i1 = ir.IntType(1)
        expect = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i1, [i1, i1]),
                                                "llvm.expect.i1")
        return builder.call(expect, [allb, ir.Constant(i1, 1)])
    return types.boolean(VEC), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _moments(d, s1, s2, s3, s4):  # pragma: no cover - compiled
    """The window's lane sums of ``d``, ``d**2``, ``d**3``, ``d**4``."""
    d2 = vmul(d, d)
    return vadd(s1, d), vadd(s2, d2), vadd(s3, vmul(d2, d)), vadd(s4, vmul(d2, d2))


@numba.njit(cache=True, nogil=True, inline="always")
def _centre(s):  # pragma: no cover - compiled
    """The new window's middle slot: the vector's first, but at least 2 (the
    window's lowest slot is 0: an unsure value's -1 must never be counted
    in it), none if the first is unsure."""
    c = lane(s, 0)
    return max(c, 2.0) if c >= 0.0 else _NO_SLOT


# How the kernels count (written out where they loop, see _flush):
#
# A smooth field's eight neighbouring values lie in one or two adjacent
# bins (99.6% of the vectors of the benchmark's temperature field).  A
# window of five adjacent slots (cb - 2 .. cb + 2) is kept in registers as
# four vectors of lane sums, of d, d**2, d**3 and d**4 with d = slot - cb,
# and a count of the vectors: a vector whose slots all lie in the window
# (one comparison of |d| <= 2) adds its d's powers to them -- a
# subtraction, three multiplications and four additions, where counting
# value by value took eight loads and eight increments in memory.  When
# the window moves, the counts of its five slots, per lane, are solved
# exactly from the five moments (_flush) and added to ``sub``; the window
# is centred on the new vector's first slot.  Five slots rather than
# three (three comparison masks added) cost as much per vector and move
# the window a third as often: each move is a branch the CPU mispredicts
# on a field it has not seen (on the stand-in's successive days, 9,190
# moves a pass with three slots, 2,713 with five; 284-307 -> 220 us).  A
# vector that still does not fit (a jump over two bins, values an ulp from
# an edge, which _settle decides by numpy's rule) is counted value by
# value.  Counts are float64 lanes, exact to 2**53; a weight multiplies
# the window's counts when it is flushed.


@numba.njit(cache=True, nogil=True)
def _hist3(a, lo, hi, norm, edges, tol, out, slots, wcum, bufs, fill):  # pragma: no cover
    """Slots are computed row by row, for whole vectors in place, and
    counted as they come (the window above); the rest of each row (fewer
    than W values) is staged in a buffer and taken a chunk at a time, and
    at the end padded with NaN (a slot that is not counted).

    The per-row work is written out here, indexing the array in place: a
    row sliced out of it, or handed to a function, costs numba's atomic
    reference counting (about 45 ns per row).

    The values of the wanted slots (``slots``; ``wcum[s + 1]`` counts the
    wanted slots up to ``s``, so none are wanted when its last entry is 0)
    are copied out as they are counted, for the exact quantiles: only a
    vector whose window holds a wanted slot (known when the window moves)
    is looked at lane by lane, so a smooth field pays for the copy only
    where it crosses the wanted bins (the staged rests of rows by
    :func:`_pick`)."""
    nb = edges.size - 1
    sub = np.zeros((nb + 6) * W)     # slot s (-1 .. nb + 4) at (s + 1) * W: _SLOTS
    idx = np.empty(CHUNK, dtype=np.int32)
    stage = np.empty((1, 1, CHUNK + W))
    nbf = float(nb)
    collect = wcum[wcum.size - 1] > 0
    last_row = max(slots.size - 1, 0)
    room = bufs.shape[1] - 1
    nwant = 0       # wanted slots in the window
    wrow = 0        # the row of the one wanted slot
    wfill = 0       # its fill, kept in a register while the window holds it
    wsv = splat(-10.0)
    lanes = np.empty(2 * W)
    # for each middle slot c of a window: its wanted slots (how many, and
    # the row and slot of the one when there is one), looked up at a move
    win_n = np.zeros(nb + 4, dtype=np.int64)    # middle slots 0 .. nb + 3
    win_row = np.zeros(nb + 4, dtype=np.int64)
    win_slot = np.full(nb + 4, -10.0)
    if collect:
        for c0 in range(nb + 4):
            win_n[c0] = wcum[min(c0 + 3, nb + 3)] - wcum[max(c0 - 2, 0)]
            for t in range(max(c0 - 2, 0), min(c0 + 3, nb + 3)):
                if wcum[t + 1] > wcum[t]:
                    win_row[c0] = wcum[t]
                    win_slot[c0] = float(t)
    ww = 1.0
    zero = splat(0.0)
    cb = _NO_SLOT
    cbv = splat(cb)
    s1 = s2 = s3 = s4 = zero
    nv = 0.0
    filled = 0
    n0, n1, ncols = a.shape
    m = ncols - ncols % W
    for i in range(n0):
        for j in range(n1):
            if not collect:
                for q in range(0, m, W):
                    s = _slots(vload3(a, i, j, q), lo, norm, nbf, tol)
                    d = vsub(s, cbv)
                    if not _fits(d):
                        _flush(sub, cb, nv, s1, s2, s3, s4, ww)
                        s1 = s2 = s3 = s4 = zero
                        nv = 0.0
                        cb = _centre(s)
                        cbv = splat(cb)
                        d = vsub(s, cbv)
                        if not _fits(d):
                            vstore_i32(idx, 0, s)
                            if not vall(vge(s, zero)):
                                _settle(a, i, j, q, W, lo, hi, norm, edges, idx, 0)
                            for l in range(W):
                                sub[np.uint64(idx[0 + l] + 1) * np.uint64(W) + np.uint64(l)] += ww
                            continue
                    s1, s2, s3, s4 = _moments(d, s1, s2, s3, s4)
                    nv += 1.0
            else:
                if nwant == 1:
                    wfill = fill[wrow]
                for q in range(0, m, W):
                    v = vload3(a, i, j, q)
                    s = _slots(v, lo, norm, nbf, tol)
                    d = vsub(s, cbv)
                    if not _fits(d):
                        if nwant == 1:
                            fill[wrow] = wfill
                        _flush(sub, cb, nv, s1, s2, s3, s4, ww)
                        s1 = s2 = s3 = s4 = zero
                        nv = 0.0
                        cb = _centre(s)
                        cbv = splat(cb)
                        d = vsub(s, cbv)
                        # the wanted slots in the window: none, one (its
                        # row and a vector of it), or more
                        nwant = 0
                        if cb >= 0.0:
                            c0 = int(cb)
                            nwant = win_n[c0]
                            wrow = win_row[c0]
                            wsv = splat(win_slot[c0])
                        if not _fits(d):
                            vstore_i32(idx, 0, s)
                            if not vall(vge(s, zero)):
                                _settle(a, i, j, q, W, lo, hi, norm, edges, idx, 0)
                            for l in range(W):
                                b = idx[l]
                                sub[np.uint64(b + 1) * np.uint64(W) + np.uint64(l)] += ww
                                r = np.uint64(min(wcum[b], last_row))
                                bufs[r, np.uint64(min(fill[r], room))] = np.float64(a[i, j, q + l])
                                fill[r] += wcum[b + 1] - wcum[b]
                            if nwant == 1:
                                wfill = fill[wrow]
                            continue
                        if nwant == 1:
                            wfill = fill[wrow]
                    if nwant == 1:
                        # the values of the slot, no branch on whether the
                        # vector holds any (a branch the CPU mispredicted
                        # at one vector in ten here): a run of lanes (or
                        # none) by one masked store, the place kept in a
                        # register; lanes in no run one by one
                        hit = veq(s, wsv)
                        n = _store_run(bufs, wrow, wfill, room, v, hit)
                        if n >= 0:
                            wfill += n
                        else:
                            vstore(lanes, 0, v)
                            vstore(lanes, W, hit)
                            ur = np.uint64(wrow)
                            for l in range(W):
                                bufs[ur, np.uint64(min(wfill, room))] = lanes[l]
                                wfill += np.int64(lanes[W + l])
                    elif nwant > 1:
                        vstore_i32(idx, 0, s)
                        for l in range(W):
                            b = idx[l]
                            r = np.uint64(min(wcum[b], last_row))
                            bufs[r, np.uint64(min(fill[r], room))] = np.float64(a[i, j, q + l])
                            fill[r] += wcum[b + 1] - wcum[b]
                    s1, s2, s3, s4 = _moments(d, s1, s2, s3, s4)
                    nv += 1.0
                if nwant == 1:
                    fill[wrow] = wfill
            for k in range(m, ncols):
                stage[0, 0, filled] = np.float64(a[i, j, k])
                filled += 1
            last = i == n0 - 1 and j == n1 - 1
            while filled >= CHUNK or (filled > 0 and last):
                c = min(filled, CHUNK)
                pad = c + (-c) % W   # NaN: a slot that is not counted
                for k in range(c, pad):
                    stage[0, 0, k] = np.nan
                least = splat(0.0)
                for q in range(0, pad, W):
                    s = _slots(vload3(stage, 0, 0, q), lo, norm, nbf, tol)
                    if collect:
                        vstore_i32(idx, q, s)
                        least = vmin(s, least)
                    d = vsub(s, cbv)
                    if not _fits(d):
                        _flush(sub, cb, nv, s1, s2, s3, s4, ww)
                        s1 = s2 = s3 = s4 = zero
                        nv = 0.0
                        cb = _centre(s)
                        cbv = splat(cb)
                        d = vsub(s, cbv)
                        if not _fits(d):
                            vstore_i32(idx, q, s)
                            if not vall(vge(s, zero)):
                                _settle(stage, 0, 0, q, W, lo, hi, norm, edges, idx, q)
                            for l in range(W):
                                sub[np.uint64(idx[q + l] + 1) * np.uint64(W) + np.uint64(l)] += ww
                            continue
                    s1, s2, s3, s4 = _moments(d, s1, s2, s3, s4)
                    nv += 1.0
                if collect:
                    if hmin(least) < 0.0:
                        _settle(stage, 0, 0, 0, pad, lo, hi, norm, edges, idx, 0)
                    _pick(stage, 0, 0, 0, pad, idx, 0, slots, bufs, fill, 0, nb + 1)
                for k in range(c, filled):
                    stage[0, 0, k - c] = stage[0, 0, k]
                filled -= c
    _flush(sub, cb, nv, s1, s2, s3, s4, ww)
    for b in range(nb + 2):   # slot nb + 2 holds the NaNs: not counted
        t = 0.0
        for l in range(W):
            t += sub[(b + 1) * W + l]
        out[b] = t


@numba.njit(cache=True, nogil=True)
def _whist_rows(a, w, lo, hi, norm, edges, tol, out):  # pragma: no cover - compiled
    """Weighted counts of ``a`` (4-D, rows along the last axis) whose rows
    have one weight each (``w[i, j, k, 0]``: a cos(lat), a dp, a broadcast
    1.0): each row is counted as the unweighted kernel counts (the window
    above), its window's counts multiplied by the row's weight when it is
    flushed (at a move and at the row's end), lane by lane; the lanes are
    added in a fixed order at the end.  Where a row counted in integers
    took one rounding per slot and row plus a scan of the slots it
    touched, this takes one per window move and lane, and no scan."""
    nb = edges.size - 1
    nbf = float(nb)
    sub = np.zeros((nb + 6) * W)     # slot s (-1 .. nb + 4) at (s + 1) * W: _SLOTS
    n0, n1, n2, n3 = a.shape
    m = n3 - n3 % W
    idx = np.empty(W, dtype=np.int32)
    zero = splat(0.0)
    cb = _NO_SLOT
    cbv = splat(cb)
    s1 = s2 = s3 = s4 = zero
    nv = 0.0
    for i in range(n0):
        a3 = a[i]   # (a slice per i: numba's reference counting once per i)
        for j in range(n1):
            for k in range(n2):
                ww = np.float64(w[i, j, k, 0])
                for q in range(0, m, W):
                    s = _slots(vload3(a3, j, k, q), lo, norm, nbf, tol)
                    d = vsub(s, cbv)
                    if not _fits(d):
                        _flush(sub, cb, nv, s1, s2, s3, s4, ww)
                        s1 = s2 = s3 = s4 = zero
                        nv = 0.0
                        cb = _centre(s)
                        cbv = splat(cb)
                        d = vsub(s, cbv)
                        if not _fits(d):
                            vstore_i32(idx, 0, s)
                            if not vall(vge(s, zero)):
                                _settle(a3, j, k, q, W, lo, hi, norm, edges, idx, 0)
                            for l in range(W):
                                sub[np.uint64(idx[0 + l] + 1) * np.uint64(W) + np.uint64(l)] += ww
                            continue
                    s1, s2, s3, s4 = _moments(d, s1, s2, s3, s4)
                    nv += 1.0
                _flush(sub, cb, nv, s1, s2, s3, s4, ww)
                s1 = s2 = s3 = s4 = zero
                nv = 0.0
                for q in range(m, n3):
                    b = _exact_slot(np.float64(a3[j, k, q]), lo, hi, norm, edges)
                    sub[(b + 1) * W] += ww
    for b in range(nb + 2):   # slot nb + 2 holds the NaNs: not counted
        t = 0.0
        for l in range(W):
            t += sub[(b + 1) * W + l]
        out[b] += t


def weighted_histogram(view: np.ndarray, weights: np.ndarray, lo: float, hi: float,
                       nbins: int, out: np.ndarray | None = None) -> np.ndarray:
    """Weighted counts of ``view`` (``numpy.histogram(x, weights=w)``'s bins
    between ``[below]`` and ``[above]``, NaN skipped, -Inf below, +Inf
    above; ``out`` zeroed first).  Rows with one weight (the weights'
    fastest axis in the field's memory order has stride 0 or length 1)
    take :func:`_whist_rows`; others kernels.weighted's per-value
    kernel."""
    from .weighted import _as4, _memory_order
    from .weighted import weighted_histogram as per_value
    weights = np.broadcast_to(weights, view.shape)
    order = _memory_order(view)
    a, w = _as4(np.transpose(view, order), np.transpose(weights, order))
    if view.size == 0 or not (w.strides[-1] == 0 or w.shape[-1] == 1):
        return per_value(view, weights, lo, hi, nbins, out)
    if out is None:
        out = np.zeros(nbins + 2)
    out[:] = 0.0
    lo, hi = float(lo), float(hi)
    edges, norm, tol = _bins(lo, hi, int(nbins))
    _whist_rows(a, w, lo, hi, norm, edges, tol, out)
    return out


@numba.njit(cache=True, nogil=True)
def _slots_of(x, lo, hi, norm, edges, tol, idx, counts):  # pragma: no cover - compiled
    """Each value's slot into ``idx`` and the slots' counts into ``counts``
    (``x`` 1-D, contiguous): ``_slots`` eight at a time, unsure ones by the
    exact rule, counted into interleaved copies of the counters as
    :func:`_hist3` counts (a smooth field's runs of one slot would
    otherwise wait on one counter)."""
    nb = edges.size - 1
    nbf = float(nb)
    n = x.size
    m = n - n % W
    for q in range(0, m, W):
        vstore_i32(idx, q, _slots(vload(x, q), lo, norm, nbf, tol))
    for q in range(m, n):
        idx[q] = -1
    for q in range(n):
        if idx[q] < 0:
            idx[q] = _exact_slot(np.float64(x[q]), lo, hi, norm, edges)
    sub = np.zeros((nb + 3) * COPIES, dtype=np.int64)
    _tally(idx, m, sub)
    for q in range(m, n):
        sub[idx[q] * COPIES] += 1
    for b in range(nb + 3):
        t = np.int64(0)
        for l in range(COPIES):
            t += sub[b * COPIES + l]
        counts[b] = t


def slots_of(values: np.ndarray, lo: float, hi: float, nbins: int, idx: np.ndarray,
             counts: np.ndarray) -> None:
    """The slot of each of ``values`` (contiguous; 0: below ``lo``, ``b +
    1``: bin ``b``, ``nbins + 1``: above ``hi``, ``nbins + 2``: NaN) into
    ``idx`` (int32, ``values.size``), as :func:`histogram` bins them, and
    each slot's count into ``counts`` (``nbins + 3`` int64).  For the exact
    quantiles: the parts of a bin its values fall in."""
    edges, norm, tol = _bins(float(lo), float(hi), int(nbins))
    _slots_of(values, float(lo), float(hi), norm, edges, tol, idx, counts)


@functools.lru_cache(maxsize=64)
def _bins(lo: float, hi: float, nbins: int):
    """``(edges, norm, tol)`` for a range and a bin count, computed once (an
    analysis asks for the same bins at every step; ``linspace`` alone costs
    a few microseconds).  ``tol`` is how far the edges' own ``t`` lie from
    the integers (see the module's docstring), doubled to cover the
    rounding of that difference; at 0.5 or more (a degenerate range) no
    value is certain and all take the exact rule."""
    edges = np.linspace(lo, hi, nbins + 1)
    edges.flags.writeable = False
    norm = nbins / (hi - lo)
    with np.errstate(invalid="ignore", over="ignore"):
        dev = np.abs((edges - lo) * norm - np.arange(nbins + 1)).max()
    tol = float(min(2.0 * dev, 0.5)) if np.isfinite(dev) else 0.5
    return edges, norm, tol


#: ``slots``, ``wcum``, ``bufs`` and ``fill`` when no values are collected
_NO_SLOTS = np.zeros(0, dtype=np.int64)
_NO_WCUM = np.zeros(1, dtype=np.int64)
_NO_BUFS = np.empty((1, 2))
_NO_FILL = np.zeros(1, dtype=np.int64)


class Collector:
    """Where :func:`histogram` copies the values of some slots (0: below
    ``lo``, ``b + 1``: bin ``b``, ``nbins + 1``: above ``hi``) while it
    counts them: row ``r`` of ``bufs`` receives the values of ``slots[r]``,
    at most ``room`` of them (its last column is the kernel's scratch);
    ``fill[r]`` counts every value of the slot, so ``fill[r] > room`` says
    the row ran out of room.  The buffers are kept between calls and grow
    only when asked for more."""

    def __init__(self, nbins: int) -> None:
        self.nbins = nbins
        self.wcum = np.zeros(nbins + 4, dtype=np.int64)      # [s + 1]: wanted slots <= s
        self.bufs = np.empty((0, 1))
        self.fill = np.zeros(0, dtype=np.int64)
        self.slots: list = []
        self.slot_array = np.zeros(0, dtype=np.int64)
        self.room = 0

    def arm(self, slots, room: int) -> None:
        """Collect ``slots`` (sorted, distinct), up to ``room`` values each
        (the same slots as last time cost no new arrays: an analysis arms
        one at every output step)."""
        slots = [int(s) for s in slots]
        if slots != self.slots:
            self.slots = slots
            self.slot_array = np.array(slots, dtype=np.int64)
            wanted = np.zeros(self.nbins + 3, dtype=np.int64)
            wanted[self.slot_array] = 1
            self.wcum[1:] = np.cumsum(wanted)
            self.fill = np.zeros(max(len(slots), 1), dtype=np.int64)
        else:
            self.fill[:] = 0
        if self.bufs.shape[0] < len(slots) or self.bufs.shape[1] < room + 1:
            self.bufs = np.empty((max(len(slots), self.bufs.shape[0]),
                                  max(room + 1, self.bufs.shape[1])))
        self.room = self.bufs.shape[1] - 1

    def values(self, slot: int):
        """The values of ``slot`` found (unordered), or None if it was not
        collected or ran out of room."""
        if slot not in self.slots:
            return None
        r = self.slots.index(slot)
        n = int(self.fill[r])
        return self.bufs[r, :n] if n <= self.room else None


def histogram(view: np.ndarray, lo: float, hi: float, nbins: int,
              out: np.ndarray | None = None, collect: Collector | None = None) -> np.ndarray:
    """Counts as float64: ``[below, bin 0, ..., bin nbins-1, above]``.

    ``out`` (length ``nbins + 2``), if given, is overwritten; counts stay
    exact in float64 up to 2**53.  With ``collect`` (armed), the values of
    its slots are copied into it in the same pass (``collect.fill`` is
    added to, so a caller resets it by arming)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"histogram range [{lo}, {hi}] must be finite and increasing")
    if nbins < 1:
        raise ValueError(f"histogram needs at least one bin, got {nbins}")
    if out is None:
        out = np.empty(nbins + 2)
    elif out.dtype != np.float64 or out.shape != (nbins + 2,):
        raise ValueError(f"out must be a float64 vector of length {nbins + 2}")
    if view.ndim == 4:  # slice by slice; counts add exactly
        from .slices import along, slowest_axis
        out[:] = 0.0
        part = np.empty(nbins + 2)
        for s in along(view, slowest_axis(view)):
            out += histogram(s, lo, hi, nbins, part, collect)
        return out
    lo, hi = float(lo), float(hi)
    edges, norm, tol = _bins(lo, hi, int(nbins))
    a = as_c_order_3d(view)
    if a.flags.c_contiguous:
        a = a.reshape(1, 1, a.size)   # one long row
    if collect is None or not collect.slots:
        _hist3(a, lo, hi, norm, edges, tol, out, _NO_SLOTS, _NO_WCUM, _NO_BUFS, _NO_FILL)
    else:
        _hist3(a, lo, hi, norm, edges, tol, out, collect.slot_array, collect.wcum,
               collect.bufs, collect.fill)
    return out


def quantiles_from_counts(counts: np.ndarray, below: float, above: float,
                          edges: np.ndarray, qs) -> np.ndarray:
    """Quantiles from binned counts, linear within the bin that holds them.

    The error is at most one bin width.  A quantile that falls among the
    out-of-range values, or of an empty histogram, is NaN.
    """
    total = below + counts.sum() + above
    if total == 0:
        return np.full(len(qs), np.nan)
    cum = np.empty(counts.size + 1)
    cum[0] = 0.0
    np.cumsum(counts, out=cum[1:])
    cum += below
    # every quantile at once (a Python loop of scalar searchsorted calls
    # cost some 15 us an output step); the same operations per quantile
    target = np.asarray(qs, dtype=np.float64) * total
    k = np.clip(np.searchsorted(cum, target, side="left"), 1, counts.size)
    c = counts[k - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(c == 0, 0.5, (target - cum[k - 1]) / c)
    out = edges[k - 1] + frac * (edges[k] - edges[k - 1])
    out[(target < below) | (target > cum[-1])] = np.nan
    return out
