"""``python -m insitu.run`` with knobs for the background writer's tests.

    mpiexec -n N python tests/mpi_programs/background_run.py [--thread-level L]
        [--fail-flush STEP --fail-rank R] [--slow-flush STEP] [--kill-after STEP]
        -- insitu.run-args...

``--thread-level L``  ask MPI_Init for level L (mpi4py.rc.thread_level:
                  single, funneled, serialized, multiple), as a Fortran
                  host's MPI_Init gives single.
``--api``         instead of insitu.run, every rank calls insitu.api.init
                  with the config and writes ``<exception type>:
                  <message>`` or ``ok`` (then finalizes) into
                  ``MARK/init.<rank>``, so a test sees what each rank
                  raised (stdout from several ranks interleaves).
``--fail-flush STEP --fail-rank R``  on rank R, the flush that commits
                  STEP raises ValueError on the writer thread after the
                  growth (a bug in the writer, not an I/O error).
``--slow-flush STEP``  the flush that commits STEP sleeps 5 s on the
                  writer thread after writing its rows, before the
                  committed count and H5Fflush (every rank), and says so
                  in ``MARK/slow.<rank>`` (stdout would be lost to a
                  SIGKILL).
``--mark MARK``   the directory of those files.
``--kill-after STEP``  every rank SIGKILLs itself when insitu_step(STEP)
                  returns, as a node failure would (with ``--slow-flush``,
                  once every rank's writer thread sleeps in that flush).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--thread-level")
    p.add_argument("--api", action="store_true")
    p.add_argument("--fail-flush", type=int)
    p.add_argument("--fail-rank", type=int, default=0)
    p.add_argument("--slow-flush", type=int)
    p.add_argument("--kill-after", type=int)
    p.add_argument("--mark", default=".")
    p.add_argument("run_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args

    import mpi4py
    if args.thread_level:
        mpi4py.rc.thread_level = args.thread_level
    from insitu import api, h5io
    from mpi4py import MPI
    rank, size = MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size

    def mark(name, text):
        with open(os.path.join(args.mark, f"{name}.{rank}"), "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    if args.api:
        cfg = run_args[0]
        try:
            api.init(MPI.COMM_WORLD, cfg)
        except Exception as exc:  # noqa: BLE001 - what each rank raised is the point
            mark("init", f"{type(exc).__name__}: {exc}")
            return 0
        mark("init", "ok")
        api.finalize()
        return 0

    real_write = h5io.H5Writer._write_pending
    real_grow = h5io.H5Writer._grow

    def grow(self, axis, n):
        real_grow(self, axis, n)
        if axis == "time" and n == args.fail_flush and rank == args.fail_rank:
            raise ValueError(f"injected failure at the flush of step {n}")

    def write(self, axis, rows, n):
        real_write(self, axis, rows, n)
        if axis == "time" and n == args.slow_flush:
            mark("slow", f"step {n}")
            time.sleep(5)

    h5io.H5Writer._grow = grow
    h5io.H5Writer._write_pending = write
    if args.kill_after is not None:
        real_step = api.step

        def step(n, t=0.0, results=True):
            out = real_step(n, t, results)
            if n == args.kill_after:
                # every rank's writer thread in the slow flush (one rank's
                # death ends the job: mpiexec kills the others)
                slow = [os.path.join(args.mark, f"slow.{r}") for r in range(size)]
                deadline = time.monotonic() + 60
                while args.slow_flush and not all(map(os.path.exists, slow)) \
                        and time.monotonic() < deadline:
                    time.sleep(0.01)
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        api.step = step
    from insitu.run import main as run_main
    return run_main(run_args)


if __name__ == "__main__":
    sys.exit(main())
