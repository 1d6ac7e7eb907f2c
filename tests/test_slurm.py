"""insitu under real Slurm daemons (scripts/slurm-local.sh), with Open MPI.

``srun -n 2 --mpi=pmix`` and ``sbatch --wait`` of the job script in
examples/slurm must write the same file as ``mpirun -n 2``, dataset by
dataset, bit for bit (the same MPI, ranks and decomposition).  The guard
against a launch of the wrong size is tested under srun in test_mpich.py
(MPICH under ``--mpi=pmix`` is the case that starts singletons; Debian's
Open MPI under the wrong plugin aborts in MPI_Init, checked here).  The
test is skipped only where Slurm cannot be installed (no apt-get)."""
import os
import shutil

import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun, run
from slurm_local import assert_same_datasets, slurm  # noqa: F401 - the fixture

CONFIG = ROOT / "examples" / "heat2d_analyses.yaml"
STEPS = 20
ARGS = ["-m", "insitu.run", "--model", "heat2d", "--config", CONFIG, "--steps", STEPS,
        "--no-progress"]


@pytest.fixture(scope="module")
def mpirun_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpirun") / "mpirun.h5"
    mpirun(2, [PYTHON, *ARGS, "--output", out], timeout=300)
    return out


def test_srun_writes_what_mpirun_writes(slurm, mpirun_reference, tmp_path):  # noqa: F811
    out = tmp_path / "srun.h5"
    r = run(["srun", "-n", 2, "--mpi=pmix", "--time=5", PYTHON, *ARGS, "--output", out],
            timeout=300, env=mpi_env(slurm))
    assert "on 2 rank(s)" in r.stderr, r.stderr
    assert assert_same_datasets(out, mpirun_reference) > 10


def test_sbatch_wait_of_the_example_writes_what_mpirun_writes(slurm, mpirun_reference,
                                                              tmp_path):  # noqa: F811
    """examples/slurm/heat2d_python.sbatch, as a user submits it."""
    out, log = tmp_path / "sbatch.h5", tmp_path / "job.log"
    env = mpi_env({**slurm, "INSITU_ROOT": str(ROOT), "INSITU_OUTPUT": str(out),
                   "INSITU_CONFIG": str(CONFIG), "INSITU_STEPS": str(STEPS),
                   "INSITU_VENV": os.path.dirname(os.path.dirname(PYTHON))})
    r = run(["sbatch", "--wait", "--ntasks=2", f"--output={log}", "--time=5",
             ROOT / "examples" / "slurm" / "heat2d_python.sbatch"], timeout=300, env=env,
            check=False)
    text = log.read_text() if log.exists() else "(no job log)"
    assert r.returncode == 0, f"sbatch exit {r.returncode}: {r.stderr}\n--- job log\n{text}"
    assert "on 2 rank(s)" in text, text
    assert assert_same_datasets(out, mpirun_reference) > 10


def test_open_mpi_under_the_wrong_srun_plugin_fails_at_mpi_init(slurm, tmp_path):  # noqa: F811
    """Debian's Open MPI has no Slurm PMI-2: under --mpi=pmi2 it aborts in
    MPI_Init (nonzero exit, no file), before insitu could check anything."""
    out = tmp_path / "never.h5"
    r = run(["srun", "-n", 2, "--mpi=pmi2", "--time=5", PYTHON, *ARGS, "--output", out],
            timeout=300, env=mpi_env(slurm), check=False)
    assert r.returncode != 0 and not out.exists(), (r.returncode, r.stderr[-2000:])


def test_fortran_model_under_srun_and_sbatch_writes_what_mpirun_writes(slurm, libinsitu,
                                                                       tmp_path):  # noqa: F811
    """The embedded path (libinsitu in a Fortran host) under srun --mpi=pmix,
    and examples/slurm/heat2d_fortran.sbatch submitted with sbatch --wait
    (its grid, 128 x 96, for all three)."""
    for f in ("heat2d.f90", "heat2d.yaml", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    files = {}
    for how in ("mpirun", "srun", "sbatch"):
        d = tmp_path / how
        d.mkdir()
        cmd = [tmp_path / "heat2d", tmp_path / "heat2d.yaml", 128, 96, 20]
        if how == "mpirun":
            mpirun(2, cmd, cwd=d, timeout=300)
        elif how == "srun":
            run(["srun", "-n", 2, "--mpi=pmix", "--time=5", *cmd], cwd=d, timeout=300,
                env=mpi_env(slurm))
        else:
            log = tmp_path / "job.log"
            env = mpi_env({**slurm, "INSITU_ROOT": str(ROOT), "INSITU_MODEL": str(cmd[0]),
                           "INSITU_CONFIG": str(cmd[1]), "INSITU_STEPS": "20",
                           "INSITU_WORKDIR": str(d)})
            r = run(["sbatch", "--wait", "--ntasks=2", f"--output={log}", "--time=5",
                     ROOT / "examples" / "slurm" / "heat2d_fortran.sbatch"], cwd=tmp_path,
                    timeout=300, env=env, check=False)
            text = log.read_text() if log.exists() else "(no job log)"
            assert r.returncode == 0, f"sbatch exit {r.returncode}: {r.stderr}\n--- job log\n{text}"
            assert f"insitu output: {d}/heat2d_fortran.h5" in text, text
        files[how] = d / "heat2d_fortran.h5"
    assert assert_same_datasets(files["srun"], files["mpirun"]) > 3
    assert assert_same_datasets(files["sbatch"], files["mpirun"]) > 3


def test_stop_stops_only_the_daemons_it_started(slurm, tmp_path):  # noqa: F811
    """A second cluster in another directory, stopped: the first (the
    session's) still runs jobs, and a look-alike process that is not in a
    pid file of the stopped cluster survives."""
    import subprocess
    import time
    from slurm_local import SCRIPT, _free_port_pair
    env = dict(os.environ, INSITU_SLURM_DIR=str(tmp_path / "second"),
               INSITU_SLURM_PORT=str(_free_port_pair(17000, 17900)))
    decoy = subprocess.Popen(["sleep", "300"])  # not ours to stop
    try:
        r = subprocess.run(["bash", SCRIPT, "start"], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        pids = {n: int((tmp_path / "second" / f"{n}.pid").read_text())
                for n in ("munged", "slurmctld", "slurmd")}
        r = subprocess.run(["bash", SCRIPT, "stop"], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        time.sleep(0.5)
        for name, pid in pids.items():
            assert not os.path.exists(f"/proc/{pid}") or \
                open(f"/proc/{pid}/stat").read().split()[2] == "Z", (name, pid)
        assert decoy.poll() is None
        r = run(["srun", "-n", 1, "--time=1", "true"], timeout=120, env=mpi_env(slurm))
        assert r.returncode == 0
    finally:
        decoy.kill()
