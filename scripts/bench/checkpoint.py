"""What a checkpoint of the analysis state costs (issue 13: <= 50 ms at 2
ranks for 50 analyses).

``mpiexec -n 2 python scripts/bench/checkpoint.py [--quick] [--pairs 10]``

One session with 50 analyses: the statistics of T and its zonal mean (a
distributed result), and 48 windows over them (by steps, longer than the
run, with mean, var and max: every one holds open Chan-merge partials; half
over the zonal mean, whose partials each rank writes as its hyperslab).  After each output step it
times, in turn (A B A B ...), on every rank after a barrier:

* ``checkpoint``: ``insitu.checkpoint(step)``: the durable flush of the rows,
  the state collected, one group with the replicated vector and a global
  array per distributed partial, the metadata, two flushes, the oldest
  checkpoint unlinked;
* ``checkpoint, a dataset per array``: the same with
  ``insitu.state.PACK`` off: each distributed partial in its own dataset
  (one collective creation and fill each), the layout before they were
  stacked;
* ``flush only``: the writer's durable flush alone, after a step (what any
  run pays at its flush policy's cadence), so the difference is the state's
  own cost.

A sample is the slowest rank's wall time.  Reported: median and spread
(min-max) of each and of the per-pair difference, with the machine line.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MIN_PAIRS, print_header, save, scaled, shared_tmpdir, summarize, table  # noqa: E402

WINDOWS = 48


def config(path: str, n_windows: int) -> dict:
    half = n_windows // 2
    # Windows longer than the run: every one holds open partials at each
    # checkpoint, and no window row is written.  (With windows of 3..26
    # steps, flushing every step, the writer's growth of 24 distributed
    # window axes at step 48 fails in H5Dset_extent with MPI_ERR_TRUNCATE,
    # with or without checkpoints: a writer issue reported separately.)
    windows = [{"kind": "window", "source": "T", "steps": 1000 + i, "name": f"wT{i}",
                "ops": ["mean", "var", "max"]} for i in range(half)]
    windows += [{"kind": "window", "source": "Tzon", "steps": 1000 + i, "name": f"wZ{i}",
                 "ops": ["mean", "var", "max"]} for i in range(n_windows - half)]
    return {"output": {"path": path, "overwrite": True, "flush_seconds": None},
            "fields": {"T": {"dims": ["y", "x"]}},
            "analyses": [{"kind": "stats", "field": "T"},
                         {"kind": "reduce", "field": "T", "over": ["x"], "name": "Tzon"},
                         *windows],
            "log_level": "WARNING"}


def slowest(comm, fn) -> float:
    from mpi4py import MPI
    comm.Barrier()
    t0 = time.perf_counter()
    fn()
    return comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--pairs", type=int, default=10,
                   help=f"interleaved pairs (at least {MIN_PAIRS})")
    args = p.parse_args()
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    pairs = 2 if args.quick else max(args.pairs, MIN_PAIRS)
    n_windows = 4 if args.quick else WINDOWS
    ny, nx = 96, 128
    tmp = shared_tmpdir(comm, "insitu-checkpoint-")
    s = api.init(comm, config(os.path.join(tmp, "ck.h5"), n_windows))
    rows = np.array_split(np.arange(ny), comm.size)[comm.rank]
    api.declare_field("T", np.float64, (ny, nx), (int(rows[0]), 0), (len(rows), nx))
    field = np.random.default_rng(comm.rank).normal(280, 5, (len(rows), nx))
    api.expose("T", field)
    step = 0
    for _ in range(20):   # windows open, partials filled, kernels loaded
        step += 1
        api.step(step, float(step))
    api.checkpoint(step)  # the group exists; the first one creates it
    from insitu import state
    samples = {"checkpoint": [], "checkpoint, a dataset per array": [], "flush only": []}
    for _ in range(pairs):
        step += 1
        api.step(step, float(step))
        samples["checkpoint"].append(slowest(comm, lambda: api.checkpoint(step)))
        step += 1
        api.step(step, float(step))
        state.PACK = False
        samples["checkpoint, a dataset per array"].append(
            slowest(comm, lambda: api.checkpoint(step)))
        state.PACK = True
        step += 1
        api.step(step, float(step))
        samples["flush only"].append(slowest(comm, s.writer.flush))
    n_analyses = len(s.analyses)
    api.finalize()
    if comm.rank == 0:
        diff = [(a - b) for a, b in zip(samples["checkpoint"], samples["flush only"])]
        out = [{"ranks": comm.size, "analyses": n_analyses, "what": k,
                "ms": scaled(summarize(v), 1e3)} for k, v in samples.items()]
        out.append({"ranks": comm.size, "analyses": n_analyses,
                    "what": "checkpoint minus flush", "ms": scaled(summarize(diff), 1e3)})
        print_header()
        print(f"checkpoint cost: {comm.size} rank(s), {n_analyses} analyses ({n_windows} "
              f"windows), {pairs} interleaved pairs; the slowest rank's wall time, ms, "
              "median (min-max)")
        print(table(out, ["what", "ms"]))
        print(f"wrote {save(f'checkpoint_n{comm.size}', {'ranks': comm.size, 'pairs': pairs, 'rows': out, 'quick': args.quick})}")
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
