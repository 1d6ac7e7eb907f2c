"""What ``output.verify`` costs per output step.

``mpiexec -n N python scripts/bench/verify_cost.py [--quick]``: a session
with the standard statistics and a zonal mean (a distributed result) of a
256x256 slab per rank, flushing every output step, run with verify off and
on in interleaved pairs (off, on, off, on, ...: the machine is shared and
noisy, so the two modes see the same noise).  Each run times S output steps
on every rank; a run's figure is the slowest rank's mean.  Reported: the
median over the pairs and the spread (min..max) of each mode, and the
median of the per-pair differences.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import describe_machine, quick_flag, save, shared_tmpdir, table, time_steps  # noqa: E402


def one_run(comm, api, tmp, verify: bool, steps: int, n: int) -> float:
    cfg = {"output": {"path": os.path.join(tmp, f"v{int(verify)}.h5"), "overwrite": True,
                      "verify": verify},
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
    quick = quick_flag(__doc__)
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    pairs, steps, n = (1, 10, 64) if quick else (5, 200, 256)
    tmp = shared_tmpdir(comm, "insitu-verify-")
    off, on = [], []
    for _ in range(pairs):
        off.append(one_run(comm, api, tmp, False, steps, n))
        on.append(one_run(comm, api, tmp, True, steps, n))
    if comm.rank == 0:
        off_ms, on_ms = np.array(off) * 1e3, np.array(on) * 1e3
        rows = [{"verify": "off", "median_ms_per_step": float(np.median(off_ms)),
                 "min_ms": float(off_ms.min()), "max_ms": float(off_ms.max())},
                {"verify": "on", "median_ms_per_step": float(np.median(on_ms)),
                 "min_ms": float(on_ms.min()), "max_ms": float(on_ms.max())}]
        diff = float(np.median(on_ms - off_ms))
        print(describe_machine())
        print(f"output.verify cost: {comm.size} rank(s), {pairs} interleaved pairs of "
              f"{steps} output steps, stats + zonal mean of a {n}x{n} slab per rank, "
              "flush every step")
        print(table(rows, ["verify", "median_ms_per_step", "min_ms", "max_ms"]))
        print(f"median per-pair difference: {diff:.3f} ms per output step")
        print(f"wrote {save(f'verify_cost_n{comm.size}', {'ranks': comm.size, 'rows': rows, 'median_diff_ms': diff})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
