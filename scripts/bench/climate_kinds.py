"""Cost per output step of the climate kinds of issue 16 against ``stats``
on the same field.

``python scripts/bench/climate_kinds.py [--quick] [--pairs N] [--shape P Y X]``

One rank (the local work of each kind: its kernel over the slab, its
partials, its results; the reduction over a one-rank communicator is a
copy), a float64 (plev, lat, lon) temperature field from the ``latlon``
stand-in, its cells below a plateau NaN (0.4% of the default field; the
run prints the share), default 8 x 180 x 360 (4 MiB, beyond L2).  Each kind runs in its own :class:`insitu.session.Session`
(in-memory writer: no I/O; by default it copies each result at
``append`` and drops it at the next step, as the HDF5 writer does until a
flush, ``--writer keep`` keeps every result) and is timed over ``--steps`` output steps
against a session of ``stats`` (its default statistics) timed just before
it, in interleaved pairs (stats, kind, stats, kind, ...); reported per kind:
the median and spread (min-max) of microseconds per output step and of the
per-pair ratio kind / stats, in wall time and in this thread's CPU time.
The target of issue 16 is at most 3x, and at most 5x for the exact
quantiles; ``within_target`` judges the median CPU-time ratio (the wall
time of a machine shared with other jobs holds the waits for a core).

For the per-point kinds (``spell``, ``pointwise``) an output step is a
sample: the kernel's pass over the slab and the state; their rows (the
state written) come at their windows' ends and at the end of the run, so
the monthly ``pointwise`` row, one in 30 samples here, is in the figure.
``histogram exact`` adds the copies of the quantiles' bins and the merge (a
reduction over a one-rank communicator here: the cost of the selection,
not of the network); the field does not change between steps, so its
quantiles' bins are predicted and no second pass is made after the first
step (tests/test_exact_quantiles.py counts the passes when they move).
``--only WORD...`` measures the kinds whose label holds one of the words.

``--moving``: the field changes between output steps, as a model's does:
before each step it is overwritten in place with the stand-in's field of
the next day (a cycle of 30 days, each a fresh copy into the exposed
buffer, outside the timing), and only the steps are timed (thread CPU
time and wall time summed over the steps).  A constant field flatters
the kinds that keep state: a running mean equal to the value makes the
running extremes of ``pointwise`` unread (kernels.perpoint), and the exact
quantiles' bins never move; with ``--moving`` the quantiles' bins move
now and then (a second pass) and the extremes are read on one side.  Its
results go to ``bench-results/climate_kinds_moving.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import describe_machine, save, table  # noqa: E402

COSLAT = {"dim": "lat", "values": "coslat"}

#: (label, analysis) pairs measured against stats; the unweighted reduce,
#: coarsen and histogram show what the weights add
KINDS = [
    ("reduce mean (unweighted)", {"kind": "reduce", "over": ["lon"], "op": "mean"}),
    ("reduce weighted mean", {"kind": "reduce", "over": ["lon"], "op": "mean",
                              "weights": COSLAT}),
    ("reduce weighted global profile", {"kind": "reduce", "over": ["lat", "lon"],
                                        "op": "mean", "weights": COSLAT}),
    ("reduce integral", {"kind": "reduce", "over": ["plev"], "op": "integral",
                         "weights": {"dim": "plev", "values": "DP", "units": "kg m-2"}}),
    ("reduce weighted mean, region", {"kind": "reduce", "over": ["lon"], "op": "mean",
                                      "weights": COSLAT,
                                      "region": {"lat": {"from": -30.0, "to": 30.0}}}),
    ("coarsen (unweighted)", {"kind": "coarsen", "factors": {"lat": 6, "lon": 6}}),
    ("coarsen weighted", {"kind": "coarsen", "factors": {"lat": 6, "lon": 6},
                          "weights": COSLAT}),
    ("histogram (unweighted)", {"kind": "histogram", "bins": 64, "range": [200.0, 320.0],
                                "quantiles": [0.05, 0.5, 0.95]}),
    ("histogram weighted", {"kind": "histogram", "bins": 64, "range": [200.0, 320.0],
                            "quantiles": [0.05, 0.5, 0.95], "weights": COSLAT}),
    ("stats argmax", {"kind": "stats", "stats": ["argmax", "argmin"]}),
    ("exceedance", {"kind": "exceedance", "threshold": 290.0, "weights": COSLAT}),
    ("histogram exact quantiles", {"kind": "histogram", "bins": 64, "range": [200.0, 320.0],
                                   "quantiles": [0.05, 0.5, 0.95],
                                   "quantile_method": "exact"}),
    ("spell", {"kind": "spell", "threshold": 290.0}),
    ("pointwise mean", {"kind": "pointwise", "ops": ["mean"]}),
    ("pointwise mean min max var", {"kind": "pointwise", "ops": ["mean", "min", "max", "var"]}),
    ("pointwise monthly mean", {"kind": "pointwise", "ops": ["mean"],
                                "calendar_period": "month"}),
]

#: the cost target of issue 16, per kind (x stats)
TARGET = {"histogram exact quantiles": 5.0}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--pairs", type=int, default=None, help="interleaved pairs (default 7)")
    p.add_argument("--steps", type=int, default=None, help="output steps per timing")
    p.add_argument("--shape", type=int, nargs=3, default=None, metavar=("P", "Y", "X"))
    p.add_argument("--writer", choices=("copy", "keep"), default="copy",
                   help="copy: each result copied at append and dropped at the next step, "
                        "as the HDF5 writer does until a flush (default); keep: the "
                        "in-memory writer, which keeps every result of the run")
    p.add_argument("--moving", action="store_true",
                   help="overwrite the field with the next day's before each output step "
                        "(untimed), as a model changes it")
    p.add_argument("--only", nargs="+", default=None, metavar="WORD",
                   help="measure only the kinds whose label contains one of these words")
    args = p.parse_args()
    args.pairs = args.pairs or (5 if args.quick else 7)
    args.steps = args.steps or (3 if args.quick else 20)
    args.shape = tuple(args.shape or ((8, 36, 72) if args.quick else (8, 180, 360)))
    return args


def copying_writer():
    """The in-memory writer, but keeping rows as the HDF5 writer does until
    its flush: each piece copied into an array of its own at ``append``
    (``H5Writer.append``), and dropped at the next output step, as a flush
    would drop it.  ``MemoryWriter`` itself keeps a reference to every
    result of the run, so that every output step's results land in memory
    never touched before (page faults: about 2 ms a step for a 0.5 MB
    result on this machine), which no run with a file has."""
    from insitu.analyses.base import Piece
    from insitu.writer import MemoryWriter

    class CopyingWriter(MemoryWriter):
        def append(self, step, time, values, axis="time", bounds=None):
            kept = {k: Piece(tuple(v.start), np.array(v.values, copy=True))
                    if isinstance(v, Piece) else np.array(v, copy=True)
                    for k, v in values.items() if v is not None}
            if axis == "time":
                self.rows[:] = [(step, time, kept)]
            else:
                self.axes[axis][:] = [(step, time, bounds, kept)]
    return CopyingWriter


def session(comm, analysis, shape, field, writer="copy"):
    """A one-analysis session on ``field`` (exposed, never copied)."""
    from insitu import options
    from insitu.models import latlon
    from insitu.session import Session
    from insitu.writer import MemoryWriter
    if writer == "copy":
        MemoryWriter = copying_writer()  # noqa: N806
    p, lat, lon = latlon.grid(shape)
    a = dict(analysis, field="T")
    if a.get("weights", {}) and isinstance(a["weights"], dict) and a["weights"]["values"] == "DP":
        _, edges = latlon.levels(shape[0])
        a["weights"] = dict(a["weights"], values=(-np.diff(edges) / latlon.G).tolist())
    cfg = options.parse({
        "fields": {"T": {"units": "K", "dims": ["plev", "lat", "lon"]}},
        "coords": {"lat": {"start": float(lat[0]), "step": float(lat[1] - lat[0]),
                           "units": "degrees_north"},
                   "lon": {"start": 0.0, "step": float(lon[1] - lon[0]),
                           "units": "degrees_east"}},
        "time": {"units": "days since 2000-01-01", "calendar": "noleap"},
        "analyses": [a], "log_level": "WARNING"})
    s = Session(comm.Dup_insitu(), cfg, writer_cls=MemoryWriter)
    s.declare("T", np.float64, shape, (0, 0, 0), shape)
    s.expose("T", field)
    s.step(0, 0.0)    # binds, compiles
    return s


def per_step(s, first: int, steps: int, field=None, days=None) -> tuple:
    """Wall time and this thread's CPU time per output step: on a machine
    shared with other jobs the wall time also holds the time the process
    waited for a core, the CPU time does not (both hold cache misses).
    With ``days`` (``--moving``), ``field`` is overwritten with day ``k``'s
    before step ``k``, outside the timing."""
    if days is None:
        t0, c0 = time.perf_counter(), time.thread_time()
        for k in range(first, first + steps):
            s.step(k, float(k))
        return (time.perf_counter() - t0) / steps, (time.thread_time() - c0) / steps
    wall = cpu = 0.0
    for k in range(first, first + steps):
        np.copyto(field, days[k % len(days)])
        t0, c0 = time.perf_counter(), time.thread_time()
        s.step(k, float(k))
        wall += time.perf_counter() - t0
        cpu += time.thread_time() - c0
    return wall / steps, cpu / steps


def spread(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):.4g} ({v.min():.4g}-{v.max():.4g})"


class _Comm:
    """insitu's MPI wrapper over a fresh duplicate of COMM_SELF per session."""

    def Dup_insitu(self):
        from mpi4py import MPI
        from insitu.comm import MPIComm
        return MPIComm(MPI.COMM_SELF.Dup(), owned=True)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import logging
    logging.getLogger("insitu").setLevel(logging.WARNING)
    from insitu.models import latlon
    shape = args.shape
    T, _ = latlon.fields_at(shape, 196.0)
    days = [latlon.fields_at(shape, 196.0 + d)[0] for d in range(30)] if args.moving else None
    comm = _Comm()
    base = session(comm, {"kind": "stats"}, shape, T, args.writer)
    chosen = [(label, a) for label, a in KINDS
              if not args.only or any(w in label for w in args.only)]
    kinds = [(label, session(comm, a, shape, T, args.writer)) for label, a in chosen]
    print(describe_machine())
    print(f"numpy {np.__version__}; field {shape} float64 ({T.nbytes / 2**20:.1f} MiB, "
          f"{np.isnan(T).mean():.1%} NaN); {args.pairs} interleaved pairs of "
          f"{args.steps} output steps; 1 rank, in-memory writer ({args.writer}); field "
          + ("changing every step (--moving)" if args.moving else "constant"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    step = 1
    times = {label: [] for label, _ in kinds}
    stats_times = {label: [] for label, _ in kinds}
    for _ in range(args.pairs):
        for label, s in kinds:
            stats_times[label].append(per_step(base, step, args.steps, T, days))
            times[label].append(per_step(s, step, args.steps, T, days))
            step += args.steps
    rows = []
    for label, _ in kinds:
        t, b = np.array(times[label]).T, np.array(stats_times[label]).T   # (wall, cpu)
        ratio, cpu_ratio = t[0] / b[0], t[1] / b[1]
        rows.append({"kind": label, "stats_us": spread(b[0] * 1e6), "kind_us": spread(t[0] * 1e6),
                     "ratio": spread(ratio), "median_ratio": float(np.median(ratio)),
                     "cpu_ratio": spread(cpu_ratio),
                     "median_cpu_ratio": float(np.median(cpu_ratio)),
                     "target": TARGET.get(label, 3.0),
                     # in CPU time: on a shared machine the wall time also
                     # holds the time the process waited for a core
                     "within_target": bool(np.median(cpu_ratio) <= TARGET.get(label, 3.0)),
                     "raw_s": {"stats": b[0].tolist(), "kind": t[0].tolist(),
                               "stats_cpu": b[1].tolist(), "kind_cpu": t[1].tolist()}})
    print("cost per output step, microseconds of wall time: median (min-max) over pairs; "
          "ratio = kind / stats in the same pair (wall), cpu_ratio the same in thread CPU time")
    print(table(rows, ["kind", "stats_us", "kind_us", "ratio", "cpu_ratio", "target",
                       "within_target"]))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # (a --moving run is kept apart: climate_kinds.json is the constant
    # field's, the figures the targets were set on)
    path = save("climate_kinds_moving" if args.moving else "climate_kinds", {"rows": rows, "quick": args.quick, "pairs": args.pairs,
                                  "steps": args.steps, "shape": list(shape),
                                  "writer": args.writer, "moving": args.moving,
                                  "machine_line": describe_machine()})
    print(f"wrote {path}")
    for s in [base] + [s for _, s in kinds]:
        s.finalize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
