"""MPI collectives per step for 1, 10 and 50 scalar analyses.

``mpiexec -n N python scripts/bench/collectives.py [--quick]``: a session
with K stats analyses (7 statistics each) of a 256x256 slab per rank; we
count the collectives insitu issues per step (every MPI call goes through
``insitu.comm``, which counts them) and time a step on the slowest rank.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import describe_machine, quick_flag, save, shared_tmpdir, table  # noqa: E402


def measure(comm, api, path, analyses, steps, n=256) -> tuple[float, float]:
    """(collectives per step, ms per step on the slowest rank) over ``steps``
    steps after the first, for a session with ``analyses`` on an n x n slab."""
    from mpi4py import MPI
    s = api.init(comm, {"output": {"path": path, "overwrite": True},
                        "analyses": analyses, "log_level": "WARNING"})
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    api.expose("T", np.random.default_rng(comm.rank).normal(280, 5, (n, n)))
    api.step(1, 0.0)
    before = s.comm.collectives
    comm.Barrier()
    t0 = time.perf_counter()
    for i in range(steps):
        api.step(i + 2, 0.0)
    dt = (time.perf_counter() - t0) / steps
    per_step = (s.comm.collectives - before) / steps
    api.finalize()
    return per_step, comm.allreduce(dt, op=MPI.MAX) * 1e3


def main() -> int:
    quick = quick_flag(__doc__)
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    steps = 5 if quick else 50
    tmp = shared_tmpdir(comm, "insitu-coll-")
    rows = []
    for k in (1, 10, 50):
        per_step, ms = measure(comm, api, os.path.join(tmp, f"c{k}.h5"),
                               [{"kind": "stats", "field": "T", "name": f"T{i}"}
                                for i in range(k)], steps)
        rows.append({"analyses": k, "scalar_results": 7 * k, "collectives_per_step": per_step,
                     "ms_per_step_slowest": ms})
    # A step with nothing due: only the handshake that catches ranks on
    # different steps (the model's loop pays this at every step).
    per_step, ms = measure(comm, api, os.path.join(tmp, "idle.h5"),
                           [{"kind": "stats", "field": "T", "every": 10**9}],
                           100 if quick else 20000)
    idle_row = {"analyses": "none due", "scalar_results": 0, "collectives_per_step": per_step,
                "ms_per_step_slowest": ms}
    if comm.rank == 0:
        print(describe_machine())
        print(f"collectives per step, {comm.size} rank(s)")
        print(table(rows + [idle_row], ["analyses", "scalar_results", "collectives_per_step",
                                        "ms_per_step_slowest"]))
        print(f"wrote {save(f'collectives_n{comm.size}', {'ranks': comm.size, 'rows': rows, 'idle': idle_row})}")
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
