"""What flushing the output file after output steps costs.

Run under MPI: ``mpiexec -n N python scripts/bench/flush_cost.py [--quick]``.

A session with the standard statistics of one field writes S output steps
with ``output.flush_every`` = 1, 10, 100 and never (S + 1); we time each
``step`` call (kernel + reduction + HDF5 append + flush) on every rank and
report rank 0's mean and the slowest rank's.  The field is small (64x64 per
rank) so the I/O path dominates.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import quick_flag, save, shared_tmpdir, table, time_steps  # noqa: E402


def main() -> int:
    quick = quick_flag(__doc__)
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    steps = 20 if quick else 400
    n = 64
    tmp = shared_tmpdir(comm, "insitu-flush-")
    rows = []
    never = 10**9
    for every in (1, 10, 100, never):
        cfg = {"output": {"path": os.path.join(tmp, f"flush{every}.h5"), "overwrite": True,
                          "flush_every": every},
               "analyses": [{"kind": "stats", "field": "T"}], "log_level": "WARNING"}
        api.init(comm, cfg)
        api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
        a = np.random.default_rng(comm.rank).normal(280, 5, (n, n))
        api.expose("T", a)
        mean, slowest = time_steps(comm, api, steps)
        api.finalize()
        rows.append({"flush_every": "never" if every == never else every,
                     "ms_per_step_rank0": mean * 1e3, "ms_per_step_slowest": slowest * 1e3})
    if comm.rank == 0:
        base = rows[-1]["ms_per_step_slowest"]
        for r in rows:
            r["flush_overhead_ms"] = r["ms_per_step_slowest"] - base
        print(f"flush cost: {comm.size} rank(s), {steps} output steps, "
              f"7 statistics of a {n}x{n} slab per rank")
        print(table(rows, ["flush_every", "ms_per_step_rank0", "ms_per_step_slowest",
                           "flush_overhead_ms"]))
        path = save(f"flush_cost_n{comm.size}", {"ranks": comm.size, "steps": steps,
                                                 "rows": rows, "quick": quick})
        print(f"wrote {path}")
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
