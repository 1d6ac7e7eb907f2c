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

from .moments import as_c_order_3d


@numba.njit(cache=True, nogil=True)
def _hist3(a, lo, hi, edges, out):  # pragma: no cover - compiled
    nb = edges.size - 1
    norm = nb / (hi - lo)
    n0, n1, n2 = a.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                x = float(a[i, j, k])
                if x != x:
                    continue
                if x < lo:
                    out[0] += 1.0
                elif x > hi:
                    out[nb + 1] += 1.0
                else:
                    b = int((x - lo) * norm)
                    if b >= nb:
                        b = nb - 1
                    if x < edges[b]:
                        b -= 1
                    elif b < nb - 1 and x >= edges[b + 1]:
                        b += 1
                    out[b + 1] += 1.0


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
    edges = np.linspace(lo, hi, nbins + 1)
    _hist3(as_c_order_3d(view), float(lo), float(hi), edges, out)
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
