"""48 windows of 3..26 steps over a scalar ``stats`` and a distributed zonal
mean, with a durable flush after every step: every flush grows many
window axes while rank 0 alone writes the replicated rows.

    mpiexec -n N python tests/mpi_programs/many_windows.py OUT.h5 STEPS

Before the writer turned off metadata-cache evictions (insitu/h5io.py,
``_keep_metadata_cache_in_step``), the ranks' HDF5 metadata caches drifted
apart and the growth at step 48 failed in ``H5Dset_extent`` with
``MPI_ERR_TRUNCATE`` at 2 ranks.  Prints ``OK`` on rank 0 at the end.
"""
import sys

import numpy as np
from mpi4py import MPI

from insitu import api


def main() -> int:
    path, steps = sys.argv[1], int(sys.argv[2])
    comm = MPI.COMM_WORLD
    windows = [{"kind": "window", "source": src, "steps": 3 + i, "name": f"w{src}{i}",
                "ops": ["mean", "var", "max"]} for src in ("T", "Tzon") for i in range(24)]
    cfg = {"output": {"path": path, "overwrite": True, "flush_every_steps": 1},
           "fields": {"T": {"dims": ["y", "x"]}},
           "analyses": [{"kind": "stats", "field": "T"},
                        {"kind": "reduce", "field": "T", "over": ["x"], "name": "Tzon"},
                        *windows],
           "log_level": "WARNING"}
    api.init(comm, cfg)
    ny, nx = 96, 128
    rows = np.array_split(np.arange(ny), comm.size)[comm.rank]
    api.declare_field("T", np.float64, (ny, nx), (int(rows[0]), 0), (len(rows), nx))
    api.expose("T", np.random.default_rng(comm.rank).normal(280, 5, (len(rows), nx)))
    for step in range(1, steps + 1):
        api.step(step, float(step))
    api.finalize()
    if comm.rank == 0:
        print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
