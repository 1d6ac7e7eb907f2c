"""MPI calls per output step for 1, 10 and 50 scalar analyses, HDF5's included.

``mpiexec -n N python scripts/bench/collectives.py [--quick]``

Every rank first builds the PMPI counter (``tests/mpi_programs/pmpi_count.c``,
with ``mpicc``) and loads it with ``RTLD_GLOBAL`` before importing mpi4py
or h5py, so its ``MPI_*`` wrappers take the place of libmpi's for both: the
count sees the calls libhdf5 makes from C (resizes, flush barriers and
syncs), which insitu's own counter (``insitu.comm``, ``collectives_per_step``)
cannot.  ``tests/test_mpi_calls.py`` checks the same count under
``LD_PRELOAD``.

For K = 1, 10, 50 ``stats`` analyses (8 statistics each) of a 256x256 slab
per rank, due every step, with the default output settings: each step after
the first (which creates the file) is counted and timed on every rank.
Reported per K: the communicating calls per output step (collectives,
collective MPI-IO and point-to-point; the most of any rank, median and
min-max over the steps), rank 0's independent writes (rows and HDF5
metadata; none at a step without a flush, as rows wait in memory), insitu's
own collectives, and the slowest rank's mean ms per step.  Then the same
with a durable flush at every output step (``flush_every_steps: 1``): the
calls of a flushing step.  And a step with nothing due.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_header, quick_flag, save, shared_tmpdir, summarize, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "tests", "mpi_programs", "pmpi_count.c")


class Counter:
    """The PMPI counter of this process, or a note saying why there is none."""

    def __init__(self) -> None:
        self.lib, self.why = None, ""
        out = os.path.join(tempfile.mkdtemp(prefix="insitu-pmpi-"), "libpmpicount.so")
        try:
            r = subprocess.run(["mpicc", "-shared", "-fPIC", "-O2", "-o", out, SOURCE],
                               capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            self.why = f"cannot run mpicc: {exc}"
            return
        if r.returncode != 0:
            self.why = f"mpicc failed: {r.stderr.strip()[-300:]}"
            return
        lib = ctypes.CDLL(out, mode=ctypes.RTLD_GLOBAL)  # before libmpi and libhdf5 bind
        lib.insitu_pmpi_kind.restype = ctypes.c_char_p
        n = lib.insitu_pmpi_count()
        kinds = [lib.insitu_pmpi_kind(i).decode() for i in range(n)]
        self.comm_idx = np.array([k in ("collective", "p2p") for k in kinds])
        self.file_idx = np.array([k == "file_independent" for k in kinds])
        self.buf = np.zeros(n, dtype=np.int64)
        self.lib = lib

    def read(self) -> np.ndarray | None:
        if self.lib is None:
            return None
        self.lib.insitu_pmpi_counts(self.buf.ctypes.data_as(ctypes.c_void_p))
        return self.buf.copy()

    def split(self, before, after) -> tuple[int, int]:
        """(communicating calls, independent file calls) between two reads."""
        if before is None:
            return -1, -1
        d = after - before
        return int(d[self.comm_idx].sum()), int(d[self.file_idx].sum())


def measure(comm, api, counter, path, analyses, steps, output=None, n=256) -> dict:
    """Counts and times of ``steps`` steps after the first."""
    from mpi4py import MPI
    s = api.init(comm, {"output": {"path": path, "overwrite": True, **(output or {})},
                        "analyses": analyses, "log_level": "WARNING"})
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    api.expose("T", np.random.default_rng(comm.rank).normal(280, 5, (n, n)))
    api.step(1, 0.0)
    own = s.comm.collectives
    calls, writes, dt = [], [], []
    for i in range(steps):
        comm.Barrier()
        before = counter.read()
        t0 = time.perf_counter()
        api.step(i + 2, float(i + 2))
        dt.append(time.perf_counter() - t0)
        c, w = counter.split(before, counter.read())
        calls.append(c)
        writes.append(w)
    own = (s.comm.collectives - own) / steps
    api.finalize()
    calls = np.max(comm.allgather(calls), axis=0)  # the busiest rank, step by step
    return {"mpi_calls_per_step": summarize(calls) if counter.lib else None,
            "rank0_writes_per_step": summarize(comm.bcast(writes)) if counter.lib else None,
            "collectives_per_step": own,
            "ms_per_step_slowest": comm.allreduce(float(np.mean(dt)), op=MPI.MAX) * 1e3}


def main() -> int:
    quick = quick_flag(__doc__)
    counter = Counter()
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    steps = 5 if quick else 50
    tmp = shared_tmpdir(comm, "insitu-coll-")
    rows, flush_rows = [], []
    for k in (1, 10, 50):
        analyses = [{"kind": "stats", "field": "T", "name": f"T{i}"} for i in range(k)]
        rows.append({"analyses": k, "scalar_results": 8 * k,
                     **measure(comm, api, counter, os.path.join(tmp, f"c{k}.h5"), analyses,
                               steps)})
        flush_rows.append({"analyses": k, "scalar_results": 8 * k, "flush": "every step",
                           **measure(comm, api, counter, os.path.join(tmp, f"f{k}.h5"),
                                     analyses, steps, {"flush_every_steps": 1})})
    # A step with nothing due: the model's loop pays this at every step.
    idle = {"analyses": "none due", "scalar_results": 0,
            **measure(comm, api, counter, os.path.join(tmp, "idle.h5"),
                      [{"kind": "stats", "field": "T", "every": 10**9}],
                      100 if quick else 20000)}
    if comm.rank == 0:
        print_header()
        print(f"MPI calls per output step, {comm.size} rank(s), {steps} steps after the "
              "first; a PMPI count (HDF5's calls included): the busiest rank's communicating "
              "calls, median (min-max) over the steps"
              + ("" if counter.lib else f"; NO PMPI COUNT: {counter.why}"))
        cols = ["analyses", "scalar_results", "mpi_calls_per_step", "rank0_writes_per_step",
                "collectives_per_step", "ms_per_step_slowest"]
        print("default output settings (a durable flush every 10 s):")
        print(table(rows + [idle], cols))
        print("a durable flush at every output step (flush_every_steps: 1):")
        print(table(flush_rows, cols))
        print(f"wrote {save(f'collectives_n{comm.size}', {'ranks': comm.size, 'rows': rows, 'flush_rows': flush_rows, 'idle': idle, 'steps': steps, 'quick': quick, 'pmpi': counter.why or 'counted'})}")
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
