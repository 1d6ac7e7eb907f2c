"""Start-up: from process start to the end of init and of the first due step.

``python scripts/bench/startup.py [--quick] [--ranks N] [--pairs N] [--against DIR]``

Each rank measures its own age (now minus the kernel's start time of the
process, /proc/self/stat, 10 ms resolution) at the end of ``init`` and at
the end of the first due step, and the CPU time it has used by then
(``*_cpu_s``: on a shared, loaded machine the ages grow with the load, the
CPU time much less); the report gives the slowest rank's, as a median over
the runs with its spread (min-max), for two hosts at 2 ranks:

* **python**: a Python model (``numpy``, ``mpi4py``, ``insitu.api``), the
  imports inside the timed region, as a user pays them;
* **fortran**: ``handoff.f90`` through libinsitu (the embedded interpreter
  starts in ``insitu_init``).

A warm-up run of each variant fills numba's cache; every timed run must then
load every kernel from it: the Python probe counts the kernels' cache hits
and misses (numba's dispatcher statistics), and one run of each host with
``NUMBA_DEBUG_CACHE=1`` must show no cache save (a save is a recompile).
``--importtime`` also prints the slowest imports up to the end of init, from
``python -X importtime``.

``--against DIR`` runs the same with another checkout (a ``git archive`` of
an older commit with its libinsitu built: ``python
fortran_shim/build_libinsitu.py DIR/insitu/_lib``), interleaved run by run,
and reports both and the median per-pair ratio.  JSON goes to
``bench-results/startup.json``.
"""
from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

MARK = "INSITU-STARTUP-MARK init done"


def process_age() -> float:
    """Seconds since this process started (CLOCK_BOOTTIME minus the start
    time the kernel recorded, in clock ticks since boot)."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    start = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start


def cpu_seconds() -> float:
    """CPU seconds this process used so far (user + system), all of it:
    the interpreter's start included, as in the Fortran probe."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15


def probe(out: str) -> None:
    """The Python host: everything after the interpreter's own start is
    timed, imports included."""
    import numpy as np
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    ages = {"imports_s": process_age()}
    n = 64
    api.init(comm, {"output": {"path": out, "overwrite": True}, "log_level": "WARNING",
                    "analyses": [{"kind": "stats", "field": "T", "every": 10}]})
    ages["init_s"] = process_age()
    ages["init_cpu_s"] = cpu_seconds()
    sys.stderr.write(MARK + "\n")
    sys.stderr.flush()
    # what init has loaded, of the heavy packages and insitu's readers
    loaded_at_init = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in (
        "xarray", "matplotlib", "pandas", "h5netcdf", "netCDF4", "scipy", "numba", "h5py",
        "cffi", "pycparser")} | {m for m in ("insitu.plots", "insitu.inspect") if m in sys.modules})
    api.declare_field("T", np.float64, (n * comm.size, n), (n * comm.rank, 0), (n, n))
    api.expose("T", np.ones((n, n)))
    api.step(10, 1.0)
    ages["first_step_s"] = process_age()
    ages["first_step_cpu_s"] = cpu_seconds()
    api.finalize()
    hits = misses = 0
    for name, mod in list(sys.modules.items()):
        if not name.startswith("insitu.kernels"):
            continue
        for obj in vars(mod).values():
            stats = getattr(obj, "stats", None)
            if stats is not None and hasattr(stats, "cache_hits"):
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
    slowest = {k: comm.allreduce(v, op=MPI.MAX) for k, v in ages.items()}
    slowest["cache_hits"] = comm.allreduce(hits)
    slowest["cache_misses"] = comm.allreduce(misses)
    if comm.rank == 0:
        slowest["loaded_at_init"] = loaded_at_init
        print("RESULT " + json.dumps(slowest), flush=True)


def variant_env(tree) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    env.pop("NUMBA_DEBUG_CACHE", None)
    if tree:
        env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    return env


def build(workdir: str, tree, tag: str) -> str:
    import subprocess
    env = variant_env(tree)
    cfg = [sys.executable, "-m", "insitu.config"]
    # cwd=workdir: `python -m` puts the cwd first on sys.path
    flags = subprocess.run(cfg + ["--fflags"], env=env, cwd=workdir, capture_output=True,
                           text=True, check=True).stdout.split()
    ldflags = subprocess.run(cfg + ["--ldflags"], env=env, cwd=workdir, capture_output=True,
                             text=True, check=True).stdout.split()
    exe = os.path.join(workdir, f"startup-{tag}")
    subprocess.run(["mpif90", "-O2", *flags, "-J", workdir, "-o", exe,
                    os.path.join(HERE, "handoff.f90"), *ldflags], check=True, cwd=workdir)
    return exe


def launch(cmd, env, workdir) -> tuple[dict, str, float]:
    import subprocess
    t0 = time.perf_counter()
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                         timeout=600, cwd=workdir)
    wall = time.perf_counter() - t0
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"no RESULT from {' '.join(map(str, cmd))}:\n{out.stdout}\n"
                         f"{out.stderr[-4000:]}")
    if line.startswith("RESULT {"):
        res = json.loads(line[len("RESULT "):])
    else:
        f = line.split()[1:]
        res = {"init_s": float(f[8]), "first_step_s": float(f[9]),
               "init_cpu_s": float(f[10]), "first_step_cpu_s": float(f[11])}
    res["mpiexec_wall_s"] = wall
    return res, out.stdout + out.stderr, wall  # numba's cache debugging prints to stdout


def summary(values) -> dict:
    import statistics
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "runs": len(vals)}


def fmt(s) -> str:
    return "-" if s["median"] is None else f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"


def recompiles(stderr: str) -> list:
    """NUMBA_DEBUG_CACHE lines that mean a kernel was compiled, not loaded."""
    return [l for l in stderr.splitlines() if l.startswith("[cache]") and "saved" in l]


def importtime_top(stderr: str, count: int = 12) -> list:
    """The slowest top-level imports up to the end of init (cumulative us)."""
    rows = []
    for line in stderr.split(MARK)[0].splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = line.split("|")
        if not name.startswith("  ") and cum.strip().isdigit():  # top level only
            rows.append((int(cum), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    import argparse
    import tempfile
    sys.path.insert(0, HERE)  # here, not at the top: the probe imports nothing it need not
    from common import describe_machine, save
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--pairs", type=int, default=5, help="runs of each variant (default 5)")
    p.add_argument("--against", metavar="DIR", help="another checkout to compare with")
    p.add_argument("--importtime", action="store_true",
                   help="print the slowest imports up to the end of init")
    args = p.parse_args()
    pairs = 2 if args.quick else max(args.pairs, 1)
    work = tempfile.mkdtemp(prefix="insitu-startup-")
    variants = [("this", None)] + ([("against", os.path.abspath(args.against))]
                                   if args.against else [])
    exes = {tag: build(work, tree, tag) for tag, tree in variants}
    cfg = os.path.join(work, "startup.yaml")
    with open(cfg, "w") as fh:
        fh.write(f"output: {{path: {work}/fortran.h5, overwrite: true}}\nlog_level: WARNING\n"
                 "analyses: [{kind: stats, field: T, every: 1000000000}]\n")
    script = os.path.abspath(__file__)
    mpi = ["mpiexec", "-n", str(args.ranks)]

    def command(host, tag):
        if host == "fortran":
            return mpi + [exes[tag], cfg, 4096, 0]
        return mpi + [sys.executable, script, "--probe", os.path.join(work, f"py-{tag}.h5")]

    hosts = ["python", "fortran"]
    checks = {}
    for tag, tree in variants:  # warm numba's cache, then look for recompiles
        for host in hosts:
            launch(command(host, tag), variant_env(tree), work)
            env = dict(variant_env(tree), NUMBA_DEBUG_CACHE="1")
            _, err, _ = launch(command(host, tag), env, work)
            checks[(host, tag)] = recompiles(err)
    results = {(h, tag): [] for h in hosts for tag, _ in variants}
    for _ in range(pairs):
        for host in hosts:
            for tag, tree in variants:  # A B A B ...
                results[(host, tag)].append(launch(command(host, tag), variant_env(tree),
                                                   work)[0])
    rows = []
    for host in hosts:
        for metric in ("init_s", "first_step_s", "init_cpu_s", "first_step_cpu_s",
                       "mpiexec_wall_s"):
            row = {"host": host, "ranks": args.ranks, "metric": metric}
            for tag, _ in variants:
                row[tag] = summary([r.get(metric) for r in results[(host, tag)]])
            if args.against:
                row["ratio"] = summary([a[metric] / b[metric] for a, b in
                                        zip(results[(host, "this")], results[(host, "against")])])
            rows.append(row)
    py = results[("python", "this")]
    cache = {"hits": [r["cache_hits"] for r in py], "misses": [r["cache_misses"] for r in py],
             "debug_cache_saves": {f"{h}/{t}": v for (h, t), v in checks.items()}}
    loaded = py[-1].get("loaded_at_init")
    imports = {}
    if args.importtime:
        for tag, tree in variants:
            env = dict(variant_env(tree), PYTHONPROFILEIMPORTTIME="1")
            _, err, _ = launch(["mpiexec", "-n", "1", sys.executable, script, "--probe",
                                os.path.join(work, f"it-{tag}.h5")], env, work)
            imports[tag] = importtime_top(err)

    print(describe_machine())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}; {args.ranks} ranks; {pairs} run(s) of "
          "each variant, interleaved; seconds from process start, slowest rank; "
          "median (min-max)")
    head = ["host", "metric", "this"] + (["against", "this/against"] if args.against else [])
    print(" | ".join(head))
    for r in rows:
        cells = [r["host"], r["metric"], fmt(r["this"])]
        if args.against:
            cells += [fmt(r["against"]), fmt(r["ratio"])]
        print(" | ".join(cells))
    print(f"numba cache, python host (this tree): hits per run {cache['hits']}, "
          f"misses per run {cache['misses']}")
    for key, saves in cache["debug_cache_saves"].items():
        print(f"NUMBA_DEBUG_CACHE run, {key}: "
              + ("no kernel compiled" if not saves else f"{len(saves)} cache saves: {saves[:3]}"))
    print(f"loaded at the end of init (python host): {', '.join(loaded)}")
    for tag, top in imports.items():
        print(f"slowest imports up to the end of init ({tag}), cumulative ms: " +
              ", ".join(f"{name} {us / 1000:.0f}" for us, name in top))
    print(f"wrote {save('startup', {'rows': rows, 'cache': cache, 'imports': imports, 'loaded_at_init': loaded, 'pairs': pairs, 'ranks': args.ranks, 'against': args.against, 'quick': args.quick})}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--probe":
        probe(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
