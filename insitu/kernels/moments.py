"""One-pass statistics of a slab: count, sum, mean, M2, min, max, NaN and Inf counts.

The slab is read from memory once.  It is walked in blocks of at most
``BLOCK`` contiguous elements; each block is summed, then its squared
deviations from the block mean are summed while the block is still in cache
(a two-pass within the block, so no cancellation), and blocks are merged with
Chan et al.'s parallel update.  A block whose exponent bits show no NaN or
Inf (the usual case) takes the fast path: min and max over integer keys of
the bits, sums in fixed lanes (:func:`_sums`), all vectorised by LLVM;
any other block is redone with careful, NaN-aware code.  Nothing is
compiled with fast-math: every float sum is added in an order written in
the source, so the bits do not depend on the compiler, the CPU's vector
width or numba's cache.  Block means are taken of ``x - shift``, where
``shift`` is the slab's first valid value, so the merge works with numbers
of the size of the spread, not of the mean; squared deviations are summed
about a float centre near the block mean and corrected with
``S2 - S1**2/n``; and the slab's mean is returned as a double-double for
the cross-rank merge.  A field at 1e12 times its spread keeps its variance
to ~1e-15: the accuracy of numpy's two-pass ``var`` at the memory traffic of
one pass.  Integer slabs also get their exact sum (two int64 halves per
value).

Non-finite values are skipped and counted: NaNs in ``nan_count``, +-Inf in
``inf_count``.  The statistics are those of the finite values, so one
blown-up cell shows up as a count instead of turning every summary into
Inf or NaN.
"""
from __future__ import annotations

import numba
import numpy as np

BLOCK = 8192

#: Layout of the result vector returned by :func:`moments`.
FIELDS = ("count", "sum", "mean", "m2", "min", "max", "nan_count", "inf_count",
          "mean_lo", "isum_hi", "isum_lo")
(COUNT, SUM, MEAN, M2, MIN, MAX, NAN_COUNT, INF_COUNT,
 MEAN_LO, ISUM_HI, ISUM_LO) = range(len(FIELDS))


#: Every float sum below is formed in this many lanes, in an order written
#: in the source (see :func:`_sums`); ``acc`` is a ``(2, LANES)`` scratch.
LANES = 32


@numba.njit(cache=True, nogil=True)
def _sums(row, c, square, acc):  # pragma: no cover - compiled
    """``(sum(x), sum(x - c))``, or ``(sum(x - c), sum((x - c)**2))`` if
    ``square``, in a fixed order of additions.

    Every element is widened with ``np.float64(x)``: numba's ``float(x)``
    of a float32 is a float32, and the pairwise additions below would then
    round in float32 (a sum 3e-9 off, relative, on 1001 values).

    Elements are taken 4 * LANES at a time; lane ``l`` adds
    ``(x[l] + x[l + L]) + (x[l + 2L] + x[l + 3L])`` of each group; the rest
    past the last whole group is added one value per lane per step, and the
    lanes are added pairwise at the end.  Compiled WITHOUT fast-math, so LLVM must
    keep exactly this order, and it still vectorises it (the lanes are
    independent, element by element).  Under fast-math's ``reassoc`` the
    order was LLVM's choice, which depends on the target's vector width and
    on how numba inlines one jitted function into another: a freshly
    compiled ``_block`` and one loaded from numba's cache gave sums one ulp
    apart (issue 10, item 7).  Without ``contract`` no FMA is formed either,
    so the bits are the same on every x86-64 machine."""
    L = LANES
    n = row.size
    m = n - n % (4 * L)
    a = acc[0]
    b = acc[1]
    a[:] = 0.0
    b[:] = 0.0
    for k in range(0, m, 4 * L):
        for l in range(L):
            x0 = np.float64(row[k + l])
            x1 = np.float64(row[k + L + l])
            x2 = np.float64(row[k + 2 * L + l])
            x3 = np.float64(row[k + 3 * L + l])
            d0 = x0 - c
            d1 = x1 - c
            d2 = x2 - c
            d3 = x3 - c
            if square:
                a[l] += (d0 + d1) + (d2 + d3)
                b[l] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
            else:
                a[l] += (x0 + x1) + (x2 + x3)
                b[l] += (d0 + d1) + (d2 + d3)
    for k in range(m, n, L):
        for l in range(min(L, n - k)):
            x = np.float64(row[k + l])
            d = x - c
            a[l] += d if square else x
            b[l] += d * d if square else d
    w = L
    while w > 1:   # the lanes pairwise: L/2 independent sums per level
        w //= 2
        for l in range(w):
            a[l] += a[l + w]
            b[l] += b[l + w]
    return a[0], b[0]


@numba.njit(cache=True, nogil=True)
def _fast_block(row, bits, shift, expshift, expmask, keymask, acc):  # pragma: no cover - compiled
    """Sum, shifted sum, min and max of a block assumed finite, plus the
    number of non-finite values found from the exponent bits.  If that
    number is not zero the float results are discarded and the block is
    redone carefully.

    Min and max are taken over integer keys of the bit patterns
    (``bits ^ (keymask if bits < 0)``), which order finite floats exactly as
    the floats do: LLVM vectorises integer min/max reductions (vpminsq),
    which it does not for floating point ones, and integer results do not
    depend on the order, so no fast-math is needed."""
    lo = np.int64(0x7FFFFFFFFFFFFFFF)
    hi = np.int64(-0x7FFFFFFFFFFFFFFF - 1)
    bad = 0
    for k in range(row.size):
        b = np.int64(bits[k])
        key = b ^ (keymask if b < 0 else np.int64(0))
        lo = min(lo, key)
        hi = max(hi, key)
        bad += ((b >> expshift) & expmask) == expmask
    s, sy = _sums(row, shift, False, acc)
    return s, sy, lo, hi, bad


@numba.njit(cache=True, nogil=True)
def _unkey(key, keymask, tmp):  # pragma: no cover - compiled
    """The float whose bit pattern has order key ``key`` (inverse of the above)."""
    b = key ^ (keymask if key < 0 else np.int64(0))
    tmp[0] = b
    return tmp


@numba.njit(cache=True, nogil=True)
def _fast_int_block(row, shift, acc):  # pragma: no cover - compiled
    """Shifted float sum, min and max of an integer block, and its exact sum
    as two int64 halves: the high 32 bits of each value (arithmetic shift)
    and the low 32 bits (unsigned), so neither half can overflow for blocks
    of up to 2**31 values, whatever the int64 values are."""
    ih = np.int64(0)
    il = np.int64(0)
    lo = np.int64(0x7FFFFFFFFFFFFFFF)
    hi = np.int64(-0x7FFFFFFFFFFFFFFF - 1)
    for k in range(row.size):
        v = np.int64(row[k])
        ih += v >> 32
        il += v & 0xFFFFFFFF
        lo = min(lo, v)
        hi = max(hi, v)
    _, sy = _sums(row, shift, False, acc)
    return ih, il, sy, float(lo), float(hi)


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
def _careful_block(row, shift):  # pragma: no cover - compiled
    """The same for a block that holds NaN or Inf: skipped and counted.
    Plain loops in element order (the rare path)."""
    n = 0.0
    s = 0.0
    sy = 0.0
    nans = 0.0
    infs = 0.0
    lo = np.inf
    hi = -np.inf
    for k in range(row.size):
        x = np.float64(row[k])
        isnan = x != x
        isinf = abs(x) == np.inf
        nans += isnan
        infs += isinf
        if not (isnan or isinf):
            n += 1.0
            s += x
            sy += x - shift
            lo = min(lo, x)
            hi = max(hi, x)
    m2 = 0.0
    if n > 0.0:
        c = _centre(shift, sy / n)
        s1 = 0.0
        s2 = 0.0
        for k in range(row.size):
            x = np.float64(row[k])
            if abs(x) < np.inf:
                d = x - c
                s1 += d
                s2 += d * d
        m2 = _m2(s1, s2, n)
    return n, s, sy, lo, hi, nans, infs, m2


@numba.njit(cache=True, nogil=True)
def _first_finite(a):  # pragma: no cover - compiled
    n0, n1, n2 = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = np.float64(a[i, j, k])
                if abs(x) < np.inf:
                    return x
    return 0.0


@numba.njit(cache=True, nogil=True)
def _block(row, rbits, shift, expshift, expmask, keymask, is_float, tmp,
           ftmp, acc):  # pragma: no cover - compiled
    """Statistics of one block: the fast path, or the careful one."""
    bad = 0
    ih = np.int64(0)
    il = np.int64(0)
    if is_float:
        bs, by, klo, khi, bad = _fast_block(row, rbits, shift, expshift, expmask, keymask, acc)
        _unkey(klo, keymask, tmp)
        blo = np.float64(ftmp[0])
        _unkey(khi, keymask, tmp)
        bhi = np.float64(ftmp[0])
    else:
        ih, il, by, blo, bhi = _fast_int_block(row, shift, acc)
        bs = 0.0
    if bad == 0:
        bn = float(row.size)
        s1, s2 = _sums(row, _centre(shift, by / bn), True, acc)
        bm2 = _m2(s1, s2, bn)
        return bn, bs, by, blo, bhi, 0.0, 0.0, bm2, ih, il
    n, s, sy, lo, hi, nans, infs, m2 = _careful_block(row, shift)
    return n, s, sy, lo, hi, nans, infs, m2, ih, il


@numba.njit(cache=True, nogil=True)
def _moments3(a, ncols, bits, expshift, expmask, keymask, is_float, copy_rows, buf, bbits, tmp,
              ftmp, acc, out):  # pragma: no cover - compiled
    n = 0.0
    total = 0.0
    mean = 0.0
    m2 = 0.0
    lo = np.inf
    hi = -np.inf
    nans = 0.0
    infs = 0.0
    ih = np.int64(0)   # exact integer sum = ih * 2**32 + il, 0 <= il < 2**32
    il = np.int64(0)
    shift = _first_finite(a[:, :, :ncols])
    n0, n1, n2 = a.shape
    for i in range(n0):
        for j in range(n1):
            for start in range(0, ncols, BLOCK):
                stop = min(start + BLOCK, ncols)
                m = stop - start
                if copy_rows:
                    # Rows of a strided (halo-sliced) view: numba cannot
                    # prove they are contiguous, so copy the block into a
                    # cache-resident buffer that it knows is.
                    b = buf[:m]
                    for k in range(m):
                        b[k] = a[i, j, start + k]
                    bn, bs, by, blo, bhi, bnan, binf, bm2, bih, bil = _block(
                        b, bbits[:m], shift, expshift, expmask, keymask, is_float, tmp, ftmp, acc)
                else:
                    bn, bs, by, blo, bhi, bnan, binf, bm2, bih, bil = _block(
                        a[i, j, start:stop], bits[i, j, start:stop], shift, expshift,
                        expmask, keymask, is_float, tmp, ftmp, acc)
                il += bil
                ih += bih + (il >> 32)
                il &= 0xFFFFFFFF
                nans += bnan
                infs += binf
                if bn == 0.0:
                    continue
                bmean = by / bn
                nn = n + bn
                delta = bmean - mean
                mean = mean + delta * (bn / nn)
                m2 = m2 + bm2 + delta * delta * (n * bn / nn)
                n = nn
                total += bs
                lo = min(lo, blo)
                hi = max(hi, bhi)
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
    out[1] = total if is_float else out[9] + out[10]


#: The bits of a float as signed integers: (view, exponent shift, exponent
#: mask, key mask for ordering)
_BITS = {np.dtype(np.float64): (np.int64, 52, 0x7FF, 0x7FFFFFFFFFFFFFFF),
         np.dtype(np.float32): (np.int32, 23, 0xFF, 0x7FFFFFFF)}


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
    if not isinstance(view, np.ndarray):
        raise TypeError(f"moments needs a numpy array, got {type(view).__name__}")
    if view.dtype not in (np.float32, np.float64, np.int32, np.int64):
        raise TypeError(f"moments does not support dtype {view.dtype}")
    if out is None:
        out = np.empty(len(FIELDS), dtype=np.float64)
    elif out.dtype != np.float64 or out.shape != (len(FIELDS),):
        raise ValueError("out must be a float64 vector of length %d" % len(FIELDS))
    if view.ndim == 4:
        return _moments4(view, out)
    a = padded_rows(as_c_order_3d(view))
    ncols = view.size and as_c_order_3d(view).shape[2]
    copy_rows = not a.flags.c_contiguous
    buf = np.empty(min(BLOCK, a.shape[2]) if copy_rows else 1, dtype=a.dtype)
    acc = np.empty((2, LANES))
    if a.dtype in _BITS:
        itype, shift, mask, keymask = _BITS[a.dtype]
        tmp = np.zeros(1, dtype=itype)
        _moments3(a, ncols, a.view(itype), shift, mask, keymask, True, copy_rows, buf,
                  buf.view(itype), tmp, tmp.view(a.dtype), acc, out)
    else:
        tmp = np.zeros(1, dtype=np.int64)
        _moments3(a, ncols, a, 0, 0, 0, False, copy_rows, buf, buf, tmp,
                  tmp.view(np.float64), acc, out)
    return out


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
def _wmoments3(a, w, out):  # pragma: no cover - compiled
    """Weighted (W, mean, M2) of the finite values of ``a`` with weights ``w``
    (same shape; ``w`` may be a stride-0 broadcast).  Blockwise as above,
    shifted by the first valid value, blocks merged with Chan's update."""
    big_w = 0.0
    mean = 0.0
    m2 = 0.0
    n0, n1, n2 = a.shape
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
    for i in range(n0):
        for j in range(n1):
            start = 0
            while start < n2:
                stop = min(start + BLOCK, n2)
                bw = 0.0
                bs = 0.0
                for k in range(start, stop):
                    x = np.float64(a[i, j, k])
                    if x == x and abs(x) != np.inf:
                        wk = np.float64(w[i, j, k])
                        bw += wk
                        bs += wk * (x - shift)
                if bw > 0.0:
                    bmean = bs / bw
                    bm2 = 0.0
                    for k in range(start, stop):
                        x = np.float64(a[i, j, k])
                        if x == x and abs(x) != np.inf:
                            d = (x - shift) - bmean
                            bm2 += np.float64(w[i, j, k]) * d * d
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
