"""The flush policy and the writer's buffered rows (issue 12, items 1 and
2), tested on the data, under real mpiexec:

* under every flush setting, and with a buffer small enough to force a
  flush (and a growth) at most output steps, the
  finalized file equals the flush-every-step file, dataset by dataset;
* after a SIGKILL at a known step, the file holds every step up to the last
  durable flush, read with h5py, both xarray engines and ``insitu.inspect``;
* the time-based decision follows rank 0's clock on every rank;
* ``output.flush_every`` still works (deprecated) and the policy keys are
  validated.
"""
import re

import h5py
import numpy as np
import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun

PROGRAM = ROOT / "tests" / "mpi_programs" / "flush_run.py"
STEPS = 24

#: every output kind: two cadences on the time axis (rows with fill), a
#: distributed reduction and coarse field, a histogram (replicated arrays),
#: a window axis with bounds and a trigger axis of whole-field snapshots
CONFIG = """
output: {{path: {out}, overwrite: true{output}}}
time: {{units: "seconds since 2000-01-01", calendar: standard}}
fields: {{T: {{units: K, dims: [y, x]}}}}
analyses:
  - {{kind: stats, field: T, every: 1}}
  - {{kind: stats, field: T, name: T3, every: 3, stats: [mean, max]}}
  - {{kind: reduce, field: T, over: [x], op: mean, every: 2}}
  - {{kind: coarsen, field: T, factors: {{y: 8, x: 8}}, every: 3}}
  - {{kind: histogram, field: T, every: 2, bins: 12, range: [270, 330]}}
  - {{kind: window, source: T, steps: 4, ops: [mean, max]}}
triggers:
  - {{name: warm, when: "{when}", fields: [T], max_snapshots: 3}}
"""

#: attributes that differ between two runs of the same job (the clock, the
#: command line, the config text that names the policy)
VARYING = {"history", "insitu_started", "insitu_finished", "insitu_command", "insitu_config",
           "insitu_config_path"}


def _run(tmp_path, name, output="", nranks=2, extra=(), steps=STEPS, check=True,
         when="T_max > 300"):
    out = tmp_path / f"{name}.h5"
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(CONFIG.format(out=out, output=output, when=when))
    r = mpirun(nranks, [PYTHON, PROGRAM, *extra, "--", "--model", "heat2d", "--config", cfg,
                        "--steps", steps, "--shape", 48, 64, "--no-progress"],
               timeout=180, check=check)
    return out, r


def _counts(r) -> tuple[dict, dict]:
    """Each rank's durable flushes and growths, as flush_run.py prints them."""
    found = re.findall(r"FLUSHES rank (\d+) (-?\d+) growths (-?\d+)", r.stdout)
    return ({int(a): int(b) for a, b, _ in found}, {int(a): int(c) for a, _, c in found})


def _contents(path) -> dict:
    """Every dataset (values, shape, dtype, attributes) and the file's
    attributes, minus those that name the run rather than its results."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/"] = {k: v for k, v in f.attrs.items() if k not in VARYING}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                attrs = {k: v for k, v in obj.attrs.items()
                         if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
                out[name] = (obj.dtype, obj.shape, obj[()], attrs, obj.fillvalue)
        f.visititems(visit)
    return out


def _eq(x, y) -> bool:
    x, y = np.asarray(x), np.asarray(y)
    return np.array_equal(x, y, equal_nan=x.dtype.kind == "f" and y.dtype.kind == "f")


def _same(a, b, what):
    assert a.keys() == b.keys(), (what, sorted(set(a) ^ set(b)))
    for k in a:
        if k == "/":
            assert set(a[k]) == set(b[k]), (what, k)
            for name in a[k]:
                assert _eq(a[k][name], b[k][name]), (what, name)
            continue
        (dt1, sh1, v1, at1, fv1), (dt2, sh2, v2, at2, fv2) = a[k], b[k]
        assert (dt1, sh1) == (dt2, sh2), (what, k, sh1, sh2)
        assert _eq(v1, v2), (what, k)
        assert at1.keys() == at2.keys(), (what, k)
        for name in at1:
            assert _eq(at1[name], at2[name]), (what, k, name)
        assert _eq(fv1, fv2), (what, k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``reference(nranks)``: the flush-every-step file at that many ranks
    (made once per rank count)."""
    made = {}

    def get(nranks):
        if nranks not in made:
            out, _ = _run(tmp_path_factory.mktemp("ref"), "every_step",
                          ", flush_every_steps: 1, flush_seconds: null", nranks=nranks)
            made[nranks] = _contents(out)
        return made[nranks]
    return get


@pytest.mark.parametrize("name,output,extra,nranks", [
    ("default", "", (), 2),
    ("every_5_steps", ", flush_every_steps: 5, flush_seconds: null", (), 2),
    ("only_at_finalize", ", flush_seconds: null", (), 2),
    ("deprecated_alias", ", flush_every: 3", (), 2),
    ("small_buffer_default", "", ("--buffer-bytes", 4000), 2),
    ("small_buffer_every_step", ", flush_every_steps: 1", ("--buffer-bytes", 1), 2),
    ("small_buffer_3_ranks", ", flush_every_steps: 7", ("--buffer-bytes", 3000), 3),
])
def test_finalized_file_equals_flush_every_step_file(reference, tmp_path, name, output, extra,
                                                    nranks):
    out, r = _run(tmp_path, name, output, nranks=nranks, extra=extra)
    _same(reference(nranks), _contents(out), name)
    with h5py.File(out, "r") as f:  # exact sizes: no fill rows past the data
        assert f["time"].shape == (STEPS,)
        assert list(f["step"][...]) == list(range(1, STEPS + 1))
        assert f["time_warm"].shape == (3,) and f["warm_T"].shape == (3, 48, 64)
        count = f["insitu/committed_rows"]
        assert [f[a].shape[0] for a in count.attrs["axes"].split()] == list(count[...])
        assert count.attrs["axes"].split()[0] == "time" and count[0] == STEPS
    flushes, growths = _counts(r)
    assert len(set(flushes.values())) == 1 and len(flushes) == nranks, flushes
    n = flushes[0]
    # at most one flush per trigger firing (an attribute changed) and one at
    # finalize beside the policy's
    if name == "every_5_steps":
        assert STEPS // 5 <= n <= STEPS // 5 + 3 + 1, n
    elif name == "only_at_finalize":
        assert n <= 3 + 1, n
    elif name == "small_buffer_default":
        # a full buffer, not the 10 s policy, flushed (and grew the axes)
        # again and again, as a long run with big rows would
        assert n >= 5 and growths[0] >= 5 * 10, (n, growths)
    elif name == "deprecated_alias":
        assert "output.flush_every is deprecated" in r.stderr
        assert n >= STEPS // 3


@pytest.mark.parametrize("fast", [0, 1])
def test_time_decision_follows_rank_0_clock(tmp_path, fast):
    """One rank's clock runs 1e6 times fast.  If it is rank 1's, nothing
    changes (10 s of rank 0's clock never pass); if rank 0's, every output
    step flushes, on both ranks.  A rank deciding on its own clock would
    flush alone and the job would hang in HDF5's collective flush (the
    mpirun timeout) or fail."""
    _, r = _run(tmp_path, f"fast{fast}", ", flush_seconds: 5", extra=("--fast-clock", fast))
    counts, _ = _counts(r)
    assert counts[0] == counts[1], counts
    if fast == 0:
        assert counts[0] >= STEPS
    else:
        assert counts[0] <= 3 + 1  # the trigger's attributes and finalize


def _committed_view(out):
    """The killed file as h5py, both xarray engines and insitu.inspect see it."""
    from insitu import inspect
    rows = inspect.committed(str(out))
    with h5py.File(out, "r", locking=False) as f:
        n = rows["time"]
        # rows wait in memory until a flush, and a flush grows each axis to
        # exactly its rows: the killed file is as long as its committed rows
        assert f["time"].shape[0] == n
        steps = list(f["step"][:n])
        means = f["T_mean"][:n]
    for engine in ("h5netcdf", "netcdf4"):
        with inspect.open_dataset(str(out), engine=engine) as ds:
            assert list(ds["step"].values) == steps, engine
            assert ds.sizes["time"] == n
            ds.load()
    return rows, steps, means


@pytest.mark.parametrize("output,kill,expect", [
    (", flush_every_steps: 5, flush_seconds: null", 17, 15),
    (", flush_every_steps: 4, flush_seconds: null", 16, 16),
    (", flush_seconds: 0", 13, 13),
    (", flush_seconds: null", 11, 0),
])
def test_sigkill_keeps_every_step_up_to_the_last_durable_flush(reference, tmp_path, output, kill,
                                                               expect):
    """Every rank is SIGKILLed right after insitu_step(kill) returns.  The
    trigger cannot fire here (its attribute forces a flush), and the rows
    are far below the writer's buffer, so durable flushes come from the
    policy alone: the file holds exactly the steps up to the last one,
    equal to a finished run's."""
    out, r = _run(tmp_path, "killed", output, extra=("--kill-after", kill), check=False,
                  when="T_max > 1e9")
    assert r.returncode != 0 and "FLUSHES" not in r.stdout, r.stdout[-2000:]
    rows, steps, means = _committed_view(out)
    assert steps == list(range(1, expect + 1)), (rows, steps)
    np.testing.assert_array_equal(means, reference(2)["T_mean"][2][:expect])
    from insitu.inspect import describe
    info = describe(str(out))
    assert (f"time: {expect} output step(s)" in info) if expect else "no output steps" in info
    assert "finished: no" in info


def test_config_rejects_bad_policy_keys():
    from insitu.options import ConfigError, parse
    base = {"analyses": [{"kind": "stats", "field": "T"}]}
    out = parse(base)["output"]
    assert (out["flush_seconds"], out["flush_every_steps"], out["mpi_info"]) == (10.0, None, None)
    assert parse({**base, "output": {"flush_every": 4}})["output"]["flush_every_steps"] == 4
    assert parse({**base, "output": {"flush_seconds": None}})["output"]["flush_seconds"] is None
    for bad, msg in [
        ({"flush_seconds": -1}, "output.flush_seconds: expected a number >= 0.0, got -1.0"),
        ({"flush_every_steps": 0}, "output.flush_every_steps: expected a positive integer"),
        ({"flush_every": 2, "flush_every_steps": 2},
         "output.flush_every: the old name of flush_every_steps; give only flush_every_steps"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(msg)):
            parse({**base, "output": bad})


def test_policy_is_a_function_of_agreed_values():
    from insitu.h5io import FlushPolicy
    p = FlushPolicy(10.0, None)
    assert not p.due(1000, 9.99) and p.due(1, 10.0)
    p = FlushPolicy(None, 3)
    assert not p.due(2, 1e9) and p.due(3, 0.0)
    p = FlushPolicy(0.0, None)
    assert p.due(1, 0.0)
    assert not FlushPolicy(None, None).due(10**9, 1e9)


def test_mpi_info_hints_reach_the_mpi_io_layer(tmp_path):
    """output.mpi_info's hints arrive in MPI_File_open: under Open MPI's
    ROMIO component, which prints the hints it took when ROMIO_PRINT_HINTS
    is set, the values given (not ROMIO's defaults) are the file's."""
    import shutil
    import subprocess
    info = shutil.which("ompi_info")
    if info is None or "romio" not in subprocess.run([info], capture_output=True,
                                                     text=True).stdout:
        pytest.skip("needs Open MPI's romio io component (ompi_info lists none here)")
    cfg = tmp_path / "hints.yaml"
    cfg.write_text(f"output: {{path: {tmp_path / 'h.h5'}, mpi_info: {{cb_nodes: 1, "
                   "romio_cb_write: disable, cb_buffer_size: 8388608}}\n"
                   "analyses: [{kind: stats, field: T}]\n")
    r = mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                   "--steps", 3, "--no-progress"], timeout=120,
               env=mpi_env({"OMPI_MCA_io": "romio321", "ROMIO_PRINT_HINTS": "1"}))
    hints = dict(re.findall(r"key = (\w+)\s+value = (\S+)", r.stdout + r.stderr))
    assert hints.get("romio_filesystem_type"), r.stdout[-2000:]  # ROMIO said what it took
    assert (hints["cb_buffer_size"], hints["romio_cb_write"], hints["cb_nodes"]) == \
        ("8388608", "disable", "1")
