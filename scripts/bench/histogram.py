"""The histogram kernel against numpy.histogram, per value.

``python scripts/bench/histogram.py [--quick] [--baseline REF] [--cpu-time]``: float32
and float64 slabs of 1e4, 1e6 and 2**25 values (the last 128/256 MiB,
beyond every cache), two kinds of data: noise (``normal(288, 15)``, values
jump between bins) and a smooth field (a 2-D sine pattern as a model's
field looks: long runs in the same bin, where increments of one counter
wait on each other), the smooth one also as a halo-sliced view.  64 bins
over [230, 350] (values outside count as below/above).  Interleaved
rounds (A B A B ...) of :func:`insitu.kernels.histogram.histogram`,
``numpy.histogram`` and, with ``--baseline REF``, the kernel of another
git revision; reported: median and spread (min-max) of ns per value and of
the per-round speed-up over the baseline (target: 3x, issue 12).
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_header, save, table  # noqa: E402
from kernels import baseline_module, clock_name, interleaved, parse_args, spread  # noqa: E402

LO, HI, BINS = 230.0, 350.0, 64


def smooth(n: int, dtype, halo: bool):
    side = int(np.sqrt(n))
    y, x = np.meshgrid(np.linspace(0, 3, side + 2), np.linspace(0, 5, side + 2), indexing="ij")
    f = (290.0 + 40.0 * np.sin(x) * np.cos(y)).astype(dtype)
    return f[1:-1, 1:-1] if halo else np.ascontiguousarray(f[1:-1, 1:-1])


def main() -> int:
    args = parse_args(__doc__)
    from insitu.kernels import histogram as kh
    impls = {"new": kh}
    if args.baseline:
        impls["baseline"] = baseline_module(args.baseline, "kernels.histogram")
    sizes = [10**4, 10**5] if args.quick else [10**4, 10**6, 2**25]
    print_header()
    print(f"{args.pairs} interleaved rounds; clock: {clock_name()}; {BINS} bins over "
          f"[{LO}, {HI}]; baseline: {args.baseline or 'none'}")
    rows = []
    for dtype in (np.float32, np.float64):
        for n in sizes:
            cases = {"noise": np.random.default_rng(0).normal(288.0, 15.0, n).astype(dtype),
                     "smooth": smooth(n, dtype, False), "smooth halo": smooth(n, dtype, True)}
            for data, x in cases.items():
                out = np.zeros(BINS + 2)
                fns = {"numpy.histogram": lambda: np.histogram(x, BINS, (LO, HI))}
                for name, mod in impls.items():
                    mod.histogram(x[:3], LO, HI, BINS, out)  # compile
                    fns[name] = (lambda mod=mod: mod.histogram(x, LO, HI, BINS, out))
                t = interleaved(fns, args.pairs)
                row = {"dtype": np.dtype(dtype).name, "values": x.size, "data": data}
                for name in fns:
                    row[f"{name}_ns"] = spread(t[name] / x.size * 1e9)
                if args.baseline:
                    row["speedup"] = spread(t["baseline"] / t["new"])
                row["vs_numpy"] = spread(t["numpy.histogram"] / t["new"])
                rows.append(row)
    cols = ["dtype", "values", "data"] + [f"{k}_ns" for k in ["numpy.histogram", *impls]]
    cols += (["speedup"] if args.baseline else []) + ["vs_numpy"]
    print("histogram kernel, ns per value (1 thread); median (min-max) over rounds")
    print(table(rows, cols))
    path = save("histogram", {"rows": rows, "quick": args.quick, "pairs": args.pairs,
                          "baseline": args.baseline, "clock": clock_name()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
