"""Time-to-answer: in-situ summaries against writing every field and
post-processing with xarray.

``mpiexec -n N python scripts/bench/time_to_answer.py [--quick]``: the Python
heat stand-in, 1000x1000 cells per rank, 100 steps, output every 5 steps
(20 outputs), three ways:

* model only (the floor);
* insitu: the standard statistics (count, sum, mean, min, max, std, NaN and
  Inf counts) computed in place and written with parallel HDF5;
* write everything: the full field written collectively with h5py mpio at
  every output step, then the same statistics computed afterwards with
  xarray on rank 0, as a user would.

Reported: total wall time, the part beyond the model, and bytes written.
"""
from __future__ import annotations

import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import quick_flag, save, shared_tmpdir, table  # noqa: E402


def main() -> int:
    quick = quick_flag(__doc__)
    import h5py
    from mpi4py import MPI

    from insitu import api
    from insitu.models.heat2d import Heat2D
    comm = MPI.COMM_WORLD
    side, steps, every = (200, 20, 5) if quick else (1000, 100, 5)
    shape = (side, side * comm.size)
    tmp = shared_tmpdir(comm, "insitu-tta-")

    def run(mode):
        model = Heat2D(comm, shape)
        g = model.grid
        comm.Barrier()
        t0 = time.perf_counter()
        path = os.path.join(tmp, f"{mode}.h5")
        if mode == "insitu":
            api.init(comm, {"output": {"path": path, "overwrite": True},
                            "analyses": [{"kind": "stats", "field": "T", "every": every}],
                            "log_level": "WARNING"})
            model.declare(api)
        elif mode == "write everything":
            f = h5py.File(path, "w", driver="mpio", comm=comm)
            dset = f.create_dataset("T", (steps // every, *shape), dtype="f8")
        for step in range(1, steps + 1):
            model.advance()
            if mode == "insitu":
                model.expose(api)
                api.step(step, model.time)
            elif mode == "write everything" and step % every == 0:
                (y0, x0), (ny, nx) = g.offset, g.shape
                with dset.collective:
                    dset[step // every - 1, y0:y0 + ny, x0:x0 + nx] = model.T[1:-1, 1:-1]
        if mode == "insitu":
            api.finalize()
        elif mode == "write everything":
            f.close()
        comm.Barrier()
        t_run = time.perf_counter() - t0
        t_post = 0.0
        if mode == "write everything" and comm.rank == 0:
            import xarray as xr
            t1 = time.perf_counter()
            with xr.open_dataset(path, engine="h5netcdf", phony_dims="sort") as ds:
                T = ds["T"]
                dims = T.dims[1:]
                fin = T.where(np.isfinite(T))
                summary = xr.Dataset({"count": fin.count(dims), "sum": fin.sum(dims),
                                      "mean": fin.mean(dims), "min": fin.min(dims),
                                      "max": fin.max(dims), "std": fin.std(dims),
                                      "nan_count": T.isnull().sum(dims)}).compute()
            t_post = time.perf_counter() - t1
            assert summary["mean"].size == steps // every
        t_post = comm.bcast(t_post)
        nbytes = os.path.getsize(path) if mode != "model only" and comm.rank == 0 else 0
        model.free()
        return t_run, t_post, comm.bcast(nbytes)

    rows = []
    results = {m: run(m) for m in ("model only", "insitu", "write everything")}
    floor = results["model only"][0]
    for mode, (t_run, t_post, nbytes) in results.items():
        rows.append({"mode": mode, "run_s": t_run, "post_s": t_post,
                     "total_s": t_run + t_post, "beyond_model_s": t_run + t_post - floor,
                     "bytes": nbytes})
    if comm.rank == 0:
        ins, full = rows[1], rows[2]
        print(f"time-to-answer, {comm.size} rank(s), {side}x{side} cells per rank, "
              f"{steps} steps, output every {every}")
        print(table(rows, ["mode", "run_s", "post_s", "total_s", "beyond_model_s", "bytes"]))
        print(f"writing everything takes {full['total_s'] / ins['total_s']:.2f}x the total time, "
              f"{full['beyond_model_s'] / max(ins['beyond_model_s'], 1e-9):.1f}x the time beyond "
              f"the model, and {full['bytes'] / max(ins['bytes'], 1):.0f}x the bytes")
        print(f"wrote {save(f'time_to_answer_n{comm.size}', {'ranks': comm.size, 'rows': rows})}")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
