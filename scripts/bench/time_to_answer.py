"""Time to answer: in-situ statistics against writing every field and
reducing it afterwards, each timed as the whole processes a user runs.

``python scripts/bench/time_to_answer.py [--quick] [--ranks 2] [--side 1000]
[--steps 100] [--every 5] [--pairs 5]``

The Python heat stand-in (``insitu.models.heat2d``), ``side x side`` cells
per rank, ``steps`` steps, the answer due every ``every`` steps: the
standard statistics of T (count, sum, mean, min, max, std, NaN and Inf
counts) at each due step.  Four ways to the answer, run in interleaved
rounds (A B C D A B C D ...; the machine is shared and drifts):

* **model only**: the model with no output, the floor;
* **insitu**: the model with a ``stats`` analysis; the answer is in the
  file when the job ends;
* **h5py + xarray**: the model writes the whole field at every due step with
  h5py (parallel HDF5, ``driver="mpio"``, collective writes, as a user of
  parallel HDF5 would), then a second process opens the file with
  ``xarray.open_dataset`` and computes the same statistics;
* **ADIOS2 BP5 + numpy**: the model writes the whole field at every due step
  with ADIOS2's BP5 engine (the ``adios2`` wheel from PyPI, installed from
  ``requirements-bench.txt``; it has no MPI, so each rank writes its own
  file), then a second process reads every rank's file back and computes
  the same statistics with numpy.  Skipped, with the reason printed, when
  the ``adios2`` package cannot be imported.

Every figure is a process's wall time measured from outside
(``mpiexec`` start to exit: interpreter start, imports, MPI start-up and
finalize included, as a user waits for them); a baseline's time is its write
job plus its reduce process.  Each baseline's answer is checked against
insitu's to 1e-9 relative.  Reported per way: median and spread (min-max)
over the rounds; per baseline, the per-round ratio of its time to insitu's
(target >= 10x, issue 12); the time beyond the model (each way minus the
model-only run of the same round, a difference that may be negative within
noise: it is never divided by); and the bytes written.
JSON: ``bench-results/time_to_answer.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, fmt, interleave, machine, print_header, ratios,  # noqa: E402
                    save, summarize, table)

HERE = os.path.abspath(__file__)
WAYS = ("model", "insitu", "h5py", "adios2")
NAMES = {"model": "model only", "insitu": "insitu", "h5py": "h5py + xarray",
         "adios2": "ADIOS2 BP5 + numpy"}
STATS = ("count", "sum", "mean", "min", "max", "std", "nan_count", "inf_count")


# -- the child processes: what a user runs -----------------------------------------

def child_run(mode: str, out: str, side: int, steps: int, every: int) -> None:
    """Under mpiexec: the model, with insitu, h5py or ADIOS2 output, or none."""
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
        f = h5py.File(out, "w", driver="mpio", comm=comm)
        dset = f.create_dataset("T", (steps // every, *g.global_shape), dtype="f8")
    elif mode == "adios2":
        import adios2
        io = adios2.Adios().declare_io("writer")
        io.set_engine("BP5")
        stream = adios2.Stream(io, os.path.join(out, f"T.rank{comm.rank}.bp"), "w")
    for step in range(1, steps + 1):
        model.advance()
        if mode == "insitu":
            model.expose(api)
            api.step(step, model.time)
        elif step % every == 0 and mode == "h5py":
            with dset.collective:
                dset[step // every - 1, y0:y0 + ny, x0:x0 + nx] = model.T[1:-1, 1:-1]
        elif step % every == 0 and mode == "adios2":
            stream.begin_step()
            stream.write("T", np.ascontiguousarray(model.T[1:-1, 1:-1]), [ny, nx], [0, 0],
                         [ny, nx])
            stream.write("offset", np.array([y0, x0], dtype=np.int64), [2], [0], [2])
            stream.end_step()
    if mode == "insitu":
        api.finalize()
    elif mode == "h5py":
        f.close()
    elif mode == "adios2":
        stream.close()
    model.free()


def user_stats_numpy(x, axes) -> dict:
    """The statistics as a numpy user computes them, one pass each."""
    fin = np.isfinite(x)
    return {"count": fin.sum(axes), "sum": x.sum(axes), "mean": x.mean(axes),
            "min": x.min(axes), "max": x.max(axes), "std": x.std(axes),
            "nan_count": np.isnan(x).sum(axes), "inf_count": np.isinf(x).sum(axes)}


def child_reduce(mode: str, out: str, answer: str) -> None:
    """Serial, after the write job: read everything back and reduce it."""
    if mode == "h5py":
        import xarray as xr
        with xr.open_dataset(out, engine="h5netcdf", phony_dims="sort") as ds:
            T = ds["T"]
            dims = T.dims[1:]
            res = xr.Dataset({"count": np.isfinite(T).sum(dims), "sum": T.sum(dims),
                              "mean": T.mean(dims), "min": T.min(dims), "max": T.max(dims),
                              "std": T.std(dims), "nan_count": T.isnull().sum(dims),
                              "inf_count": np.isinf(T).sum(dims)}).compute()
            stats = {k: res[k].values for k in STATS}
    elif mode == "adios2":
        import adios2
        blocks = []
        for name in sorted(os.listdir(out)):
            with adios2.FileReader(os.path.join(out, name)) as f:
                var = f.inquire_variable("T")
                n = var.steps()
                ny, nx = var.shape()
                data = f.read("T", step_selection=[0, n]).reshape(n, ny, nx)
                offset = f.read("offset", step_selection=[0, 1])
                blocks.append((int(offset[1]), data))
        x = np.concatenate([b for _, b in sorted(blocks, key=lambda b: b[0])], axis=2)
        stats = user_stats_numpy(x, (1, 2))
    np.savez(answer, **stats)


# -- the driver ----------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--ranks", type=int, nargs="+", default=[2], help="rank counts (default 2)")
    p.add_argument("--side", type=int, default=None, help="cells per rank per axis (1000)")
    p.add_argument("--steps", type=int, default=None, help="model steps (default 100)")
    p.add_argument("--every", type=int, default=5, help="the answer every N steps (5)")
    p.add_argument("--pairs", type=int, default=None,
                   help=f"interleaved rounds (default and minimum {MIN_PAIRS})")
    p.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS),
                   help="which ways to run (default all; insitu always runs: it is the "
                        "reference every baseline's answer is checked against)")
    a = p.parse_args(argv)
    if "insitu" not in a.ways:
        a.ways.insert(0, "insitu")
    if a.quick:
        a.side, a.steps, a.pairs = a.side or 100, a.steps or 20, a.pairs or 2
    else:
        a.side, a.steps = a.side or 1000, a.steps or 100
        a.pairs = max(a.pairs or MIN_PAIRS, MIN_PAIRS)
    return a


def adios2_status() -> str | None:
    """None if the ADIOS2 baseline can run, else why not."""
    try:
        import adios2  # noqa: F401  (the PyPI wheel has no MPI: one writer per rank)
    except ImportError as e:
        return (f"the adios2 package is not installed ({e}); "
                "install it with: .venv/bin/python -m pip install -r requirements-bench.txt")
    return None


def wall(cmd: list, env: dict, cwd: str) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                         timeout=900, cwd=cwd)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed (exit {out.returncode}):\n"
                         f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return dt


def size_of(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
                   for f in fs)
    return os.path.getsize(path) if os.path.exists(path) else 0


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
        if not np.allclose(got[k], ref, rtol=1e-9, atol=0):
            raise SystemExit(f"{way}: {k} differs from insitu's: {got[k][:3]} vs {ref[:3]}")


def measure(nranks: int, args, work: str, env: dict, skip_adios: str | None) -> dict:
    mpi = ["mpiexec", "-n", str(nranks), sys.executable, HERE]
    geometry = [str(args.side), str(args.steps), str(args.every)]
    runs = {NAMES[w]: [] for w in WAYS if w in args.ways
            and not (w == "adios2" and skip_adios)}
    nbytes = {}
    reference = {}

    def go(way: str):
        def run() -> float:
            if way == "model only":
                t = wall(mpi + ["--child", "model", os.path.join(work, "none")] + geometry,
                         env, work)
                runs[way].append({"total_s": t, "run_s": t, "post_s": 0.0})
                return t
            if way == "insitu":
                out = os.path.join(work, "insitu.h5")
                t = wall(mpi + ["--child", "insitu", out] + geometry, env, work)
                reference.update(insitu_answer(out))
                nbytes[way] = size_of(out)
                os.remove(out)
                runs[way].append({"total_s": t, "run_s": t, "post_s": 0.0})
                return t
            kind = "h5py" if way.startswith("h5py") else "adios2"
            out = os.path.join(work, "everything.h5" if kind == "h5py" else "everything.bp")
            if kind == "adios2":
                os.makedirs(out, exist_ok=True)
            t_run = wall(mpi + ["--child", kind, out] + geometry, env, work)
            answer = os.path.join(work, "answer.npz")
            t_post = wall([sys.executable, HERE, "--reduce", kind, out, answer], env, work)
            nbytes[way] = size_of(out)
            check_answer(reference, answer, way)
            shutil.rmtree(out) if os.path.isdir(out) else os.remove(out)
            runs[way].append({"total_s": t_run + t_post, "run_s": t_run, "post_s": t_post})
            return t_run + t_post
        return run

    # insitu before the baselines in each round: its file is their reference
    interleave({way: go(way) for way in runs}, args.pairs)
    floor = [r["total_s"] for r in runs.get("model only", [])]
    ins = [r["total_s"] for r in runs["insitu"]]
    rows = []
    for way, samples in runs.items():
        total = [r["total_s"] for r in samples]
        row = {"ranks": nranks, "way": way, "total_s": summarize(total),
               "run_s": summarize([r["run_s"] for r in samples]),
               "post_s": summarize([r["post_s"] for r in samples]),
               "beyond_model_s": summarize([t - f for t, f in zip(total, floor)]),
               "bytes": nbytes.get(way, 0)}
        if way not in ("model only", "insitu"):
            row["vs_insitu"] = summarize(ratios(total, ins))
        rows.append(row)
    return {"rows": rows, "samples": runs}


def main(argv=None) -> int:
    args = parse_args(argv)
    machine()  # the header's date and load: at the start
    work = tempfile.mkdtemp(prefix="insitu-tta-")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    skip_adios = adios2_status() if "adios2" in args.ways else None
    # one unmeasured insitu run fills numba's cache (the steady state is
    # measured, not the first run after a kernel changed)
    wall(["mpiexec", "-n", "1", sys.executable, HERE, "--child", "insitu",
          os.path.join(work, "warm.h5"), "32", "10", "5"], env, work)
    results = {n: measure(n, args, work, env, skip_adios) for n in args.ranks}
    rows = [r for n in args.ranks for r in results[n]["rows"]]
    print_header()
    print(f"time to answer, whole processes: heat stand-in, {args.side}x{args.side} cells per "
          f"rank, {args.steps} steps, statistics every {args.every} "
          f"({args.steps // args.every} answers); {args.pairs} interleaved rounds; "
          "median (min-max)")
    if skip_adios:
        print(f"SKIPPED (b) ADIOS2 BP5 + numpy: {skip_adios}")
    elif "adios2" not in args.ways:
        print("not run: (b) ADIOS2 BP5 + numpy (--ways left it out)")
    print(table(rows, ["ranks", "way", "total_s", "run_s", "post_s", "beyond_model_s",
                       "bytes", "vs_insitu"]))
    for r in rows:
        if "vs_insitu" in r:
            print(f"{r['ranks']} ranks: {r['way']} takes {fmt(r['vs_insitu'])} x insitu's "
                  f"time to answer (target >= 10) and "
                  f"{r['bytes'] / max(1, next(x['bytes'] for x in rows if x['ranks'] == r['ranks'] and x['way'] == 'insitu')):.0f}x its bytes")
    payload = {"rows": rows, "quick": args.quick, "pairs": args.pairs, "side": args.side,
               "steps": args.steps, "every": args.every, "ranks": args.ranks,
               "ways": args.ways, "adios2_skipped": skip_adios,
               "samples": {str(n): results[n]["samples"] for n in args.ranks}}
    print(f"wrote {save('time_to_answer', payload)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_run(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7]))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--reduce":
        child_reduce(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    sys.exit(main())
