"""Rows of a halo-sliced view described as C-contiguous memory, for the
vector kernels (kernels/simd.py).

A halo-sliced view's rows are contiguous but spaced by the padded row
length, so numba types the view as layout 'A'; a vector load of an 'A'
array carries a run-time branch for strided rows, which LLVM does not
hoist out of a kernel's loop (kernels.moments found it costing some 20
integer additions per 16 values: 05b7d23).  Re-described with rows of the
padded length, the same memory is C-contiguous; a kernel given the real
row length reads only the first values of each row, all inside the view.
kernels.moments.padded_rows does this for 3-D views, and
kernels.moments._c_rows inside a kernel (the extremes use it: from Python
the description costs some 3 us a call); :func:`padded`, for any number
of axes, once per view for the exceedance (kernels.weighted.Prepared).
"""
from __future__ import annotations

import numpy as np


def padded(a: np.ndarray) -> np.ndarray:
    """``a`` (any number of axes, the last one contiguous) re-described with
    rows of the padded length, the stride of its next-to-last axis, so that
    numba types it as C-contiguous and loads its rows as vectors without a
    strided path (the rows of a halo-sliced view are contiguous but spaced
    by the padded row: numba types them 'A', and a vector load of an 'A'
    array keeps a branch for strided rows that LLVM does not hoist).  No
    copy: the kernel reads the first ``a.shape[-1]`` values of each row, all
    inside ``a``, never the padding.  ``a`` itself when no such
    description exists (then the kernels run on the strided layout, slower,
    with the same results); as kernels.moments.padded_rows, any number of
    axes."""
    if a.ndim < 2 or a.size == 0 or a.flags.c_contiguous:
        return a
    size = a.itemsize
    if a.strides[-1] != size or a.strides[-2] % size or a.strides[-2] < a.shape[-1] * size:
        return a
    p = np.lib.stride_tricks.as_strided(
        a, shape=a.shape[:-1] + (a.strides[-2] // size,), strides=a.strides[:-1] + (size,),
        writeable=False)
    return p if p.flags.c_contiguous else a
