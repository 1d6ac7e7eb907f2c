"""Replay of a CMIP-like archive against xarray + dask and against the read alone.

``mpiexec -n 2 python scripts/bench/replay.py [--quick] [--rounds N]``

The archive: 12 yearly netCDF-4 files of monthly float32 ``ta``,
12 x 19 x 180 x 360 per file (709 MB in all; uncompressed, contiguous, as
the CMIP6 sample files are), with CF coordinates and bounds, a noleap time
axis with bounds, ``_FillValue``/``missing_value`` 1e20 and some cells set
to it.  It is generated once into ``$TMPDIR/insitu-bench-replay-full``
(``-quick`` for --quick) and kept between runs: the page cache then holds
it (the machine has 23 GB), so every method reads warm.

Three things are timed, interleaved A B C A B C ... (``--rounds``, at
least 5; the first, warming, round is not counted), each reported as the
median and the spread (min-max) over the rounds, the slowest rank's time:

* **replay**: ``insitu.replay.run`` on every rank -- scan, init, every
  record read as a per-rank slab, masked, and analysed (the global mean
  and the zonal mean of every month), the output written and renamed;
* **xarray+dask**: ``xarray.open_mfdataset(..., parallel=True)`` and one
  ``dask.compute`` of the same two means (dask's threaded scheduler with
  as many threads as ranks, on rank 0, while the other ranks sleep, not
  spin, in a non-blocking barrier);
* **read**: h5py reading every record's slab once into the same per-rank
  buffers, nothing else (the floor a replay cannot beat);
* **replay, no read-ahead**: the replay with each record read when it is
  due (``insitu.replay.host.READ_AHEAD = False``), which is what the
  reader thread saves.

Then the memory: each rank's peak resident memory (VmHWM, reset before
the run) while replaying the first 3 files and all 12 (1 and 3 in quick
mode), with the output flushed every 12 records (the writer otherwise
keeps every row until its time-based flush); flat in the number of files
means the same peak for both.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_header, save, table  # noqa: E402

FULL = dict(files=12, months=12, plev=19, lat=180, lon=360)
QUICK = dict(files=3, months=12, plev=19, lat=45, lon=90)
STAMP = "complete.json"


def archive(comm, shape: dict, quick: bool) -> str:
    """The kept folder of the synthetic archive; generated (by rank 0) if missing."""
    folder = os.path.join(tempfile.gettempdir(),
                          "insitu-bench-replay-" + ("quick" if quick else "full"))
    if comm.rank == 0:
        stamp = os.path.join(folder, STAMP)
        ok = False
        if os.path.exists(stamp):
            with open(stamp) as fh:
                ok = json.load(fh) == shape
        if not ok:
            try:
                os.makedirs(folder, exist_ok=True)
                t0 = time.perf_counter()
                for y in range(shape["files"]):
                    write_year(os.path.join(folder, f"ta_Amon_BENCH_historical_{2000 + y}.nc"),
                               2000 + y, shape)
                with open(stamp, "w") as fh:
                    json.dump(shape, fh)
                print(f"generated {shape['files']} files in {folder} in "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
            except BaseException:  # the other ranks wait below: end the job, not hang
                import traceback
                traceback.print_exc()
                comm.Abort(1)
    idle_barrier(comm)
    return folder


def write_year(path: str, year: int, shape: dict) -> None:
    """One CMIP-like yearly file (netCDF-4 through netCDF4-python)."""
    import netCDF4
    nt, nz, ny, nx = shape["months"], shape["plev"], shape["lat"], shape["lon"]
    lengths = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[:nt]
    edges = 365.0 * (year - 2000) + np.concatenate([[0], np.cumsum(lengths)])
    lat = -90 + (np.arange(ny) + 0.5) * 180.0 / ny
    lon = (np.arange(nx) + 0.5) * 360.0 / nx
    plev = np.linspace(100000.0, 1000.0, nz)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as d:
        d.source_id, d.Conventions = "BENCH-1", "CF-1.7"
        d.createDimension("time", nt)  # fixed, as in the CMIP6 sample files: contiguous
        d.createDimension("bnds", 2)
        for name, vals, attrs in (
                ("plev", plev, {"units": "Pa", "standard_name": "air_pressure", "axis": "Z",
                                "positive": "down"}),
                ("lat", lat, {"units": "degrees_north", "standard_name": "latitude",
                              "axis": "Y"}),
                ("lon", lon, {"units": "degrees_east", "standard_name": "longitude",
                              "axis": "X"})):
            d.createDimension(name, vals.size)
            v = d.createVariable(name, "f8", (name,))
            v[:] = vals
            v.setncatts({**attrs, "bounds": f"{name}_bnds"})
            step = np.diff(vals).mean() if vals.size > 1 else 1.0
            b = d.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
            b[:] = np.stack([vals - step / 2, vals + step / 2], axis=1)
        t = d.createVariable("time", "f8", ("time",))
        t.setncatts({"units": "days since 2000-01-01", "calendar": "noleap",
                     "standard_name": "time", "axis": "T", "bounds": "time_bnds"})
        t[:] = (edges[:-1] + edges[1:]) / 2
        tb = d.createVariable("time_bnds", "f8", ("time", "bnds"))
        tb[:] = np.stack([edges[:-1], edges[1:]], axis=1)
        ta = d.createVariable("ta", "f4", ("time", "plev", "lat", "lon"), fill_value=1e20,
                              contiguous=True)
        ta.setncatts({"units": "K", "standard_name": "air_temperature",
                      "long_name": "Air Temperature", "missing_value": np.float32(1e20)})
        rng = np.random.default_rng(year)
        base = (200.0 + 60.0 * np.cos(np.deg2rad(lat))[None, :, None]
                + 0.0004 * plev[:, None, None]).astype(np.float32)
        for m in range(nt):
            field = base + rng.normal(0.0, 2.0, (nz, ny, nx)).astype(np.float32)
            field[0, : max(ny // 20, 1), :] = np.float32(1e20)  # "below ground" at 1000 hPa
            ta[m] = field


def idle_barrier(comm) -> None:
    """Wait for every rank without spinning (Open MPI's Barrier busy-polls,
    which would steal a core from dask's threads on rank 0)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(0.002)


def replay_once(comm, folder: str, files: str, out: str, ahead: bool = True,
                output: dict = None) -> float:
    from insitu import replay
    from insitu.replay import host
    host.READ_AHEAD = ahead
    cfg = {"analyses": [{"kind": "stats", "field": "ta", "stats": ["mean"]},
                        {"kind": "reduce", "field": "ta", "over": ["lon"], "op": "mean"}],
           "log_level": "WARNING", "output": output or {}}
    comm.Barrier()
    t0 = time.perf_counter()
    try:
        replay.run([f"ta={os.path.join(folder, files)}"], "ta", cfg, comm, output=out,
                   overwrite=True)
    finally:
        host.READ_AHEAD = True
    return time.perf_counter() - t0


def xarray_once(comm, folder: str) -> float:
    """The same two means with xarray + dask on rank 0 (as many threads as ranks)."""
    idle_barrier(comm)
    dt = 0.0
    if comm.rank == 0:
        import dask
        import xarray as xr
        t0 = time.perf_counter()
        with dask.config.set(scheduler="threads", num_workers=comm.size):
            ds = xr.open_mfdataset(os.path.join(folder, "ta_*.nc"), parallel=True,
                                   engine="h5netcdf", combine="by_coords", data_vars="minimal",
                                   coords="minimal", compat="override")
            glob_mean, zonal = dask.compute(ds.ta.mean(("plev", "lat", "lon")),
                                            ds.ta.mean("lon"))
            ds.close()
        dt = time.perf_counter() - t0
        assert np.isfinite(glob_mean.values).all() and zonal.shape[0] > 0
    idle_barrier(comm)
    return dt


def read_once(comm, folder: str) -> float:
    """h5py reading this rank's slab of every record once, nothing more."""
    import glob

    import h5py

    from insitu.decomposition import fitted_boxes
    files = sorted(glob.glob(os.path.join(folder, "ta_*.nc")))
    with h5py.File(files[0], "r") as f:
        shape = f["ta"].shape[1:]
    off, shp = fitted_boxes(shape, comm.size)[comm.rank]
    buf = np.empty(shp, dtype=np.float32)
    sel = tuple(slice(o, o + n) for o, n in zip(off, shp))
    comm.Barrier()
    t0 = time.perf_counter()
    for path in files:
        with h5py.File(path, "r", locking=False) as f:
            ds = f["ta"]
            for t in range(ds.shape[0]):
                ds.read_direct(buf, source_sel=(t, *sel))
    comm.Barrier()
    return time.perf_counter() - t0


def peak_rss_mib(comm, fn) -> list:
    """Every rank's peak resident memory while ``fn`` runs (VmHWM, reset)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    fn()
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    return comm.allgather(hwm / 1024.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5; quick 2)")
    args = p.parse_args()
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    shape = QUICK if args.quick else FULL
    rounds = args.rounds or (2 if args.quick else 5)
    folder = archive(comm, shape, args.quick)
    scratch = comm.bcast(tempfile.mkdtemp(prefix="insitu-bench-replay-out-")
                         if comm.rank == 0 else None)
    out = os.path.join(scratch, "replay.h5")
    methods = {"replay": lambda: replay_once(comm, folder, "ta_*.nc", out),
               "xarray+dask": lambda: xarray_once(comm, folder),
               "read": lambda: read_once(comm, folder),
               "replay, no read-ahead": lambda: replay_once(comm, folder, "ta_*.nc", out,
                                                            ahead=False)}
    times = {k: [] for k in methods}
    for r in range(rounds + 1):  # round 0 warms the page cache and the numba cache
        for name, fn in methods.items():
            dt = comm.allreduce(fn(), op=MPI.MAX)
            if r:
                times[name].append(dt)
    few = max(1, shape["files"] // 4)  # 3 of 12 files (1 of 3 in quick mode)
    # The writer keeps the output rows it has not flushed durably (its flush
    # policy: every 10 s by default, longer than these runs), 27 KB a record
    # here, so the memory runs flush every 12 records: what is then left is
    # replay's own memory, which must not grow with the files
    flush = {"flush_every_steps": 12}
    mem_few = peak_rss_mib(comm, lambda: replay_once(comm, folder, f"ta_*_200[0-{few - 1}].nc",
                                                     out, output=flush))
    mem_all = peak_rss_mib(comm, lambda: replay_once(comm, folder, "ta_*.nc", out,
                                                     output=flush))
    if comm.rank == 0:
        gb = shape["files"] * shape["months"] * shape["plev"] * shape["lat"] * shape["lon"] * 4
        rows = []
        for name, ts in times.items():
            ts = np.array(ts)
            rows.append({"method": name, "median_s": float(np.median(ts)),
                         "min_s": float(ts.min()), "max_s": float(ts.max()),
                         "GB_per_s": gb / float(np.median(ts)) / 1e9})
        med = {r["method"]: r["median_s"] for r in rows}
        ratios = {"xarray_over_replay": med["xarray+dask"] / med["replay"],
                  "replay_over_read": med["replay"] / med["read"]}
        paired = np.array(times["xarray+dask"]) / np.array(times["replay"])
        paired_read = np.array(times["replay"]) / np.array(times["read"])
        paired_ahead = np.array(times["replay, no read-ahead"]) / np.array(times["replay"])
        print_header()
        print(f"{comm.size} rank(s); archive {shape} x {shape['files']} files = "
              f"{gb / 1e6:.0f} MB in {folder}; {rounds} interleaved rounds after a warm-up")
        print(table(rows, ["method", "median_s", "min_s", "max_s", "GB_per_s"]))
        print(f"xarray+dask / replay: {ratios['xarray_over_replay']:.2f}x (per round "
              f"{paired.min():.2f}-{paired.max():.2f}; target >= 3)")
        print(f"replay / read alone: {ratios['replay_over_read']:.2f}x (per round "
              f"{paired_read.min():.2f}-{paired_read.max():.2f}; target <= 1.5)")
        print(f"no read-ahead / replay: {np.median(paired_ahead):.2f}x (per round "
              f"{paired_ahead.min():.2f}-{paired_ahead.max():.2f})")
        print(f"peak RSS per rank, MiB: {few} file(s) {[round(m, 1) for m in mem_few]}, "
              f"{shape['files']} files {[round(m, 1) for m in mem_all]}")
        path = save(f"replay_n{comm.size}" + ("_quick" if args.quick else ""),
                    {"rows": rows, "ratios": ratios, "rounds": rounds, "shape": shape,
                     "times": times, "peak_rss_MiB": {"files": [few, shape["files"]],
                                                      "few": mem_few, "all": mem_all}})
        print(f"wrote {path}")
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
