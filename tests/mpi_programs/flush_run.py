"""``python -m insitu.run`` with knobs for the flush-policy tests.

    mpiexec -n N python tests/mpi_programs/flush_run.py [--buffer-bytes B]
        [--fast-clock RANK] [--kill-after STEP] -- insitu.run-args...

``--buffer-bytes B``  a rank holding B bytes of rows not yet written makes
                  every rank flush (insitu.h5io's BUFFER_BYTES): with a
                  small B a short run flushes, and grows its axes, at many
                  output steps whatever its policy, as a long run with big
                  rows would.
``--fast-clock RANK``  rank RANK's writer clock runs 1e6 times too fast.
                  The flush decision must follow rank 0's clock on every
                  rank; a rank that used its own would flush alone, and
                  the job would hang or fail in HDF5's collective flush.
``--kill-after STEP``  every rank SIGKILLs itself when ``insitu_step(STEP)``
                  returns, as a node failure would: no finalize, no atexit.

At the end (when not killed), each rank prints
``FLUSHES rank <r> <durable flushes> growths <datasets grown>``.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--buffer-bytes", type=int)
    p.add_argument("--fast-clock", type=int)
    p.add_argument("--kill-after", type=int)
    p.add_argument("run_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args

    from insitu import api, h5io
    if args.buffer_bytes:
        h5io.BUFFER_BYTES = args.buffer_bytes
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

        def step(n, t=0.0, results=True):
            out = real_step(n, t, results)
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
