"""The Python cost of a due step with cold caches, as a model leaves them.

``python scripts/bench/cold_step.py [--quick] [--analyses 1 10] [--steps 400]
[--rounds 5] [--results packed|dict] [--tree DIR]``

Why: right after the model's step every Python, numpy and MPI call costs
several times its in-loop cost (the caches hold the model's data, issue
12), so a due step's Python is measured where the model pays it, not in a
warm loop.  Each sample is a child process (one insitu session, 1 rank, a
real MPI communicator of size 1, so no collective) that runs ``--steps``
due steps of K ``stats`` of a small Fortran-order halo field (32x32 of
34x34: the kernel is negligible), each right after a numba heat stencil
swept two 16 MB arrays twice, and reports the median wall time of
``insitu.api.step`` over the due steps after the first 20.  The children
alternate, rotating each round's start, between the modes (K analyses)
and, with ``--tree DIR``, the same modes run with DIR's ``insitu`` first
on ``PYTHONPATH`` (a worktree of an older commit), so that a change is
measured against the code before it in the same rounds.  Reported: the
median and spread (min-max) of the children's medians, and per mode the
ratio to the tree's, pair by pair.  ``--results packed`` (the default)
steps as libinsitu does, with ``results=False`` (the results stay packed,
insitu.step_values); ``--results dict`` as the Python API's default.  The
Python route (``insitu.api``), so
libinsitu's C half is not in it (scripts/bench/overhead.py has the
Fortran model).  JSON: ``bench-results/cold_step.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, compare, fmt, interleave, print_header, save,  # noqa: E402
                    summarize, table)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r'''
import json, statistics, sys, tempfile, time
import numba, numpy as np
from mpi4py import MPI
from insitu import api
from insitu.comm import MPIComm

k, steps, side = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
packed = sys.argv[4] == "packed"
if packed:  # libinsitu's route: results=False where the tree's api.step takes it
    import inspect
    if "results" in inspect.signature(api.step).parameters:
        step_call = lambda n, t: api.step(n, t, results=False)  # noqa: E731
    else:  # a tree from before results=False: its libinsitu route made the dict
        step_call = api.step
else:
    step_call = api.step
big, big2 = np.ones(2_000_000), np.ones(2_000_000)


@numba.njit(cache=False)
def sweep(a, b):  # a model's step: a stencil over 16 MB into another 16 MB
    for i in range(1, a.size - 1):
        b[i] = 0.25 * (a[i - 1] + a[i + 1]) + 0.5 * a[i]


sweep(big, big2)
with tempfile.TemporaryDirectory() as tmp:
    cfg = {"output": {"path": f"{tmp}/cold.h5", "overwrite": True}, "log_level": "WARNING",
           "analyses": [{"kind": "stats", "field": "T", "every": 1, "name": f"T{i}"}
                        for i in range(k)]}
    api.init(MPIComm(MPI.COMM_WORLD.Dup(), owned=True), cfg)
    api.declare_field("T", np.float64, (side, side), (0, 0), (side + 2, side + 2),
                      (1, 1), (1, 1), "F")
    field = np.asfortranarray(np.random.default_rng(1).random((side + 2, side + 2)))
    api.expose("T", field)
    took = []
    for step in range(1, steps + 1):
        sweep(big, big2)
        sweep(big2, big)
        t = time.perf_counter_ns()
        step_call(step, float(step))
        took.append((time.perf_counter_ns() - t) / 1000.0)
    api.finalize()
import insitu
print(json.dumps([statistics.median(took[20:]), insitu.__file__]))
'''


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--analyses", type=int, nargs="+", default=[1, 10],
                   help="numbers of stats analyses of the field, one mode each (default 1 10)")
    p.add_argument("--steps", type=int, default=None, help="due steps per child (default 400)")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"interleaved rounds (default and least {MIN_PAIRS})")
    p.add_argument("--side", type=int, default=32, help="the field's side (default 32)")
    p.add_argument("--results", choices=("dict", "packed"), default="packed",
                   help="packed (default): step with results=False, as libinsitu, "
                        "insitu.run and the replay host do (a tree whose api.step lacks it "
                        "makes the dict, as its libinsitu did); dict: the Python API's "
                        "default, the results as a dict")
    p.add_argument("--tree", default=None,
                   help="another insitu source tree (a directory holding insitu/): its modes "
                        "join every round, run with PYTHONPATH=TREE")
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.rounds = a.steps or 30, a.rounds or 2
    else:
        a.steps, a.rounds = a.steps or 400, max(a.rounds or MIN_PAIRS, MIN_PAIRS)
    return a


def child(k: int, args, tree: str | None):
    """A contender: one child process, its median us per due step."""
    env = dict(os.environ)
    path = [tree or ROOT] + [p for p in [env.get("PYTHONPATH")] if p]
    env["PYTHONPATH"] = os.pathsep.join(path)

    def go() -> float:
        # run from a directory holding no insitu/: ``python -c`` puts the
        # working directory first on sys.path, before PYTHONPATH
        out = subprocess.run([sys.executable, "-c", CHILD, str(k), str(args.steps),
                              str(args.side), args.results], env=env, capture_output=True, text=True,
                             timeout=600, check=False, cwd=tempfile.gettempdir())
        if out.returncode:
            raise RuntimeError(f"cold_step child ({k} analyses, tree {tree or ROOT}) "
                               f"failed:\n{out.stderr[-2000:]}")
        took, where = json.loads(out.stdout.strip().splitlines()[-1])
        want = os.path.join(os.path.realpath(tree or ROOT), "insitu")
        if os.path.dirname(os.path.realpath(where)) != want:  # the tree it was asked for
            raise RuntimeError(f"cold_step child imported {where}, not {want}")
        return took
    return go


def main(argv=None) -> None:
    args = parse(argv)
    print_header()
    contenders = {}
    for k in args.analyses:
        contenders[f"{k} stats"] = child(k, args, None)
        if args.tree:
            contenders[f"{k} stats [tree]"] = child(k, args, os.path.abspath(args.tree))
    samples = interleave(contenders, args.rounds)
    rows = []
    for name, vals in samples.items():
        row = {"mode": name, "steps": args.steps, "side": args.side, "results": args.results,
               "us_per_due_step": summarize(vals)}
        if args.tree and not name.endswith("[tree]"):
            c = compare(samples[f"{name} [tree]"], vals)
            row["vs_tree"] = c["ratio"]
        rows.append(row)
    print(f"a due step's Python with cold caches (1 rank, {args.side}x{args.side} Fortran halo "
          f"field, a stencil over 2x16 MB before each step, {args.steps} due steps per child, "
          f"results {args.results}); "
          f"{args.rounds} interleaved rounds, median (min-max) of the children's medians, us")
    print(table([{"mode": r["mode"], "us_per_due_step": fmt(r["us_per_due_step"]),
                  "vs_tree": fmt(r.get("vs_tree"))} for r in rows],
                ["mode", "us_per_due_step", "vs_tree"]))
    path = save("cold_step", {"rows": rows, "tree": args.tree, "rounds": args.rounds})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
