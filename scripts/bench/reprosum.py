"""Cost of the reproducible (exact fixed-point) local sum against the plain one.

``python scripts/bench/reprosum.py [--quick]``: for float64 slabs from 1e3
to 1e8 values, the best of several runs of ``numpy.sum`` and of
:func:`insitu.kernels.reprosum.local_words` (both single-threaded, one
pass over the data).  The cross-rank part is one int64 Allreduce of 4
words per sum, negligible next to these.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best, quick_flag, save, table  # noqa: E402



def main() -> int:
    quick = quick_flag(__doc__)
    from insitu.kernels import reprosum as rs
    sizes = [10**3, 10**5] if quick else [10**3, 10**4, 10**5, 10**6, 10**7, 10**8]
    rows = []
    for n in sizes:
        x = np.random.default_rng(0).normal(288.0, 15.0, n)
        T = rs.grid_exponent(np.abs(x).max())
        words = np.zeros(rs.WORDS, dtype=np.int64)
        rs.local_words(x[:10], T, words)  # compile
        repeat = 3 if n >= 10**7 else 20
        t_np = best(lambda: np.sum(x), repeat)
        t_rs = best(lambda: rs.local_words(x, T, words), repeat)
        rows.append({"values": n, "numpy_sum_ms": t_np * 1e3, "reprosum_ms": t_rs * 1e3,
                     "ratio": t_rs / t_np, "reprosum_GBps": x.nbytes / t_rs / 1e9})
    print("reproducible local sum vs numpy.sum (float64, 1 thread)")
    print(table(rows, ["values", "numpy_sum_ms", "reprosum_ms", "ratio", "reprosum_GBps"]))
    print(f"wrote {save('reprosum', {'rows': rows, 'quick': quick})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
