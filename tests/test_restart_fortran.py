"""The Fortran heat example restarts (issue 13): ``--checkpoint-every 50``
stores insitu's state through ``insitu_checkpoint`` and the model's own
per-rank restart file; a run that stopped at step 130 then goes on with
``--restart`` from step 100 (insitu_init's restart step) to 200, and every
variable and attribute except timestamps equals an uninterrupted run's,
bitwise, at 2 ranks.  (The SIGKILL itself is exercised with the Python
host in test_restart_mpi.py; the file it leaves is the same.)  And a Python
error inside insitu_checkpoint reaches the Fortran caller as a status."""
import shutil

import h5py
import pytest

from conftest import PYTHON, ROOT, mpirun, run

CONFIG = """
output: {path: heat2d_fortran.h5, flush_every_steps: 7}
time: {units: "seconds since 2000-01-01 00:00:00", calendar: standard}
fields: {T: {units: K, dims: [x, y]}}
analyses:
  - {kind: stats, field: T, every: 2, stats: [mean, max, std, sum]}
  - {kind: window, source: T, steps: 7, ops: [mean, var, max]}
  - {kind: window, source: T, period: 3600, ops: [mean, min]}
  - {kind: reduce, field: T, over: [x], op: mean, name: Tzon, every: 2}
  - {kind: window, source: Tzon, steps: 5, ops: [mean, var], name: wz}
  - {kind: histogram, field: T, bins: 10, range: [280, 330], every: 5}
triggers:
  - {name: hot, when: "T_max > 281", fields: [T], max_snapshots: 3}
"""
GRID = [50, 36]


@pytest.fixture(scope="module")
def heat2d(libinsitu, tmp_path_factory):
    d = tmp_path_factory.mktemp("fortran_restart")
    for f in ("heat2d.f90", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, d)
    run(["make", "-s", "-C", d, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    return d


def test_fortran_heat_restart_equals_the_uninterrupted_run(heat2d, tmp_path):
    exe = heat2d / "heat2d"
    ref, part = tmp_path / "ref", tmp_path / "part"
    for d in (ref, part):
        d.mkdir()
        (d / "heat2d.yaml").write_text(CONFIG)
    mpirun(2, [exe, "heat2d.yaml", *GRID, 200], cwd=ref, timeout=180)
    mpirun(2, [exe, "heat2d.yaml", *GRID, 130, "--checkpoint-every", 50], cwd=part, timeout=180)
    with h5py.File(part / "heat2d_fortran.h5", "r") as f:
        assert sorted(f["_insitu_state"]) == ["100", "50"]
    r = mpirun(2, [exe, "heat2d.yaml", *GRID, 200, "--restart"], cwd=part, timeout=180)
    assert "restarted from the checkpoint of step 100" in r.stderr, r.stderr[-3000:]
    c = run([PYTHON, ROOT / "tests" / "mpi_programs" / "restart_compare.py",
             ref / "heat2d_fortran.h5", part / "heat2d_fortran.h5"], timeout=120, check=False)
    assert c.returncode == 0, c.stdout[-4000:]


PROGRAM = """
program checkpoint_check
   use mpi_f08
   use insitu
   implicit none
   integer :: ierr, rank
   real(8), target :: a(0:5, 0:5)
   character(len=1024) :: cfg, bad
   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call get_command_argument(1, cfg)
   call get_command_argument(2, bad)
   a = 280d0 + rank
   ! a restart from a file with no checkpoint: a status and a message
   call insitu_init(MPI_COMM_WORLD, trim(bad), ierr, restart_step=5)
   write (*, '(a,i0,a,a)') "RESTART-STATUS ", ierr, " ", insitu_last_error()
   call insitu_init(MPI_COMM_WORLD, trim(cfg), ierr)
   if (ierr /= INSITU_OK) stop 4
   call insitu_declare("T", a, global_shape=[4, 8], offset=[0, 4 * rank], halo=[1, 1], ierr=ierr)
   call insitu_step(1, 60d0, ierr)
   ! ranks asking for different checkpoints: the Python error arrives
   call insitu_checkpoint(1 + rank, ierr)
   write (*, '(a,i0,a,a)') "CHECKPOINT-STATUS ", ierr, " ", insitu_last_error()
   call insitu_finalize(ierr)
   write (*, '(a,i0)') "FINALIZE-STATUS ", ierr
   call MPI_Finalize()
end program
"""


def test_python_errors_in_checkpoint_and_restart_reach_fortran_as_statuses(libinsitu,
                                                                          tmp_path):
    """With ierr present: INSITU_ERR and the message, on every rank, for a
    restart from a file without checkpoints and for ranks that ask for
    checkpoints of different steps; the session then finalizes cleanly."""
    (tmp_path / "checkpoint_check.f90").write_text(PROGRAM)
    flags = run([PYTHON, "-m", "insitu.config", "--fflags"], timeout=60).stdout.split()
    ldflags = run([PYTHON, "-m", "insitu.config", "--ldflags"], timeout=60).stdout.split()
    run(["mpif90", *flags, "-o", tmp_path / "checkpoint_check",
         tmp_path / "checkpoint_check.f90", *ldflags], timeout=300)
    base = "fields: {T: {dims: [x, y]}}\nanalyses: [{kind: stats, field: T}, "
    (tmp_path / "ok.yaml").write_text(
        f"output: {{path: {tmp_path / 'c.h5'}}}\n" + base +
        "{kind: window, source: T, steps: 2}]\n")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.attrs["title"] = "no checkpoint here"
    (tmp_path / "bad.yaml").write_text(f"output: {{path: {plain}}}\n" + base[:-2] + "]\n")
    r = mpirun(2, [tmp_path / "checkpoint_check", tmp_path / "ok.yaml", tmp_path / "bad.yaml"],
               cwd=tmp_path, timeout=120)
    lines = r.stdout.splitlines()
    restart = [ln for ln in lines if ln.startswith("RESTART-STATUS")]
    assert len(restart) == 2 and all(ln.startswith("RESTART-STATUS 1 insitu_init: restart: ")
                                     and "holds no checkpoint" in ln for ln in restart), r.stdout
    ck = [ln for ln in lines if ln.startswith("CHECKPOINT-STATUS")]
    assert len(ck) == 2 and all(ln.startswith("CHECKPOINT-STATUS 1 insitu_checkpoint: ")
                                and "insitu_checkpoint(step 2)" in ln for ln in ck), r.stdout
    assert lines.count("FINALIZE-STATUS 0") == 2, r.stdout
