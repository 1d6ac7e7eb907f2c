"""``python -m insitu.run`` with knobs for the flush-policy tests.

    mpiexec -n N python tests/mpi_programs/flush_run.py [--rows R]
        [--fast-clock RANK] [--kill-after STEP] -- insitu.run-args...

``--rows R``      grow every axis in blocks of at most R rows, arrays from
                  nothing (insitu.layout's ROWS and FIRST_BYTES): a short
                  run then grows its axes many times, as a long one would.
``--fast-clock RANK``  rank RANK's writer clock runs 1e6 times too fast.
                  The flush decision must follow rank 0's clock on every
                  rank; a rank that used its own would flush alone, and
                  the job would hang or fail in HDF5's collective flush.
``--kill-after STEP``  every rank SIGKILLs itself when ``insitu_step(STEP)``
                  returns, as a node failure would: no finalize, no atexit.

At the end (when not killed), each rank prints
``FLUSHES rank <r> <durable flushes> growths <times an axis grew>``.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int)
    p.add_argument("--fast-clock", type=int)
    p.add_argument("--kill-after", type=int)
    p.add_argument("run_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args

    from insitu import api, h5io, layout
    if args.rows:
        layout.ROWS = h5io.ROWS = args.rows
        layout.FIRST_BYTES = 0
    writers = []
    real_init = h5io.H5Writer.__init__

    def init(self, comm, *a, **kw):
        real_init(self, comm, *a, **kw)
        writers.append(self)
        if args.fast_clock is not None and comm.rank == args.fast_clock:
            self.clock = lambda: 1e6 * time.monotonic()

    h5io.H5Writer.__init__ = init
    if args.kill_after is not None:
        real_step = api.step

        def step(n, t=0.0):
            out = real_step(n, t)
            if n == args.kill_after:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        api.step = step
    from insitu.run import main as run_main
    status = run_main(run_args)
    from mpi4py import MPI
    w = writers[-1] if writers else None
    print(f"FLUSHES rank {MPI.COMM_WORLD.rank} {w.flushes if w else -1} "
          f"growths {w.growths if w else -1}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
