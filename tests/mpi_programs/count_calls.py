"""Count the MPI calls of each insitu step, HDF5's included.

    mpiexec -n N env LD_PRELOAD=libpmpicount.so INSITU_PMPI_LIB=libpmpicount.so \\
        python tests/mpi_programs/count_calls.py K STEPS OUT.h5 ['{"flush_every_steps": 10}']

The preloaded library (``pmpi_count.c``, built with mpicc by the test)
wraps the MPI functions at the PMPI level, so it counts the calls libhdf5
makes from C (the resize broadcasts, the flush's barriers and syncs) as well
as mpi4py's.  A session with K ``stats`` analyses of one field, all due at
every step, runs STEPS steps; the counters are read before and after each
``insitu.api.step`` and around ``finalize``.  Rank 0 prints one line,
``COUNTS <json>``: for each rank, each step's calls by class (collective,
p2p, file_independent), whether the step made a durable flush or grew an
axis, and the calls of finalize.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys

import numpy as np


class Counter:
    """The preloaded counters, read through ctypes (the same library
    LD_PRELOAD put in the process, so the same counters)."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        lib.insitu_pmpi_name.restype = ctypes.c_char_p
        lib.insitu_pmpi_kind.restype = ctypes.c_char_p
        self.lib = lib
        n = lib.insitu_pmpi_count()
        self.names = [lib.insitu_pmpi_name(i).decode() for i in range(n)]
        self.kinds = [lib.insitu_pmpi_kind(i).decode() for i in range(n)]
        self.buf = np.zeros(n, dtype=np.int64)

    def read(self) -> np.ndarray:
        self.lib.insitu_pmpi_counts(self.buf.ctypes.data_as(ctypes.c_void_p))
        return self.buf.copy()

    def classify(self, before: np.ndarray, after: np.ndarray) -> dict:
        d = after - before
        out = {"collective": 0, "p2p": 0, "file_independent": 0, "calls": {}}
        for i in np.flatnonzero(d):
            out[self.kinds[i]] += int(d[i])
            out["calls"][self.names[i]] = int(d[i])
        return out


def main() -> int:
    k, steps, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    output = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    counter = Counter(os.environ["INSITU_PMPI_LIB"])
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    n = 64
    cfg = {"output": {"path": path, "overwrite": True, **output}, "log_level": "WARNING",
           "analyses": [{"kind": "stats", "field": "T", "name": f"T{i}", "every": 1}
                        for i in range(k)]}
    session = api.init(comm, cfg)
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    api.expose("T", np.random.default_rng(comm.rank).normal(280, 5, (n, n)))
    rows = []
    for s in range(1, steps + 1):
        w = session.writer
        flushes, growths = getattr(w, "flushes", 0), getattr(w, "growths", 0)
        before = counter.read()
        api.step(s, float(s))
        row = counter.classify(before, counter.read())
        row.update(step=s, flushed=getattr(w, "flushes", 0) > flushes,
                   grew=getattr(w, "growths", 0) > growths)
        rows.append(row)
    before = counter.read()
    api.finalize()
    final = counter.classify(before, counter.read())
    everything = comm.gather({"steps": rows, "finalize": final}, root=0)
    if comm.rank == 0:
        print("COUNTS " + json.dumps(everything), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
