"""Review of fcc2058/37a2e9a under real mpiexec: the heat stand-in's file
written from packed results (StatsBatch packs, shared local passes, the
writer keeping a pack's arrays) is bit for bit the file written the way
749e0e5 wrote it (each analysis's own local pass and its own result pairs
in a dict: ``_runners``/``_producers`` replaced in the program below, as
tests/test_stats_batch.py does in one process).

The config mixes what the change touches: twins of T at other cadences (a
follower due where its usual runner is not, and the reverse), ddof, a
region empty on most ranks and one split between ranks, field and coslat
weights, a derived field with a follower, argmax and an exceedance between
batches, windows over a runner, a follower and a weighted stats, a trigger
reading a follower and a weighted mean, and a ``fault`` at step 4 on the
last rank (on_error: skip), so step 4 forms every result on the failure
path (followers' slots borrowed).  At 2, 3 and 4 ranks on an uneven 37x53
grid, with the inline writer and the background one, and at 2 ranks with
``results=True`` (the Python API's dict) as well as insitu.run's
``results=False``.

Checked to fail (2 ranks, inline) with ``Stats.borrow`` made a no-op in
the packed runs (box2 and corner2, whose ddof differs from their runner's,
form step 4's results from unfilled slots; the others take their runner's
numbers from StepMemo.formed), and with StatsBatch given each analysis as
its own source (anom2, box2, corner2, ... from unfilled slots).
"""
import pytest

from conftest import PYTHON, h5_datasets, mpi_env, mpirun

CONFIG = """\
output: {path: x.h5, overwrite: true, flush_every_steps: 3, writer: WRITER}
on_error: skip
fields:
  T: {units: K, dims: [y, x]}
  area: {units: "1", dims: [y, x]}
coords:
  y: {start: -89.0, step: 4.9, units: degrees_north, standard_name: latitude}
  x: {start: 0.0, step: 6.8, units: degrees_east, standard_name: longitude}
derived:
  T_anomaly: T - T.mean(x)
analyses:
  - {kind: stats, field: T, every: 2}
  - {kind: stats, field: T, name: twin, every: 4}
  - {kind: stats, field: T, name: sample, ddof: 1, stats: [var, std, mean, count], every: 3}
  - {kind: stats, field: T, name: mm, every: 3, stats: [min, max, nan_count]}
  - {kind: exceedance, field: T, threshold: 285.0, op: gt, every: 2}
  - {kind: stats, field: T, name: box, region: {y: [5, 30], x: [10, 40]}, every: 2}
  - {kind: stats, field: T, name: box2, region: {y: [5, 30], x: [10, 40]},
     stats: [mean, var], ddof: 2, every: 2}
  - {kind: stats, field: T, name: corner, region: {y: [0, 3], x: [0, 4]}, ddof: 20, every: 2}
  - {kind: stats, field: T, name: corner2, region: {y: [0, 3], x: [0, 4]},
     stats: [std, count], every: 4}
  - {kind: stats, field: T, name: wstats, weights: area, stats: [mean, std, var], every: 2}
  - {kind: stats, field: T, name: wstats2, weights: area, stats: [mean, count, sum], every: 4}
  - {kind: stats, field: T, name: coslat, weights: {dim: y, values: coslat}, every: 2}
  - {kind: stats, field: T, name: ext, stats: [min, max, argmax, argmin], every: 2}
  - {kind: stats, field: T_anomaly, stats: [min, max, std], every: 2}
  - {kind: stats, field: T_anomaly, name: anom2, stats: [mean, sum], every: 2}
  - {kind: histogram, field: T, bins: 8, range: [270, 330], every: 4}
  - {kind: fault, field: T, at_step: 4, ranks: last, every: 2}
  - {kind: stats, field: T, name: late, every: 6}
  - {kind: window, source: T, steps: 2, ops: [mean, max]}
  - {kind: window, source: twin, name: tw3, steps: 3, ops: [mean, min]}
  - {kind: window, source: wstats, name: ww2, steps: 2, ops: [mean]}
triggers:
  - {name: warm, when: "twin_max > 0 and wstats_mean > 0", fields: [T], max_snapshots: 2}
"""

PROGRAM = r'''
import os
import runpy
import sys

from insitu import api, session

if os.environ["R8_MODE"] == "plain":   # 749e0e5's way: own passes, own pairs
    session._runners = lambda due: tuple((a, ()) for a in due)
    session._producers = lambda due, sources=None: tuple(
        getattr(a, "result_items", None) or a.results for a in due)
elif os.environ["R8_MODE"] == "dict":  # the Python API's results=True
    real = api.step
    api.step = lambda step, time=0.0, results=True: real(step, time, True)
sys.argv = ["insitu.run", *sys.argv[1:]]
runpy.run_module("insitu.run", run_name="__main__", alter_sys=True)
'''


def _run(tmp_path, nranks, mode, writer):
    cfg = tmp_path / f"cfg_{writer}.yaml"
    cfg.write_text(CONFIG.replace("WRITER", writer))
    prog = tmp_path / "modes.py"
    prog.write_text(PROGRAM)
    out = tmp_path / f"{mode}_{writer}.h5"
    r = mpirun(nranks, [PYTHON, prog, "--model", "heat2d", "--config", cfg, "--steps", 13,
                        "--shape", 37, 53, "--output", out, "--no-progress"],
               timeout=240, env=mpi_env({"R8_MODE": mode}))
    assert "fault 'T') failed on 1 rank(s)" in r.stderr, r.stderr[-3000:]
    return h5_datasets(out)


@pytest.mark.parametrize("nranks,writer", [(2, "inline"), (3, "background"), (4, "inline")])
def test_packed_file_is_the_plain_file(tmp_path, nranks, writer):
    plain = _run(tmp_path, nranks, "plain", writer)
    packed = _run(tmp_path, nranks, "packed", writer)
    # the Python API's dict at one size (each run costs the suite ~4 s)
    as_dict = _run(tmp_path, nranks, "dict", writer) if nranks == 2 else packed
    assert "twin_mean" in plain and "late_std" in plain and "tw3_mean" in str(sorted(plain))
    assert sorted(plain) == sorted(packed) == sorted(as_dict)
    differ = [k for k in plain if plain[k].dtype != packed[k].dtype
              or plain[k].tobytes() != packed[k].tobytes()
              or plain[k].tobytes() != as_dict[k].tobytes()]
    assert not differ, differ
