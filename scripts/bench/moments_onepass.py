"""The moments kernel now against the kernel before its one-pass change, per
field and cache state.

``python scripts/bench/moments_onepass.py [--quick] [--rounds 7] [--calls 11]
[--cpu-time]``:
``insitu.kernels.moments.moments`` (the one-pass block) against the
two-pass kernel of f71089d, which the tests keep as a frozen copy
(``tests/moments_before_onepass.py``, imported here by its path), on three
float64 fields: a 1000x1000 halo view (``[1:-1, 1:-1]``) of a 1002x1002
Fortran-order array (the heat model's T), a contiguous vector of 2e6
values (16 MB, beyond L2) and an 8x180x360 C-order field; each in three
cache states: **hot** (the call right after the same call), **after a
stencil** (a numba five-point heat stencil has just written the whole
array from a second one, as a model step does before insitu's due step),
and **after a sweep** (64 MB read in between: the field is out of every
cache).  A sample is the median of ``--calls`` timed calls of one
contender, each right after its state's preparation; a round takes one
sample of every contender of every case, the contenders in turn, the
start rotating from round to round (common.interleave).  Reported per case:
each kernel's median and spread (min-max) over the rounds, in us per call,
and the median and spread of the per-round ratio now / before.  Both
kernels' results are checked to agree first (every field but M2 bit-equal,
M2 to 1e-12 relative).  One thread (NUMBA_NUM_THREADS=1); the machine line
says which CPU.  JSON: ``bench-results/moments_onepass.json``.

Why: this comparison was made by hand when the one-pass block landed
(docs/kernels.md); as a script it can be rerun on another CPU, under
another load, and after the next change to either kernel.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, ROOT, describe_machine, fmt, interleave,  # noqa: E402
                    print_header, ratios, save, summarize, table)

BEFORE = ROOT / "tests" / "moments_before_onepass.py"
SWEEP_BYTES = 64 * 2**20
ROUNDS, CALLS = 7, 11


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="2 rounds of 3 calls, the sweep 8 MB: to check it works")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"interleaved rounds (default {ROUNDS}, at least {ROUNDS})")
    p.add_argument("--calls", type=int, default=None,
                   help=f"timed calls per sample, their median is the sample (default {CALLS})")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the thread's CPU clock instead of the wall clock: on a "
                        "loaded machine it leaves out the time this thread waited for a "
                        "core (cache and memory contention remain)")
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.calls, a.sweep = a.rounds or 2, a.calls or 3, 8 * 2**20
    else:
        a.rounds = max(a.rounds or ROUNDS, ROUNDS, MIN_PAIRS)
        a.calls, a.sweep = a.calls or CALLS, SWEEP_BYTES
    return a


def load_before():
    """The frozen two-pass kernel, imported from its file: it lives among
    the tests, which are not a package.  Registered under its name before
    it runs: numba's cache of its kernels (shared with the tests') finds
    their module by that name."""
    spec = importlib.util.spec_from_file_location("moments_before_onepass", BEFORE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.moments


@numba.njit(cache=True, nogil=True)
def heat_stencil(out, src, k):  # pragma: no cover - compiled
    """One explicit heat step on C-ordered 2-D arrays: ``out`` gets ``src``
    plus ``k`` times its five-point Laplacian inside, ``src`` on the edges.
    ``out``'s values are the same every call (``src`` does not change), so
    the kernels' timings are of the same data; what changes is that every
    line of ``out`` was just written, as after a model's step."""
    n0, n1 = src.shape
    for j in range(n1):
        out[0, j] = src[0, j]
        out[n0 - 1, j] = src[n0 - 1, j]
    for i in range(1, n0 - 1):
        out[i, 0] = src[i, 0]
        for j in range(1, n1 - 1):
            out[i, j] = src[i, j] + k * (src[i - 1, j] + src[i + 1, j] + src[i, j - 1]
                                         + src[i, j + 1] - 4.0 * src[i, j])
        out[i, n1 - 1] = src[i, n1 - 1]


@numba.njit(cache=True, nogil=True)
def sweep(buf):  # pragma: no cover - compiled
    """Read every value of ``buf`` (what evicts the field from the caches)."""
    s = 0.0
    for i in range(buf.size):
        s += buf[i]
    return s


class Field:
    """A field the kernels read (``view``), the array a stencil writes
    (``base``, seen as C-ordered 2-D rows ``rows``) and its source."""

    def __init__(self, name: str, base: np.ndarray, view: np.ndarray, rows: np.ndarray):
        self.name, self.base, self.view, self.rows = name, base, view, rows
        self.src = rows.copy()  # C-ordered, as rows
        heat_stencil(rows, self.src, 0.1)  # the values every later stencil writes


def fields() -> list[Field]:
    rng = np.random.default_rng(12)
    t = np.asfortranarray(rng.normal(288.0, 15.0, (1002, 1002)))
    v = rng.normal(288.0, 15.0, 2_000_000)
    c = rng.normal(288.0, 15.0, (8, 180, 360))
    # a Fortran array's transpose is C-ordered: the stencil walks it along
    # the model's fastest axis, and the five-point stencil is symmetric
    return [Field("1000x1000 Fortran halo view", t, t[1:-1, 1:-1], t.T),
            Field("2e6 contiguous float64", v, v, v.reshape(2000, 1000)),
            Field("8x180x360 float64", c, c, c.reshape(8 * 180, 360))]


def check_agree(now, before, f: Field) -> None:
    """Both kernels on the field: every statistic but M2 bit-equal (the
    one-pass change moved M2 only), M2 to 1e-12 relative."""
    a, b = now(f.view), before(f.view)
    from insitu.kernels.moments import FIELDS, M2 as m2
    same = [i for i in range(len(FIELDS)) if i != m2]
    if not (np.array_equal(a[same], b[same]) and abs(a[m2] - b[m2]) <= 1e-12 * abs(b[m2])):
        raise SystemExit(f"{f.name}: the kernels disagree: {a} against {b}")


def sample(kernel, f: Field, state: str, calls: int, buf: np.ndarray, out: np.ndarray,
           clock=time.perf_counter):
    """The median of ``calls`` timed calls, each after its state's
    preparation (nothing when hot: the previous call warmed it)."""
    def run() -> float:
        times = []
        kernel(f.view, out)  # warm: a hot call follows a call
        for _ in range(calls):
            if state == "after a stencil":
                heat_stencil(f.rows, f.src, 0.1)
            elif state == "after a sweep":
                sweep(buf)
            t0 = clock()
            kernel(f.view, out)
            times.append(clock() - t0)
        return statistics.median(times) * 1e6
    return run


STATES = ("hot", "after a stencil", "after a sweep")


def main(argv=None) -> int:
    args = parse_args(argv)
    from insitu.kernels.moments import FIELDS
    from insitu.kernels.moments import moments as now
    before = load_before()
    buf = np.random.default_rng(3).random(args.sweep // 8)
    sweep(buf)
    out = np.empty(len(FIELDS))
    fs = fields()
    for f in fs:
        check_agree(now, before, f)
        heat_stencil(f.rows, f.src, 0.1)
    kernels = {"now": now, "before": before}
    clock = time.thread_time if args.cpu_time else time.perf_counter
    contenders = {(f.name, s, k): sample(fn, f, s, args.calls, buf, out, clock)
                  for f in fs for s in STATES for k, fn in kernels.items()}
    t = interleave({" | ".join(key): fn for key, fn in contenders.items()}, args.rounds)
    rows = []
    for f in fs:
        for s in STATES:
            now_us = t[f"{f.name} | {s} | now"]
            before_us = t[f"{f.name} | {s} | before"]
            rows.append({"field": f.name, "state": s,
                         "before_us": summarize(before_us), "now_us": summarize(now_us),
                         "now_over_before": summarize(ratios(now_us, before_us))})
    print_header()
    print(f"moments kernel now against before the one-pass change "
          f"(tests/moments_before_onepass.py, f71089d); one thread; {args.rounds} "
          f"interleaved rounds (rotating start), a sample the median of {args.calls} calls "
          f"each right after its state; sweep {args.sweep // 2**20} MB; clock: "
          f"{'thread CPU time' if args.cpu_time else 'wall'}; us per call, "
          "median (min-max) over the rounds; the ratio per round")
    print(table(rows, ["field", "state", "before_us", "now_us", "now_over_before"]))
    for r in rows:
        print(f"{r['field']}, {r['state']}: {fmt(r['before_us'])} -> {fmt(r['now_us'])} us, "
              f"now/before {fmt(r['now_over_before'])}")
    path = save("moments_onepass", {"rows": rows, "quick": args.quick, "pairs": args.rounds,
                                    "calls": args.calls, "sweep_bytes": args.sweep,
                                    "clock": "thread CPU" if args.cpu_time else "wall",
                                    "machine_line": describe_machine()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
