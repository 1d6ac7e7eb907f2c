"""``python -m insitu.inspect OUT.h5 --follow`` (issue 15, item 2): new rows
printed as they land, in aligned columns, ending by itself when the run
finishes; a finished file printed whole; a file that does not exist yet
waited for."""
import shutil
import threading
import time

import h5py
import numpy as np

from conftest import PYTHON, ROOT, mpi_env, run
from live_runs import background, finish, run_args, write_config

PACED = f"{ROOT / 'tests' / 'mpi_programs' / 'paced_heat.py'}:PacedHeat"


def _rows(stdout: str) -> list[list[str]]:
    """The data lines of --follow's output (after the three header lines)."""
    lines = stdout.splitlines()
    assert lines[0].startswith("# ") and "time in" in lines[0], lines[:3]
    assert lines[1].split()[:2] == ["step", "time"], lines[:3]
    return [line.split() for line in lines[3:] if line.strip()]


def _check_against_file(rows, path, names):
    with h5py.File(path, "r", locking=False) as f:
        steps = f["step"][...]
        assert [int(r[0]) for r in rows] == list(steps)
        for j, name in enumerate(names):
            got = np.array([float(r[2 + j]) for r in rows])
            np.testing.assert_allclose(got, f[name][...], rtol=1e-6)


def test_follow_a_finished_file_prints_every_row_and_exits(analyses_output):
    r = run([PYTHON, "-m", "insitu.inspect", analyses_output, "--follow", "--var", "T_mean",
             "--var", "T_max", "--var", "T_probe"], timeout=60)
    rows = _rows(r.stdout)
    assert len(rows) == 4, r.stdout
    _check_against_file(rows, analyses_output, ["T_mean", "T_max"])
    lines = r.stdout.splitlines()
    # aligned: every line as wide as the header, columns right-aligned
    assert len({len(line) for line in lines[1:]}) == 1, lines
    assert "[K]" in lines[2]
    assert ".." in lines[3]  # an array variable shows its range


def test_follow_an_unknown_variable_names_the_choices(analyses_output):
    r = run([PYTHON, "-m", "insitu.inspect", analyses_output, "--follow", "--var", "nope"],
            timeout=60, check=False)
    assert r.returncode == 1
    assert "no variable nope along time" in r.stderr and "T_mean" in r.stderr


def test_follow_a_growing_file_prints_rows_as_they_land(tmp_path):
    """Started before the file exists; lines arrive while the 2-rank run
    runs (not all at the end), and it ends by itself when the run finished,
    having printed every row once, equal to the file's."""
    out = tmp_path / "growing.h5"
    cfg = write_config(tmp_path, out, flush=10)
    cmd = ["mpiexec", "-n", 2, *run_args(cfg, 400, shape=(48, 64))]
    cmd[cmd.index("heat2d")] = PACED
    arrivals = []
    with background([PYTHON, "-m", "insitu.inspect", out, "--follow", "--interval", 0.2,
                     "--var", "T_mean", "--var", "T_max"]) as fol:
        reader = threading.Thread(
            target=lambda: [arrivals.append((time.monotonic(), line))
                            for line in iter(fol.stdout.readline, "")], daemon=True)
        reader.start()
        with background(cmd, env=mpi_env({"INSITU_TEST_STEP_SECONDS": "0.02"})) as job:
            finish(job, 300, "the 2-rank run")
            run_ended = time.monotonic()
        fol.wait(timeout=60)  # ends by itself: the file says the run finished
        reader.join(timeout=10)
        assert fol.returncode == 0, fol.stderr.read()
    rows = _rows("".join(line for _, line in arrivals))
    _check_against_file(rows, out, ["T_mean", "T_max"])
    assert len(rows) == 400
    early = [t for t, line in arrivals[3:] if t < run_ended]
    assert len(early) > 50, f"only {len(early)} of 400 rows printed while the run ran"


def test_follow_a_killed_run_stops_after_idle_seconds(analyses_output, tmp_path):
    """A run that never finishes: --idle ends the follow, exit 1, saying why."""
    path = tmp_path / "killed.h5"
    shutil.copy(analyses_output, path)
    with h5py.File(path, "r+") as f:
        del f.attrs["insitu_finished"]
    r = run([PYTHON, "-m", "insitu.inspect", path, "--follow", "--idle", 1, "--interval", 0.2,
             "--var", "T_mean"], timeout=60, check=False)
    assert r.returncode == 1
    assert len(_rows(r.stdout)) == 4
    assert "no new row for 1 s and the run did not finish" in r.stderr
