"""Block means of the finite values of a slab by integer factors.

The ``coarsen`` analysis no longer calls this: its blocks are the weighted
row kernel's with a broadcast 1.0 (:class:`insitu.kernels.weighted.Accumulation`),
which adds rows element by element and ran 2.7x faster on the benchmark's
field (docs/analyses.md, Cost).  This one, a loop over each block's values,
stays as the plain statement of a block mean (tests/test_kernels.py)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _coarsen3(a, f0, f1, f2, out):  # pragma: no cover - compiled
    c0, c1, c2 = out.shape
    for I in range(c0):
        for J in range(c1):
            for K in range(c2):
                s = 0.0
                n = 0.0
                for i in range(I * f0, I * f0 + f0):
                    for j in range(J * f1, J * f1 + f1):
                        for k in range(K * f2, K * f2 + f2):
                            x = np.float64(a[i, j, k])
                            if x == x and abs(x) != np.inf:
                                s += x
                                n += 1.0
                out[I, J, K] = s / n if n > 0.0 else np.nan


def coarsen_mean(view: np.ndarray, factors) -> np.ndarray:
    """Means over blocks of ``factors`` (one per axis) of ``view``.

    The shape along each axis must be a multiple of its factor (the
    analysis checks this for every rank at bind time).  Blocks with no
    finite value are NaN."""
    factors = tuple(int(f) for f in factors)
    if len(factors) != view.ndim:
        raise ValueError(f"{len(factors)} factors for a {view.ndim}-D slab")
    for n, f in zip(view.shape, factors):
        if f < 1 or n % f:
            raise ValueError(f"slab shape {view.shape} is not a multiple of factors {factors}")
    if view.ndim == 4:
        return _coarsen4(view, factors)
    pad = 3 - view.ndim
    a = view[(np.newaxis,) * pad]
    fs = (1,) * pad + factors
    out = np.empty(tuple(n // f for n, f in zip(a.shape, fs)))
    _coarsen3(a, *fs, out)
    return out.reshape(out.shape[pad:])



def _coarsen4(view: np.ndarray, factors) -> np.ndarray:
    """A 4-D view, slice by slice along the first axis: each slice's block
    means and finite counts (a float mask of the slice, the one temporary)
    are combined over the f0 slices of a block into the block's mean."""
    f0, rest = factors[0], factors[1:]
    out = np.empty((view.shape[0] // f0,) + tuple(n // f for n, f in zip(view.shape[1:], rest)))
    for b in range(out.shape[0]):
        total = np.zeros(out.shape[1:])
        count = np.zeros(out.shape[1:])
        for i in range(b * f0, (b + 1) * f0):
            s = view[i]
            ok = np.isfinite(s)
            m = coarsen_mean(s, rest)            # the block means of this slice
            c = coarsen_mean(ok.astype(np.float64), rest) * np.prod(rest)  # their counts
            total += np.where(c > 0, m * c, 0.0)
            count += c
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = np.where(count > 0, total / count, np.nan)
    return out
