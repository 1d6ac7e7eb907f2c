"""What a concurrent reader costs the writer (issue 15: "the writer's time
does not grow by more than 5%").

``python scripts/bench/live_reader.py [--quick] [--pairs 5] [--steps 2000]``

A 2-rank heat2d run (96x128, the stand-in's default grid) with statistics
every step, a distributed zonal mean, a histogram, a coarse field, a window
and a durable flush every 20 output steps writes ``--steps`` steps, three
ways in interleaved rounds (A B C A B C ...: the machine is shared and
drifts):

* ``alone``: no reader;
* ``reader 1/s``: a reader process polling like the live view, once a
  second (the committed rows, the last 100 rows of everything along
  ``time``, alternately with h5py and xarray, through insitu.reader);
* ``reader flat out``: the same reads back to back, as fast as they go (the
  stress test's load).

The writer's figure is its step loop's wall time, on rank 0, between two
barriers (start-up and finalize excluded: they do not depend on a reader).
Reported: the median and spread (min-max) of each, and of the per-round
ratio to ``alone``.  On a 2-core machine a reader flat out takes a core the
two ranks need, so its ratio measures CPU sharing as much as I/O; the
reader never takes a lock (docs/live.md).

Internal modes: ``--writer CONFIG STEPS`` (under mpiexec) and ``--reader
PATH POLL`` (one reader process).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MIN_PAIRS, compare, fmt, interleave, print_header, save,  # noqa: E402
                    summarize)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = """
output: {{path: {out}, overwrite: true, flush_every_steps: 20, flush_seconds: null}}
log_level: WARNING
time: {{units: "seconds since 2000-01-01", calendar: standard}}
fields: {{T: {{units: K, dims: [y, x]}}}}
analyses:
  - {{kind: stats, field: T, every: 1}}
  - {{kind: reduce, field: T, over: [x], op: mean, every: 2}}
  - {{kind: histogram, field: T, every: 5, bins: 12, range: [270, 330]}}
  - {{kind: coarsen, field: T, factors: {{y: 8, x: 8}}, every: 10}}
  - {{kind: window, source: T, steps: 50, ops: [mean, max]}}
"""
WAYS = {"alone": None, "reader 1/s": 1.0, "reader flat out": 0.0}


def writer(config: str, steps: int) -> None:
    """Under mpiexec: the heat2d loop of insitu.run, its wall time printed by rank 0."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from mpi4py import MPI

    from insitu import api
    from insitu.models.heat2d import Heat2D
    comm = MPI.COMM_WORLD
    model = Heat2D(comm)
    import yaml
    api.init(comm, yaml.safe_load(config))
    model.declare(api)
    comm.Barrier()
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        model.advance()
        model.expose(api)
        api.step(step, model.time)
    comm.Barrier()
    seconds = time.perf_counter() - t0
    api.finalize()
    model.free()
    if comm.rank == 0:
        print(f"LOOP_SECONDS {seconds:.6f}", flush=True)


def reader(path: str, poll: float) -> None:
    """One reader: the live view's reads, every ``poll`` s (0: back to back),
    until the file says the run finished; prints its reads and retries."""
    from insitu import reader as rd
    rd.wait_for(path, timeout=120, poll=0.05)
    reads = 0
    while True:
        snap = rd.snapshot(path)
        if snap.finished:
            break
        names = [n for n, v in snap.variables.items() if v.axis == "time"]
        if reads % 2 == 0:
            rd.read_rows(path, "time", names, start=max(0, snap.rows.get("time", 0) - 100))
        else:
            rd.open_dataset(path, load=True, tail=100, decode_times=False).close()
        reads += 1
        if poll:
            time.sleep(poll)
    print(json.dumps({"reads": reads, "retries": rd.stats["retries"]}), flush=True)


def one_run(tmp: str, way: str, steps: int, log: list) -> float:
    out = os.path.join(tmp, f"{way.replace(' ', '_').replace('/', '')}.h5")
    if os.path.exists(out):
        os.remove(out)
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    rd = None
    if WAYS[way] is not None:
        rd = subprocess.Popen([sys.executable, __file__, "--reader", out, str(WAYS[way])],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        r = subprocess.run(["mpiexec", "-n", "2", sys.executable, __file__, "--writer",
                            CONFIG.format(out=out), str(steps)], capture_output=True, text=True,
                           env=env, timeout=600)
        if r.returncode != 0:
            raise SystemExit(f"the writer failed ({way}):\n{r.stderr[-3000:]}")
        seconds = float(r.stdout.split("LOOP_SECONDS")[1].split()[0])
        if rd is not None:
            got, _ = rd.communicate(timeout=120)
            log.append({"way": way, **json.loads(got.strip().splitlines()[-1])})
    finally:
        if rd is not None and rd.poll() is None:
            rd.kill()
            rd.wait()
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round of 200 steps (the suite's check)")
    p.add_argument("--pairs", type=int, default=MIN_PAIRS)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--writer", nargs=2, metavar=("CONFIG", "STEPS"), help=argparse.SUPPRESS)
    p.add_argument("--reader", nargs=2, metavar=("PATH", "POLL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.writer:
        writer(args.writer[0], int(args.writer[1]))
        return 0
    if args.reader:
        reader(args.reader[0], float(args.reader[1]))
        return 0
    pairs, steps = (1, 200) if args.quick else (args.pairs, args.steps)
    print_header()
    print(f"live_reader: 2 ranks, heat2d 96x128, {steps} steps, flush every 20 output steps, "
          f"{pairs} interleaved round(s)", flush=True)
    log: list = []
    with tempfile.TemporaryDirectory(prefix="insitu-live-bench-") as tmp:
        samples = interleave({w: (lambda w=w: one_run(tmp, w, steps, log)) for w in WAYS},
                             pairs=pairs,
                             on_round=lambda r: print(f"  round {r + 1} of {pairs} done",
                                                      flush=True))
    rows = []
    for way in WAYS:
        row = {"way": way, "writer_loop_s": summarize(samples[way])}
        if way != "alone":
            row["ratio_to_alone"] = compare(samples["alone"], samples[way])["ratio"]
            reads = [e for e in log if e["way"] == way]
            row["reads_per_run"] = summarize([e["reads"] for e in reads])
            row["retries_per_run"] = summarize([e["retries"] for e in reads])
        rows.append(row)
        print(f"  {way:<16} writer loop {fmt(row['writer_loop_s'])} s"
              + (f", ratio to alone {fmt(row['ratio_to_alone'])}, reads per run "
                 f"{fmt(row['reads_per_run'])}, retried {fmt(row['retries_per_run'])}"
                 if way != "alone" else ""), flush=True)
    save("live_reader", {"steps": steps, "pairs": pairs, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
