"""Time to answer: in-situ statistics against writing the fields a run's
analysis needs and reducing them afterwards, each timed as the whole
processes a user runs, over a sweep of cadences and run lengths.

``python scripts/bench/time_to_answer.py [--quick | --full | --sweep] [--ranks 2]
[--side N] [--steps N ...] [--every N ...] [--pairs 5] [--sync] [--ways ...]``

The Python heat stand-in (``insitu.models.heat2d``, a numpy stencil), 2
ranks of ``side x side`` cells each, run for ``steps`` steps with the
answer (the standard statistics of T: count, sum, mean, min, max, std,
NaN and Inf counts) due every ``every`` steps.  A user who does not run
in situ writes the raw field at the cadence the analysis needs, for the
whole run, then reduces it; how much in situ saves depends on how much
that is, so the benchmark sweeps the cadence and the run length and
reports every point, not the one that flatters insitu.  Four ways to the
answer, run in interleaved rounds (every point and way in turn, then
again; the machine is shared and drifts):

* **model only**: the model with no output, the floor;
* **insitu**: the model with a ``stats`` analysis (default output settings:
  the file is flushed, i.e. made durable, at ``finalize``); the answer is in
  the file when the job ends;
* **h5py + xarray**: the model writes the field at every due step with
  parallel h5py (``driver="mpio"``), at its fastest here: one chunk per
  rank's block, so each rank's write is one contiguous piece of the file,
  written independently (collective writes of the same data measured 2-10x
  slower on this machine, whose Open MPI ompio does two-phase I/O with
  range locks), no fill values; then a second process opens the file with
  ``xarray.open_dataset`` (engine ``h5netcdf``, the faster of the two
  engines that read it, ``chunks={}``: dask over the file's own chunks, so
  memory stays bounded and both cores reduce) and computes the statistics
  with ``skipna=False`` (nan-skipping reductions copied the data and took
  twice as long; the field is finite, and the answer is checked);
* **ADIOS2 BP5 + numpy**: the model writes the field at every due step with
  ADIOS2's BP5 engine as it comes (the ``adios2`` wheel from PyPI,
  installed from ``requirements-bench.txt``; it has no MPI, so each rank
  writes its own file), then a second process reads the ranks' files back
  a step at a time and computes the statistics with numpy on two threads.
  Skipped, with the reason printed, when ``adios2`` cannot be imported.

Every figure is a process's wall time measured from outside (``mpiexec``
start to exit: interpreter start, imports, MPI start-up and finalize
included, as a user waits for them); a baseline's time is its write job
plus its reduce process.  Each baseline's answer is checked against
insitu's to 1e-9 relative.  The baselines' files are not fsynced (a user's
h5py run is not): a file smaller than the free memory is written to the
page cache, and is deleted after its reduce, so its dirty pages are never
written back at all; a file larger than the kernel's dirty limit (20% of
memory here) is written at the disk's speed.  ``--sync`` adds a second,
labelled figure: the write job also fsyncs its files before it ends
(``synced_total_s``, ``vs_insitu_synced``), as durable as insitu's
output.  Reported per point and way: median and spread (min-max) over the
rounds; per baseline, the per-round ratio of its time to insitu's (issue
12's target is >= 10x on its heat case: 2 ranks, 1e6 cells per rank, 2000
steps, statistics every 10) and the bound on that ratio, its time over the
model-only run's of the same round (``bound_vs_model``: the ratio an
insitu that cost nothing would reach; in the issue's case the model alone
takes most of the baseline's time, so the bound is far below 10); the time
beyond the model (each way minus the model-only run of the same round,
which may be negative within noise and is never divided by); the bytes
written.  The model-only way always runs: it is the floor both figures
are taken from.

Three sizes of run.  The default is a small sweep that fits the
benchmark budget (start-up and finalize are 0.5-1 s a process on a calm
machine, and five rounds of four ways are thirty processes per point):
1e6 cells per rank, 50 steps, every 1 and every 10 steps, 56 s on a calm
machine (load 0.1; 234 s at load 10); it is not issue 12's case, says so,
and writes ``bench-results/time_to_answer.json``.  ``--full`` runs issue
12's case (2000 steps, every 10: 3.2 GB per baseline run; 5 minutes at
load 1, 28 at load 10) and writes ``time_to_answer_full.json``, which the target check
reads.  ``--sweep`` runs 200 and 1000 steps at every 1, 5 and 20 (up to
16 GB per baseline run, more than the kernel's dirty-page limit; 50
minutes at load 7) and writes
``time_to_answer_sweep.json``.  A point whose files would not fit on the
scratch disk (with 4 GB to spare) is skipped, with the reason printed.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, fmt, interleave, machine, print_header, ratios,  # noqa: E402
                    save, summarize, table)

log = logging.getLogger("time_to_answer")

HERE = os.path.abspath(__file__)
WAYS = ("model", "insitu", "h5py", "adios2")
NAMES = {"model": "model only", "insitu": "insitu", "h5py": "h5py + xarray",
         "adios2": "ADIOS2 BP5 + numpy"}
STATS = ("count", "sum", "mean", "min", "max", "std", "nan_count", "inf_count")

# Issue 12's heat case ("Done when"): 2 ranks, 1e6 cells per rank, 2000
# steps, stats every 10.  The target check reads this point's ratio.
TARGET = {"ranks": 2, "side": 1000, "steps": 2000, "every": 10}
DEFAULT = {"side": 1000, "steps": [50], "every": [1, 10]}
SWEEP = {"side": 1000, "steps": [200, 1000], "every": [1, 5, 20]}
QUICK = {"side": 64, "steps": [20], "every": [5], "pairs": 2}
DISK_MARGIN = 4 * 2**30  # left free on the scratch disk beside a point's files


# -- the child processes: what a user runs -----------------------------------------

def fsync_path(path: str) -> None:
    """Make a file, or every file of a directory, durable."""
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs] \
        if os.path.isdir(path) else [path]
    for name in files:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def child_run(mode: str, out: str, side: int, steps: int, every: int, sync: bool) -> None:
    """Under mpiexec: the model, with insitu, h5py or ADIOS2 output, or none.
    With ``sync``, a baseline's write job fsyncs its files at the end and
    prints how long that took (``fsync_s=...``, the slowest rank's)."""
    from mpi4py import MPI

    from insitu.models.heat2d import Heat2D
    comm = MPI.COMM_WORLD
    model = Heat2D(comm, (side, side * comm.size))
    g = model.grid
    (y0, x0), (ny, nx) = g.offset, g.shape
    if mode == "insitu":
        from insitu import api
        api.init(comm, {"output": {"path": out, "overwrite": True}, "log_level": "WARNING",
                        "analyses": [{"kind": "stats", "field": "T", "every": every}]})
        model.declare(api)
    elif mode == "h5py":
        import h5py
        block = comm.bcast(g.shape)  # rank 0's block, the largest: one chunk per block
        f = h5py.File(out, "w", driver="mpio", comm=comm)
        dset = f.create_dataset("T", (steps // every, *g.global_shape), dtype="f8",
                                chunks=(1, *block), fill_time="never")
    elif mode == "adios2":
        import adios2
        io = adios2.Adios().declare_io("writer")
        io.set_engine("BP5")
        path = os.path.join(out, f"T.rank{comm.rank}.bp")
        stream = adios2.Stream(io, path, "w")
    for step in range(1, steps + 1):
        model.advance()
        if mode == "insitu":
            model.expose(api)
            api.step(step, model.time)
        elif step % every == 0 and mode == "h5py":
            dset[step // every - 1, y0:y0 + ny, x0:x0 + nx] = model.T[1:-1, 1:-1]
        elif step % every == 0 and mode == "adios2":
            stream.begin_step()
            stream.write("T", np.ascontiguousarray(model.T[1:-1, 1:-1]), [ny, nx], [0, 0],
                         [ny, nx])
            stream.end_step()
    if mode == "insitu":
        api.finalize()
    elif mode == "h5py":
        f.close()
    elif mode == "adios2":
        stream.close()
    if sync and mode in ("h5py", "adios2"):
        comm.Barrier()
        t0 = time.perf_counter()
        if mode == "adios2":
            fsync_path(path)
        elif comm.rank == 0:
            fsync_path(out)  # the file's dirty pages, whichever rank wrote them
        dt = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        if comm.rank == 0:
            print(f"fsync_s={dt:.6f}", flush=True)
    model.free()


def numpy_stats(x: np.ndarray) -> dict:
    """The statistics of one step's values as a numpy user computes them."""
    return {"count": np.isfinite(x).sum(), "sum": x.sum(), "mean": x.mean(),
            "min": x.min(), "max": x.max(), "std": x.std(),
            "nan_count": np.isnan(x).sum(), "inf_count": np.isinf(x).sum()}


def child_reduce(mode: str, out: str, answer: str) -> None:
    """Serial, after the write job: read the fields back and reduce them."""
    if mode == "h5py":
        import xarray as xr
        with xr.open_dataset(out, engine="h5netcdf", phony_dims="sort", chunks={}) as ds:
            T = ds["T"]
            dims = T.dims[1:]
            res = xr.Dataset({"count": np.isfinite(T).sum(dims),
                              "sum": T.sum(dims, skipna=False),
                              "mean": T.mean(dims, skipna=False),
                              "min": T.min(dims, skipna=False),
                              "max": T.max(dims, skipna=False),
                              "std": T.std(dims, skipna=False),
                              "nan_count": T.isnull().sum(dims),
                              "inf_count": np.isinf(T).sum(dims)}).compute()
            stats = {k: res[k].values for k in STATS}
    elif mode == "adios2":
        from concurrent.futures import ThreadPoolExecutor

        import adios2
        readers = [adios2.FileReader(os.path.join(out, name))
                   for name in sorted(os.listdir(out))]
        n = readers[0].inquire_variable("T").steps()
        pending, rows = [], []
        # numpy's reductions release the GIL: two threads reduce while the
        # main thread reads the next step (at most four steps in memory)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for k in range(n):
                x = np.concatenate([r.read("T", step_selection=[k, 1]).ravel()
                                    for r in readers])
                pending.append(pool.submit(numpy_stats, x))
                if len(pending) >= 4:
                    rows.append(pending.pop(0).result())
            rows += [p.result() for p in pending]
        for r in readers:
            r.close()
        stats = {k: np.array([row[k] for row in rows]) for k in STATS}
    np.savez(answer, **stats)


# -- the driver ----------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a small run, to check it works")
    mode.add_argument("--full", action="store_true",
                      help="issue 12's case: 1000x1000 cells per rank, 2000 steps, every 10 "
                           "(5 minutes at load 1, 28 at load 10); writes time_to_answer_full.json")
    mode.add_argument("--sweep", action="store_true",
                      help="1000x1000 cells per rank, 200 and 1000 steps, every 1, 5 and 20 "
                           "(50 minutes at load 7; up to 16 GB written per baseline run); "
                           "writes time_to_answer_sweep.json")
    p.add_argument("--ranks", type=int, nargs="+", default=[2], help="rank counts (default 2)")
    p.add_argument("--side", type=int, default=None,
                   help=f"cells per rank per axis (default {DEFAULT['side']})")
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help=f"run lengths to sweep (default {DEFAULT['steps']})")
    p.add_argument("--every", type=int, nargs="+", default=None,
                   help=f"cadences to sweep, the answer every N steps (default "
                        f"{DEFAULT['every']})")
    p.add_argument("--pairs", type=int, default=None,
                   help=f"interleaved rounds (default and minimum {MIN_PAIRS})")
    p.add_argument("--sync", action="store_true",
                   help="also time the baselines with their files fsynced at the end")
    p.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS),
                   help="which ways to run (default all; model only and insitu always run: "
                        "the model is the floor every way's time beyond it and the bound on "
                        "the ratio are taken from, insitu the reference every baseline's "
                        "answer is checked against)")
    a = p.parse_args(argv)
    a.ways = [w for w in WAYS if w in a.ways or w in ("model", "insitu")]
    base = QUICK if a.quick else SWEEP if a.sweep else \
        {"side": TARGET["side"], "steps": [TARGET["steps"]], "every": [TARGET["every"]]} \
        if a.full else DEFAULT
    a.side = a.side or base["side"]
    a.steps = a.steps or list(base["steps"])
    a.every = a.every or list(base["every"])
    if a.quick:
        a.pairs = a.pairs or QUICK["pairs"]
    else:
        a.pairs = max(a.pairs or MIN_PAIRS, MIN_PAIRS)
    bad = [n for n in a.steps + a.every + [a.side] if n < 1]
    if bad:
        p.error(f"--side, --steps and --every must be positive, got {bad}")
    a.points = [(s, e) for s in a.steps for e in a.every if e <= s]
    if not a.points:
        p.error(f"no point of the sweep has an answer: every cadence {a.every} is longer "
                f"than every run {a.steps}")
    return a


def adios2_status() -> str | None:
    """None if the ADIOS2 baseline can run, else why not."""
    try:
        import adios2  # noqa: F401  (the PyPI wheel has no MPI: one writer per rank)
    except ImportError as e:
        return (f"the adios2 package is not installed ({e}); "
                "install it with: .venv/bin/python -m pip install -r requirements-bench.txt")
    return None


def wall(cmd: list, env: dict, cwd: str) -> tuple[float, str]:
    """A whole process's wall time from outside, and its stdout."""
    t0 = time.perf_counter()
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                         timeout=3600, cwd=cwd)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed (exit {out.returncode}):\n"
                         f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return dt, out.stdout


def size_of(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
                   for f in fs)
    return os.path.getsize(path) if os.path.exists(path) else 0


def field_bytes(nranks: int, side: int, steps: int, every: int) -> int:
    """What a baseline writes: the whole field at every due step."""
    return 8 * side * side * nranks * (steps // every)


def insitu_answer(path: str) -> dict:
    import h5py
    with h5py.File(path, "r") as f:
        return {k: f[f"T_{k}"][()] for k in STATS if f"T_{k}" in f}


def check_answer(reference: dict, answer_path: str, way: str) -> None:
    """A baseline must compute what insitu computed, or its time means nothing."""
    got = np.load(answer_path)
    missing = [k for k in STATS if k not in reference]
    if missing:
        raise SystemExit(f"insitu's file lacks {missing}: nothing to check {way} against")
    for k, ref in reference.items():
        if got[k].shape != ref.shape or not np.allclose(got[k], ref, rtol=1e-9, atol=0):
            raise SystemExit(f"{way}: {k} differs from insitu's: {got[k][:3]} vs {ref[:3]}")


def is_target(nranks: int, side: int, steps: int, every: int) -> bool:
    return (nranks, side, steps, every) == tuple(TARGET[k] for k in
                                                 ("ranks", "side", "steps", "every"))


class Point:
    """One point of the sweep: its runs, its reference answer, its rows."""

    def __init__(self, nranks: int, steps: int, every: int, args, work: str, env: dict,
                 ways: list[str]) -> None:
        self.nranks, self.steps, self.every = nranks, steps, every
        self.args, self.work, self.env = args, work, env
        self.mpi = ["mpiexec", "-n", str(nranks), sys.executable, HERE]
        self.geometry = [str(args.side), str(steps), str(every), "1" if args.sync else "0"]
        self.runs = {NAMES[w]: [] for w in ways}
        self.nbytes: dict[str, int] = {}
        self.reference: dict = {}

    @property
    def label(self) -> str:
        return f"{self.nranks} ranks, {self.steps} steps, every {self.every}"

    def run(self, way: str) -> float:
        w, work = self.runs[way], self.work
        if way == "model only":
            t, _ = wall(self.mpi + ["--child", "model", os.path.join(work, "none")]
                        + self.geometry, self.env, work)
            w.append({"total_s": t, "run_s": t, "post_s": 0.0})
            return t
        if way == "insitu":
            out = os.path.join(work, "insitu.h5")
            t, _ = wall(self.mpi + ["--child", "insitu", out] + self.geometry, self.env, work)
            self.reference = insitu_answer(out)
            self.nbytes[way] = size_of(out)
            os.remove(out)
            w.append({"total_s": t, "run_s": t, "post_s": 0.0})
            return t
        kind = "h5py" if way.startswith("h5py") else "adios2"
        out = os.path.join(work, "everything.h5" if kind == "h5py" else "everything.bp")
        if kind == "adios2":
            os.makedirs(out, exist_ok=True)
        try:
            t_run, stdout = wall(self.mpi + ["--child", kind, out] + self.geometry, self.env,
                                 work)
            answer = os.path.join(work, "answer.npz")
            t_post, _ = wall([sys.executable, HERE, "--reduce", kind, out, answer], self.env,
                             work)
            self.nbytes[way] = size_of(out)
        finally:  # the disk holds one baseline's files at a time
            shutil.rmtree(out, ignore_errors=True) if os.path.isdir(out) else \
                os.path.exists(out) and os.remove(out)
        check_answer(self.reference, answer, f"{way} ({self.label})")
        fsync = next((float(line.split("=", 1)[1]) for line in stdout.splitlines()
                      if line.startswith("fsync_s=")), 0.0)
        # without --sync the process did not fsync; with it, the unsynced
        # figure is its wall time minus the fsync it ended with
        sample = {"total_s": t_run - fsync + t_post, "run_s": t_run - fsync, "post_s": t_post}
        if self.args.sync:
            sample.update(fsync_s=fsync, synced_total_s=t_run + t_post)
        w.append(sample)
        return sample["total_s"]

    def rows(self) -> list[dict]:
        floor = [r["total_s"] for r in self.runs.get("model only", [])]
        ins = [r["total_s"] for r in self.runs["insitu"]]
        out = []
        for way, samples in self.runs.items():
            total = [r["total_s"] for r in samples]
            row = {"ranks": self.nranks, "cells_per_rank": self.args.side ** 2,
                   "steps": self.steps, "every": self.every,
                   "answers": self.steps // self.every,
                   "target_case": is_target(self.nranks, self.args.side, self.steps,
                                            self.every),
                   "way": way, "total_s": summarize(total),
                   "run_s": summarize([r["run_s"] for r in samples]),
                   "post_s": summarize([r["post_s"] for r in samples]),
                   "beyond_model_s": summarize([t - f for t, f in zip(total, floor)])
                   if floor else None,
                   "bytes": self.nbytes.get(way, 0)}
            if way not in ("model only", "insitu"):
                row["vs_insitu"] = summarize(ratios(total, ins))
                if floor:
                    # what vs_insitu would be if insitu cost nothing (took
                    # the model's time): no insitu can do better than this
                    row["bound_vs_model"] = summarize(ratios(total, floor))
                if self.args.sync:
                    synced = [r["synced_total_s"] for r in samples]
                    row.update(fsync_s=summarize([r["fsync_s"] for r in samples]),
                               synced_total_s=summarize(synced),
                               vs_insitu_synced=summarize(ratios(synced, ins)))
                    if floor:
                        row["bound_vs_model_synced"] = summarize(ratios(synced, floor))
            out.append(row)
        return out


def sweep_table(rows: list[dict], ways: list[str], sync: bool) -> str:
    """One line per point: every way's time and each baseline's ratio."""
    points: dict[tuple, dict] = {}
    for r in rows:
        key = (r["ranks"], r["cells_per_rank"], r["steps"], r["every"])
        p = points.setdefault(key, {"ranks": r["ranks"], "cells/rank": r["cells_per_rank"],
                                    "steps": r["steps"], "every": r["every"],
                                    "GB written": None})
        p[r["way"]] = r["total_s"]
        if "vs_insitu" in r:
            p["GB written"] = round(r["bytes"] / 1e9, 3)
            p[f"{r['way']} / insitu"] = r["vs_insitu"]
            if "bound_vs_model" in r:
                p[f"{r['way']} / model only"] = r["bound_vs_model"]
            if sync:
                p[f"{r['way']} synced / insitu"] = r["vs_insitu_synced"]
    names = [NAMES[w] for w in ways]
    baselines = [n for n in names if n not in ("model only", "insitu")]
    cols = ["ranks", "cells/rank", "steps", "every", "GB written", *names,
            *[f"{b} / insitu" for b in baselines], *[f"{b} / model only" for b in baselines],
            *([f"{b} synced / insitu" for b in baselines] if sync else [])]
    present = [c for c in cols if any(c in p for p in points.values())]
    return table(list(points.values()), present)


def bound_line(row: dict, rows: list[dict]) -> str:
    """Why a ratio is what it is: a baseline's time over the model's alone
    (per round) bounds what any insitu could reach, and the time beyond
    the model says where each way's cost is."""
    key = (row["ranks"], row["cells_per_rank"], row["steps"], row["every"])
    ins = next((r for r in rows if r["way"] == "insitu"
                and (r["ranks"], r["cells_per_rank"], r["steps"], r["every"]) == key), {})
    return (f"{row['ranks']} ranks, {row['steps']} steps, every {row['every']}: "
            f"{row['way']} / insitu {fmt(row['vs_insitu'])} x; bound (its time over the "
            f"model only's, what an insitu that cost nothing would reach) "
            f"{fmt(row['bound_vs_model'])} x; time beyond the model: insitu "
            f"{fmt(ins.get('beyond_model_s'))} s, {row['way']} {fmt(row['beyond_model_s'])} s")


def main(argv=None) -> int:
    # a SIGTERM ends the run through the finally that deletes its files
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    args = parse_args(argv)
    machine()  # the header's date and load: at the start
    work = tempfile.mkdtemp(prefix="insitu-tta-")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    skip_adios = adios2_status() if "adios2" in args.ways else None
    ways = [w for w in WAYS if w in args.ways and not (w == "adios2" and skip_adios)]
    free = shutil.disk_usage(work).free
    points, skipped = [], []
    for n in args.ranks:
        for steps, every in args.points:
            need = field_bytes(n, args.side, steps, every)
            if any(w in ways for w in ("h5py", "adios2")) and need + DISK_MARGIN > free:
                skipped.append({"ranks": n, "steps": steps, "every": every,
                                "why": f"needs {need / 1e9:.1f} GB on {work}'s disk, "
                                       f"{free / 1e9:.1f} GB free"})
                continue
            points.append(Point(n, steps, every, args, work, env, ways))
    try:
        # one unmeasured insitu run fills numba's cache (the steady state is
        # measured, not the first run after a kernel changed)
        wall(["mpiexec", "-n", "1", sys.executable, HERE, "--child", "insitu",
              os.path.join(work, "warm.h5"), "32", "10", "5", "0"], env, work)
        # insitu runs before the baselines at each point in the first round
        # (common.interleave starts round 0 in this order): its file is their
        # reference.  Later rounds rotate, and a baseline that runs before
        # insitu is checked against the last insitu answer of its point,
        # the same numbers (the model is deterministic)
        contenders = {f"{p.label}: {NAMES[w]}": (lambda p=p, w=NAMES[w]: p.run(w))
                      for p in points for w in ways}
        name = "time_to_answer" + ("_full" if args.full else "_sweep" if args.sweep else "")

        def payload(rounds: int) -> dict:
            rows = [r for p in points for r in p.rows()]
            return {"rows": rows, "quick": args.quick, "full": args.full,
                    "sweep": args.sweep, "pairs": args.pairs, "rounds_done": rounds,
                    "side": args.side, "steps": args.steps, "every": args.every,
                    "ranks": args.ranks, "ways": args.ways, "sync": args.sync,
                    "includes_target_case": any(r["target_case"] for r in rows),
                    "adios2_skipped": skip_adios, "skipped_points": skipped,
                    "samples": {p.label: p.runs for p in points}}

        def on_round(r: int) -> None:
            log.info("round %d of %d done (%.0f s)", r + 1, args.pairs,
                     time.perf_counter() - t0)
            if r + 1 < args.pairs:  # a long run stopped early keeps its rounds
                save(name, payload(r + 1))
        t0 = time.perf_counter()
        interleave(contenders, args.pairs, on_round=on_round)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = payload(args.pairs)
    rows, target_in = result["rows"], result["includes_target_case"]
    print_header()
    print(f"time to answer, whole processes: heat stand-in (numpy), {args.side}x{args.side} "
          f"cells per rank, the statistics of T every `every` steps; {args.pairs} "
          "interleaved rounds; wall time in s, median (min-max); a ratio is the median "
          "(min-max) of the per-round ratios, baseline / insitu")
    print("the baselines' files are not fsynced (as a user's run does not), deleted after "
          "their reduce" + ("; 'synced' figures fsync them at the end of the write job"
                            if args.sync else ""))
    if skip_adios:
        print(f"SKIPPED (b) ADIOS2 BP5 + numpy: {skip_adios}")
    elif "adios2" not in args.ways:
        print("not run: (b) ADIOS2 BP5 + numpy (--ways left it out)")
    for s in skipped:
        print(f"SKIPPED point {s['ranks']} ranks, {s['steps']} steps, every {s['every']}: "
              f"{s['why']}")
    print(sweep_table(rows, ways, args.sync))
    print()
    print(table(rows, ["ranks", "steps", "every", "way", "total_s", "run_s", "post_s",
                       "beyond_model_s", "bytes", "vs_insitu"]
                + (["fsync_s", "synced_total_s", "vs_insitu_synced"] if args.sync else [])))
    t = TARGET
    case = (f"{t['ranks']} ranks, {t['side']}x{t['side']} cells per rank, {t['steps']} "
            f"steps, statistics every {t['every']}")
    for r in rows:
        if "vs_insitu" in r and "bound_vs_model" in r:
            print(bound_line(r, rows))
    if target_in:
        for r in rows:
            if r["target_case"] and "vs_insitu" in r:
                print(f"issue 12's case ({case}): {r['way']} takes {fmt(r['vs_insitu'])} x "
                      f"insitu's time to answer (target >= 10); at most "
                      f"{fmt(r.get('bound_vs_model'))} x for an insitu that cost nothing")
    else:
        print(f"issue 12's case ({case}) is not in this run: run --full for it")
    print(f"wrote {save(name, result)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_run(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7]), sys.argv[7] == "1")
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--reduce":
        child_reduce(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    sys.exit(main())
