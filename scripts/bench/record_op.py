"""The step's reduction right after a model step: the compiled record
operation (insitu.mpi_op) against the Python callback op and MPI.SUM.

``mpiexec -n 2 python scripts/bench/record_op.py [--quick] [--local] [--rounds R]
[--calls C] [--slots N] [--sweep-mb MB]``

What a due step's one collective costs when MPI has to call the record's
combine with cold caches (issue 12): before each call a numba heat stencil
sweeps two arrays of ``--sweep-mb`` MB (32, about the Fortran heat model's
16 MB per rank read and written), all ranks meet at a barrier, and each
times ``MPIComm.reduce_record`` (the session's own call: ``Iallreduce`` of
the plan's message, completed by ``MPIComm._wait``'s ``Test`` loop, with a
watchdog timeout as the session sets it) of a ``--slots``-slot record of
every kind (MOMENTS, MIN, MAX, SUM, ARGMAX: what ten mixed analyses hold).
Three contenders:

* ``compiled``: ``record_op="compiled"``, MPI calls the numba cfunc;
* ``python``: ``record_op="python"``, MPI calls a Python callback that
  calls the compiled ``_combine`` (the path before insitu.mpi_op, which
  wrapped the record alone; since 3215d10's follow-up it slices the same
  message's record part, two slices more);
* ``sum``: ``Iallreduce(IN_PLACE, record, MPI.SUM)`` through the same wait
  (MPI's built-in op on the same bytes: the floor for any user op).

With ``--local`` (any number of ranks, 1 too), the same three operations
are timed without communication, by ``MPI_Reduce_local`` of another
record into the plan's message right after the sweep: the combine's own
cost with cold caches, without the partner's arrival, which on a loaded
machine (a descheduled partner rank costs milliseconds) is the figure that
can still be read.

Rounds interleave the contenders (common.interleave, the start rotated);
in each round each contender makes ``--calls`` calls, and its figure for
the round is the median over them of the slowest rank's time for a call.
Reported: the median and spread (min-max) of the per-round figures, and
the per-round differences compiled - python and compiled - sum.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MIN_PAIRS, fmt, interleave, print_header, save, summarize  # noqa: E402


def sweep_kernel():
    import numba

    @numba.njit(cache=True)
    def sweep(a, b):  # pragma: no cover - compiled
        for i in range(1, a.size - 1):
            b[i] = 0.25 * (a[i - 1] + a[i + 1]) + 0.5 * a[i]
    return sweep


def make_plan(slots: int):
    from insitu.reduction import ARGMAX, MAX, MIN, MOMENTS, SUM, ReductionPlan
    plan = ReductionPlan()
    kinds = (MOMENTS, MIN, MAX, SUM, ARGMAX, SUM)
    i = 0
    while plan.size < slots:
        plan.reserve(kinds[i % len(kinds)])
        i += 1
    plan.freeze()
    return plan


def local_call(MPI, comm, plan, base):
    """``MPI_Reduce_local`` of a copy of this rank's record into the plan's
    with ``comm``'s operation for the plan (compiled or Python), over the
    buffer that operation takes (the message or the record)."""
    rtype, op, _, message, attr = comm._op_for(plan)
    plan.record[:] = base
    other = getattr(plan, attr).copy()

    def call():
        op.Reduce_local([other, 1, rtype], message)
    return call


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    p.add_argument("--calls", type=int, default=None, help="calls per contender and round")
    p.add_argument("--slots", type=int, default=40, help="the record's slots (default 40)")
    p.add_argument("--local", action="store_true",
                   help="time MPI_Reduce_local of each op (no communication) instead of the "
                        "collective")
    p.add_argument("--sweep-mb", type=float, default=None,
                   help="MB of each of the two arrays swept before each call (default 32)")
    a = p.parse_args(argv)
    rounds = a.rounds or (2 if a.quick else 7)
    calls = a.calls or (10 if a.quick else 60)
    mb = a.sweep_mb or (1.0 if a.quick else 32.0)
    if not a.quick and rounds < MIN_PAIRS:
        p.error(f"--rounds must be at least {MIN_PAIRS} (honest benchmarks)")

    from mpi4py import MPI

    from insitu.comm import MPIComm
    world = MPI.COMM_WORLD
    rank, size = world.rank, world.size
    if rank == 0:
        print_header()
    if size < 2 and not a.local:
        print("record_op.py needs 2 or more ranks (mpiexec -n 2), or --local", flush=True)
        return 2
    comms = {k: MPIComm(world.Dup(), owned=True, timeout=60.0, record_op=k)
             for k in ("compiled", "python")}
    summ = MPIComm(world.Dup(), owned=True, timeout=60.0)
    plans = {k: make_plan(a.slots) for k in ("compiled", "python", "sum")}
    for k, c in comms.items():  # make the ops and datatypes outside the timing
        c._op_for(plans[k])
        c.reduce_record(plans[k])
    used = {k: "compiled" if comms[k]._ops[id(plans[k])][1] is comms[k]._compiled_op
            else "python callback" for k in comms}
    n = max(int(mb * 2**20 / 8), 16)
    big, big2 = np.ones(n), np.ones(n)
    sweep = sweep_kernel()
    sweep(big, big2)
    rng = np.random.default_rng(rank)
    base = plans["compiled"].identity.copy()
    base[plans["compiled"].sum_idx] = rng.normal(size=plans["compiled"].sum_idx.size)
    SUM_OP, IN_PLACE = MPI.SUM, MPI.IN_PLACE

    def reduce_sum():
        rec = plans["sum"].record
        summ._wait(summ.comm.Iallreduce(IN_PLACE, rec, SUM_OP), "a sum")

    calls_of = {"compiled": lambda: comms["compiled"].reduce_record(plans["compiled"]),
                "python": lambda: comms["python"].reduce_record(plans["python"]),
                "sum": reduce_sum}
    if a.local:
        calls_of = {k: local_call(MPI, comms[k], plans[k], base) for k in comms}
        other = base.copy()  # MPI.SUM takes doubles, not the contiguous type
        calls_of["sum"] = lambda: SUM_OP.Reduce_local(other, plans["sum"].record)
    per_call: dict[str, list] = {k: [] for k in calls_of}
    mine = np.empty(1)
    slowest = np.empty(1)

    def contender(name):
        fn = calls_of[name]
        plan = plans[name]

        def run() -> float:
            times = []
            for _ in range(calls):
                plan.record[:] = base
                sweep(big, big2)
                sweep(big2, big)
                if not a.local:
                    world.Barrier()
                t0 = time.perf_counter()
                fn()
                mine[0] = time.perf_counter() - t0
                if a.local:
                    slowest[0] = mine[0]
                else:
                    world.Allreduce(mine, slowest, op=MPI.MAX)  # after the timing
                times.append(slowest[0] * 1e6)
            per_call[name].extend(times)
            return statistics.median(times)
        return run

    samples = interleave({k: contender(k) for k in calls_of}, pairs=rounds)
    rows = []
    for k in calls_of:
        rows.append({"op": k, "path": used.get(k, "MPI.SUM"),
                     "us": summarize(samples[k]), "per_call_us": summarize(per_call[k])})
    diff = {f"compiled - {k}": summarize([x - y for x, y in zip(samples["compiled"], samples[k])])
            for k in ("python", "sum")}
    if rank == 0:
        what = ("MPI_Reduce_local on rank 0 (no communication)" if a.local
                else "Iallreduce, the slowest rank's")
        print(f"{size} ranks, a {a.slots}-slot record ({plans['compiled'].message.size} doubles "
              f"with its header), {rounds} rounds of {calls} calls per op, each call after "
              f"a stencil over 2 x {mb:g} MB; us per call: {what}")
        print("per round (median of its calls): median (min-max) of the rounds")
        for r in rows:
            print(f"  {r['op']:>8} [{r['path']}]: {fmt(r['us'])}   all calls: "
                  f"{fmt(r['per_call_us'])}")
        for k, s in diff.items():
            print(f"  {k}: {fmt(s)}")
        save(f"record_op{'_local' if a.local else ''}_n{size}",
             {"rows": rows, "differences": diff, "rounds": rounds, "calls": calls,
              "slots": a.slots, "sweep_mb": mb, "local": a.local})
    for c in (*comms.values(), summ):
        c.free()
    return 0


if __name__ == "__main__":
    sys.exit(main())
