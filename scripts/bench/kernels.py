"""The one-pass statistics kernel against numpy and against memory bandwidth.

``python scripts/bench/kernels.py [--quick]``: float32 and float64 slabs from
in-cache (8 KiB) to 1 GiB, contiguous and halo-sliced.  For each: the best
time of ``insitu.kernels.moments.moments`` (count, sum, mean, M2, min, max,
NaN and Inf counts in one pass), of numpy computing the same statistics in
separate passes, and of ``numpy.sum`` over the same bytes (the bandwidth
reference).  One thread.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best, quick_flag, save, table  # noqa: E402



def numpy_stats(x):
    fin = np.isfinite(x)
    return (np.count_nonzero(fin), np.sum(x), np.mean(x), np.var(x), np.min(x), np.max(x),
            np.count_nonzero(np.isnan(x)), np.count_nonzero(np.isinf(x)))


def main() -> int:
    quick = quick_flag(__doc__)
    from insitu.kernels.moments import moments
    sizes = [2**13, 2**20] if quick else [2**13, 2**16, 2**20, 2**23, 2**26, 2**30]
    rows = []
    for dtype in (np.float64, np.float32):
        for nbytes in sizes:
            n = nbytes // np.dtype(dtype).itemsize
            side = int(np.sqrt(n))
            x = np.random.default_rng(0).normal(288.0, 15.0, n).astype(dtype)
            halo = np.random.default_rng(1).normal(288.0, 15.0, (side + 2, side + 2)) \
                .astype(dtype)[1:-1, 1:-1]
            moments(x[:16])
            moments(halo[:4, :4])
            repeat = 3 if nbytes >= 2**26 else 10
            t_k = best(lambda: moments(x), repeat)
            t_h = best(lambda: moments(halo), repeat)
            t_np = best(lambda: numpy_stats(x), max(2, repeat // 3))
            t_sum = best(lambda: np.sum(x), repeat)
            rows.append({"dtype": np.dtype(dtype).name, "bytes": nbytes,
                         "kernel_ms": t_k * 1e3, "numpy_passes_ms": t_np * 1e3,
                         "speedup": t_np / t_k, "kernel_GBps": nbytes / t_k / 1e9,
                         "halo_view_GBps": halo.nbytes / t_h / 1e9,
                         "numpy_sum_GBps": nbytes / t_sum / 1e9,
                         "of_sum_bw": t_sum / t_k})
    print("one-pass statistics kernel vs numpy (1 thread)")
    print(table(rows, ["dtype", "bytes", "kernel_ms", "numpy_passes_ms", "speedup",
                       "kernel_GBps", "halo_view_GBps", "numpy_sum_GBps", "of_sum_bw"]))
    print(f"wrote {save('kernels', {'rows': rows, 'quick': quick})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
