"""Rank-4 fields, on kernels written for 1 to 3 dimensions.

A 4-D view is taken slice by slice along its slowest axis in memory (each
slice a free 3-D view, no data copied), and the slices' partial results
are merged the way ranks' partials are: counts and sums added, moments
merged with :func:`insitu.reduction.chan_merge`, minima and maxima taken.
A model's 4-D field (x, y, level, member, say) thus costs one kernel call
per slice of its slowest axis, which is small next to the slice's work.
"""
from __future__ import annotations

import numpy as np


def slowest_axis(view: np.ndarray) -> int:
    """The axis with the largest stride: slices along it are contiguous-ish."""
    return int(np.argmax(np.abs(view.strides))) if view.size else 0


def along(view: np.ndarray, k: int):
    """The 3-D slices of ``view`` along axis ``k`` (views, not copies)."""
    for i in range(view.shape[k]):
        yield view[(slice(None),) * k + (i,)]
