"""In-situ overhead on the Fortran heat model: the loop's time per step and
the fixed cost, against ``--no-insitu``.

``python scripts/bench/overhead.py [--quick] [--ranks 2] [--steps 2000]
[--side 1000] [--every 10] [--analyses 1 10] [--mixed 10] [--pairs 5]
[--tree DIR] [--aa] [--fixed-order]``

Builds ``examples/fortran`` with its Makefile and runs ``heat2d`` under
``mpiexec`` with ``side x side`` cells per rank, in interleaved rounds:
``--no-insitu``, one mode per ``--analyses`` count K (K scalar
``stats`` analyses of T, due every ``--every`` steps; default output
settings), one per ``--mixed`` count (K scalar analyses of different
kinds, regions and weights, :func:`mixed_analyses`), each mode once a
round (off, K1, K2, M1; K1, K2, M1, off; ...).  Issue 12's measure is the default: 2
ranks, 1000x1000 cells per rank, 2000 steps, ``stats`` every 10 steps, 1
and 10 analyses, 5 rounds.  Ten ``stats`` of T under ten names share one
pass over T (insitu.step_memo), so the ``mixed`` mode is there to show
what a real config of ten analyses costs.

Two figures per run:

* **loop**: the model's own time per step (``MPI_Wtime`` around its time
  loop after a warm-up of 10 steps, printed as ``s/step``);
* **wall**: the whole ``mpiexec`` process, start-up, init and finalize
  included.

Per round and mode: the loop overhead, ``100 * (loop / loop_off - 1)`` in
percent (target <= 5%), and the fixed cost, the extra wall time minus the
extra loop time, ``(wall - wall_off) - (loop - loop_off) * timed_steps``
(target <= 1 s): what insitu costs once (start-up, init, the first due
step's binding and kernel loading, finalize) rather than per step.
Reported: the median and spread (min-max) of each over the rounds.

The rounds rotate (common.interleave): round r starts at mode r mod n, so
every mode runs first, second, ... equally often and no mode always
follows the same one; ``--fixed-order`` runs off, then each mode, every
round (to measure whether the place matters).  ``--aa`` adds an A/A mode,
``"off [again]"``: ``--no-insitu`` a second time, reported against the
first like the others.  Its "overhead" is what the loop figure shows when
insitu does nothing (the measure's null distribution), with the number of
its pairs beyond +-1% and +-2% (``aa_pairs_beyond_pct``).  Per round
(JSON ``rounds``, printed): the order, the ``--no-insitu`` step and its
distance from the median off step, and each mode's loop overhead beside
the overhead its own due step implies; per mode, ``loop_minus_share_pct``
(the loop figure minus that implied overhead, round by round: the model's
own noise plus whatever it waits for beyond insitu's call) and
``place_in_round`` (where each of its runs stood).

And insitu's own time per due step, which each run writes when
``INSITU_STEP_COST`` is set (insitu/step_cost.py): wall and CPU
milliseconds (the slowest rank's median over the due steps after the
first), the overhead that time alone implies on the model's step
(``insitu_share_pct``: the due step's time over ``every`` steps of the same
round's ``--no-insitu`` step), and the first due step (binding, kernel
loads).  On a loaded machine the loop figure swings with what the model's
ranks wait for; these say what insitu itself took.
``--tree DIR`` adds, to every round, the ``--analyses`` modes run with
another insitu source tree first on the embedded interpreter's path
(``PYTHONPATH=DIR``; DIR holds ``insitu/``, e.g. ``git worktree add DIR
<commit>``, with this tree's ``insitu/_lib`` copied in), so that a change is
measured against the code before it in the same interleaved rounds, under
the same load (rows ``"K analyses [tree]"``, with ``"tree": DIR``; they
carry no ``analyses`` count, so targets.py never takes them for the
issue's rows).
JSON: ``bench-results/overhead.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, fmt, interleave, machine, print_header,  # noqa: E402
                    round_orders, save, summarize, table)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--ranks", type=int, nargs="+", default=None, help="rank counts (default 2)")
    p.add_argument("--steps", type=int, default=None, help="model steps (default 2000)")
    p.add_argument("--side", type=int, default=None,
                   help="cells per rank along each axis (default 1000)")
    p.add_argument("--every", type=int, default=10, help="analyses due every N steps")
    p.add_argument("--analyses", type=int, nargs="+", default=[1, 10],
                   help="numbers of scalar stats analyses, one mode each (default 1 10)")
    p.add_argument("--mixed", type=int, nargs="*", default=[10],
                   help="numbers of mixed scalar analyses (different kinds, regions and "
                        "weights: mixed_analyses), one mode each (default 10; none: "
                        "--mixed with no number)")
    p.add_argument("--pairs", type=int, default=None,
                   help=f"interleaved rounds (default {MIN_PAIRS}, at least {MIN_PAIRS})")
    p.add_argument("--tree", default=None,
                   help="another insitu source tree (a directory holding insitu/, e.g. a git "
                        "worktree of an older commit): its --analyses modes join every round, "
                        "run with PYTHONPATH=TREE")
    p.add_argument("--aa", action="store_true",
                   help=f"an A/A run: a second --no-insitu mode ({AGAIN!r}) joins every "
                        "round, reported against the first like the others (the loop "
                        "figure's null distribution: what it shows when insitu does nothing)")
    p.add_argument("--fixed-order", action="store_true",
                   help="every round in the same order (off, the modes, ...) instead of "
                        "rotating the start (common.interleave): to measure whether the "
                        "place in the round biases the figures")
    a = p.parse_args(argv)
    if a.quick:
        a.ranks, a.steps, a.side = a.ranks or [2], a.steps or 40, a.side or 200
        a.pairs = a.pairs or 2
    else:
        a.ranks, a.steps, a.side = a.ranks or [2], a.steps or 2000, a.side or 1000
        a.pairs = max(a.pairs or MIN_PAIRS, MIN_PAIRS)
    return a


AGAIN = "off [again]"  # the A/A mode (--aa): --no-insitu a second time


def timed_steps(steps: int) -> int:
    """The steps heat2d.f90 times: all but its warm-up, max(1, min(10, steps/10))."""
    return steps - max(1, min(10, steps // 10))


def mixed_analyses(count: int, every: int, shape=(2000, 1000)) -> list[dict]:
    """``count`` scalar analyses of T(x, y) of different kinds, as a real
    config has them (the ``mixed`` mode): whole-field stats, stats over an
    index box and over the tropics, area- and cos(latitude)-weighted stats,
    two exceedances (one weighted), the extremes and where they are, a
    weighted mean over a latitude band and a histogram; more than 10 repeat
    the list under new names.  (``reduce`` over every dim is refused: that
    is ``stats``.)  Unlike ten ``stats`` of T, most of these make a pass of
    their own: only the same kernel on the same field, region and weights
    is shared (insitu.step_memo), here the whole field's moments by the
    first and the eighth."""
    nx, ny = shape
    kinds = [
        {"kind": "stats", "field": "T"},
        {"kind": "stats", "field": "T", "region": {"x": [nx // 10, nx // 2],
                                                   "y": [ny // 4, 3 * ny // 4]},
         "stats": ["count", "mean", "min", "max"]},
        {"kind": "stats", "field": "T", "weights": "area", "stats": ["mean", "std"]},
        {"kind": "stats", "field": "T", "weights": {"dim": "y", "values": "coslat"},
         "stats": ["mean"]},
        {"kind": "stats", "field": "T", "region": {"y": {"from": -30.0, "to": 30.0}},
         "stats": ["count", "mean", "max"]},
        {"kind": "exceedance", "field": "T", "threshold": 285.0, "op": "gt"},
        {"kind": "exceedance", "field": "T", "threshold": 275.0, "op": "lt",
         "weights": "area"},
        {"kind": "stats", "field": "T", "stats": ["min", "max", "argmax", "argmin"]},
        {"kind": "stats", "field": "T", "region": {"y": {"from": 0.0, "to": 90.0}},
         "weights": {"dim": "y", "values": "coslat"}, "stats": ["mean"]},
        {"kind": "histogram", "field": "T", "bins": 50, "range": [270.0, 330.0]},
    ]
    return [dict(kinds[i % len(kinds)], every=every, name=f"m{i}") for i in range(count)]


def config(work: str, analyses: int, every: int, mixed: bool = False, shape=None) -> str:
    """A config with ``analyses`` stats analyses of T (default output
    settings), or with ``mixed_analyses`` (``mixed``)."""
    tag = f"{'m' if mixed else 'a'}{analyses}"
    path = os.path.join(work, f"{tag}.yaml")
    cfg = {"output": {"path": f"{work}/{tag}.h5", "overwrite": True},
           "log_level": "WARNING"}
    if mixed:
        nx, ny = shape
        cfg["fields"] = {"T": {"dims": ["x", "y"], "units": "K"},
                         "area": {"dims": ["x", "y"], "units": "1"}}
        cfg["coords"] = {"y": {"start": -90.0 + 90.0 / ny, "step": 180.0 / ny,
                               "units": "degrees_north", "standard_name": "latitude"}}
        cfg["analyses"] = mixed_analyses(analyses, every, shape)
    else:
        cfg["analyses"] = [{"kind": "stats", "field": "T", "every": every, "name": f"T{i}"}
                           for i in range(analyses)]
    with open(path, "w") as fh:
        json.dump(cfg, fh)  # JSON is YAML
    return path


def mode_name(analyses: int, mixed: bool = False, tree: bool = False) -> str:
    if mixed:
        return f"{analyses} mixed"
    name = f"{analyses} analysis" if analyses == 1 else f"{analyses} analyses"
    return f"{name} [tree]" if tree else name


def step_costs(path: str, nranks: int):
    """insitu's own cost per due step from ``INSITU_STEP_COST`` files
    (insitu/step_cost.py): the slowest rank's median over the due steps
    after the first (wall and CPU ms), and the slowest rank's first due
    step (binding, kernel loads: start-up's, in seconds); None when no
    rank wrote one (the ``off`` mode)."""
    ranks = []
    for r in range(nranks):
        try:
            with open(f"{path}.{r}") as fh:
                ranks.append(json.load(fh))
        except FileNotFoundError:
            return None
    if not all(len(d["wall_s"]) > 1 for d in ranks):
        return None
    med = statistics.median
    return {"due_step_ms": max(med(d["wall_s"][1:]) for d in ranks) * 1e3,
            "due_step_cpu_ms": max(med(d["cpu_s"][1:]) for d in ranks) * 1e3,
            "first_due_step_s": max(d["wall_s"][0] for d in ranks)}


def run_model(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
    """(loop seconds per step as the model prints it, wall seconds of the
    whole mpiexec process)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=cwd)
    wall = time.perf_counter() - t0
    m = re.search(r"([0-9.]+) s/step", out.stdout)
    if out.returncode != 0 or not m:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {out.returncode}):\n"
                         f"{out.stdout}\n{out.stderr[-4000:]}")
    return float(m.group(1)), wall


def measure(exe: str, work: str, nranks: int, args, env: dict) -> list[dict]:
    """The interleaved rounds at ``nranks`` ranks, summarised per mode."""
    nx, ny = args.side * nranks, args.side
    base = ["mpiexec", "-n", str(nranks), exe]
    size = [str(nx), str(ny), str(args.steps)]
    cmds = {"off": base + [config(work, 1, args.every)] + size + ["--no-insitu"]}
    if args.aa:
        cmds[AGAIN] = cmds["off"]
    envs = {}
    for k in args.analyses:
        cmds[mode_name(k)] = base + [config(work, k, args.every)] + size
        if args.tree:
            tree = mode_name(k, tree=True)
            cmds[tree] = cmds[mode_name(k)]
            envs[tree] = {"PYTHONPATH": os.pathsep.join(
                [os.path.abspath(args.tree)] + [p for p in [env.get("PYTHONPATH")] if p])}
    for k in args.mixed:
        cmds[mode_name(k, True)] = base + [config(work, k, args.every, True, (nx, ny))] + size
    runs: dict[str, list[tuple[float, float]]] = {m: [] for m in cmds}
    # one entry per run (None when it wrote no step costs), so that entry r
    # is round r's, like the runs'
    costs: dict[str, list[dict | None]] = {m: [] for m in cmds}

    def contender(mode):
        def go():
            path = os.path.join(work, f"cost-{len(runs[mode])}-{mode.replace(' ', '_')}")
            runs[mode].append(run_model(cmds[mode], dict(env, INSITU_STEP_COST=path,
                                                         **envs.get(mode, {})), work))
            costs[mode].append(step_costs(path, nranks))
            return runs[mode][-1][0]
        return go

    rotate = not args.fixed_order
    interleave({m: contender(m) for m in cmds}, args.pairs, rotate=rotate)
    orders = round_orders(list(cmds), args.pairs, rotate)
    n = timed_steps(args.steps)
    off = runs["off"]
    rows = []
    for mode, samples in runs.items():
        loop = [s[0] for s in samples]
        wall = [s[1] for s in samples]
        row = {"ranks": nranks, "cells_per_rank": args.side ** 2, "steps": args.steps,
               "every": args.every, "mode": mode,
               # the count of stats of T; a mixed mode's count is its own key, so
               # that targets.py's rows for 1 and 10 analyses stay the issue's
               # (the A/A mode has none: it runs no analysis)
               "analyses": (0 if mode == "off" else None
                            if mode.endswith("mixed") or mode.endswith("[tree]")
                            or mode == AGAIN else int(mode.split()[0])),
               "mixed_analyses": int(mode.split()[0]) if mode.endswith("mixed") else 0,
               **({"tree": os.path.abspath(args.tree)} if mode.endswith("[tree]") else {}),
               "loop_ms_per_step": summarize([t * 1e3 for t in loop]),
               "wall_s": summarize(wall)}
        if mode != "off":
            row["loop_overhead_pct"] = summarize(
                [100.0 * (a / b - 1.0) for a, b in zip(loop, (o[0] for o in off))])
            row["fixed_cost_s"] = summarize(
                [(w - wo) - (a - lo) * n for (a, w), (lo, wo) in zip(samples, off)])
        if mode == AGAIN:
            row["aa_pairs_beyond_pct"] = aa_beyond(row["loop_overhead_pct"]["samples"])
        # where each run stood in its round (0: first): with a fixed order
        # always the same place, with rotation every place in turn
        row["place_in_round"] = [o.index(mode) for o in orders]
        paired = [(c, o) for c, o in zip(costs[mode], off) if c is not None]
        if paired:
            # insitu's own time per due step, and the overhead it alone
            # implies on the model's step (spread over `every` steps,
            # against the same round's --no-insitu step): what the loop
            # figure would be if the model never waited for anything else
            for key in ("due_step_ms", "due_step_cpu_ms", "first_due_step_s"):
                row[f"insitu_{key}"] = summarize([c[key] for c, _ in paired])
            row["insitu_share_pct"] = summarize(
                [100.0 * c["due_step_ms"] / args.every / (o[0] * 1e3) for c, o in paired])
            if len(paired) == len(off) and "loop_overhead_pct" in row:
                # the part of each round's loop figure that insitu's own
                # time does not explain: the model's run-to-run noise (and
                # whatever the model waits for beyond insitu's call)
                row["loop_minus_share_pct"] = summarize(
                    [lp - 100.0 * c["due_step_ms"] / args.every / (o[0] * 1e3)
                     for lp, (c, o) in zip(row["loop_overhead_pct"]["samples"], paired)])
        rows.append(row)
    return rows, per_round(nranks, runs, costs, orders, args.every)


def aa_beyond(pcts, bounds=(1.0, 2.0)) -> dict:
    """How many A/A pairs (off against off) differ by more than each bound,
    in percent: ``{"1%": k, "2%": m, "of": n}``."""
    out = {f"{b:g}%": sum(abs(p) > b for p in pcts) for b in bounds}
    out["of"] = len(pcts)
    return out


def per_round(nranks: int, runs: dict, costs: dict, orders: list, every: int) -> list[dict]:
    """One line per round: its order, the ``--no-insitu`` step and how far
    it is from the median off step, and each mode's loop overhead beside
    the overhead its own due step implies.  A reader sees there how much
    of a round's loop figure the model's own noise can be."""
    off_ms = [s[0] * 1e3 for s in runs["off"]]
    mid = statistics.median(off_ms)
    out = []
    for r, order in enumerate(orders):
        line = {"ranks": nranks, "round": r + 1, "order": ", ".join(order),
                "off_ms_per_step": off_ms[r],
                "off_vs_median_off_pct": 100.0 * (off_ms[r] / mid - 1.0)}
        for mode, samples in runs.items():
            if mode == "off":
                continue
            line[f"{mode}: loop %"] = 100.0 * (samples[r][0] * 1e3 / off_ms[r] - 1.0)
            c = costs[mode][r]
            if c is not None:
                line[f"{mode}: own %"] = 100.0 * c["due_step_ms"] / every / off_ms[r]
        out.append(line)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    machine()  # the header's date and load: at the start
    work = tempfile.mkdtemp(prefix="insitu-overhead-")
    for f in ("heat2d.f90", "Makefile"):
        shutil.copy(os.path.join(ROOT, "examples", "fortran", f), work)
    subprocess.run(["make", "-s", "-C", work, f"PYTHON={sys.executable}", "heat2d"], check=True)
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    exe = os.path.join(work, "heat2d")
    # one unmeasured run fills numba's cache (a cold cache is start-up's
    # business, not the steady state's)
    run_model(["mpiexec", "-n", "1", exe, config(work, 1, args.every), "64", "64", "20"],
              env, work)
    rows, rounds = [], []
    for nranks in args.ranks:
        got, lines = measure(exe, work, nranks, args, env)
        rows += got
        rounds += lines
    print_header()
    order = ("every round in the same order (--fixed-order): off, then each mode"
             if args.fixed_order else "each round starting at the next mode (rotation)")
    print(f"in-situ overhead, Fortran heat2d, {args.side}x{args.side} cells per rank, "
          f"{args.steps} steps, stats every {args.every}; {args.pairs} interleaved rounds, "
          f"{order}; median (min-max)")
    print(table(rows, ["ranks", "mode", "loop_ms_per_step", "wall_s", "loop_overhead_pct",
                       "fixed_cost_s"]))
    print("insitu's own time per due step (INSITU_STEP_COST, slowest rank's median over "
          "the due steps after the first), the overhead it alone implies (its time over "
          "`every` model steps of --no-insitu), the loop figure beyond that, per round "
          "(the model's noise and its waits), and the first due step:")
    print(table([r for r in rows if "insitu_due_step_ms" in r],
                ["ranks", "mode", "insitu_due_step_ms", "insitu_due_step_cpu_ms",
                 "insitu_share_pct", "loop_overhead_pct", "loop_minus_share_pct",
                 "insitu_first_due_step_s"]))
    print("per round: the order, the --no-insitu step (ms) and its distance from the "
          "median off step (%), each mode's loop overhead (loop %) beside the overhead its "
          "own due step implies (own %):")
    print(table(rounds, list(dict.fromkeys(k for line in rounds for k in line))))
    for r in rows:
        if r["mode"] == "off":
            off = r["loop_ms_per_step"]
            print(f"{r['ranks']} ranks, --no-insitu step {fmt(off)} ms: its rounds span "
                  f"{100.0 * (off['max'] - off['min']) / off['median']:.2g}% of the median")
    for r in rows:
        if r["mode"] == AGAIN:
            b = r["aa_pairs_beyond_pct"]
            print(f"{r['ranks']} ranks, A/A ({AGAIN} against off, insitu doing nothing): "
                  f"{fmt(r['loop_overhead_pct'])} %; {b['1%']} of {b['of']} pairs beyond "
                  f"+-1%, {b['2%']} beyond +-2%")
        elif r["mode"] != "off":
            own = (f"; insitu's own due step implies {fmt(r['insitu_share_pct'])} %"
                   if "insitu_share_pct" in r else "")
            print(f"{r['ranks']} ranks, {r['mode']}: loop {fmt(r['loop_overhead_pct'])} % "
                  f"slower than --no-insitu (target <= 5){own}, fixed cost "
                  f"{fmt(r['fixed_cost_s'])} s (target <= 1)")
    print(f"wrote {save('overhead', {'rows': rows, 'rounds': rounds, 'quick': args.quick, 'pairs': args.pairs, 'steps': args.steps, 'side': args.side, 'every': args.every, 'aa': args.aa, 'order': 'fixed' if args.fixed_order else 'rotated'})}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
