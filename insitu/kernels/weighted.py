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

import functools

import numba
import numpy as np


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


@numba.njit(cache=True, nogil=True)
def _accumulate4(a, w, m0, m1, m2, m3, inner_reduced, acc, wacc):  # pragma: no cover
    """``acc[m(i)] += w[i] * a[i]`` and ``wacc[m(i)] += w[i]`` over the finite
    values of ``a``, where ``m(i) = (m0[i0], m1[i1], m2[i2], m3[i3])`` maps
    each index of ``a`` to a cell of the (smaller) output.  With
    ``inner_reduced`` the last axis maps to one cell: each row is summed in
    registers first."""
    n0, n1, n2, n3 = a.shape
    for i in range(n0):
        o0 = m0[i]
        for j in range(n1):
            o1 = m1[j]
            for k in range(n2):
                o2 = m2[k]
                if inner_reduced:
                    s = 0.0
                    sw = 0.0
                    for l in range(n3):
                        x = np.float64(a[i, j, k, l])
                        if abs(x) < np.inf:
                            ww = np.float64(w[i, j, k, l])
                            s += ww * x
                            sw += ww
                    o3 = m3[0]
                    acc[o0, o1, o2, o3] += s
                    wacc[o0, o1, o2, o3] += sw
                else:
                    for l in range(n3):
                        x = np.float64(a[i, j, k, l])
                        if abs(x) < np.inf:
                            ww = np.float64(w[i, j, k, l])
                            o3 = m3[l]
                            acc[o0, o1, o2, o3] += ww * x
                            wacc[o0, o1, o2, o3] += ww


def accumulate(view: np.ndarray, weights: np.ndarray, maps, acc: np.ndarray,
               wacc: np.ndarray) -> None:
    """Add the weighted sums of ``view``'s finite values into ``acc`` and
    their weights into ``wacc`` (same shape, the output's).

    ``maps[k]`` is an int64 array giving, for each index along axis ``k`` of
    ``view``, the output index along the same axis: all zeros for an axis
    reduced over (with length-1 output), ``arange(n) + offset`` for a kept
    axis, ``(arange(n) + offset) // f`` for blocks of ``f``.  ``weights``
    broadcasts to ``view``."""
    if view.size == 0:
        return
    weights = np.broadcast_to(weights, view.shape)
    order = _memory_order(view)
    a, w = np.transpose(view, order), np.transpose(weights, order)
    acc_t, wacc_t = np.transpose(acc, order), np.transpose(wacc, order)
    ms = [np.ascontiguousarray(maps[k], dtype=np.int64) for k in order]
    inner_reduced = bool(acc_t.shape[-1] == 1 and not ms[-1].any())
    while len(ms) < 4:
        ms.insert(0, np.zeros(1, dtype=np.int64))
    a, w, acc_t, wacc_t = _as4(a, w, acc_t, wacc_t)
    _accumulate4(a, w, ms[0], ms[1], ms[2], ms[3], inner_reduced, acc_t, wacc_t)


@numba.njit(cache=True, nogil=True)
def _bin_of(x, lo, hi, norm, edges):  # pragma: no cover - compiled
    """Slot of a non-NaN value by numpy.histogram's rule: 0 below ``lo``
    (-Inf too), ``nb + 1`` above ``hi`` (+Inf too), else bin + 1, the
    first guess from the scaled value corrected against the edges."""
    nb = edges.size - 1
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
def _whist4(a, w, lo, hi, norm, edges, out):  # pragma: no cover - compiled
    n0, n1, n2, n3 = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                for l in range(n3):
                    x = np.float64(a[i, j, k, l])
                    if x == x:
                        out[_bin_of(x, lo, hi, norm, edges)] += np.float64(w[i, j, k, l])


@functools.lru_cache(maxsize=64)
def _edges(lo: float, hi: float, nbins: int) -> np.ndarray:
    """numpy.histogram's edges, made once per range (an analysis asks for
    the same bins at every step)."""
    edges = np.linspace(lo, hi, nbins + 1)
    edges.flags.writeable = False
    return edges


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
    edges = _edges(lo, hi, int(nbins))
    weights = np.broadcast_to(weights, view.shape)
    order = _memory_order(view)
    a, w = _as4(np.transpose(view, order), np.transpose(weights, order))
    _whist4(a, w, lo, hi, nbins / (hi - lo), edges, out)
    return out


#: exceedance comparisons, by config name
OPS = {"gt": 0, "ge": 1, "lt": 2, "le": 3}


@numba.njit(cache=True, nogil=True)
def _exceed4(a, w, threshold, op, out):  # pragma: no cover - compiled
    n0, n1, n2, n3 = a.shape
    c = 0.0
    n = 0.0
    cw = 0.0
    nw = 0.0
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                for l in range(n3):
                    x = np.float64(a[i, j, k, l])
                    if abs(x) < np.inf:
                        ww = np.float64(w[i, j, k, l])
                        n += 1.0
                        nw += ww
                        if ((op == 0 and x > threshold) or (op == 1 and x >= threshold)
                                or (op == 2 and x < threshold) or (op == 3 and x <= threshold)):
                            c += 1.0
                            cw += ww
    out[0] += c
    out[1] += n
    out[2] += cw
    out[3] += nw


def exceedance(view: np.ndarray, weights: np.ndarray, threshold: float, op: str,
               out: np.ndarray | None = None) -> np.ndarray:
    """``(values past the threshold, finite values, their weights, the
    finite values' weights)`` of ``view``; non-finite values are skipped.
    ``op`` is ``gt``, ``ge``, ``lt`` or ``le`` (``x > threshold``...).
    ``out`` is zeroed first."""
    if out is None:
        out = np.zeros(4)
    out[:] = 0.0
    if view.size == 0:
        return out
    weights = np.broadcast_to(weights, view.shape)
    order = _memory_order(view)
    a, w = _as4(np.transpose(view, order), np.transpose(weights, order))
    _exceed4(a, w, float(threshold), OPS[op], out)
    return out
