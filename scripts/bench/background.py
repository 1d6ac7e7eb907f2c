"""The model's time per output step with the inline and the background writer.

``mpiexec -n N python scripts/bench/background.py [--quick] [--pairs 5]``

A stand-in model (a 5-point stencil in numpy on an ``n x n`` slab per rank,
no halo exchange: the model's own work, which numpy runs without the GIL)
calls ``insitu.api.step`` at every step, every step an output step with 10
``stats`` analyses and a zonal mean (a distributed result), under two flush
policies:

* ``every step``: ``flush_every_steps: 1``, where the flush's cost (growth,
  writes, agreement, ``H5Fflush`` with its fsync) is visible at every step;
* ``default``: ``flush_seconds: 10``, at most one flush in a run this short
  plus the one at finalize.

For each policy, ``output.writer: inline`` and ``background`` run in
interleaved pairs (inline, background, inline, ...; the machine is shared).
A run's figure is the slowest rank's mean wall time per step of the model's
loop (the stencil plus ``api.step``), without a barrier per step, as a model
runs; ``finalize`` is timed apart (the background writer's close waits for
its queue).  Reported: median and spread (min-max) of each, and of the
per-pair ratio background / inline.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, compare, interleave, print_header, save, scaled,  # noqa: E402
                    shared_tmpdir, summarize, table)

POLICIES = {"every step": {"flush_every_steps": 1, "flush_seconds": None},
            "default": {}}
WRITERS = ("inline", "background")
ANALYSES = [{"kind": "stats", "field": "T", "name": f"s{i}"} for i in range(10)] + \
           [{"kind": "reduce", "field": "T", "over": ["x"]}]


def one_run(comm, api, tmp, policy: str, writer: str, steps: int, n: int) -> tuple:
    """(slowest rank's loop seconds per step, slowest rank's finalize s)."""
    from mpi4py import MPI
    cfg = {"output": {"path": os.path.join(tmp, f"{writer}.h5"), "overwrite": True,
                      "writer": writer, **POLICIES[policy]},
           "fields": {"T": {"dims": ["y", "x"]}},
           "analyses": ANALYSES, "log_level": "WARNING"}
    api.init(comm, cfg)
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    t = np.random.default_rng(comm.rank).normal(280, 5, (n, n))
    new = np.empty_like(t)
    api.expose("T", t)
    api.step(1, 1.0)  # defines the file, loads the kernels
    comm.Barrier()
    t0 = time.perf_counter()
    for s in range(2, steps + 2):
        # the model: a 5-point stencil, in place of t (exposed once)
        new[1:-1, 1:-1] = 0.25 * (t[:-2, 1:-1] + t[2:, 1:-1] + t[1:-1, :-2] + t[1:-1, 2:])
        np.copyto(t[1:-1, 1:-1], new[1:-1, 1:-1])
        api.step(s, float(s))
    loop = (time.perf_counter() - t0) / steps
    t1 = time.perf_counter()
    api.finalize()
    fin = time.perf_counter() - t1
    return comm.allreduce(loop, op=MPI.MAX), comm.allreduce(fin, op=MPI.MAX)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--pairs", type=int, default=MIN_PAIRS,
                   help=f"interleaved pairs (default and minimum {MIN_PAIRS})")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n", type=int, default=512, help="slab side per rank")
    args = p.parse_args()
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    pairs, steps, n = (2, 10, 32) if args.quick else (max(args.pairs, MIN_PAIRS), args.steps,
                                                       args.n)
    tmp = shared_tmpdir(comm, "insitu-background-")
    rows = []
    for policy in POLICIES:
        fin: dict = {w: [] for w in WRITERS}

        def run(w, policy=policy, fin=fin):
            loop, f = one_run(comm, api, tmp, policy, w, steps, n)
            fin[w].append(f)
            return loop
        t = interleave({w: (lambda w=w: run(w)) for w in WRITERS}, pairs)
        c = compare(t["inline"], t["background"])
        for w in WRITERS:
            rows.append({"ranks": comm.size, "flush": policy, "writer": w,
                         "ms_per_step": scaled(summarize(t[w]), 1e3),
                         "finalize_ms": scaled(summarize(fin[w]), 1e3),
                         "background/inline": c["ratio"] if w == "background" else None})
    if comm.rank == 0:
        print_header()
        print(f"background writer: {comm.size} rank(s), {pairs} interleaved pairs of {steps} "
              f"steps, each an output step (10 stats + a zonal mean) of a {n}x{n} slab per "
              "rank after a 5-point numpy stencil; the slowest rank's mean ms per step of the "
              "loop, median (min-max), and the per-pair ratio; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(table(rows, ["flush", "writer", "ms_per_step", "background/inline",
                           "finalize_ms"]))
        print(f"wrote {save(f'background_n{comm.size}', {'ranks': comm.size, 'steps': steps, 'n': n, 'pairs': pairs, 'rows': rows, 'quick': args.quick, 'loadavg': os.getloadavg()})}")
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
