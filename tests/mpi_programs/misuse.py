"""A Python host that misuses insitu on purpose, for the hang tests.

    mpiexec -n N python tests/mpi_programs/misuse.py MODE OUT.h5 [TIMEOUT]

Modes:

``partial-declare``  rank 0 declares a field the others never declare; they
                     go on to step 1.
``partial-step``     the last rank stops stepping after step 2 and finalizes;
                     the others go on to step 3.
``skipped-step``     the last rank skips step 4 (``every: 2``, so step 4 is
                     an output step for the others and not a call at all
                     for it).
``stuck``            the last rank stops calling insitu after step 2 and
                     sleeps (a model stuck in its own loop).
``no-finalize``      every rank steps and exits without finalize.

Without insitu's watchdog and step check, each of these waits in a
collective until the batch system kills the job.  An exception ends the
job with ``MPI_Abort`` (as ``insitu.run`` does), never a hang.
"""
from __future__ import annotations

import sys
import traceback

import numpy as np


def main() -> int:
    mode, out = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    last = rank == size - 1
    n = 4
    try:
        api.init(comm, {"output": {"path": out, "overwrite": True},
                        "hang_timeout_seconds": timeout,
                        "analyses": [{"kind": "stats", "field": "T", "every": 2}]})
        if mode != "partial-declare" or rank == 0:
            api.declare_field("T", np.float64, (n * size,), (n * rank,), (n,))
        a = np.arange(n, dtype=np.float64) + rank
        for step in range(1, 7):
            if mode == "partial-step" and last and step == 3:
                break
            if mode == "stuck" and last and step == 3:
                import time
                time.sleep(120)
            if mode == "skipped-step" and last and step == 4:
                continue
            if mode != "partial-declare" or rank == 0:
                api.expose("T", a)
            api.step(step, float(step))
        if mode != "no-finalize":
            api.finalize()
    except BaseException as exc:  # noqa: BLE001 - never leave the other ranks waiting
        sys.stderr.write(f"misuse[{rank}]: {type(exc).__name__}: {exc}\n"
                         + "".join(traceback.format_exception(exc)))
        sys.stderr.flush()
        comm.Abort(4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
