"""Handoff cost: expose, idle steps and moved buffers, from Fortran and Python.

``python scripts/bench/handoff.py [--quick] [--against DIR] [--pairs N]``

Three measures, each a median over N runs with its spread (min-max), at 1
and 2 ranks (the slowest rank's figure):

1. **Fortran host** (``handoff.f90`` through libinsitu's C ABI), a real(8)
   field of 1e2 values per rank (and 1e6 at 2 ranks, to show the cost is
   flat in size): ``insitu_expose`` of the same
   buffer (``expose_us``), ``insitu_step`` where nothing is due
   (``idle_step_us``: the issue's "idle step <= 5 us" is this, end to end),
   and the other buffer exposed then an idle step (``swap_idle_us``).
2. **Python host** (``insitu.api``): ``expose`` of the same array and of
   two arrays in turn (``expose_moved_us``: the "<= 1 us per field"
   target), and an idle ``step``; each also in CPU time (``*_cpu_us``,
   the thread's): on a shared machine a rank that is not running still
   counts in the wall time.
3. **A moved field at a due step, C route**: what ``insitu_step`` does in
   Python for each field whose buffer moved since the last due step
   (``insitu.cabi.bind_moved``: one call into C, then the view from the
   field's cache), per field, over 16 fields swapped every step.  Timed
   in-process around that one function (a due step's other costs, 1 ms and
   more, would drown it).

``--against DIR`` runs every measure also with another checkout (``git
archive`` of an older commit, with its libinsitu built by ``python
fortran_shim/build_libinsitu.py DIR/insitu/_lib``), interleaved run by run
(this tree, DIR, this tree, DIR, ...), and reports each figure for both and
their ratio (median of the per-pair ratios, with its spread).  A warm-up
run of each fills numba's cache first.  JSON goes to
``bench-results/handoff.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import describe_machine, save  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EVERY = 10**9  # the config's every: only this step is due


def config_text(path: str) -> str:
    return (f"output: {{path: {path}, overwrite: true}}\nlog_level: WARNING\n"
            f"analyses: [{{kind: stats, field: T, every: {EVERY}}}]\n")


# -- probes: run under mpiexec, print one RESULT line (rank 0) -------------------

def probe_python(n: int, iters: int, out: str) -> None:
    """api.expose and an idle api.step, timed with perf_counter."""
    import numpy as np
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    api.init(comm, {"output": {"path": out, "overwrite": True}, "log_level": "WARNING",
                    "analyses": [{"kind": "stats", "field": "T", "every": EVERY}]})
    api.declare_field("T", np.float64, (n * comm.size,), (n * comm.rank,), (n + 2,), (1,), (1,))
    a, b = np.ones(n + 2), np.full(n + 2, 2.0)
    api.expose("T", a)
    api.step(EVERY, 0.0)
    t = {}

    def timed(name, fn, calls):
        """Wall and CPU time per call (the CPU time leaves out the time the
        rank was not running: on a shared machine the two differ)."""
        comm.Barrier()
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        t[name] = (time.perf_counter() - w0) / calls * 1e6
        t[name.replace("_us", "_cpu_us")] = (time.thread_time() - c0) / calls * 1e6

    def same():
        for _ in range(iters):
            api.expose("T", a)

    def moved():
        for _ in range(iters // 2):
            api.expose("T", b)
            api.expose("T", a)

    def idle():
        for step in range(EVERY + 1, EVERY + 1 + iters):
            api.step(step, 0.0)

    timed("expose_same_us", same, iters)
    timed("expose_moved_us", moved, 2 * (iters // 2))
    timed("idle_step_us", idle, iters)
    api.finalize()
    slowest = {k: comm.allreduce(v, op=MPI.MAX) for k, v in t.items()}
    if comm.rank == 0:
        print("RESULT " + json.dumps(slowest), flush=True)


def probe_cbind(n: int, iters: int, out: str, nfields: int = 16) -> None:
    """insitu.cabi.bind_moved over ``nfields`` fields whose buffers all
    moved (libinsitu loaded into this interpreter through ctypes)."""
    import ctypes

    import numpy as np
    from mpi4py import MPI

    from insitu import api, cabi, config
    comm = MPI.COMM_WORLD
    if not hasattr(cabi, "bind_moved"):
        if comm.rank == 0:
            print("RESULT " + json.dumps({"bind_moved_us_per_field": None}), flush=True)
        return
    lib = ctypes.CDLL(config.library())
    i64 = ctypes.c_int64 * 1
    lib.insitu_init.argtypes = [ctypes.c_int, ctypes.c_char_p]
    lib.insitu_expose.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_int64)]
    lib.insitu_step.argtypes = [ctypes.c_int64, ctypes.c_double]
    cfg = f"{out}.{comm.rank}.yaml"
    with open(cfg, "w") as fh:
        fh.write(config_text(out).replace("field: T,", "field: T0,"))
    assert lib.insitu_init(comm.py2f(), cfg.encode()) == 0
    names = [f"T{k}".encode() for k in range(nfields)]
    bufs = [[np.full(n, 1.0), np.full(n, 2.0)] for _ in range(nfields)]
    for name in names:
        assert lib.insitu_declare_field(name, 2, 1, i64(n * comm.size), i64(n * comm.rank),
                                        i64(n), i64(0), i64(0), 0) == 0
    shape = i64(n)

    def expose_all(which):
        for name, pair in zip(names, bufs):
            lib.insitu_expose(name, pair[which].ctypes.data, 2, 1, shape)

    expose_all(0)
    assert lib.insitu_step(EVERY, 0.0) == 0, lib.insitu_last_error()
    s = api.session()
    total = cpu = 0.0
    for i in range(iters):
        expose_all((i + 1) % 2)
        t0, c0 = time.perf_counter(), time.thread_time()
        moved = cabi.bind_moved(s)
        total += time.perf_counter() - t0
        cpu += time.thread_time() - c0
        assert moved == nfields
    per_field = total / iters / nfields * 1e6
    t0 = time.perf_counter()
    for _ in range(iters):
        cabi.bind_moved(s)  # nothing moved: the one call into C
    none_moved = (time.perf_counter() - t0) / iters * 1e6
    assert lib.insitu_finalize() == 0
    if comm.rank == 0:
        print("RESULT " + json.dumps({"bind_moved_us_per_field": per_field,
                                      "bind_moved_cpu_us_per_field":
                                          cpu / iters / nfields * 1e6,
                                      "bind_none_moved_us": none_moved}), flush=True)


# -- the driver ------------------------------------------------------------------

def variant_env(tree: str | None) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    if tree:
        env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    return env


def build(workdir: str, tree: str | None, tag: str) -> str:
    env = variant_env(tree)
    # cwd=workdir: `python -m` puts the cwd first on sys.path, and a tree
    # there would shadow the variant's
    flags = subprocess.run([sys.executable, "-m", "insitu.config", "--fflags"], env=env,
                           cwd=workdir, capture_output=True, text=True, check=True).stdout.split()
    ldflags = subprocess.run([sys.executable, "-m", "insitu.config", "--ldflags"], env=env,
                             cwd=workdir, capture_output=True, text=True,
                             check=True).stdout.split()
    exe = os.path.join(workdir, f"handoff-{tag}")
    subprocess.run(["mpif90", "-O2", *flags, "-J", workdir, "-o", exe,
                    os.path.join(HERE, "handoff.f90"), *ldflags], check=True, cwd=workdir)
    return exe


def run(cmd: list, env: dict) -> dict:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                         timeout=900, cwd=tempfile.gettempdir())
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"no RESULT from {' '.join(map(str, cmd))}:\n{out.stdout}\n{out.stderr}")
    if line.startswith("RESULT {"):
        return json.loads(line[len("RESULT "):])
    f = line.split()[1:]
    return {"values": int(f[0]), "ranks": int(f[1]), "init_s": float(f[2]),
            "declare_s": float(f[3]), "first_step_s": float(f[4]), "expose_us": float(f[5]),
            "idle_step_us": float(f[6]), "swap_idle_us": float(f[7]),
            "age_init_s": float(f[8]), "age_first_step_s": float(f[9]),
            "cpu_init_s": float(f[10]), "cpu_first_step_s": float(f[11])}


def summary(values: list) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "runs": len(vals)}


def fmt(s: dict) -> str:
    if s["median"] is None:
        return "-"
    return f"{s['median']:.3g} ({s['min']:.3g}-{s['max']:.3g})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--against", metavar="DIR", help="another checkout to compare with")
    p.add_argument("--pairs", type=int, default=5, help="runs of each variant (default 5)")
    args = p.parse_args()
    quick = args.quick
    pairs = 1 if quick else max(args.pairs, 1)
    work = tempfile.mkdtemp(prefix="insitu-handoff-")
    variants = [("this", None)] + ([("against", os.path.abspath(args.against))]
                                   if args.against else [])
    exes = {tag: build(work, tree, tag) for tag, tree in variants}
    cfg = os.path.join(work, "handoff.yaml")
    with open(cfg, "w") as fh:
        fh.write(config_text(os.path.join(work, "handoff.h5")))
    ranks = [1, 2]
    iters = 200 if quick else 20000
    # 1e6 values at 2 ranks shows the cost is flat in size (nothing is
    # copied); the rest is the small case, to keep bench.sh --check short
    cases = [("fortran", 1, 100), ("fortran", 2, 100)] + \
        ([] if quick else [("fortran", 2, 10**6)]) + \
        [("python", r, 100) for r in ranks] + [("cbind", 1, 100)]
    script = os.path.abspath(__file__)

    def command(kind, nranks, n, tag):
        mpi = ["mpiexec", "-n", nranks]
        out = os.path.join(work, f"{kind}-{tag}-{nranks}.h5")
        if kind == "fortran":
            return mpi + [exes[tag], cfg, n, iters]
        return mpi + [sys.executable, script, f"--probe-{kind}", n, iters, out]

    for tag, tree in variants:  # warm numba's cache for each tree
        run(command("fortran", 1, 100, tag), variant_env(tree))
    results = {(c, tag): [] for c in cases for tag, _ in variants}
    for _ in range(pairs):
        for case in cases:
            for tag, tree in variants:  # A B A B ...
                results[(case, tag)].append(run(command(*case, tag), variant_env(tree)))

    metrics = {"fortran": ["expose_us", "idle_step_us", "swap_idle_us"],
               "python": ["expose_same_us", "expose_moved_us", "idle_step_us",
                          "expose_same_cpu_us", "expose_moved_cpu_us", "idle_step_cpu_us"],
               "cbind": ["bind_moved_us_per_field", "bind_moved_cpu_us_per_field",
                         "bind_none_moved_us"]}
    rows = []
    for case in cases:
        kind, nranks, n = case
        for m in metrics[kind]:
            row = {"host": kind, "ranks": nranks, "values": n, "metric": m}
            for tag, _ in variants:
                row[tag] = summary([r.get(m) for r in results[(case, tag)]])
            if args.against:
                ratios = [a.get(m) / b.get(m) for a, b in
                          zip(results[(case, "this")], results[(case, "against")])
                          if a.get(m) is not None and b.get(m)]
                row["ratio"] = summary(ratios)
            rows.append(row)

    print(describe_machine())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}; {pairs} run(s) of each variant, "
          f"interleaved; median (min-max), slowest rank")
    if args.against:
        print(f"this tree: {ROOT}; against: {args.against}")
    head = ["host", "ranks", "values", "metric", "this"] + \
        (["against", "this/against"] if args.against else [])
    print(" | ".join(head))
    for r in rows:
        cells = [r["host"], str(r["ranks"]), str(r["values"]), r["metric"], fmt(r["this"])]
        if args.against:
            cells += [fmt(r["against"]), fmt(r["ratio"])]
        print(" | ".join(cells))
    print(f"wrote {save('handoff', {'rows': rows, 'quick': quick, 'pairs': pairs, 'against': args.against})}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--probe-python", "--probe-cbind"):
        fn = probe_python if sys.argv[1] == "--probe-python" else probe_cbind
        fn(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    sys.exit(main())
