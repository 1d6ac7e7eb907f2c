"""Restarts under real MPI (issue 13's acceptance test), through
``python -m insitu.run`` and libinsitu-free Python hosts:

* a reference run of 200 steps (windows by steps, period and over a
  distributed zonal mean with running variances, a trigger with
  ``max_snapshots``, a histogram);
* the same run with ``--checkpoint-every 50``, SIGKILLed after step 130;
* ``--restart`` (the model's restart file says step 100) to 200 at the same
  rank count, and from a copy at 2 -> 3 ranks;
* every variable and attribute except timestamps and the launch's own
  (command, ranks, decomposition) equals the reference: bitwise at the
  same rank count; at another rank count floats to 1e-12 relative, or
  bitwise with ``reproducible: true`` for its exact outputs;
* a changed config, a file without checkpoints, a corrupt checkpoint and a
  missing model restart file are refused with one clear line.
"""
import shutil

import h5py
import pytest

from conftest import PYTHON, ROOT, mpirun, run

KILLER = ROOT / "tests" / "mpi_programs" / "flush_run.py"
COMPARE = ROOT / "tests" / "mpi_programs" / "restart_compare.py"

CONFIG = """
output: {{path: {out}, flush_every_steps: 7}}
time: {{units: "seconds since 2000-01-01 00:00:00", calendar: standard}}
reproducible: {reproducible}
fields: {{T: {{units: K, dims: [y, x]}}}}
analyses:
  - {{kind: stats, field: T, every: 2, stats: [mean, max, std, sum]}}
  - {{kind: window, source: T, steps: 7, ops: [mean, var, max]}}
  - {{kind: window, source: T, period: 3600, ops: [mean, min]}}
  - {{kind: reduce, field: T, over: [x], op: mean, name: Tzon, every: 2}}
  - {{kind: window, source: Tzon, steps: 5, ops: [mean, var], name: wz}}
  - {{kind: histogram, field: T, bins: 10, range: [280, 330], every: 5}}
triggers:
  - {{name: hot, when: "T_max > 281", fields: [T], max_snapshots: 3}}
"""
STEPS = 200
ARGS = ["--model", "heat2d", "--shape", 36, 50, "--no-progress"]


def _config(tmp_path, name, out, reproducible=False, extra=""):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(CONFIG.format(out=out, reproducible=str(reproducible).lower()) + extra)
    return cfg


def _run(n, cfg, *args, check=True, killer=False, timeout=180):
    head = [PYTHON, KILLER, *(args[:2] if killer else ()), "--"] if killer else \
        [PYTHON, "-m", "insitu.run"]
    rest = args[2:] if killer else args
    return mpirun(n, [*head, "--config", cfg, *ARGS, *rest], timeout=timeout, check=check)


def _compare(ref, out, rel=0.0, exact=()):
    # the config text and its path name each run's own output file
    r = run([PYTHON, COMPARE, ref, out, *(("--rel", rel) if rel else ()),
             *[a for name in exact for a in ("--exact", name)],
             "--ignore-attr", "insitu_config", "--ignore-attr", "insitu_config_path"],
            timeout=120, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "reproducible"])
def killed(request, tmp_path_factory):
    """The reference, and a run killed after step 130 with checkpoints at 50
    and 100 (and its model restart file from step 100)."""
    tmp = tmp_path_factory.mktemp("restart")
    rep = request.param
    ref = tmp / "ref.h5"
    _run(2, _config(tmp, "ref", ref, rep), "--steps", STEPS)
    out = tmp / "run.h5"
    cfg = _config(tmp, "run", out, rep)
    r = _run(2, cfg, "--kill-after", 130, "--steps", STEPS, "--checkpoint-every", 50,
             killer=True, check=False)
    assert r.returncode != 0, "the run was not killed"
    with h5py.File(out, "r") as f:
        assert sorted(f["_insitu_state"]) == ["100", "50"]
        assert "insitu_finished" not in f.attrs
    with h5py.File(f"{out}.model-restart.h5", "r") as f:
        assert f.attrs["step"] == 100
    return tmp, ref, out, cfg, rep


@pytest.mark.parametrize("ranks", [2, 3])
def test_restart_equals_the_uninterrupted_run(killed, ranks):
    tmp, ref, out, cfg, rep = killed
    if rep and ranks == 2:
        pytest.skip("reproducible matters across rank counts; the plain run covers 2 -> 2")
    mine = tmp / f"run{ranks}.h5"
    shutil.copy(out, mine)
    shutil.copy(f"{out}.model-restart.h5", f"{mine}.model-restart.h5")
    cfg2 = _config(tmp, f"run{ranks}", mine, rep)
    r = _run(ranks, cfg2, "--steps", STEPS, "--restart")
    assert "restarted from the checkpoint of step 100" in r.stderr
    with h5py.File(mine, "r") as f:
        assert "insitu_finished" in f.attrs
    # Same rank count: the same arithmetic, bitwise.  Another: sums in
    # another order, to 1e-12; bitwise for the exact outputs when
    # reproducible (the rest agrees to rounding, as the file says).
    exact = []
    with h5py.File(ref, "r") as f:
        if rep:   # "bitwise identical for any decomposition: T_sum, T_mean; ..."
            said = f.attrs["insitu_reproducible"].split(":", 1)[1].split(";")[0]
            exact = [n.strip() for n in said.split(",")]
            assert "T_sum" in exact and "T_mean" in exact, exact
    _compare(ref, mine, rel=0.0 if ranks == 2 else 1e-12, exact=exact)
    # xarray reads the cut and restarted file as it reads the reference
    import xarray as xr
    with xr.open_dataset(ref, engine="h5netcdf") as a, \
            xr.open_dataset(mine, engine="h5netcdf") as b:
        assert list(a.data_vars) == list(b.data_vars)
        assert a["time_w7"].values.tolist() == b["time_w7"].values.tolist()
        assert dict(a.sizes) == dict(b.sizes)


def test_changed_config_is_refused_naming_the_change(killed):
    tmp, ref, out, cfg, rep = killed
    if rep:
        pytest.skip("the plain run covers it")
    mine = tmp / "changed.h5"
    shutil.copy(out, mine)
    shutil.copy(f"{out}.model-restart.h5", f"{mine}.model-restart.h5")
    text = CONFIG.format(out=mine, reproducible=str(rep).lower()).replace(
        "bins: 10", "bins: 12")
    bad = tmp / "changed.yaml"
    bad.write_text(text)
    r = _run(2, bad, "--steps", STEPS, "--restart", check=False)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "the config changed: analyses[5].bins was 10, now 12" in r.stderr, r.stderr[-3000:]
    # nothing was touched: the file still holds both checkpoints and its rows
    with h5py.File(mine, "r") as f:
        assert sorted(f["_insitu_state"]) == ["100", "50"]
    # log_level and output keys may change; a new analysis starts empty
    ok = _config(tmp, "changed_ok", mine, rep,
                 extra="log_level: WARNING\n").read_text().replace(
        "analyses:\n", "analyses:\n  - {kind: stats, field: T, name: Tnew, every: 4, "
        "stats: [min]}\n")
    good = tmp / "changed_ok.yaml"
    good.write_text(ok)
    _run(2, good, "--steps", STEPS, "--restart")
    with h5py.File(mine, "r") as f:
        steps = f["step"][:]
        new = f["Tnew_min"][:]
        assert steps.shape == new.shape == (120,)
        import numpy as np
        # no value before the restart; after it, at every 4th step
        assert np.isnan(new[steps <= 100]).all()
        assert not np.isnan(new[(steps > 100) & (steps % 4 == 0)]).any()


def test_restart_without_checkpoints_or_with_a_corrupt_one(killed, tmp_path):
    tmp, ref, out, cfg, rep = killed
    if rep:
        pytest.skip("the plain run covers it")
    plain = tmp_path / "plain.h5"
    shutil.copy(ref, plain)
    shutil.copy(f"{out}.model-restart.h5", f"{plain}.model-restart.h5")
    r = _run(1, _config(tmp_path, "plain", plain, rep), "--steps", STEPS, "--restart",
             check=False)
    assert r.returncode == 2 and "holds no checkpoint" in r.stderr, r.stderr[-3000:]
    corrupt = tmp_path / "corrupt.h5"
    shutil.copy(out, corrupt)
    shutil.copy(f"{out}.model-restart.h5", f"{corrupt}.model-restart.h5")
    with h5py.File(corrupt, "r+") as f:
        del f["_insitu_state/100"].attrs["complete"]
    r = _run(1, _config(tmp_path, "corrupt", corrupt, rep), "--steps", STEPS, "--restart",
             check=False)
    assert r.returncode == 2 and "checkpoint of step 100" in r.stderr and "corrupt" in \
        r.stderr, r.stderr[-3000:]
    nomodel = tmp_path / "nomodel.h5"
    shutil.copy(out, nomodel)
    r = _run(1, _config(tmp_path, "nomodel", nomodel, rep), "--steps", STEPS, "--restart",
             check=False)
    assert r.returncode == 2 and "model restart file" in r.stderr, r.stderr[-3000:]


LIFE = """
output: {{path: {out}, flush_every_steps: 3{restart}}}
fields: {{alive: {{units: "1", dims: [y, x]}}}}
analyses:
  - {{kind: stats, field: alive, stats: [sum, mean, std]}}
  - {{kind: reduce, field: alive, over: [x], op: sum, name: rows}}
  - {{kind: window, source: alive, steps: 4, ops: [mean, var, max]}}
  - {{kind: window, source: rows, steps: 3, ops: [mean, max], name: wr}}
"""


def test_life_restarts_from_output_restart_true_at_another_rank_count(tmp_path):
    """The int32 Game of Life: its restart file and ``output.restart: true``
    in the config (the same as --restart for insitu.run), 3 -> 2 ranks, with
    a window that the first output after the restart closes: the counts and
    their windows bitwise, the std to 1e-12."""
    life = ["--model", "life", "--shape", 30, 41, "--no-progress"]
    ref, out = tmp_path / "ref.h5", tmp_path / "run.h5"
    (tmp_path / "ref.yaml").write_text(LIFE.format(out=ref, restart=""))
    (tmp_path / "run.yaml").write_text(LIFE.format(out=out, restart=""))
    (tmp_path / "again.yaml").write_text(LIFE.format(out=out, restart=", restart: true"))
    mpirun(2, [PYTHON, "-m", "insitu.run", "--config", tmp_path / "ref.yaml", *life,
               "--steps", 40], timeout=180)
    r = mpirun(3, [PYTHON, KILLER, "--kill-after", 27, "--", "--config", tmp_path / "run.yaml",
                   *life, "--steps", 40, "--checkpoint-every", 10], timeout=180, check=False)
    assert r.returncode != 0, "the run was not killed"
    r = mpirun(2, [PYTHON, "-m", "insitu.run", "--config", tmp_path / "again.yaml", *life,
                   "--steps", 40], timeout=180)
    assert "restarted from the checkpoint of step 20" in r.stderr, r.stderr[-3000:]
    # the counts and what is computed from them alone are exact; the std
    # merges per-rank moments, another order at another rank count
    exact = ["alive_sum", "alive_mean", "rows", "rows_wr_mean", "rows_wr_max",
             *[f"alive_{s}_w4_{op}" for s in ("sum", "mean") for op in ("mean", "var", "max")]]
    _compare(ref, out, rel=1e-12, exact=exact)
