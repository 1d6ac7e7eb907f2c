"""Cost of the reproducible (exact fixed-point) local sum against the plain one.

``python scripts/bench/reprosum.py [--quick] [--baseline REF] [--cpu-time]``: float64
slabs of 1e3 to 1e8 values, contiguous and as a halo-sliced 2-D view (a
one-cell halo: what a model hands over).  Interleaved rounds (A B A B ...)
of ``numpy.sum`` and :func:`insitu.kernels.reprosum.local_words` on the same
view, and with ``--baseline`` the ``local_words`` of another git revision.
Reported: the median and spread (min-max) of each time and of the
per-round ratio to ``numpy.sum`` of the same view (target: <= 2 on halo
views, issue 12).  Both single-threaded, one pass over the data; the
cross-rank part is one int64 Allreduce of 4 words per sum, negligible next
to these.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_header, save, table  # noqa: E402
from kernels import baseline_module, clock_name, interleaved, parse_args, spread  # noqa: E402


def main() -> int:
    args = parse_args(__doc__)
    from insitu.kernels import reprosum as rs
    impls = {"new": rs}
    if args.baseline:
        impls["baseline"] = baseline_module(args.baseline, "kernels.reprosum")
    sizes = [10**3, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6, 10**7, 10**8]
    print_header()
    print(f"{args.pairs} interleaved rounds; clock: {clock_name()}; float64; "
          f"baseline: {args.baseline or 'none'}")
    rows = []
    for n in sizes:
        side = int(round(np.sqrt(n)))
        views = {"contiguous": np.random.default_rng(0).normal(288.0, 15.0, n),
                 "halo view": np.random.default_rng(0).normal(
                     288.0, 15.0, (side + 2, side + 2))[1:-1, 1:-1]}
        for layout, x in views.items():
            T = rs.grid_exponent(np.abs(x).max())
            words = np.zeros(rs.WORDS, dtype=np.int64)
            fns = {"numpy.sum": lambda: np.sum(x)}
            for name, mod in impls.items():
                mod.local_words(x[:3], T, words)  # compile
                fns[name] = (lambda mod=mod: mod.local_words(x, T, words))
            t = interleaved(fns, args.pairs)
            row = {"values": x.size, "layout": layout,
                   "numpy_sum_ms": spread(t["numpy.sum"] * 1e3)}
            for name in impls:
                row[f"{name}_ms"] = spread(t[name] * 1e3)
                row[f"{name}_ratio"] = spread(t[name] / t["numpy.sum"])
            rows.append(row)
    cols = ["values", "layout", "numpy_sum_ms"]
    for name in impls:
        cols += [f"{name}_ms", f"{name}_ratio"]
    print("reproducible local sum vs numpy.sum of the same view (1 thread); "
          "median (min-max) over rounds")
    print(table(rows, cols))
    path = save("reprosum", {"rows": rows, "quick": args.quick, "pairs": args.pairs,
                          "baseline": args.baseline, "clock": clock_name()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
