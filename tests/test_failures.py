"""Fault injection and crashes under real mpiexec, through both hosts.

Nothing may hang (every run has a timeout), a failure must never pass
silently, and the steps written before a failure must stay readable.
"""
import json
import os
import random
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
import xarray as xr

from conftest import PYTHON, ROOT, kill_session, mpi_env, mpirun, run, session_pids
from insitu.models import heat2d

NRANKS = 4
FAULT_STEP = 5
STEPS = 12


def _config(tmp_path, out, policy, ranks):
    cfg = tmp_path / "fault.yaml"
    # A durable flush after every output step: the policy whose promise
    # ("every step completed before the failure is in the file") is tested.
    cfg.write_text(f"""
output: {{path: {out}, overwrite: true, flush_every_steps: 1}}
on_error: {policy}
fields: {{T: {{units: K}}}}
analyses:
  - {{kind: stats, field: T, every: 1}}
  - {{kind: fault, field: T, at_step: {FAULT_STEP}, ranks: "{ranks}", seed: 7}}
""")
    return cfg


def _target(ranks):
    return {"first": [0], "last": [NRANKS - 1], "all": list(range(NRANKS)),
            "random": [random.Random(7).randrange(NRANKS)]}[ranks]


def _launch(host, cfg, fortran_dir):
    if host == "python":
        return [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                "--steps", STEPS, "--shape", 40, 50]
    return [fortran_dir / "heat2d", cfg, 50, 40, STEPS]


def _readable_steps(out):
    """The committed steps in the file, read with h5py and both xarray
    engines (a crash inside a flush could leave an axis longer than them)."""
    from insitu.inspect import committed, open_dataset
    n = committed(out)["time"]
    with h5py.File(out, "r") as f:
        steps = list(f["step"][:n])
    for engine in ("h5netcdf", "netcdf4"):
        with open_dataset(out, engine=engine) as ds:
            assert list(ds["step"].values) == steps, engine
            ds.load()
    return steps


@pytest.fixture(scope="module")
def fortran_dir(tmp_path_factory, libinsitu):
    """The Fortran example, built by its Makefile in a scratch copy."""
    import shutil
    d = tmp_path_factory.mktemp("fortran-fail")
    for name in ("heat2d.f90", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / name, d)
    run(["make", "-s", "-C", d, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    return d


@pytest.mark.parametrize("host,ranks", [("python", "first"), ("python", "last"),
                                        ("python", "random"), ("python", "all"),
                                        ("fortran", "first"), ("fortran", "last"),
                                        ("fortran", "random"), ("fortran", "all")])
def test_abort_policy_ends_job_with_message(host, ranks, tmp_path, fortran_dir):
    out = tmp_path / "abort.h5"
    cfg = _config(tmp_path, out, "abort", ranks)
    t0 = time.perf_counter()
    r = mpirun(NRANKS, _launch(host, cfg, fortran_dir), timeout=90, check=False)
    elapsed = time.perf_counter() - t0
    assert r.returncode != 0, r.stdout + r.stderr
    assert elapsed < 30, f"abort took {elapsed:.1f}s"
    err = r.stderr
    assert any(f"rank {t}, step {FAULT_STEP}, analyses[1] (fault 'T') failed" in err
               for t in _target(ranks)), err[-3000:]
    assert "InjectedFault" in err and "Traceback" in err
    # Every step completed before the fault is in the file, readable.
    assert _readable_steps(out) == list(range(1, FAULT_STEP))


@pytest.mark.parametrize("host,ranks", [("python", "last"), ("python", "all"),
                                        ("fortran", "random"), ("fortran", "first")])
def test_skip_policy_runs_on_and_records_error(host, ranks, tmp_path, fortran_dir):
    out = tmp_path / "skip.h5"
    cfg = _config(tmp_path, out, "skip", ranks)
    r = mpirun(NRANKS, _launch(host, cfg, fortran_dir), timeout=90)
    assert "disabled on all ranks" in r.stderr
    assert _readable_steps(out) == list(range(1, STEPS + 1))
    with h5py.File(out, "r") as f:
        errors = json.loads(f.attrs["insitu_errors"])
    assert len(errors) == 1
    e = errors[0]
    assert e["step"] == FAULT_STEP and e["first_rank"] == min(_target(ranks))
    assert e["ranks_failed"] == len(_target(ranks))
    assert "InjectedFault" in e["error"] and "Traceback" in e["traceback"]
    # The healthy analysis kept its numbers right after the failure.
    ref = {s: t for s, _, t in heat2d.reference((40, 50), STEPS)}
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["T_mean"].values[-1] == pytest.approx(ref[STEPS].mean(), rel=1e-12)


def _wait_for_steps(out, proc, minimum, timeout=60):
    """Wait until the running job has committed at least ``minimum`` steps."""
    from insitu.inspect import committed
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the job ended before it could be killed"
        try:
            if committed(out).get("time", 0) >= minimum:
                return
        except (OSError, KeyError):
            pass
        time.sleep(0.2)
    pytest.fail("no steps appeared in the output file")


@pytest.mark.parametrize("victim", ["all", "one", "launcher"])
def test_sigkill_leaves_a_readable_file(victim, tmp_path):
    out = tmp_path / "killed.h5"
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(f"output: {{path: {out}, flush_every_steps: 1}}\n"  # the policy tested
                   "analyses: [{kind: stats, field: T, every: 1}]\n")
    proc = subprocess.Popen(["mpiexec", "-n", "2", PYTHON, "-m", "insitu.run", "--model",
                             "heat2d", "--config", cfg, "--steps", "1000000", "--shape", "64",
                             "64"], env=mpi_env(), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_steps(out, proc, minimum=20)
        ranks = [p for p in session_pids(proc.pid) if p != proc.pid]
        assert len(ranks) == 2, "could not find the rank processes"
        if victim == "all":  # the node dies: every rank and mpiexec at once
            kill_session(proc.pid)
        elif victim == "one":  # one rank dies: mpiexec must take the job down
            os.kill(ranks[-1], signal.SIGKILL)
        else:                  # mpiexec dies: the ranks must not run on, orphaned
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.time() + 30
        while session_pids(proc.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not session_pids(proc.pid), "ranks survived the kill"
    finally:
        kill_session(proc.pid)
        proc.wait()
    assert proc.returncode != 0
    steps = _readable_steps(out)
    assert len(steps) >= 20 and steps == list(range(1, len(steps) + 1))
    ref = {s: t for s, _, t in heat2d.reference((64, 64), len(steps))}
    from insitu.inspect import open_dataset
    with open_dataset(out, engine="h5netcdf") as ds:
        means = ds["T_mean"].values
    np.testing.assert_allclose(means, [ref[s].mean() for s in steps], rtol=1e-12)


def test_unwritable_output_is_reported_at_init(tmp_path):
    r = mpirun(3, [PYTHON, "-m", "insitu.run", "--steps", 5, "--output",
                   tmp_path / "no" / "such" / "dir" / "o.h5"], timeout=60, check=False)
    assert r.returncode != 0
    assert "does not exist" in r.stderr and "no/such/dir" in r.stderr


def test_analysis_of_undeclared_field_names_it(tmp_path):
    cfg = tmp_path / "q.yaml"
    cfg.write_text(f"output: {{path: {tmp_path / 'q.h5'}}}\n"
                   "analyses: [{kind: stats, field: Q}]\n")
    r = mpirun(2, [PYTHON, "-m", "insitu.run", "--config", cfg, "--steps", 3], timeout=60,
               check=False)
    assert r.returncode != 0
    assert "field 'Q' is not declared by the model (declared: T, area)" in r.stderr


def test_fortran_model_stops_when_python_cannot_start(fortran_dir, tmp_path):
    cfg = _config(tmp_path, tmp_path / "x.h5", "abort", "first")
    r = mpirun(2, [fortran_dir / "heat2d", cfg, 20, 20, 3], timeout=60, check=False,
               env=mpi_env({"INSITU_PYTHON": str(tmp_path / "nowhere" / "bin" / "python")}))
    assert r.returncode != 0
    assert "insitu_init failed" in r.stderr and "embedded Python" in r.stderr
