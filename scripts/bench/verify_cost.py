"""What ``output.verify`` costs per output step.

``mpiexec -n N python scripts/bench/verify_cost.py [--quick]``: a session
with the standard statistics and a zonal mean (a distributed result) of a
256x256 slab per rank, flushing every output step, run with verify off and
on in interleaved pairs (off, on, off, on, ...: the machine is shared and
noisy, so the two modes see the same noise; at least 5 pairs, ``--pairs``).
Each run times S output steps on every rank; a run's figure is the slowest
rank's mean.  Reported: the median and spread (min-max) of each mode over
the pairs, and of the per-pair difference (on - off) and ratio (on / off).
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, compare, fmt, interleave, print_header, save,  # noqa: E402
                    scaled, shared_tmpdir, summarize, table, time_steps)


def one_run(comm, api, tmp, verify: bool, steps: int, n: int) -> float:
    # a durable flush at every output step: verify re-reads after each
    # flush, so this is its cost per flushed step
    cfg = {"output": {"path": os.path.join(tmp, f"v{int(verify)}.h5"), "overwrite": True,
                      "verify": verify, "flush_every_steps": 1},
           "fields": {"T": {"dims": ["y", "x"]}},
           "analyses": [{"kind": "stats", "field": "T"},
                        {"kind": "reduce", "field": "T", "over": ["x"]}],
           "log_level": "WARNING"}
    api.init(comm, cfg)
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    a = np.random.default_rng(comm.rank).normal(280, 5, (n, n))
    api.expose("T", a)
    _, slowest = time_steps(comm, api, steps)
    api.finalize()
    return slowest


def main() -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--pairs", type=int, default=MIN_PAIRS,
                   help=f"interleaved off/on pairs (default and minimum {MIN_PAIRS})")
    args = p.parse_args()
    quick = args.quick
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    pairs, steps, n = (2, 10, 64) if quick else (max(args.pairs, MIN_PAIRS), 200, 256)
    tmp = shared_tmpdir(comm, "insitu-verify-")
    t = interleave({"off": lambda: one_run(comm, api, tmp, False, steps, n),
                    "on": lambda: one_run(comm, api, tmp, True, steps, n)}, pairs)
    if comm.rank == 0:
        c = compare(t["off"], t["on"])
        rows = [{"ranks": comm.size, "verify": "off", "ms_per_step": scaled(c["a"], 1e3)},
                {"ranks": comm.size, "verify": "on", "ms_per_step": scaled(c["b"], 1e3),
                 "on_minus_off_ms": summarize(
                     [(b - a) * 1e3 for a, b in zip(t["off"], t["on"])]),
                 "on_over_off": c["ratio"]}]
        print_header()
        print(f"output.verify cost: {comm.size} rank(s), {pairs} interleaved pairs of "
              f"{steps} output steps, stats + zonal mean of a {n}x{n} slab per rank, "
              "flush every step; median (min-max)")
        print(table(rows, ["verify", "ms_per_step", "on_minus_off_ms", "on_over_off"]))
        print(f"per-pair difference: {fmt(rows[1]['on_minus_off_ms'])} ms per output step")
        print(f"wrote {save(f'verify_cost_n{comm.size}', {'ranks': comm.size, 'rows': rows, 'pairs': pairs, 'steps': steps, 'quick': quick})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
