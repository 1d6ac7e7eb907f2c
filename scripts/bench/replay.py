"""Replay of a CMIP-like archive against xarray + dask and against the read alone.

``mpiexec -n 2 python scripts/bench/replay.py [--quick] [--rounds N]``:
replay (``insitu.replay.run``: scan, init, every record read as a per-rank
slab, masked and analysed -- the global mean and the zonal mean of every
month --, the output written and renamed), timed interleaved with
``xarray.open_mfdataset(parallel=True)`` plus dask computing the same two
means, with h5py reading every slab once (the warm read alone, the floor a
replay cannot beat), and with the replay without its read-ahead; each the
slowest rank's time, median and spread (min-max) of at least 5 rounds
after a warm-up round, and the per-round ratios; then each rank's peak
memory replaying N and 2N files, and where one replay's time goes.

The archive: 12 yearly netCDF-4 files of monthly float32 ``ta``,
12 x 19 x 180 x 360 per file (709 MB in all; uncompressed, contiguous, as
the CMIP6 sample files are), with CF coordinates and bounds, a noleap time
axis with bounds, ``_FillValue``/``missing_value`` 1e20 and some cells set
to it.  It is generated once into ``$TMPDIR/insitu-bench-replay-full``
(``-quick`` for --quick) and kept between runs: the page cache then holds
it (the machine has 23 GB), so every method reads warm.  12 more years go
into its ``more/`` folder for the memory runs only.

Timed, interleaved A B C D E, B C D E A, C D E A B ... (``--rounds``, at
least 5 unless --quick; the first, warming, round is not counted): the
order turns by one method each round, so that no method always follows
the same one (xarray's two busy threads, say) and each ratio's pairs
meet the same neighbours:

* **replay**: ``insitu.replay.run`` on every rank;
* **xarray+dask**: ``xarray.open_mfdataset(..., parallel=True)`` and one
  ``dask.compute`` of the same two means (dask's threaded scheduler with
  as many threads as ranks, on rank 0, while the other ranks sleep, not
  spin, in a non-blocking barrier);
* **read**: h5py reading every record's slab once into a per-rank buffer,
  with what any reader of the set must also do inside the timing: list
  the files (the glob) and open each one, and look up the variable's
  shape (before 2026-11-27 the glob and the shape were outside it);
* **read + CF mask**: the same, each slab also masked as any CF reader
  must (``_FillValue``/``missing_value`` to NaN: what xarray's decoding and
  replay do; replay's own kernel, ``insitu.replay.reader.mask_invalid``),
  reported beside the issue's bare read;
* **replay, no read-ahead**: the replay with each record read when it is
  due (``insitu.replay.host.READ_AHEAD = False``), which is what the
  reader thread saves.

Each method's CPU time (the slowest rank's, the reader thread included)
is kept beside its wall time: on 2 shared cores a rank's CPU time, more
than its waits, is what the ratios follow.

Memory: each rank's peak resident memory (VmHWM, reset before the run)
while replaying the 12 files and the 24 (3 and 6 in quick mode), with the
output flushed every 12 records (the writer otherwise keeps every row
until its time-based flush); flat in the number of files means the same
peak for both.

Phases: one more replay with its phases wrapped (no profiler), per rank,
their wall times and the CPU times of the threads they ran in:
the scan, the session's init, the first step (which binds the analyses),
the other steps (``insitu.step``), the waits for the reader thread, the
reads and CF masking in that thread, the finalize, the publishing of the
output (sync, rename, directory sync), and the rest; and, inside the
steps and the finalize, the session's handshakes (``Session._agree``: the
time a rank waits there for the others, or, with the read-ahead, for its
own reader thread to let go of Python's lock).
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
from common import MIN_PAIRS, fmt, print_header, ratios, save, summarize  # noqa: E402

FULL = dict(files=12, months=12, plev=19, lat=180, lon=360)
QUICK = dict(files=3, months=12, plev=19, lat=45, lon=90)
STAMP = "complete.json"


def archive(comm, shape: dict, quick: bool) -> str:
    """The kept folder of the synthetic archive, with its ``more/`` folder
    of as many later years (for the memory runs); generated (by rank 0)
    where missing."""
    folder = os.path.join(tempfile.gettempdir(),
                          "insitu-bench-replay-" + ("quick" if quick else "full"))
    if comm.rank == 0:
        try:
            n = shape["files"]
            _generate(folder, shape, range(2000, 2000 + n))
            _generate(os.path.join(folder, "more"), shape, range(2000 + n, 2000 + 2 * n))
        except BaseException:  # the other ranks wait below: end the job, not hang
            import traceback
            traceback.print_exc()
            comm.Abort(1)
    idle_barrier(comm)
    return folder


def _generate(folder: str, shape: dict, years) -> None:
    """One yearly file per year into ``folder``, unless a stamp says they are there."""
    stamp = os.path.join(folder, STAMP)
    if os.path.exists(stamp):
        with open(stamp) as fh:
            if json.load(fh) == shape:
                return
    os.makedirs(folder, exist_ok=True)
    t0 = time.perf_counter()
    for y in years:
        write_year(os.path.join(folder, f"ta_Amon_BENCH_historical_{y}.nc"), y, shape)
    with open(stamp, "w") as fh:
        json.dump(shape, fh)
    print(f"generated {len(years)} files in {folder} in {time.perf_counter() - t0:.1f} s",
          flush=True)


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
    which would steal a core from dask's threads on rank 0, or from the
    slower rank of a read), as replay's own collectives wait
    (``insitu.replay.host._idle``: sleeps doubling from 50 us to 1 ms)."""
    req = comm.Ibarrier()
    pause = 5e-5
    while not req.Test():
        time.sleep(pause)
        pause = min(2 * pause, 1e-3)


def replay_once(comm, pattern: str, out: str, ahead: bool = True,
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
        replay.run([f"ta={pattern}"], "ta", cfg, comm, output=out, overwrite=True)
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


def read_once(comm, folder: str, mask: bool = False) -> float:
    """h5py reading this rank's slab of every record once, nothing more;
    with ``mask``, each slab also CF-masked as replay masks it.  Listing
    the files, opening them and looking up the shape (and the fill values)
    are timed: any reader of the set does them."""
    import glob

    import h5py

    from insitu.decomposition import fitted_boxes
    from insitu.replay.reader import mask_invalid
    comm.Barrier()
    t0 = time.perf_counter()
    files = sorted(glob.glob(os.path.join(folder, "ta_*.nc")))
    buf = sel = fills = None
    for path in files:
        with h5py.File(path, "r", locking=False) as f:
            ds = f["ta"]
            if buf is None:
                off, shp = fitted_boxes(ds.shape[1:], comm.size)[comm.rank]
                buf = np.empty(shp, dtype=ds.dtype)
                sel = tuple(slice(o, o + n) for o, n in zip(off, shp))
                fills = [float(np.asarray(ds.attrs[k]).reshape(-1)[0])
                         for k in ("_FillValue", "missing_value") if k in ds.attrs]
            for t in range(ds.shape[0]):
                ds.read_direct(buf, source_sel=(t, *sel))
                if mask:
                    mask_invalid(buf, fills, None, None)
    # idle, as replay's own end is: Open MPI's Barrier busy-polls, and on a
    # loaded machine the rank that is done polls on the core the slower
    # rank needs (and its polling counted as the read's CPU time)
    idle_barrier(comm)
    return time.perf_counter() - t0


def timed_with_cpu(comm, fn) -> tuple[float, float]:
    """``fn``'s figure (the slowest rank's) and the slowest rank's CPU time
    (every thread of the process) while it ran."""
    from mpi4py import MPI
    c0 = time.process_time()
    dt = fn()
    cpu = time.process_time() - c0
    return comm.allreduce(dt, op=MPI.MAX), comm.allreduce(cpu, op=MPI.MAX)


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


def phases(comm, pattern: str, out: str) -> tuple[list, list]:
    """One replay with its phases wrapped: each phase's wall time and CPU
    time (of the thread it ran in) on each rank.  The reads run in the
    reader thread, overlapped with the steps; on a shared machine the CPU
    times say where the work is, the wall times also where the waits are."""
    from insitu import api, session
    from insitu.replay import host, reader
    wall: dict = {}
    cpu: dict = {}
    wrapped = [(host, "_scan", "scan_s"), (host, "_open_session", "init_s"),
               (api, "step", "steps_s"), (reader.Prefetcher, "get", "wait_for_reads_s"),
               (reader.SlabReader, "read", "reads_in_thread_s"),
               (api, "finalize", "finalize_s"), (host, "publish", "publish_s"),
               (session.Session, "_agree", "handshakes_s")]
    # (what an older revision lacks is left out: the script can time it too)
    wrapped = [w for w in wrapped if hasattr(w[0], w[1])]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in wrapped]

    def wrap(fn, key):
        def timed_call(*a, **k):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                # the first step binds the analyses (the session's one-off cost)
                k1 = "first_step_s" if key == "steps_s" and "first_step_s" not in wall \
                    else key
                wall[k1] = wall.get(k1, 0.0) + time.perf_counter() - t0
                cpu[k1] = cpu.get(k1, 0.0) + time.thread_time() - c0
        return timed_call
    c0 = time.process_time()
    try:
        for (obj, name, key), (_, _, fn) in zip(wrapped, saved):
            setattr(obj, name, wrap(fn, key))
        total = replay_once(comm, pattern, out)
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)
    process = time.process_time() - c0
    keys = ["scan_s", "init_s", "first_step_s", "steps_s", "wait_for_reads_s",
            "reads_in_thread_s", "finalize_s", "publish_s", "handshakes_s"]
    inside = ("reads_in_thread_s", "handshakes_s")  # overlapped, or within steps/finalize
    rows = []
    for what, spent, whole in (("wall", wall, total), ("cpu", cpu, process)):
        row = {"rank": comm.rank, "time": what, "total_s": whole,
               **{k: spent.get(k, 0.0) for k in keys}}
        # the rest of the main thread (the reader thread's share of the
        # process's CPU time is its reads)
        row["other_s"] = whole - sum(row[k] for k in keys if k not in inside) - \
            (row["reads_in_thread_s"] if what == "cpu" else 0.0)
        rows.append(row)
    gathered = comm.allgather(rows)
    return [r[0] for r in gathered], [r[1] for r in gathered]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"timed rounds (default and least {MIN_PAIRS}; quick 2)")
    args = p.parse_args()
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    shape = QUICK if args.quick else FULL
    rounds = args.rounds or (2 if args.quick else MIN_PAIRS)
    if rounds < MIN_PAIRS and not args.quick:
        p.error(f"--rounds: at least {MIN_PAIRS} interleaved rounds for a measurement")
    folder = archive(comm, shape, args.quick)
    scratch = comm.bcast(tempfile.mkdtemp(prefix="insitu-bench-replay-out-")
                         if comm.rank == 0 else None)
    out = os.path.join(scratch, "replay.h5")
    series = os.path.join(folder, "ta_*.nc")
    methods = {"replay": lambda: replay_once(comm, series, out),
               "xarray+dask": lambda: xarray_once(comm, folder),
               "read": lambda: read_once(comm, folder),
               "read + CF mask": lambda: read_once(comm, folder, mask=True),
               "replay, no read-ahead": lambda: replay_once(comm, series, out, ahead=False)}
    times = {k: [] for k in methods}
    cpus = {k: [] for k in methods}
    loads = []
    names = list(methods)
    for r in range(rounds + 1):  # round 0 warms the page cache and the numba cache
        turn = r % len(names)  # each round one method later: no fixed neighbours
        for name in names[turn:] + names[:turn]:
            dt, cpu = timed_with_cpu(comm, methods[name])
            if r:
                times[name].append(dt)
                cpus[name].append(cpu)
        if r:
            loads.append(os.getloadavg()[0])
    # The writer keeps the output rows it has not flushed durably (its flush
    # policy: every 10 s by default, longer than these runs), 27 KB a record
    # here, so the memory runs flush every 12 records: what is then left is
    # replay's own memory, which must not grow with the files.  "**" takes
    # the more/ folder too: twice the files, one series.
    flush = {"flush_every_steps": 12}
    n = shape["files"]
    both = os.path.join(folder, "**", "ta_*.nc")
    peaks = {n: [], 2 * n: []}
    for _ in range(2):  # N, 2N, N, 2N: each rank's larger peak of the two
        peaks[n].append(peak_rss_mib(comm, lambda: replay_once(comm, series, out, output=flush)))
        peaks[2 * n].append(peak_rss_mib(comm, lambda: replay_once(comm, both, out,
                                                                   output=flush)))
    peak = {k: np.max(np.array(v), axis=0).tolist() for k, v in peaks.items()}
    where, where_cpu = phases(comm, series, out)
    if comm.rank == 0:
        gb = n * shape["months"] * shape["plev"] * shape["lat"] * shape["lon"] * 4
        rows = []
        for name, ts in times.items():
            t = summarize(ts)
            rows.append({"method": name, "time_s": t, "cpu_s": summarize(cpus[name]),
                         "GB_per_s": gb / t["median"] / 1e9})
        comparisons = [
            {"comparison": "xarray+dask / replay", "target": ">= 3",
             "per_round": summarize(ratios(times["xarray+dask"], times["replay"]))},
            {"comparison": "replay / read", "target": "<= 1.5",
             "per_round": summarize(ratios(times["replay"], times["read"]))},
            {"comparison": "replay / read, CPU time", "target": "",
             "per_round": summarize(ratios(cpus["replay"], cpus["read"]))},
            {"comparison": "replay / (read + CF mask)", "target": "",
             "per_round": summarize(ratios(times["replay"], times["read + CF mask"]))},
            {"comparison": "no read-ahead / replay", "target": "",
             "per_round": summarize(ratios(times["replay, no read-ahead"], times["replay"]))}]
        memory = [{"files": k, "peak_rss_MiB_per_rank": [round(x, 1) for x in v]}
                  for k, v in peak.items()]
        growth = max(b - a for a, b in zip(peak[n], peak[2 * n]))
        print_header()
        print(f"{comm.size} rank(s); archive {shape} x {n} files = {gb / 1e6:.0f} MB in "
              f"{folder}; {rounds} interleaved rounds after a warm-up; load (1 min) per "
              f"round {fmt(summarize(loads), 2)}")
        print(f"{'method':>22}  {'time s, median (min-max)':>26}  {'CPU s (slowest rank)':>24}"
              f"  {'GB/s':>6}")
        for row in rows:
            print(f"{row['method']:>22}  {fmt(row['time_s']):>26}  {fmt(row['cpu_s']):>24}  "
                  f"{row['GB_per_s']:6.3g}")
        for c in comparisons:
            print(f"{c['comparison']}: {fmt(c['per_round'])} per round"
                  + (f" (target {c['target']})" if c["target"] else ""))
        print(f"peak RSS per rank, MiB: {n} files {memory[0]['peak_rss_MiB_per_rank']}, "
              f"{2 * n} files {memory[1]['peak_rss_MiB_per_rank']}: growth {growth:+.1f} MiB")
        print("where one replay's time goes, s per rank (reads: in the reader thread, "
              "overlapped; handshakes: within the steps and the finalize; CPU: of the "
              "thread each phase ran in):")
        keys = [k for k in where[0] if k not in ("rank", "time")]
        print("  rank time " + " ".join(f"{k[:-2][:10]:>10}" for k in keys))
        for w in where + where_cpu:
            print(f"  {w['rank']:>4} {w['time']:>4} " + " ".join(f"{w[k]:10.3f}" for k in keys))
        path = save(f"replay_n{comm.size}" + ("_quick" if args.quick else ""),
                    {"quick": args.quick, "rounds": rounds, "shape": shape, "rows": rows,
                     "comparisons": comparisons, "memory": memory,
                     "memory_growth_MiB": growth, "phases": where, "phases_cpu": where_cpu,
                     "load_per_round": loads, "times": times, "cpu_times": cpus})
        print(f"wrote {path}")
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
