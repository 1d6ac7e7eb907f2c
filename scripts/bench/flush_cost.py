"""What the durable flush costs, and what the default policy leaves of it.

``mpiexec -n N python scripts/bench/flush_cost.py [--quick] [--pairs 5]``

A session with the standard statistics (8) and a zonal mean (a distributed
result) of a small slab per rank (64x64, so the I/O path dominates) writes S
output steps under three flush policies, in interleaved rounds (every step,
default, finalize only, every step, ...: the machine is shared and noisy):

* ``every step``: ``flush_every_steps: 1``, an ``H5Fflush`` (and its fsync)
  at every output step, the old default;
* ``default``: ``flush_seconds: 10``, a durable flush at most every 10 s;
* ``finalize only``: ``flush_seconds: null``, no durable flush until
  finalize (the floor: the rows wait in memory and are written, in one
  block per dataset, at finalize).

Each run times every ``step`` call on every rank (kernel, reduction,
keeping the row, and the flush, with its growth and writes, when due); a run's figure is the slowest rank's
mean.  Reported: the median and spread (min-max) of each policy over the
rounds, and of the per-round difference from ``finalize only``: the cost of
the flushes spread over the output steps.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, interleave, print_header, save, scaled,  # noqa: E402
                    shared_tmpdir, summarize, table, time_steps)

POLICIES = {"every step": {"flush_every_steps": 1, "flush_seconds": None},
            "default": {},
            "finalize only": {"flush_seconds": None}}


def one_run(comm, api, tmp, policy: str, steps: int, n: int) -> float:
    name = policy.replace(" ", "_")
    cfg = {"output": {"path": os.path.join(tmp, f"{name}.h5"), "overwrite": True,
                      **POLICIES[policy]},
           "fields": {"T": {"dims": ["y", "x"]}},
           "analyses": [{"kind": "stats", "field": "T"},
                        {"kind": "reduce", "field": "T", "over": ["x"]}],
           "log_level": "WARNING"}
    api.init(comm, cfg)
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    api.expose("T", np.random.default_rng(comm.rank).normal(280, 5, (n, n)))
    _, slowest = time_steps(comm, api, steps)
    api.finalize()
    return slowest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--pairs", type=int, default=MIN_PAIRS,
                   help=f"interleaved rounds (default and minimum {MIN_PAIRS})")
    args = p.parse_args()
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    pairs, steps, n = (2, 10, 32) if args.quick else (max(args.pairs, MIN_PAIRS), 400, 64)
    tmp = shared_tmpdir(comm, "insitu-flush-")
    t = interleave({p: (lambda p=p: one_run(comm, api, tmp, p, steps, n)) for p in POLICIES},
                   pairs)
    if comm.rank == 0:
        floor = t["finalize only"]
        rows = []
        for policy, samples in t.items():
            rows.append({"ranks": comm.size, "flush": policy,
                         "ms_per_step": scaled(summarize(samples), 1e3),
                         "minus_finalize_only_ms": summarize(
                             [(a - b) * 1e3 for a, b in zip(samples, floor)])})
        print_header()
        print(f"flush cost: {comm.size} rank(s), {pairs} interleaved rounds of {steps} output "
              f"steps, stats + zonal mean of a {n}x{n} slab per rank; the slowest rank's mean "
              "ms per step, median (min-max)")
        print(table(rows, ["flush", "ms_per_step", "minus_finalize_only_ms"]))
        print(f"wrote {save(f'flush_cost_n{comm.size}', {'ranks': comm.size, 'steps': steps, 'pairs': pairs, 'rows': rows, 'quick': args.quick})}")
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
