"""One-pass statistics of a slab: count, sum, mean, M2, min, max, NaN and Inf counts.

The slab is read from memory once.  It is walked in blocks of at most
``BLOCK`` values (a piece of a long row, or a group of short rows), and
blocks are merged with Chan et al.'s parallel update.  Most blocks are read
once: their sums, extremes and squared deviations about the running mean
of the blocks before them are summed in one pass (:func:`_onepass_group`;
why M2 stays accurate is said in :func:`_moments_rows`).  The first block, and
any block larger than what came before it, is summed, then its squared
deviations from its own mean are summed while it is still in cache
(:func:`_fast_group`, a two-pass within the block).  Both ask for the
memory some kilobytes ahead (:data:`PREFETCH`, :data:`PREFETCH_ONEPASS`).

Speed without giving up the bits.  Every value is widened to float64
before any arithmetic (float32 data too: their sums are float64 sums), and
the block loops are written with explicit vectors of eight float64 lanes
(kernels/simd.py): LLVM keeps them in registers and maps each operation to
one AVX-512 instruction or two AVX2 ones, but may not reorder anything, so
every sum is added in the order the source gives, whatever the CPU's vector
width, and a kernel compiled fresh gives the same bits as one loaded from
numba's cache (issue 10, item 7).  Nothing is compiled with fast-math.  The
results were checked bit for bit equal between AVX-512, AVX2 and SSE2
builds (``NUMBA_CPU_NAME``; tests/test_numba_cache.py).  A NaN or an Inf
makes a block's sum non-finite, which is how a block that must be redone
with NaN and Inf masked out is found, at no cost to clean blocks; the
masked pass selects instead of branching (a land mask or scattered NaN
cost no mispredicted branches), adds in the same order (a clean block
gives the same bits either way), and after a masked block the next one
starts with it.

Accuracy.  Block means are taken of ``x - shift``, where ``shift`` is the
slab's first valid value, so the merge works with numbers of the size of
the spread, not of the mean; squared deviations are summed about a float
centre (the running mean, or the block's own mean) and corrected with
``S2 - S1**2/n``; and the slab's mean is returned as a double-double for
the cross-rank merge.  M2 keeps a relative error of a few
``(BLOCK + 8) * 2**-53`` whatever the data (the argument is in
:func:`_moments_rows`); a field at 1e12 times its spread keeps its variance to
~1e-15: the accuracy of numpy's two-pass ``var`` at the memory traffic of
one pass.  Within a
block, a value is added to a neighbour, to its lane, and the lanes in a
tree of three levels; the few values at the end of each row (fewer than
eight) go to one scalar sum.  So a value passes through at most
``BLOCK + 5`` roundings on its way into its block's sum (about
``BLOCK / 16`` in a contiguous slab), and the blocks
are added with a compensated sum: the sum of ``n`` finite values is within
``(BLOCK + 8) * 2**-53 * sum(|x|)``, about ``2.3e-13 * sum(|x|)``, of the
exact sum, whatever ``n``.  A float32 sum added in float32 is ~1e-7 off on
a thousand values and ~1e-4 on ten million (tests/test_kernels.py checks
the bound on adversarial data, and that such a kernel fails it).  Integer
slabs also get their exact sum (two int64 halves per value).

Non-finite values are skipped and counted: NaNs in ``nan_count``, +-Inf in
``inf_count``.  The statistics are those of the finite values, so one
blown-up cell shows up as a count instead of turning every summary into
Inf or NaN.  Min and max follow the total order -0.0 < +0.0.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from .simd import (W, hmax, hmin, hsum, prefetch3, splat, vadd, vfinite_or, visfinite,
                   visnan, vload3, vmax, vmin, vmul, vsub)

#: Values per block.  A two-pass block is read twice (sums, then squared
#: deviations), the second time from cache: 2048 float64 values (16 KB; two
#: rows of a 1000-wide halo field) stay in L1 for it, 8192 (64 KB) went to
#: L2.  (Chosen for the two-pass kernel, before the one-pass block.)
#: Measured on a 1000x1000 Fortran-order halo view (issue 12, one process,
#: median of 30 interleaved calls, load ~3): 2048 221-225 us after a 64 MB
#: sweep (259-265 with 8192; 1024: 226-229, 512: 276-279), 206 us in cache
#: (215-227); in the Fortran heat model at 2 ranks, the due step's local
#: pass 334-365 us against 382-409 (4 interleaved runs, load 2-6); a long
#: contiguous row, a 8x180x360 field: 2048 as fast or faster; 7-value
#: float32 rows within 3%.
BLOCK = 2048
#: Bytes ahead of the first pass's reads that it asks the CPU to prefetch.
#: The hardware prefetcher alone left memory idle part of the time: with
#: this hint a float64 slab beyond the caches was read at about 30 GB/s
#: instead of 18 (AMD EPYC, one thread; 4 KiB gave 25 GB/s, 16 KiB 28).
#: With 2048-value blocks 16 KiB is ahead (issue 12; one process, median of
#: 15 interleaved calls after a 64 MB sweep, two runs, load ~3): 2e6
#: contiguous float64 320-324 us (8 KiB: 404-406, 24 KiB: 347-374), an
#: 8x180x360 field 100-107 (117-123), a 1000x1000 halo view 215-222
#: (221-229), 7-value float32 rows the same.
PREFETCH = 16384
#: The same for the one-pass block (:func:`_onepass_group`), whose loop
#: does more work per byte than the two-pass block's first pass.
PREFETCH_ONEPASS = 16384
#: A one-pass block is summed about the shift (:func:`_shifted_group`, four
#: vector operations per 16 values fewer) when its ``n * (mean_b -
#: shift)**2`` is at most this many times its share of M2: then its ``S2``
#: is at most 8 times that share, the ratio the running-mean centre
#: guarantees, and the accuracy argument of :func:`_moments_rows` holds.
SHIFT_RATIO = 7.0

#: Layout of the result vector returned by :func:`moments`.
FIELDS = ("count", "sum", "mean", "m2", "min", "max", "nan_count", "inf_count",
          "mean_lo", "isum_hi", "isum_lo")
(COUNT, SUM, MEAN, M2, MIN, MAX, NAN_COUNT, INF_COUNT,
 MEAN_LO, ISUM_HI, ISUM_LO) = range(len(FIELDS))


@numba.njit(cache=True, nogil=True)
def _has(bits, i, j0, j1, start, stop, pattern):  # pragma: no cover - compiled
    """Whether ``pattern`` occurs in ``bits[i, j0:j1, start:stop]``."""
    for j in range(j0, j1):
        for k in range(start, stop):
            if bits[i, j, k] == pattern:
                return True
    return False


@numba.njit(cache=True, nogil=True)
def _zero_extremes(lo, hi, neg, pos):  # pragma: no cover - compiled
    """A zero minimum is -0.0 if the block holds a -0.0 (``neg``), a zero
    maximum +0.0 if it holds a +0.0 (``pos``): min and max in the total
    order -0.0 < +0.0, so a zero extreme's sign depends neither on which
    lane saw it first nor on how the slab is cut into blocks.  The caller
    scans the (cached) block for ``neg`` and ``pos`` only when an extreme
    is zero."""
    if lo == 0.0:
        lo = -0.0 if neg else 0.0
    if hi == 0.0:
        hi = 0.0 if pos else -0.0
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _int_sum(a, i, j0, j1, start, stop):  # pragma: no cover - compiled
    """The exact sum of the integers ``a[i, j0:j1, start:stop]`` as two int64
    halves: the high 32 bits of each value (arithmetic shift) and the low
    32 bits (unsigned), so neither half can overflow for blocks of up to
    2**31 values, whatever the int64 values are."""
    ih = np.int64(0)
    il = np.int64(0)
    for j in range(j0, j1):
        for k in range(start, stop):
            v = np.int64(a[i, j, k])
            ih += v >> 32
            il += v & 0xFFFFFFFF
    return ih, il


@numba.njit(cache=True, nogil=True)
def _centre(shift, mean):  # pragma: no cover - compiled
    """``shift + mean`` rounded: a float centre near the block mean.

    Squared deviations are summed about it and corrected with
    ``S2 - S1**2 / n`` (:func:`_m2`), which is exact to rounding because
    ``S1`` is small.  (Under fast-math, ``(x - shift) - mean`` was rewritten
    as ``x - (shift + mean)`` anyway, without the correction: at 1e12 + O(1)
    M2 came out 3e-9 too large.)"""
    return shift + mean


@numba.njit(cache=True, nogil=True)
def _m2(s1, s2, n):  # pragma: no cover - compiled
    """M2 from sums about a centre near the mean; never negative."""
    return max(s2 - s1 * (s1 / n), 0.0)


@numba.njit(cache=True, nogil=True)
def _first_finite(a, n2):  # pragma: no cover - compiled
    n0, n1, _ = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = np.float64(a[i, j, k])
                if abs(x) < np.inf:
                    return x
    return 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _pass1_pair(x0, x1, sh, vlo, vhi, vs, vy):  # pragma: no cover - compiled
    """A clean block's first pass over two vectors, the same in every block
    kind: extremes, the sum of ``x`` (lane ``l`` adds ``x0[l] + x1[l]``) and
    the sum of ``x - shift``; also returns the two ``x - shift`` vectors
    (:func:`_shifted_group` sums their squares)."""
    y0 = vsub(x0, sh)
    y1 = vsub(x1, sh)
    return (vmin(vmin(x0, x1), vlo), vmax(vmax(x0, x1), vhi), vadd(vs, vadd(x0, x1)),
            vadd(vy, vadd(y0, y1)), y0, y1)


@numba.njit(cache=True, nogil=True, inline="always")
def _pass1_one(x0, sh, vlo, vhi, vs, vy):  # pragma: no cover - compiled
    """:func:`_pass1_pair` for the last whole vector of a row."""
    y0 = vsub(x0, sh)
    return vmin(x0, vlo), vmax(x0, vhi), vadd(vs, x0), vadd(vy, y0), y0


@numba.njit(cache=True, nogil=True, inline="always")
def _pass1_value(x, shift, ts, ty, lo, hi):  # pragma: no cover - compiled
    """:func:`_pass1_pair` for one of the few values left at a row's end
    (scalar sums, added in element order)."""
    y = x - shift
    return ts + x, ty + y, (x if x < lo else lo), (x if x > hi else hi), y


@numba.njit(cache=True, nogil=True, inline="always")
def _pass1_end(a, bits, i, j0, j1, start, stop, signbit, is_float,
               vs, ts, vy, ty, vlo, lo, vhi, hi):  # pragma: no cover - compiled
    """The end of a clean block's first pass, the same in every block kind
    (:func:`_fast_group`, :func:`_onepass_group`, :func:`_shifted_group`):
    the lanes' sums of ``x`` and ``x - shift`` in simd's fixed tree, then the
    scalar sums; the extremes (signed zeros resolved from the bits); an
    integer slab's exact sum.  ``ok`` is False when a sum is not finite (a
    NaN or an Inf in the block: the caller redoes it masked).  Returns
    ``(ok, sum, sum(x - shift), min, max, isum_hi, isum_lo)``."""
    bs = hsum(vs) + ts
    by = hsum(vy) + ty
    lo = min(hmin(vlo), lo)
    hi = max(hmax(vhi), hi)
    ih = np.int64(0)
    il = np.int64(0)
    if is_float:
        if not (abs(bs) < np.inf and abs(by) < np.inf):
            return False, bs, by, lo, hi, ih, il
        if lo == 0.0 or hi == 0.0:
            lo, hi = _zero_extremes(lo, hi, _has(bits, i, j0, j1, start, stop, signbit),
                                    _has(bits, i, j0, j1, start, stop, 0))
    else:
        ih, il = _int_sum(a, i, j0, j1, start, stop)
        bs = 0.0
    return True, bs, by, lo, hi, ih, il


@numba.njit(cache=True, nogil=True)
def _fast_group(a, bits, i, j0, j1, start, stop, shift, signbit,
                is_float):  # pragma: no cover - compiled
    """Statistics of the block ``a[i, j0:j1, start:stop]`` (a group of rows
    of at most BLOCK values), by two passes over it while it is in cache:
    sums and extremes, then squared deviations about the block's mean.

    Returns ``(ok, n, sum, sum(x - shift), min, max, M2, isum_hi, isum_lo)``;
    ``ok`` is False if the block holds a NaN or an Inf, and the caller
    redoes it with :func:`_masked_group`.

    Every value is widened to float64 first (numba's ``float(x)`` of a
    float32 stays a float32, and sums would round in float32).  Each row is
    read two vectors of W lanes at a time (kernels/simd.py): lane ``l``
    adds ``x[k + l] + x[k + W + l]`` to its sums, then a last whole vector
    lane by lane; the few values left at the end of each row are added, in
    element order, to scalar sums; at the end the lanes are added in
    simd's fixed tree, then the scalar sums.  Squares are rounded, then
    added (no FMA).  Every addition is in the source, so the bits are those
    of the source on any CPU, compiled or cached.  A NaN or an Inf makes a
    sum non-finite (they absorb every later addition): that is the test;
    min and max are only valid when the sums are finite.  Rows are indexed
    in place, never sliced (see simd.vload3)."""
    sh = splat(shift)
    vs = splat(0.0)
    vy = splat(0.0)
    vlo = splat(np.inf)
    vhi = splat(-np.inf)
    ts = 0.0
    ty = 0.0
    lo = np.inf
    hi = -np.inf
    for j in range(j0, j1):
        k = start
        while k + 2 * W <= stop:
            prefetch3(a, i, j, k, PREFETCH)
            prefetch3(a, i, j, k + W, PREFETCH)
            x0 = vload3(a, i, j, k)
            x1 = vload3(a, i, j, k + W)
            vlo, vhi, vs, vy, y0, y1 = _pass1_pair(x0, x1, sh, vlo, vhi, vs, vy)
            k += 2 * W
        if k + W <= stop:
            x0 = vload3(a, i, j, k)
            vlo, vhi, vs, vy, y0 = _pass1_one(x0, sh, vlo, vhi, vs, vy)
            k += W
        for q in range(k, stop):
            x = np.float64(a[i, j, q])
            ts, ty, lo, hi, y = _pass1_value(x, shift, ts, ty, lo, hi)
    ok, bs, by, lo, hi, ih, il = _pass1_end(a, bits, i, j0, j1, start, stop, signbit,
                                            is_float, vs, ts, vy, ty, vlo, lo, vhi, hi)
    if not ok:
        return False, 0.0, 0.0, 0.0, lo, hi, 0.0, ih, il
    bn = float((j1 - j0) * (stop - start))
    c = _centre(shift, by / bn)
    cc = splat(c)
    v1 = splat(0.0)
    v2 = splat(0.0)
    t1 = 0.0
    t2 = 0.0
    for j in range(j0, j1):
        k = start
        while k + 2 * W <= stop:
            d0 = vsub(vload3(a, i, j, k), cc)
            d1 = vsub(vload3(a, i, j, k + W), cc)
            v1 = vadd(v1, vadd(d0, d1))
            v2 = vadd(v2, vadd(vmul(d0, d0), vmul(d1, d1)))
            k += 2 * W
        if k + W <= stop:
            d0 = vsub(vload3(a, i, j, k), cc)
            v1 = vadd(v1, d0)
            v2 = vadd(v2, vmul(d0, d0))
            k += W
        for q in range(k, stop):
            d = np.float64(a[i, j, q]) - c
            t1 += d
            t2 += d * d
    s1 = hsum(v1) + t1
    s2 = hsum(v2) + t2
    return True, bn, bs, by, lo, hi, _m2(s1, s2, bn), ih, il


@numba.njit(cache=True, nogil=True)
def _onepass_group(a, bits, i, j0, j1, start, stop, shift, signbit, is_float,
                   c):  # pragma: no cover - compiled
    """:func:`_fast_group` in one pass: the same sums and extremes, by the
    same additions in the same order (so count, sum, mean, min, max and the
    integer sum keep their bits), and in the same loop the sums of
    ``d = x - c`` and ``d * d`` about a centre ``c`` given by the caller (the
    running mean of the blocks merged before this one), M2 being
    ``S2 - S1**2 / n`` (:func:`_m2`).  Reading the block once halves the
    kernel's work when the field is in cache, as it is right after the
    model wrote it (issue 12).  Why this keeps M2 accurate, and when the
    caller must not use it, is said in :func:`_moments_rows`.

    Returns ``(status, n, sum, sum(x - shift), min, max, M2, isum_hi,
    isum_lo)``: status 0 if the result stands; 1 if the block holds a NaN
    or an Inf (redo it with :func:`_masked_group`); 2 if ``d * d``
    overflowed (``|x - c|`` beyond ~1.3e154 where ``x`` did not; redo it
    with :func:`_fast_group`, whose centre is the block's own mean)."""
    sh = splat(shift)
    cc = splat(c)
    vs = splat(0.0)
    vy = splat(0.0)
    vlo = splat(np.inf)
    vhi = splat(-np.inf)
    v1 = splat(0.0)
    v2 = splat(0.0)
    ts = 0.0
    ty = 0.0
    t1 = 0.0
    t2 = 0.0
    lo = np.inf
    hi = -np.inf
    for j in range(j0, j1):
        k = start
        while k + 2 * W <= stop:
            prefetch3(a, i, j, k, PREFETCH_ONEPASS)
            prefetch3(a, i, j, k + W, PREFETCH_ONEPASS)
            x0 = vload3(a, i, j, k)
            x1 = vload3(a, i, j, k + W)
            vlo, vhi, vs, vy, y0, y1 = _pass1_pair(x0, x1, sh, vlo, vhi, vs, vy)
            d0 = vsub(x0, cc)
            d1 = vsub(x1, cc)
            v1 = vadd(v1, vadd(d0, d1))
            v2 = vadd(v2, vadd(vmul(d0, d0), vmul(d1, d1)))
            k += 2 * W
        if k + W <= stop:
            x0 = vload3(a, i, j, k)
            vlo, vhi, vs, vy, y0 = _pass1_one(x0, sh, vlo, vhi, vs, vy)
            d0 = vsub(x0, cc)
            v1 = vadd(v1, d0)
            v2 = vadd(v2, vmul(d0, d0))
            k += W
        for q in range(k, stop):
            x = np.float64(a[i, j, q])
            ts, ty, lo, hi, y = _pass1_value(x, shift, ts, ty, lo, hi)
            d = x - c
            t1 += d
            t2 += d * d
    ok, bs, by, lo, hi, ih, il = _pass1_end(a, bits, i, j0, j1, start, stop, signbit,
                                            is_float, vs, ts, vy, ty, vlo, lo, vhi, hi)
    if not ok:
        return 1, 0.0, 0.0, 0.0, lo, hi, 0.0, ih, il
    bn = float((j1 - j0) * (stop - start))
    s1 = hsum(v1) + t1
    s2 = hsum(v2) + t2
    m2 = _m2(s1, s2, bn)
    if not (abs(s1) < np.inf and s2 < np.inf):
        return 2, 0.0, 0.0, 0.0, lo, hi, 0.0, ih, il
    return 0, bn, bs, by, lo, hi, m2, ih, il


@numba.njit(cache=True, nogil=True)
def _shifted_group(a, bits, i, j0, j1, start, stop, shift, signbit,
                   is_float):  # pragma: no cover - compiled
    """:func:`_onepass_group` about the centre ``shift``: ``d = x - shift`` is
    the value the sum of ``x - shift`` already computes, and that sum is
    ``S1``, so the block costs four vector operations per 16 values fewer
    (14 instead of 18: the loop is bound by its operations when the field
    is in cache).  Accurate only while the shift is near the block's values
    (``S2 = M2_b + n * (mean_b - shift)**2``): the caller accepts the result
    only when ``n * (mean_b - shift)**2 <= SHIFT_RATIO * (M2_b + dM2)``
    (:func:`_moments_rows`).  Returns what :func:`_onepass_group` returns."""
    sh = splat(shift)
    vs = splat(0.0)
    vy = splat(0.0)
    vlo = splat(np.inf)
    vhi = splat(-np.inf)
    v2 = splat(0.0)
    ts = 0.0
    ty = 0.0
    t2 = 0.0
    lo = np.inf
    hi = -np.inf
    for j in range(j0, j1):
        k = start
        while k + 2 * W <= stop:
            prefetch3(a, i, j, k, PREFETCH_ONEPASS)
            prefetch3(a, i, j, k + W, PREFETCH_ONEPASS)
            x0 = vload3(a, i, j, k)
            x1 = vload3(a, i, j, k + W)
            vlo, vhi, vs, vy, y0, y1 = _pass1_pair(x0, x1, sh, vlo, vhi, vs, vy)
            v2 = vadd(v2, vadd(vmul(y0, y0), vmul(y1, y1)))
            k += 2 * W
        if k + W <= stop:
            x0 = vload3(a, i, j, k)
            vlo, vhi, vs, vy, y0 = _pass1_one(x0, sh, vlo, vhi, vs, vy)
            v2 = vadd(v2, vmul(y0, y0))
            k += W
        for q in range(k, stop):
            x = np.float64(a[i, j, q])
            ts, ty, lo, hi, y = _pass1_value(x, shift, ts, ty, lo, hi)
            t2 += y * y
    ok, bs, by, lo, hi, ih, il = _pass1_end(a, bits, i, j0, j1, start, stop, signbit,
                                            is_float, vs, ts, vy, ty, vlo, lo, vhi, hi)
    if not ok:
        return 1, 0.0, 0.0, 0.0, lo, hi, 0.0, ih, il
    bn = float((j1 - j0) * (stop - start))
    s2 = hsum(v2) + t2
    if not (abs(by) < np.inf and s2 < np.inf):
        return 2, 0.0, 0.0, 0.0, lo, hi, 0.0, ih, il
    return 0, bn, bs, by, lo, hi, _m2(by, s2, bn), ih, il


@numba.njit(cache=True, nogil=True)
def _near_shift(n, mean, bn, by, bm2):  # pragma: no cover - compiled
    """Whether a block's ``S2`` about the shift, ``M2_b + n * (mean_b -
    shift)**2``, is at most ``SHIFT_RATIO + 1`` times its share of the
    slab's M2 (its own M2 plus what Chan's update adds for it,
    ``dM2 = (mean_b - mean)**2 * n * bn / (n + bn)``)."""
    bmean = by / bn
    delta = bmean - mean
    return by * bmean <= SHIFT_RATIO * (bm2 + delta * delta * (n * bn / (n + bn)))


@numba.njit(cache=True, nogil=True)
def _masked_group(a, bits, i, j0, j1, start, stop, shift,
                  signbit):  # pragma: no cover - compiled
    """:func:`_fast_group` for a block that holds a NaN or an Inf: the same
    passes, with every value that is not finite contributing nothing (a
    select, not a branch: a land mask or scattered NaN cost no mispredicted
    branches).  The additions are those of :func:`_fast_group`, pair by
    pair, so on a block with no NaN or Inf the two give the same bits, and
    which one ran does not change a result.

    Returns ``(n, sum, sum(x - shift), min, max, M2, nan_count, inf_count)``
    over the finite values."""
    sh = splat(shift)
    vn = splat(0.0)
    vs = splat(0.0)
    vy = splat(0.0)
    vnan = splat(0.0)
    vlo = splat(np.inf)
    vhi = splat(-np.inf)
    tn = 0.0
    ts = 0.0
    ty = 0.0
    tnan = 0.0
    lo = np.inf
    hi = -np.inf
    for j in range(j0, j1):
        k = start
        while k + 2 * W <= stop:
            prefetch3(a, i, j, k, PREFETCH)
            prefetch3(a, i, j, k + W, PREFETCH)
            x0 = vload3(a, i, j, k)
            x1 = vload3(a, i, j, k + W)
            f0 = visfinite(x0)
            f1 = visfinite(x1)
            z0 = vfinite_or(x0, 0.0)
            z1 = vfinite_or(x1, 0.0)
            vn = vadd(vn, vadd(f0, f1))
            vnan = vadd(vnan, vadd(visnan(x0), visnan(x1)))
            vlo = vmin(vmin(vfinite_or(x0, np.inf), vfinite_or(x1, np.inf)), vlo)
            vhi = vmax(vmax(vfinite_or(x0, -np.inf), vfinite_or(x1, -np.inf)), vhi)
            vs = vadd(vs, vadd(z0, z1))
            vy = vadd(vy, vadd(vsub(z0, vmul(sh, f0)), vsub(z1, vmul(sh, f1))))
            k += 2 * W
        if k + W <= stop:
            x0 = vload3(a, i, j, k)
            f0 = visfinite(x0)
            z0 = vfinite_or(x0, 0.0)
            vn = vadd(vn, f0)
            vnan = vadd(vnan, visnan(x0))
            vlo = vmin(vfinite_or(x0, np.inf), vlo)
            vhi = vmax(vfinite_or(x0, -np.inf), vhi)
            vs = vadd(vs, z0)
            vy = vadd(vy, vsub(z0, vmul(sh, f0)))
            k += W
        for q in range(k, stop):
            x = np.float64(a[i, j, q])
            if abs(x) < np.inf:
                tn += 1.0
                ts += x
                ty += x - shift
                lo = x if x < lo else lo
                hi = x if x > hi else hi
            elif x != x:
                tnan += 1.0
    n = hsum(vn) + tn
    bs = hsum(vs) + ts
    by = hsum(vy) + ty
    nans = hsum(vnan) + tnan
    infs = float((j1 - j0) * (stop - start)) - n - nans
    lo = min(hmin(vlo), lo)
    hi = max(hmax(vhi), hi)
    if n == 0.0:
        return 0.0, 0.0, 0.0, np.inf, -np.inf, 0.0, nans, infs
    if lo == 0.0 or hi == 0.0:
        lo, hi = _zero_extremes(lo, hi, _has(bits, i, j0, j1, start, stop, signbit),
                                _has(bits, i, j0, j1, start, stop, 0))
    c = _centre(shift, by / n)
    cc = splat(c)
    v1 = splat(0.0)
    v2 = splat(0.0)
    t1 = 0.0
    t2 = 0.0
    for j in range(j0, j1):
        k = start
        while k + 2 * W <= stop:
            x0 = vload3(a, i, j, k)
            x1 = vload3(a, i, j, k + W)
            d0 = vsub(vfinite_or(x0, 0.0), vmul(cc, visfinite(x0)))
            d1 = vsub(vfinite_or(x1, 0.0), vmul(cc, visfinite(x1)))
            v1 = vadd(v1, vadd(d0, d1))
            v2 = vadd(v2, vadd(vmul(d0, d0), vmul(d1, d1)))
            k += 2 * W
        if k + W <= stop:
            x0 = vload3(a, i, j, k)
            d0 = vsub(vfinite_or(x0, 0.0), vmul(cc, visfinite(x0)))
            v1 = vadd(v1, d0)
            v2 = vadd(v2, vmul(d0, d0))
            k += W
        for q in range(k, stop):
            x = np.float64(a[i, j, q])
            if abs(x) < np.inf:
                d = x - c
                t1 += d
                t2 += d * d
    s1 = hsum(v1) + t1
    s2 = hsum(v2) + t2
    return n, bs, by, lo, hi, _m2(s1, s2, n), nans, infs


@numba.njit(cache=True, nogil=True)
def _merge(st, bn, bs, by, blo, bhi, bm2, bih, bil, bnan, binf):  # pragma: no cover - compiled
    """Fold a block's statistics into the running state ``st`` = (n, total,
    comp, mean, m2, lo, hi, nans, infs, ih, il): the block sums added with
    Knuth's two-sum (``total + comp``: the error of adding the blocks does
    not grow with their number), Chan et al.'s update for the mean
    (relative to the shift) and M2, exact integer words carried."""
    n, total, comp, mean, m2, lo, hi, nans, infs, ih, il = st
    il += bil
    ih += bih + (il >> 32)
    il &= 0xFFFFFFFF
    nans += bnan
    infs += binf
    if bn > 0.0:
        bmean = by / bn
        nn = n + bn
        delta = bmean - mean
        mean = mean + delta * (bn / nn)
        m2 = m2 + bm2 + delta * delta * (n * bn / nn)
        n = nn
        t = total + bs
        z = t - total
        comp += (total - (t - z)) + (bs - z)
        total = t
        # min and max in the total order -0.0 < +0.0, as within a block
        if blo < lo or (blo == lo and np.signbit(blo)):
            lo = blo
        if bhi > hi or (bhi == hi and not np.signbit(bhi)):
            hi = bhi
    return n, total, comp, mean, m2, lo, hi, nans, infs, ih, il


@intrinsic
def _c_rows(typingctx, arr, padded):
    """``arr``, a 3-D array whose rows are contiguous and ``padded`` items
    apart (and, when it has more than one slice, slices ``n1`` rows
    apart), re-described as the C-contiguous array ``(n0, n1, padded)``
    over the same memory: no copy, nothing read.  The caller checks the
    strides and reads only the first ``ncols`` values of each row.

    Why: numba types a halo-sliced view as layout 'A', and every vector
    load of it (kernels/simd.py) then carries a branch for strided rows;
    LLVM did not hoist that branch out of the one-pass block's loop and
    kept sixteen lane pointers of the (never taken) strided path up to
    date in it, some 20 integer additions per 16 values: on a 1000x1000
    halo view the kernel took 156 us instead of 137 (hot, one process).
    ``padded_rows`` does the same from Python, at 3-7 us a call."""
    if not (isinstance(arr, types.Array) and arr.ndim == 3):
        raise TypingError(f"_c_rows needs a 3-D array, got {arr}")
    ret = arr.copy(layout="C")

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, args[0])
        dst = context.make_array(ret)(context, builder)
        n0, n1, _ = cgutils.unpack_tuple(builder, src.shape, 3)
        pad = context.cast(builder, args[1], sig.args[1], types.intp)
        item = context.get_constant(types.intp, context.get_abi_sizeof(
            context.get_data_type(arr.dtype)))
        row = builder.mul(pad, item)
        context.populate_array(dst, data=src.data,
                               shape=cgutils.pack_array(builder, [n0, n1, pad]),
                               strides=cgutils.pack_array(builder, [builder.mul(row, n1), row,
                                                                    item]),
                               itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, ret, dst._getvalue())
    return ret(arr, padded), codegen


@numba.njit(cache=True, nogil=True)
def _moments3(a, bits, signbit, is_float, out):  # pragma: no cover - compiled
    """:func:`_moments_rows` of ``a``, re-described as C-contiguous padded
    rows when it is a halo-sliced view (:func:`_c_rows`), so that its
    loops load vectors without a branch for strided rows."""
    n0, n1, ncols = a.shape
    size = a.itemsize
    s0, s1, s2 = a.strides
    if (ncols > 0 and n1 > 0 and s2 == size and s1 % size == 0 and s1 >= ncols * size
            and (n0 == 1 or s0 == n1 * s1)):
        pad = s1 // size
        _moments_rows(_c_rows(a, pad), _c_rows(bits, pad), ncols, signbit, is_float, out)
    else:
        _moments_rows(a, bits, ncols, signbit, is_float, out)


@numba.njit(cache=True, nogil=True)
def _moments_rows(a, bits, ncols, signbit, is_float, out):  # pragma: no cover - compiled
    """The statistics of ``a[:, :, :ncols]``.  Rows are taken in groups of up to BLOCK values (one block: the
    per-block merge costs a few divisions, too much per row of a
    halo-sliced field with short rows), long rows in BLOCK pieces.

    Which pass reads a block.  A block is read once when the finite values
    merged so far, ``N``, are at least as many as the block holds, ``n``,
    and the running mean and M2 are finite: about the shift
    (:func:`_shifted_group`, the cheaper loop) while the blocks are near
    it, otherwise about the running mean ``c = shift + mean`` rounded
    (:func:`_onepass_group`).  A block summed about the shift is kept only
    if ``n * (mean_b - shift)**2 <= SHIFT_RATIO * (M2_b + dM2)``
    (:func:`_near_shift`), and redone about the running mean if not; the
    next block tries the shift again once a block passes that test.  (On
    the heat model's field every block passes.)  Otherwise
    (the first block; a full block after a short row tail or after blocks
    that were mostly NaN; a state gone non-finite) it is read twice about
    its own mean (:func:`_fast_group`), as are blocks whose ``d * d``
    overflowed in the one pass (``|x - c|`` over ~1.3e154).  After a block
    with a NaN or an Inf the masked pass reads the next one, as before.

    Why the one pass keeps M2 accurate.  With ``d = x - c`` (``c`` the
    running mean, or the shift: then ``d`` is the ``x - shift`` whose sum
    is taken anyway), ``S1 = sum d``
    and ``S2 = sum d*d`` (each value reaches its sum through at most
    ``k = BLOCK + 5`` roundings: its lane chain, the tree, the row tails),
    ``S2 - S1**2/n`` in floating point is off by at most about
    ``3 * k * 2**-53 * S2`` (``S2``'s own error, and ``S1``'s, which
    ``|S1| <= sqrt(n * S2)`` scales to the same size), where exactly
    ``S2 = M2_b + n * (mean_b - c)**2``.  Chan's update says that merging
    the block adds ``dM2 = (mean_b - m)**2 * N * n / (N + n)`` to the
    running M2, ``m`` being the running mean, so ``n * (mean_b - m)**2 =
    dM2 * (N + n) / N <= 2 * dM2`` when ``N >= n``: summed over the blocks,
    the extra terms are at most twice the between-block part of M2.  The
    rounding of ``c`` costs no more than rounding it to the nearest value
    of the block would: ``(c - m)**2 <= (x_i - m)**2`` for every ``x_i``,
    so ``n * (c - m)**2 <= M2_b + n * (mean_b - m)**2``.  Hence ``S2 <=
    3 * M2_b + 8 * dM2``; about the shift, the test above makes ``S2 <=
    8 * M2_b + 7 * dM2``.  Either way a block's ``S2`` is at most 8 times
    its share of M2, the ``S2`` of all blocks add up to at most ``8 *
    M2``, and the one pass's M2 is within about ``24 * k * 2**-53``
    (~5.5e-12) of the exact M2 in the worst case, whatever the data (blocks
    at levels far apart, a field at 1e12 times its spread, an outlier as
    the first value).  (This takes the running mean as exact to rounding;
    its own error, that of the mean the kernel returns, is far below the
    spread wherever that mean is right, and enters only squared.)  The
    two-pass block's error is about ``k * 2**-53`` of its own M2, as
    before.  Rounding errors add up as a random walk, and on the
    adversarial fields of tests/test_moments_onepass.py M2 is within
    5.2e-15 of the exact value (the two-pass kernel: 1.3e-15).  The
    condition ``N >= n`` is what makes the bound hold: a centre from fewer
    values than the block holds weighs their deviation ``n / N`` times (a
    lone value before a full block: 2048 times, 3.7e-14 in that test; an
    outlier as the centre of the first block: 3e-13); so does the test on
    the shift (without it, an outlier as the first value: 9e-12).  Count,
    sum, mean,
    min, max, the NaN and Inf counts and the integer sum come from the same
    additions in the same order as the two-pass block's first pass, so
    they keep its bits; only M2 differs, within the bound."""
    # (n, total, comp, mean, m2, lo, hi, nans, infs, ih, il); the exact
    # integer sum is ih * 2**32 + il, 0 <= il < 2**32
    st = (0.0, 0.0, 0.0, 0.0, 0.0, np.inf, -np.inf, 0.0, 0.0, np.int64(0), np.int64(0))
    shift = _first_finite(a, ncols)
    n0, n1, _ = a.shape
    group = max(1, BLOCK // max(ncols, 1))
    masked = False   # the last block held a NaN or an Inf: start with the masked pass
    about_shift = True   # the last one-pass block was near the shift: try the shift first
    for i in range(n0 if ncols > 0 else 0):
        for j in range(0, n1, group):
            g = min(group, n1 - j)
            for start in range(0, ncols, BLOCK):
                stop = min(start + BLOCK, ncols)
                if not masked:
                    n, mean, m2 = st[0], st[3], st[4]
                    status = 2
                    if n >= g * (stop - start) and abs(mean) < np.inf and m2 < np.inf:
                        if about_shift:
                            status, bn, bs, by, blo, bhi, bm2, bih, bil = _shifted_group(
                                a, bits, i, j, j + g, start, stop, shift, signbit, is_float)
                            if status == 0 and not _near_shift(n, mean, bn, by, bm2):
                                status = 3
                        if status == 3 or not about_shift:
                            status, bn, bs, by, blo, bhi, bm2, bih, bil = _onepass_group(
                                a, bits, i, j, j + g, start, stop, shift, signbit, is_float,
                                _centre(shift, mean))
                            # try the shift again once a block is near it
                            about_shift = status == 0 and _near_shift(n, mean, bn, by, bm2)
                    if status == 2:
                        ok, bn, bs, by, blo, bhi, bm2, bih, bil = _fast_group(
                            a, bits, i, j, j + g, start, stop, shift, signbit, is_float)
                        status = 0 if ok else 1
                    if status == 0:
                        st = _merge(st, bn, bs, by, blo, bhi, bm2, bih, bil, 0.0, 0.0)
                        continue
                bn, bs, by, blo, bhi, bm2, bnan, binf = _masked_group(
                    a, bits, i, j, j + g, start, stop, shift, signbit)
                st = _merge(st, bn, bs, by, blo, bhi, bm2, 0, 0, bnan, binf)
                masked = bnan + binf > 0.0
    n, total, comp, mean, m2, lo, hi, nans, infs, ih, il = st
    out[0] = n
    out[3] = m2
    out[4] = lo
    out[5] = hi
    out[6] = nans
    out[7] = infs
    # The mean as a double-double shift + mean = out[2] + out[8] (Knuth's
    # two-sum; this function is compiled without fast-math, so it stays
    # exact), for the cross-rank merge to difference without rounding.
    h = shift + mean
    z = h - shift
    out[2] = h if n > 0.0 else np.nan
    out[8] = (shift - (h - z)) + (mean - z) if n > 0.0 else 0.0
    # The integer sum split into two floats that hold it exactly while
    # |ih| < 2**53 (|sum| < 2**85): a multiple of 2**32 and a rest in
    # [0, 2**32).  Sums of such parts over ranks stay exact.
    out[9] = float(ih) * 4294967296.0
    out[10] = float(il)
    out[1] = total + comp if is_float else out[9] + out[10]


#: The bits of a float as signed integers: (view, the bits of -0.0)
_BITS = {np.dtype(np.float64): (np.int64, -2**63),
         np.dtype(np.float32): (np.int32, -2**31)}


def as_c_order_3d(view: np.ndarray) -> np.ndarray:
    """A 3-D view of ``view`` whose last axis is the fastest in memory.

    Global statistics do not depend on the order of the elements, so a
    Fortran-ordered view is transposed (a free re-labelling of strides) and
    padded with leading length-1 axes.  No data are copied.
    """
    a = view
    if a.ndim > 1 and abs(a.strides[0]) < abs(a.strides[-1]):
        a = a.T
    while a.ndim < 3:
        a = a[np.newaxis]
    if a.ndim != 3:
        raise ValueError(f"moments supports 1 to 3 dimensions, got {view.ndim}")
    return a


def padded_rows(a: np.ndarray) -> np.ndarray:
    """A C-contiguous description of a halo-sliced view, when one exists.

    The rows of a halo-sliced view are contiguous but spaced by the padded
    row length, so numba types them as strided and cannot vectorise them.
    Re-described with rows of the padded length (``as_strided``, no copy),
    the array is C-contiguous; the kernel reads only the first ``ncols``
    values of each row, all inside the view, so the halo and the memory past
    the last row are never touched.  Returns ``a`` unchanged when no such
    description exists (a 3-D view with halos in its middle axis)."""
    if a.flags.c_contiguous or a.size == 0 or a.strides[2] != a.itemsize:
        return a
    if a.strides[1] % a.itemsize or a.strides[1] < a.shape[2] * a.itemsize:
        return a
    padded = np.lib.stride_tricks.as_strided(
        a, shape=(a.shape[0], a.shape[1], a.strides[1] // a.itemsize),
        strides=(a.strides[0], a.strides[1], a.itemsize), writeable=False)
    return padded if padded.flags.c_contiguous else a


def moments(view: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Local statistics of ``view`` as a float64 vector laid out as :data:`FIELDS`.

    Parameters
    ----------
    view : ndarray
        A 1- to 4-D array of float32, float64, int32 or int64, any strides
        (halo-sliced views are strided).  It is not copied.
    out : ndarray, optional
        A float64 vector of length ``len(FIELDS)`` to fill, so the per-step
        path allocates nothing.

    Returns
    -------
    ndarray
        ``count`` (finite values), ``sum``, ``mean``, ``m2`` (sum of squared
        deviations from the mean), ``min``, ``max``, ``nan_count``,
        ``inf_count``, then ``mean_lo`` (the mean is the double-double
        ``mean + mean_lo``) and, for integer input, the exact sum as
        ``isum_hi + isum_lo`` (a multiple of 2**32 and a rest in
        [0, 2**32); exact while ``|sum| < 2**85``; 0 for float input).
        For integer input ``sum`` is that exact sum rounded once.  An empty
        or all-non-finite slab gives count 0, sum 0, mean NaN, min +inf,
        max -inf, the identities of the cross-rank merge.
    """
    fn, args = prepare(view, out)
    fn(*args)
    return args[-1]


def prepare(view: np.ndarray, out: np.ndarray | None = None) -> tuple:
    """``(fn, args)``: :func:`moments` of ``view`` into ``out`` is
    ``fn(*args)``, with every check and every re-description of the view
    (transposed to C order, padded to 3-D, its bits as integers) done
    here, once.

    Why: a due step runs right after the model's step has swept the
    caches, where each Python and numpy operation costs microseconds
    (issue 12).  In the Fortran heat model at 2 ranks the checks and
    views of :func:`moments` cost about 25 us per call there, more than
    a tenth of the due step, and numba's dispatch (typing each argument)
    about 6 us more; an analysis that keeps this pair while its view is
    the same object (``insitu.step_memo.StepMemo.prepared``) pays
    neither.  ``fn`` is the compiled entry point of the kernel for these
    argument types (numba's ``Dispatcher.compile``: the same machine code
    the dispatcher would pick, from numba's cache when it is there), so
    the pair is bound to these exact objects: call it with no others.
    """
    if not isinstance(view, np.ndarray):
        raise TypeError(f"moments needs a numpy array, got {type(view).__name__}")
    if view.dtype not in (np.float32, np.float64, np.int32, np.int64):
        raise TypeError(f"moments does not support dtype {view.dtype}")
    if out is None:
        out = np.empty(len(FIELDS), dtype=np.float64)
    elif out.dtype != np.float64 or out.shape != (len(FIELDS),):
        raise ValueError("out must be a float64 vector of length %d" % len(FIELDS))
    if view.ndim == 4:
        return _moments4, (view, out)
    a = as_c_order_3d(view)
    if a.flags.c_contiguous:
        a = a.reshape(1, 1, a.size)   # one long row, whole blocks
    if a.dtype in _BITS:
        itype, signbit = _BITS[a.dtype]
        args = (a, a.view(itype), signbit, True, out)
    else:
        args = (a, a, 0, False, out)
    return entry(_moments3, args), args


def entry(dispatcher, args: tuple):
    """The compiled entry point of ``dispatcher`` for the types of
    ``args`` (compiled, or loaded from numba's cache, if it is not yet):
    what the dispatcher itself would call for these arguments, without
    typing them again at every call.  The dispatcher itself where numba
    cannot give it (then nothing is lost but the saving)."""
    try:
        sig = tuple(numba.typeof(x) for x in args)
        fn = _ENTRIES.get((dispatcher, sig))
        if fn is None:
            fn = _ENTRIES[(dispatcher, sig)] = dispatcher.compile(sig)
        return fn
    except Exception:  # noqa: BLE001 - the dispatcher types the call itself
        return dispatcher


#: entry points by (dispatcher, argument types), so that a view made ready
#: again (a derived field's, evaluated anew at each step) costs a lookup,
#: not numba's compile lock
_ENTRIES: dict = {}


def _moments4(view: np.ndarray, out: np.ndarray) -> np.ndarray:
    """A 4-D view, slice by slice along its slowest axis (kernels/slices.py)."""
    from ..reduction import chan_merge
    from .slices import along, slowest_axis
    part = np.empty(len(FIELDS))
    out[:] = (0.0, 0.0, np.nan, 0.0, np.inf, -np.inf, 0.0, 0.0, 0.0, 0.0, 0.0)
    for s in along(view, slowest_axis(view)):
        moments(s, part)
        out[COUNT], out[MEAN], out[M2], out[MEAN_LO] = chan_merge(
            out[COUNT], out[MEAN], out[M2], out[MEAN_LO],
            part[COUNT], part[MEAN], part[M2], part[MEAN_LO])
        out[SUM] += part[SUM]
        out[MIN] = min(out[MIN], part[MIN])
        out[MAX] = max(out[MAX], part[MAX])
        for k in (NAN_COUNT, INF_COUNT, ISUM_HI, ISUM_LO):
            out[k] += part[k]
    if view.dtype.kind in "iu":  # the exact integer sum, rounded once
        out[SUM] = float(int(out[ISUM_HI]) + int(out[ISUM_LO]))
    return out


@numba.njit(cache=True, nogil=True)
def _wblock(a, w, i, j, start, stop, shift, sh, row_weight):  # pragma: no cover - compiled
    """Weighted ``(W, mean about shift, M2)`` of the finite values of the row
    block ``a[i, j, start:stop]``, by two passes while it is in cache, W
    lanes at a time (kernels/simd.py) as :func:`_fast_group` does: a scalar
    loop over strided 'A'-layout loads ran at about 1 ns a value a pass
    (1.8 ms for 1000x1000, ten times the unweighted kernel, issue 12), bound
    by the loads, not by the additions' latency.  A non-finite value adds
    nothing: its weight is multiplied by 0 and its deviation replaced by 0
    (``vfinite_or``), so no NaN reaches a sum.  Every addition is in the
    source, in a fixed order: the same bits on every CPU, cached or not."""
    wr = splat(np.float64(w[i, j, start]) if row_weight else 0.0)
    vw = splat(0.0)
    vs = splat(0.0)
    tw = 0.0
    ts = 0.0
    # First without masks: for finite values the masked pass's operations
    # give the same numbers (a weight times 1.0 is the weight, and
    # vfinite_or(x, shift) is x), so a clean block's bits are the same.  A
    # NaN or an Inf among the values makes the sum non-finite (x - shift
    # is; a weight of 0 times an Inf is NaN), and then the block is summed
    # again with the masks, as before.
    k = start
    while k + W <= stop:
        x = vload3(a, i, j, k)
        wv = wr if row_weight else vload3(w, i, j, k)
        vw = vadd(vw, wv)
        vs = vadd(vs, vmul(wv, vsub(x, sh)))
        k += W
    hs = hsum(vs)
    clean = abs(hs) < np.inf
    if not clean:
        vw = splat(0.0)
        vs = splat(0.0)
        k = start
        while k + W <= stop:
            x = vload3(a, i, j, k)
            wv = wr if row_weight else vload3(w, i, j, k)
            wq = vmul(wv, visfinite(x))
            vw = vadd(vw, wq)
            vs = vadd(vs, vmul(wq, vsub(vfinite_or(x, shift), sh)))
            k += W
        hs = hsum(vs)
    for q in range(k, stop):
        x = np.float64(a[i, j, q])
        if abs(x) < np.inf:
            wk = np.float64(w[i, j, q])
            tw += wk
            ts += wk * (x - shift)
    bw = hsum(vw) + tw
    if not bw > 0.0:
        return 0.0, 0.0, 0.0
    bmean = (hs + ts) / bw
    bm = splat(bmean)
    v2 = splat(0.0)
    t2 = 0.0
    k = start
    if clean:
        while k + W <= stop:
            x = vload3(a, i, j, k)
            wv = wr if row_weight else vload3(w, i, j, k)
            d = vsub(vsub(x, sh), bm)
            v2 = vadd(v2, vmul(wv, vmul(d, d)))
            k += W
    else:
        while k + W <= stop:
            x = vload3(a, i, j, k)
            wv = wr if row_weight else vload3(w, i, j, k)
            wq = vmul(wv, visfinite(x))
            d = vsub(vsub(vfinite_or(x, shift), sh), bm)
            v2 = vadd(v2, vmul(wq, vmul(d, d)))
            k += W
    for q in range(k, stop):
        x = np.float64(a[i, j, q])
        if abs(x) < np.inf:
            d = (x - shift) - bmean
            t2 += np.float64(w[i, j, q]) * d * d
    return bw, bmean, hsum(v2) + t2


@numba.njit(cache=True, nogil=True)
def _wmoments3(a, w, out):  # pragma: no cover - compiled
    """:func:`_wmoments_rows` of ``a``, re-described as C-contiguous padded
    rows when it is a halo-sliced view (:func:`_c_rows`, as
    :func:`_moments3` does), so that its loads carry no branch for strided
    rows; the weights as they are (a broadcast, or a field of their own
    layout)."""
    n0, n1, ncols = a.shape
    size = a.itemsize
    s0, s1, s2 = a.strides
    if (ncols > 0 and n1 > 0 and s2 == size and s1 % size == 0 and s1 >= ncols * size
            and (n0 == 1 or s0 == n1 * s1)):
        _wmoments_rows(_c_rows(a, s1 // size), w, ncols, out)
    else:
        _wmoments_rows(a, w, ncols, out)


@numba.njit(cache=True, nogil=True)
def _wmoments_rows(a, w, ncols, out):  # pragma: no cover - compiled
    """Weighted (W, mean, M2) of the finite values of ``a[:, :, :ncols]``
    with weights ``w`` (its shape, ``w`` may be a stride-0 broadcast).
    Blockwise as above, shifted by the first valid value, blocks merged
    with Chan's update."""
    big_w = 0.0
    mean = 0.0
    m2 = 0.0
    n0, n1, _ = a.shape
    n2 = ncols
    shift = 0.0
    found = False
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = np.float64(a[i, j, k])
                if x == x and abs(x) != np.inf:
                    shift = x
                    found = True
                    break
            if found:
                break
        if found:
            break
    sh = splat(shift)
    row_weight = w.strides[2] == 0   # a weight per row (coslat, dp): one splat a row
    for i in range(n0):
        for j in range(n1):
            start = 0
            while start < n2:
                stop = min(start + BLOCK, n2)
                bw, bmean, bm2 = _wblock(a, w, i, j, start, stop, shift, sh, row_weight)
                if bw > 0.0:
                    nw = big_w + bw
                    delta = bmean - mean
                    mean = mean + delta * (bw / nw)
                    m2 = m2 + bm2 + delta * delta * (big_w * bw / nw)
                    big_w = nw
                start = stop
    h = shift + mean   # the mean as a double-double h + lo, as in _moments3
    z = h - shift
    out[0] = big_w
    out[1] = h if big_w > 0.0 else np.nan
    out[2] = m2
    out[3] = (shift - (h - z)) + (mean - z) if big_w > 0.0 else 0.0


def weighted_moments(view: np.ndarray, weights: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:
    """``(sum of weights, weighted mean, weighted M2, mean_lo)`` over the
    finite values: the layout of a MOMENTS slot of the reduction record, the
    mean being the double-double ``mean + mean_lo``.

    ``weights`` must broadcast to ``view`` (a cos-latitude vector over one
    dimension, a cell-area field) and be non-negative; it is not copied.
    """
    if weights.shape != view.shape:
        weights = np.broadcast_to(weights, view.shape)
    if out is None:
        out = np.empty(4, dtype=np.float64)
    if view.ndim == 4:
        from ..reduction import chan_merge
        from .slices import slowest_axis
        k = slowest_axis(view)
        part = np.empty(4)
        out[:] = (0.0, np.nan, 0.0, 0.0)
        for i in range(view.shape[k]):
            sel = (slice(None),) * k + (i,)
            weighted_moments(view[sel], weights[sel], part)
            out[:] = chan_merge(*out, *part)
        return out
    a = view
    w = weights
    if a.ndim > 1 and abs(a.strides[0]) < abs(a.strides[-1]):
        a, w = a.T, w.T
    while a.ndim < 3:
        a, w = a[np.newaxis], w[np.newaxis]
    _wmoments3(a, w, out)
    return out
