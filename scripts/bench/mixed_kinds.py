"""What each of a real config's ten analyses costs a due step, the way the
Fortran heat model pays it (issue 12, "a real config's due step").

``python scripts/bench/mixed_kinds.py [--quick] [--rounds 7] [--steps 15]
[--side 1000] [--tree DIR] [--only WORD...]``

``overhead.py``'s ``mixed`` mode (ten analyses of different kinds:
:func:`overhead.mixed_analyses`) costs several times ten ``stats`` of T,
which share one pass.  This benchmark takes that config apart: one
:class:`insitu.session.Session` per analysis, at one rank (a real MPI
``COMM_SELF``: the reduction is a copy), on a ``side x side`` float64
field declared as the Fortran model declares T (dims ``(x, y)``, Fortran
order, halo 1: the exposed array is ``(side + 2) x (side + 2)``, order
``F``), with the model's ``area`` field (cos(latitude) per cell, no halo)
and ``y`` as latitude.  The regions are those of ``mixed_analyses`` for a
``side x side`` global grid (the 2-rank run's box is the same size on
rank 0 and absent on rank 1).

Each due step comes right after a pass of a numba heat stencil (5 points,
Fortran order) from a second ``(side + 2)**2`` array into the exposed one:
16 MB read and written, as the model's step leaves the caches.  Timed, per
due step: the analysis's ``local`` (its kernel and the Python around it;
a wrapper around the bound method) and the whole ``Session.step`` (wall
and this thread's CPU).  The kinds take turns within each round (kind 1's
steps, kind 2's, ... then the next round, rotated), ``--rounds`` rounds of
``--steps`` due steps each; per kind the median and spread (min-max) of
the rounds' medians.

For scale, hot (the same view again and again, no stencil between): the
analysis's ``local`` and numpy's equivalent on the same view (``np.sum``
of the view, of ``view * w``, ``np.count_nonzero``, ``np.nanmax`` +
``np.argmax``, ``np.histogram``), medians of interleaved calls.

``--tree DIR`` measures the tree in DIR (a directory holding ``insitu/``,
e.g. ``git worktree add DIR <commit>`` with this tree's ``insitu/_lib``
copied in) against this one: each round runs two child processes, this
tree's and DIR's (``PYTHONPATH=DIR``), in alternating order, and the table
gives both, per kind, with the per-round ratio.

JSON: ``bench-results/mixed_kinds.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import describe_machine, print_header, save, table  # noqa: E402
from overhead import mixed_analyses  # noqa: E402

#: a short label per analysis of mixed_analyses, in its order
LABELS = ["stats", "stats box region", "stats area-weighted", "stats coslat-weighted",
          "stats tropics", "exceedance", "exceedance area-weighted",
          "min/max/argmax/argmin", "stats coslat band", "histogram 50 bins"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    p.add_argument("--steps", type=int, default=None, help="due steps per kind and round")
    p.add_argument("--side", type=int, default=None, help="cells along x and y (1000)")
    p.add_argument("--tree", default=None, help="another tree to compare (see the module)")
    p.add_argument("--only", nargs="+", default=None, metavar="WORD",
                   help="only the kinds whose label holds one of these words")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.rounds = a.rounds or (2 if a.quick else 7)
    a.steps = a.steps or (3 if a.quick else 15)
    a.side = a.side or (200 if a.quick else 1000)
    return a


def chosen(args):
    """``[(label, analysis config)]`` of the kinds to measure."""
    n = args.side
    kinds = list(zip(LABELS, mixed_analyses(10, 1, (n, n))))
    return [(l, a) for l, a in kinds if not args.only or any(w in l for w in args.only)]


# -- the model's side ------------------------------------------------------------------

def heat_stencil():
    import numba

    @numba.njit(cache=True, nogil=True)
    def stencil(src, dst):  # pragma: no cover - compiled
        """One explicit heat step from ``src`` into ``dst``'s interior,
        column by column (Fortran order), as heat2d.f90's loop."""
        nx, ny = src.shape
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                dst[i, j] = src[i, j] + 0.1 * (src[i - 1, j] + src[i + 1, j] + src[i, j - 1]
                                               + src[i, j + 1] - 4.0 * src[i, j])
    return stencil


def fields(side: int):
    """The exposed T (halo 1, Fortran order), the stencil's source, and the
    area field (cos(latitude) per cell, as heat2d.f90's)."""
    x = np.linspace(0.0, 1.0, side + 2)[:, None]
    lat = -90.0 + 180.0 * (np.arange(side + 2) - 0.5) / side
    src = np.asfortranarray(300.0 + 25.0 * np.cos(np.deg2rad(lat))[None, :]
                            + 8.0 * np.sin(7.0 * x) * np.sin(np.deg2rad(3.0 * lat))[None, :])
    src[::97, ::89] += 40.0   # some extremes away from the smooth field
    T = np.asfortranarray(src.copy())
    area = np.asfortranarray(np.broadcast_to(
        np.cos(np.deg2rad(-90.0 + 180.0 * (np.arange(side) + 0.5) / side))[None, :],
        (side, side)).copy())
    return T, src, area


# -- sessions ------------------------------------------------------------------------

def last_row_writer():
    """The in-memory writer keeping the last row only (no I/O, no growth)."""
    from insitu.writer import MemoryWriter

    class LastRow(MemoryWriter):
        def append(self, step, time, values, axis="time", bounds=None):
            self.rows[:] = [(step, time, dict(values))]
    return LastRow


def session(analysis: dict, side: int, T, area):
    """A one-analysis session on ``T`` and ``area`` (exposed, not copied),
    bound and compiled by a first step; with a timer around the analysis's
    ``local`` (``session.local_s``: its seconds, one per due step)."""
    from mpi4py import MPI

    from insitu import options
    from insitu.comm import MPIComm
    from insitu.session import Session
    cfg = options.parse({
        "fields": {"T": {"dims": ["x", "y"], "units": "K"},
                   "area": {"dims": ["x", "y"], "units": "1"}},
        "coords": {"y": {"start": -90.0 + 90.0 / side, "step": 180.0 / side,
                         "units": "degrees_north", "standard_name": "latitude"}},
        "analyses": [dict(analysis, every=1)], "log_level": "WARNING"})
    s = Session(MPIComm(MPI.COMM_SELF.Dup(), owned=True), cfg, writer_cls=last_row_writer())
    s.declare("T", np.float64, (side, side), (0, 0), (side + 2, side + 2), (1, 1), (1, 1),
              "F")
    s.declare("area", np.float64, (side, side), (0, 0), (side, side), order="F")
    s.expose("T", T)
    s.expose("area", area)
    s.step(0, 0.0)  # binds, compiles
    a = s.analyses[0]
    local = a.local
    times = []

    def timed_local(views, record, step):
        t0 = time.perf_counter()
        local(views, record, step)
        times.append(time.perf_counter() - t0)
    a.local = timed_local
    s.local_s = times
    return s


def due_steps(s, stencil, T, src, first: int, steps: int):
    """``steps`` due steps, each after a stencil pass; per step (local,
    wall, CPU) seconds."""
    out = []
    for k in range(first, first + steps):
        stencil(src, T)
        t0, c0 = time.perf_counter(), time.thread_time()
        s.step(k, float(k))
        out.append((s.local_s[-1], time.perf_counter() - t0, time.thread_time() - c0))
    return out


def hot(fn, calls: int = 21) -> float:
    """Median seconds of ``calls`` calls of ``fn`` in a row (after one)."""
    fn()
    t = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def numpy_equivalent(label: str, s, T, area, side):
    """numpy's nearest call for ``label``'s pass, on the same view."""
    a = s.analyses[0]
    view = T[1:-1, 1:-1]
    sl = getattr(a, "_slices", None)
    region = view[sl] if sl is not None else view
    lat = np.cos(np.deg2rad(-90.0 + 180.0 * (np.arange(side) + 0.5) / side))[None, :]
    if "histogram" in label:
        return "np.histogram", lambda: np.histogram(region, 50, (270.0, 330.0))
    if "argmax" in label:
        return "np.nanmax+nanmin+argmax+argmin", lambda: (
            np.nanmax(region), np.nanmin(region), np.argmax(region), np.argmin(region))
    if "exceedance area" in label:
        return "np.sum(w*(v<thr)), np.sum(w)", lambda: (np.sum(area * (region < 275.0)),
                                                       np.sum(area))
    if "exceedance" in label:
        return "np.count_nonzero(v>thr)", lambda: np.count_nonzero(region > 285.0)
    if "area" in label:
        return "np.sum(v*w), np.sum(w)", lambda: (np.sum(region * area), np.sum(area))
    if "coslat" in label:
        w = np.broadcast_to(lat, view.shape)[sl] if sl is not None else lat
        return "np.sum(v*w), np.sum(w)", lambda: (np.sum(region * w), np.sum(w))
    return "np.sum, np.min, np.max", lambda: (np.sum(region), np.min(region), np.max(region))


def child(args) -> dict:
    """This process's measurements (one tree): per kind, per round, the
    medians of its due steps, and the hot figures."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import logging
    logging.getLogger("insitu").setLevel(logging.WARNING)
    stencil = heat_stencil()
    T, src, area = fields(args.side)
    kinds = [(l, session(a, args.side, T, area)) for l, a in chosen(args)]
    stencil(src, T)
    samples = {l: [] for l, _ in kinds}
    step = 1
    for r in range(args.rounds):
        start = r % len(kinds)
        for label, s in kinds[start:] + kinds[:start]:
            got = due_steps(s, stencil, T, src, step, args.steps)
            step += args.steps
            samples[label].append([statistics.median(c) for c in zip(*got)])
    hot_rows = {}
    for label, s in kinds:
        what, np_fn = numpy_equivalent(label, s, T, area, args.side)
        hot_step = []
        for _ in range(5):     # interleaved: the step hot, numpy hot
            hot_step.append((hot(lambda: s.step(step, 0.0)), hot(np_fn)))
            step += 22
        hot_rows[label] = {"local_hot_us": statistics.median(s.local_s[-21:]) * 1e6,
                           "numpy": what,
                           "numpy_us": statistics.median(h[1] for h in hot_step) * 1e6}
    for _, s in kinds:
        s.finalize()
    return {"samples": samples, "hot": hot_rows}


def spread(v, scale=1e6) -> str:
    v = np.asarray(v, dtype=float) * scale
    return f"{np.median(v):.4g} ({v.min():.4g}-{v.max():.4g})"


def run_child(args, tree=None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--rounds", "1",
           "--steps", str(args.steps), "--side", str(args.side)]
    if args.only:
        cmd += ["--only", *args.only]
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(tree)]
                                            + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    print_header()
    print(describe_machine())
    print(f"field {args.side}x{args.side} float64, Fortran order, halo 1 (a view of a "
          f"{args.side + 2}x{args.side + 2} array); each due step after a heat-stencil pass "
          f"over two {(args.side + 2) ** 2 * 8 / 1e6:.1f} MB arrays; 1 rank; {args.rounds} "
          f"rounds of {args.steps} due steps per kind; us, median (min-max) of the rounds' "
          "medians")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    trees = {"this": None}
    if args.tree:
        trees["tree"] = args.tree
        got = {t: [] for t in trees}
        for r in range(args.rounds):   # A B, B A, A B ...: each tree in each place
            for t in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                got[t].append(run_child(args, trees[t]))
    else:   # one process, its rounds interleaved inside it
        res = child(args)
        got = {"this": [{"samples": {l: [res["samples"][l][r]] for l in res["samples"]},
                         "hot": res["hot"]} for r in range(args.rounds)]}
    rows = []
    labels = [l for l, _ in chosen(args)]
    for label in labels:
        row = {"kind": label}
        for t in trees:
            rounds = [g["samples"][label][0] for g in got[t]]
            h = [g["hot"][label] for g in got[t]]
            loc, wall, cpu = (list(x) for x in zip(*rounds))
            sfx = "" if t == "this" else " [tree]"
            row[f"local{sfx}"] = spread(loc)
            row[f"step{sfx}"] = spread(wall)
            row[f"step cpu{sfx}"] = spread(cpu)
            row[f"local hot{sfx}"] = f"{statistics.median(x['local_hot_us'] for x in h):.4g}"
            row[f"_local{sfx}"] = loc
            if t == "this":
                row["numpy"] = h[0]["numpy"]
                row["numpy hot"] = f"{statistics.median(x['numpy_us'] for x in h):.4g}"
        if args.tree:
            row["local ratio"] = spread([a / b for a, b in zip(row["_local"],
                                                                row["_local [tree]"])], 1)
        rows.append(row)
    cols = ["kind", "local", "step", "step cpu", "local hot", "numpy", "numpy hot"]
    if args.tree:
        cols = ["kind", "local", "local [tree]", "local ratio", "step", "step [tree]",
                "local hot", "local hot [tree]"]
    print(table(rows, cols))
    base = [r for r in rows if r["kind"] == "stats"]
    if base:
        ref = statistics.median(base[0]["_local"])
        print("local / unweighted stats' local: " + ", ".join(
            f"{r['kind']} {statistics.median(r['_local']) / ref:.2f}" for r in rows))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    path = save("mixed_kinds", {"rows": rows, "quick": args.quick, "rounds": args.rounds,
                                "steps": args.steps, "side": args.side, "tree": args.tree,
                                "machine_line": describe_machine()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
