"""Per-step cost and peak memory per rank for a fixed slab per rank.

``mpiexec -n N python scripts/bench/scaling.py [--quick]``: the Python heat
stand-in with 1000x1000 cells per rank, 50 steps, the standard statistics,
a zonal mean and a 64-bin histogram every step.  Each rank reports its peak
resident memory (``ru_maxrss``); run it at 1, 2 and 4 ranks: the memory of
a rank must not grow with the rank count (no rank gathers a field).
"""
from __future__ import annotations

import os
import resource
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import quick_flag, save, shared_tmpdir, table  # noqa: E402


def main() -> int:
    quick = quick_flag(__doc__)
    from mpi4py import MPI

    from insitu import api
    from insitu.models.heat2d import Heat2D
    comm = MPI.COMM_WORLD
    side, steps = (200, 5) if quick else (1000, 50)
    tmp = shared_tmpdir(comm, "insitu-scal-")
    model = Heat2D(comm, (side, side * comm.size))
    api.init(comm, {"output": {"path": os.path.join(tmp, "s.h5"), "overwrite": True},
                    "analyses": [{"kind": "stats", "field": "T"},
                                 {"kind": "reduce", "field": "T", "over": ["x"]},
                                 {"kind": "histogram", "field": "T", "bins": 64,
                                  "range": [270, 330]}],
                    "log_level": "WARNING"})
    model.declare(api)
    model.advance()
    model.expose(api)
    api.step(1, model.time)  # warm-up: binding and kernel loading
    t_model = t_insitu = 0.0
    for step in range(2, steps + 2):
        t0 = time.perf_counter()
        model.advance()
        t1 = time.perf_counter()
        model.expose(api)
        api.step(step, model.time)
        t2 = time.perf_counter()
        t_model += t1 - t0
        t_insitu += t2 - t1
    api.finalize()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    per_rank = comm.gather(rss)
    t_model = comm.allreduce(t_model / steps, op=MPI.MAX)
    t_insitu = comm.allreduce(t_insitu / steps, op=MPI.MAX)
    model.free()
    if comm.rank == 0:
        row = {"ranks": comm.size, "cells_per_rank": side * side,
               "model_ms_per_step": t_model * 1e3, "insitu_ms_per_step": t_insitu * 1e3,
               "peak_rss_MiB_max": max(per_rank), "peak_rss_MiB_min": min(per_rank)}
        print(table([row], list(row)))
        print(f"wrote {save(f'scaling_n{comm.size}', {'row': row, 'per_rank_MiB': per_rank})}")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
