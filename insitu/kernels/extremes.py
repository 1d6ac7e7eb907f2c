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

from .moments import _c_rows
from .simd import W, hmax, hmin, splat, vfinite_or, vload3, vmax, vmin


#: values per chunk of a row: a chunk is scanned for its candidates only
#: when a test of the whole chunk says it may hold one (see _argext)
CHUNK = 64


@numba.njit(cache=True, nogil=True, inline="always")
def _chunk_bounds(b, j, k, l0, l1):  # pragma: no cover - compiled
    """The largest and the smallest finite value of ``b[j, k, l0:l1]``
    (``-inf`` and ``inf`` when none is finite): W lanes at a time
    (kernels/simd.py), non-finite lanes replaced by the identity, then the
    chunk's last ``(l1 - l0) % W`` values one by one.  No arithmetic: any
    order gives the same two values."""
    vmx = splat(-np.inf)
    vmn = splat(np.inf)
    q = l0
    while q + W <= l1:
        x = vload3(b, j, k, q)
        vmx = vmax(vfinite_or(x, -np.inf), vmx)
        vmn = vmin(vfinite_or(x, np.inf), vmn)
        q += W
    mx = hmax(vmx)
    mn = hmin(vmn)
    for r in range(q, l1):
        x = np.float64(b[j, k, r])
        if abs(x) < np.inf:
            mx = max(mx, x)
            mn = min(mn, x)
    return mx, mn


@numba.njit(cache=True, nogil=True, inline="always")
def _row_bounds(b, j, k, ncols):  # pragma: no cover - compiled
    """Bounds of the values of the row ``b[j, k, :ncols]``: its largest and
    smallest value by vectors, NaN left out (``vmax``/``vmin`` keep their
    second operand against a NaN) but +-Inf not, so an Inf only makes the
    row look as if it might hold an extreme, and :func:`_chunk_bounds`
    decides.  Two vector operations per W values: the whole slab is read at
    this speed when few rows hold a new extreme."""
    vmx = splat(-np.inf)
    vmn = splat(np.inf)
    q = 0
    while q + W <= ncols:
        x = vload3(b, j, k, q)
        vmx = vmax(x, vmx)
        vmn = vmin(x, vmn)
        q += W
    mx = hmax(vmx)
    mn = hmin(vmn)
    for r in range(q, ncols):
        x = np.float64(b[j, k, r])
        mx = max(mx, x) if x == x else mx
        mn = min(mn, x) if x == x else mn
    return mx, mn


@numba.njit(cache=True, nogil=True)
def _argext_rows(b, ncols, g1, g2, g3, g0i, hi, ihi, lo, ilo):  # pragma: no cover - compiled
    """:func:`_argext` of one 3-D slab ``b`` (rows ``b[j, k, :ncols]``,
    global index ``g0i + j * g1 + k * g2 + l * g3``); returns the updated
    ``(hi, ihi, lo, ilo)``.

    Each row is first bounded by vectors (:func:`_row_bounds`); a row that
    could change the answer goes by chunks of :data:`CHUNK` values, each
    bounded again over its finite values (:func:`_chunk_bounds`, the row
    still in L1), and only a chunk that could change it is read value by
    value with the tie rule.  A row (chunk) could change the maximum when
    its largest value is above it, or equal to it while its lowest global
    index (``g``, ``g + l0 * g3``: the strides are not negative) is below
    the maximum's index; the same for the minimum.  On a field scanned in
    memory order few rows hold a new extreme (and a constant field's ties
    are skipped by the index test), so most of the slab is read at the
    speed of the row bounds.  The strided scalar test before it read a
    Fortran-order halo view at about 0.9 ns a value (issue 12)."""
    n1, n2, _ = b.shape
    for j in range(n1):
        for k in range(n2):
            g = g0i + j * g1 + k * g2
            mx, mn = _row_bounds(b, j, k, ncols)
            if not (mx > hi or (mx == hi and g < ihi)
                    or mn < lo or (mn == lo and g < ilo)):
                continue
            for l0 in range(0, ncols, CHUNK):
                l1 = min(l0 + CHUNK, ncols)
                mx, mn = _chunk_bounds(b, j, k, l0, l1)
                first = g + l0 * g3
                if not (mx > hi or (mx == hi and first < ihi)
                        or mn < lo or (mn == lo and first < ilo)):
                    continue
                for l in range(l0, l1):
                    x = np.float64(b[j, k, l])
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
    return hi, ihi, lo, ilo


@numba.njit(cache=True, nogil=True)
def _argext(a, g0, g1, g2, g3, base, out):  # pragma: no cover - compiled
    """Scan ``a`` (4-D, last axis fastest in memory); ``g*`` are the global
    flat strides of its axes (all >= 0), ``base`` the global index of
    ``a[0, 0, 0, 0]``.  ``out`` = (max, its index, min, its index), merged
    into (not reset).  Each 3-D slab ``a[i]`` of a halo view is
    re-described as C-contiguous padded rows (kernels.moments._c_rows, no
    copy, in the kernel: from Python it costs 3-7 us a call), so that its
    rows load as vectors without a branch for strided rows; the kernel
    reads the first ``ncols`` values of each row only."""
    hi = out[0]
    ihi = np.int64(out[1]) if out[1] < 9.2e18 else np.int64(0x7FFFFFFFFFFFFFFF)
    lo = out[2]
    ilo = np.int64(out[3]) if out[3] < 9.2e18 else np.int64(0x7FFFFFFFFFFFFFFF)
    n0, n1, n2, ncols = a.shape
    for i in range(n0):
        b = a[i]
        size = b.itemsize
        s0, s1, s2 = b.strides
        g0i = base + i * g0
        if (ncols > 0 and n2 > 0 and s2 == size and s1 % size == 0 and s1 >= ncols * size
                and (n1 == 1 or s0 == n2 * s1)):
            hi, ihi, lo, ilo = _argext_rows(_c_rows(b, s1 // size), ncols, g1, g2, g3, g0i,
                                            hi, ihi, lo, ilo)
        else:
            hi, ihi, lo, ilo = _argext_rows(b, ncols, g1, g2, g3, g0i, hi, ihi, lo, ilo)
    out[0] = hi
    out[1] = np.float64(ihi) if hi > -np.inf else np.inf
    out[2] = lo
    out[3] = np.float64(ilo) if lo < np.inf else np.inf


#: the reduction's identity for (max, index, min, index)
_IDENTITY = np.array([-np.inf, np.inf, np.inf, np.inf])
#: the Python layout of a call (see _plan), by (shape, strides, offset,
#: global shape): integers only, so no array is kept alive by it
_PLANS: dict = {}


def _plan(shape, strides, offset, global_shape):
    """How :func:`arg_extremes` hands a view of ``shape`` and ``strides`` to
    :func:`_argext`: the axes in memory order (the fastest last: the tie
    rule compares indices, so the order of the scan does not change the
    answer), the index that prepends length-1 axes up to 4-D, the global
    C-order strides of the four axes and the global index of the view's
    first element.  Made once per layout: with ``numpy.prod`` per axis it
    cost some 6 us at every due step."""
    gstrides = [1] * len(global_shape)
    for k in range(len(global_shape) - 2, -1, -1):
        gstrides[k] = gstrides[k + 1] * int(global_shape[k + 1])
    base = sum(int(o) * g for o, g in zip(offset, gstrides))
    order = tuple(sorted(range(len(shape)), key=lambda k: -abs(strides[k])))
    pad = 4 - len(shape)
    g = [0] * pad + [gstrides[k] for k in order]
    return order, (None,) * pad + (Ellipsis,), g[0], g[1], g[2], g[3], base


def arg_extremes(view: np.ndarray, offset, global_shape, out: np.ndarray | None = None):
    """``(max, index of max, min, index of min)`` of the finite values of
    ``view``, the part of a field of ``global_shape`` starting at global
    index ``offset``; the indices are global C-order flat indices as float64
    (exact below 2**53).  An empty or all-non-finite view gives
    ``(-inf, inf, inf, inf)``, the identity of the reduction's merge."""
    if out is None:
        out = np.empty(4)
    out[:] = _IDENTITY
    if view.size == 0:
        return out
    if view.ndim > 4:
        raise ValueError(f"arg_extremes supports 1 to 4 dimensions, got {view.ndim}")
    key = (view.shape, view.strides, tuple(offset), tuple(global_shape))
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= 256:
            _PLANS.clear()
        plan = _PLANS[key] = _plan(*key)
    order, pad, g0, g1, g2, g3, base = plan
    _argext(view.transpose(order)[pad], g0, g1, g2, g3, base, out)
    return out
