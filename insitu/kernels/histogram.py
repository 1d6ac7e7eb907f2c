"""Fixed-bin histogram of the finite values of a slab, numpy's bin rule.

Bins are ``edges = linspace(lo, hi, nbins + 1)``; a value ``x`` goes to bin
``k`` with ``edges[k] <= x < edges[k + 1]``, the last bin also taking
``x == hi``, exactly as ``numpy.histogram`` assigns them (including its
corrections for rounding at the edges).  Values below ``lo`` and above
``hi`` are counted apart; NaN and Inf are skipped (Inf counts as out of
range).
"""
from __future__ import annotations

import numba
import numpy as np

from .moments import as_c_order_3d, padded_rows


@numba.njit(cache=True, nogil=True)
def _hist_row(row, lo, hi, norm, edges, sub):  # pragma: no cover - compiled
    """Counts into four interleaved sub-histograms: neighbouring values of a
    smooth field fall in the same bin, and one histogram would make every
    increment wait for the previous store to the same address."""
    nb = edges.size - 1
    below = 0.0
    above = 0.0
    for k in range(row.size):
        lane = k & 3
        x = np.float64(row[k])
        if x != x:
            continue
        if x < lo:
            below += 1.0
        elif x > hi:
            above += 1.0
        else:
            b = min(int((x - lo) * norm), nb - 1)
            if x < edges[b]:
                b -= 1
            elif b < nb - 1 and x >= edges[b + 1]:
                b += 1
            sub[lane, b + 1] += 1.0
    sub[0, 0] += below
    sub[0, nb + 1] += above


@numba.njit(cache=True, nogil=True)
def _hist3(a, ncols, lo, hi, edges, out):  # pragma: no cover - compiled
    norm = (edges.size - 1) / (hi - lo)
    sub = np.zeros((4, out.size))
    n0, n1, n2 = a.shape
    for i in range(n0):
        for j in range(n1):
            _hist_row(a[i, j, :ncols], lo, hi, norm, edges, sub)
    for b in range(out.size):
        out[b] += sub[0, b] + sub[1, b] + sub[2, b] + sub[3, b]


def histogram(view: np.ndarray, lo: float, hi: float, nbins: int,
              out: np.ndarray | None = None) -> np.ndarray:
    """Counts as float64: ``[below, bin 0, ..., bin nbins-1, above]``.

    ``out`` is zeroed first; counts stay exact in float64 up to 2**53."""
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"histogram range [{lo}, {hi}] must be finite and increasing")
    if nbins < 1:
        raise ValueError(f"histogram needs at least one bin, got {nbins}")
    if out is None:
        out = np.zeros(nbins + 2)
    else:
        out[:] = 0.0
    if view.ndim == 4:  # slice by slice; counts add exactly
        from .slices import along, slowest_axis
        part = np.zeros(nbins + 2)
        for s in along(view, slowest_axis(view)):
            out += histogram(s, lo, hi, nbins, part)
        return out
    edges = np.linspace(lo, hi, nbins + 1)
    a = as_c_order_3d(view)
    ncols = a.shape[2]
    _hist3(padded_rows(a), ncols, float(lo), float(hi), edges, out)
    return out


def quantiles_from_counts(counts: np.ndarray, below: float, above: float,
                          edges: np.ndarray, qs) -> np.ndarray:
    """Quantiles from binned counts, linear within the bin that holds them.

    The error is at most one bin width.  A quantile that falls among the
    out-of-range values, or of an empty histogram, is NaN.
    """
    total = below + counts.sum() + above
    out = np.full(len(qs), np.nan)
    if total == 0:
        return out
    cum = below + np.concatenate([[0.0], np.cumsum(counts)])
    for i, q in enumerate(qs):
        target = q * total
        if target < below or target > cum[-1]:
            continue
        k = int(np.searchsorted(cum, target, side="left"))
        k = min(max(k, 1), len(counts))
        c = counts[k - 1]
        frac = 0.5 if c == 0 else (target - cum[k - 1]) / c
        out[i] = edges[k - 1] + frac * (edges[k] - edges[k - 1])
    return out
