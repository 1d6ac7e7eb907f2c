"""The one-pass statistics kernel against numpy.sum, in cache and beyond it.

``python scripts/bench/kernels.py [--quick] [--baseline REF] [--cpu-time]``:
float32 and float64 slabs in L1 (32 KiB), in L2 (512 KiB) and beyond every
cache (256 MiB and 1 GiB; not with ``--quick``), contiguous and halo-sliced.  The
compared calls run interleaved, A B A B ... (``--pairs`` rounds, 7 by
default; the machine is shared, so drift hits every contender alike): ``numpy.sum`` over the same
bytes (the bandwidth reference), ``insitu.kernels.moments.moments`` (count,
sum, mean, M2, min, max, NaN and Inf counts in one read of the data) on the
array and on a halo-sliced view of the same size, and with ``--baseline``
the kernel of another git revision (say ``HEAD~1``), checked out into a
scratch directory.  A sample of an in-cache size repeats the call until it
takes about a millisecond.  Reported: the median and the spread (min-max)
of each contender's bandwidth, and of the per-round ratio to
``numpy.sum`` ("of_sum": >= 0.7 is the target, issue 12).  numpy's
separate passes (isfinite, sum, mean, var, min, max, isnan, isinf) are
timed too, a few rounds.  One thread; the machine line says which CPU.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MIN_PAIRS, interleave, print_header, save, summarize, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(doc: str, pairs: int = 7) -> argparse.Namespace:
    """--quick (the suite's check: 3 rounds), --baseline REF, --pairs N
    (at least MIN_PAIRS for a measurement) and --cpu-time."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--baseline", metavar="REF",
                   help="also time the kernels of this git revision, interleaved")
    p.add_argument("--pairs", type=int, default=None,
                   help=f"interleaved rounds (default {pairs}; 3 with --quick)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the thread's CPU clock instead of the wall clock: on a "
                        "machine shared with other work it leaves out the time this "
                        "thread waited for a core (cache and memory contention remain)")
    args = p.parse_args()
    if args.pairs is None:
        args.pairs = 3 if args.quick else pairs
    elif not args.quick:
        args.pairs = max(args.pairs, MIN_PAIRS)
    set_clock(args.cpu_time)
    return args


_CLOCK = {"fn": time.perf_counter, "name": "wall"}


def set_clock(cpu_time: bool) -> None:
    _CLOCK.update(fn=time.thread_time if cpu_time else time.perf_counter,
                  name="thread CPU time" if cpu_time else "wall")


def clock_name() -> str:
    return _CLOCK["name"]


_BASELINES: dict = {}


def baseline_module(ref: str, name: str):
    """Module ``insitu.<name>`` of git revision ``ref``, imported from a
    scratch copy of that revision's package named ``insitu_baseline`` (its
    relative imports stay inside it; its numba cache goes to the copy)."""
    import importlib
    if ref not in _BASELINES:
        if _BASELINES:
            raise ValueError("one baseline revision per run")
        _BASELINES[ref] = _checkout(ref)
    return importlib.import_module(f"insitu_baseline.{name}")


def _checkout(ref: str) -> str:
    tmp = tempfile.mkdtemp(prefix="insitu-baseline-")
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "insitu"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    os.rename(os.path.join(tmp, "insitu"), os.path.join(tmp, "insitu_baseline"))
    sys.path.insert(0, tmp)
    return tmp


def per_call(fn, target: float = 1e-3):
    """``fn`` wrapped to return its seconds per call: a sample repeats the
    call until it lasts about ``target`` seconds (an in-cache size takes
    microseconds; one call would time the timer).  The count is fixed once,
    so every sample of a contender makes the same calls."""
    clock = _CLOCK["fn"]
    fn()
    t0 = time.perf_counter()
    fn()
    calls = max(1, int(target / max(time.perf_counter() - t0, 1e-7)))

    def sample() -> float:
        t0 = clock()
        for _ in range(calls):
            fn()
        return (clock() - t0) / calls
    return sample


def interleaved(fns: dict, pairs: int, target: float = 1e-3) -> dict:
    """Seconds per call of each of ``fns`` as arrays, ``pairs`` rounds, the
    contenders taking turns within each round (common.interleave)."""
    samples = interleave({k: per_call(f, target) for k, f in fns.items()}, pairs)
    return {k: np.asarray(v) for k, v in samples.items()}


def spread(values) -> dict:
    """The summary (median, min, max, n) of per-round figures."""
    return summarize(np.asarray(values, dtype=float).tolist())


def numpy_stats(x):
    fin = np.isfinite(x)
    return (np.count_nonzero(fin), np.sum(x), np.mean(x), np.var(x), np.min(x), np.max(x),
            np.count_nonzero(np.isnan(x)), np.count_nonzero(np.isinf(x)))


def halo_view(n: int, dtype, seed: int):
    """A 2-D view of about ``n`` values inside a one-cell halo (strided rows)."""
    side = int(np.sqrt(n))
    return np.random.default_rng(seed).normal(288.0, 15.0, (side + 2, side + 2)) \
        .astype(dtype)[1:-1, 1:-1]


def main() -> int:
    args = parse_args(__doc__)
    from insitu.kernels.moments import moments
    kernels = {"new": moments}
    if args.baseline:
        kernels["baseline"] = baseline_module(args.baseline, "kernels.moments").moments
    sizes = [2**15, 2**19] if args.quick else [2**15, 2**19, 2**28, 2**30]
    print_header()
    print(f"{args.pairs} interleaved rounds; clock: {clock_name()}; "
          f"baseline: {args.baseline or 'none'}")
    rows = []
    for dtype in (np.float32, np.float64):
        for nbytes in sizes:
            n = nbytes // np.dtype(dtype).itemsize
            x = np.random.default_rng(0).normal(288.0, 15.0, n).astype(dtype)
            halo = halo_view(n, dtype, 1)
            out = np.empty(11)
            fns = {"numpy.sum": lambda: np.sum(x)}
            for name, k in kernels.items():
                k(x[:64])
                k(halo[:8, :8])
                fns[name] = (lambda k=k: k(x, out))
                fns[f"{name} halo"] = (lambda k=k: k(halo, out))
            t = interleaved(fns, args.pairs)
            t_np = interleaved({"numpy passes": lambda: numpy_stats(x)}, 3)["numpy passes"]
            row = {"dtype": np.dtype(dtype).name, "bytes": nbytes,
                   "numpy_sum_GBps": spread(nbytes / t["numpy.sum"] / 1e9)}
            for name in kernels:
                row[f"{name}_GBps"] = spread(nbytes / t[name] / 1e9)
                row[f"{name}_of_sum"] = spread(t["numpy.sum"] / t[name])
                row[f"{name}_halo_GBps"] = spread(halo.nbytes / t[f"{name} halo"] / 1e9)
            row["vs_numpy_passes"] = spread(np.median(t_np) / t["new"])
            rows.append(row)
            print(f"  {row['dtype']} {nbytes} B done", flush=True)
    cols = ["dtype", "bytes", "numpy_sum_GBps"]
    for name in kernels:
        cols += [f"{name}_GBps", f"{name}_of_sum", f"{name}_halo_GBps"]
    cols.append("vs_numpy_passes")
    print("one-pass statistics kernel vs numpy.sum (1 thread); median (min-max) over rounds")
    print(table(rows, cols))
    path = save("kernels", {"rows": rows, "quick": args.quick, "pairs": args.pairs,
                          "baseline": args.baseline, "clock": clock_name()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
