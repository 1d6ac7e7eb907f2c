"""The wrong-size guard (insitu/launcher.py).

The environments below are the ones measured under Slurm 22.05, Open MPI
4.1.4's mpirun and MPICH 4.0.2's hydra on this machine (docs/slurm.md).
The end-to-end refusals under a real wrong launcher (srun --mpi=pmix with
MPICH, one MPI's mpiexec starting the other's program) are in
test_mpich.py; here a singleton is given the environment a wrong srun gives
each task, which exercises the same path through insitu.run and the C ABI."""
import shutil

import pytest

from conftest import PYTHON, ROOT, mpi_env, run
from insitu import launcher
from insitu.exits import EXIT_CONFIG

OMPI = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"
MPICH = "MPICH Version:      4.0.2\nMPICH Release date: Thu Apr  7 12:34:45 CDT 2022\n"

SLURM_STEP = {"SLURM_JOB_ID": "3", "SLURM_NPROCS": "2", "SLURM_NTASKS": "2",
              "SLURM_PROCID": "0", "SLURM_STEPID": "0", "SLURM_STEP_ID": "0",
              "SLURM_STEP_NUM_TASKS": "2"}
ENVS = {  # name: (environment, expected size, kind)
    "mpirun -n 2": ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0",
                     "PMIX_RANK": "0", "PMIX_NAMESPACE": "367001601"}, 2, "mpirun"),
    "mpiexec.mpich -n 2": ({"HYDI_CONTROL_FD": "7", "MPI_LOCALNRANKS": "2", "PMI_FD": "6",
                            "PMI_RANK": "0", "PMI_SIZE": "2"}, 2, "hydra"),
    "srun -n 2 --mpi=none": (SLURM_STEP, 2, "srun"),
    "srun -n 2 --mpi=pmix": ({**SLURM_STEP, "PMIX_NAMESPACE": "slurm.pmix.3.0",
                              "PMIX_RANK": "0"}, 2, "srun"),
    "srun -n 2 --mpi=pmi2": ({**SLURM_STEP, "PMI_FD": "11", "PMI_JOBID": "2.0",
                              "PMI_RANK": "0", "PMI_SIZE": "2"}, 2, "srun"),
    # the batch script of a 2-task sbatch: SLURM_NTASKS is the allocation's
    "sbatch -n 2, a plain python": ({"SLURM_JOB_ID": "4", "SLURM_NPROCS": "2",
                                     "SLURM_NTASKS": "2", "SLURM_PROCID": "0"}, None, "batch"),
    "sbatch -n 2, mpirun -n 1": ({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1",
                                  "SLURM_JOB_ID": "4", "SLURM_NPROCS": "2",
                                  "SLURM_NTASKS": "2", "SLURM_PROCID": "0"}, 1, "mpirun"),
    # hydra starts its proxies with srun, one task per node: the step says 1
    "sbatch -n 2, mpiexec.mpich -n 2": ({"MPI_LOCALNRANKS": "2", "PMI_FD": "5",
                                         "PMI_RANK": "1", "PMI_SIZE": "2", "SLURM_JOB_ID": "4",
                                         "SLURM_NPROCS": "1", "SLURM_NTASKS": "2",
                                         "SLURM_PROCID": "0", "SLURM_STEPID": "1",
                                         "SLURM_STEP_ID": "1", "SLURM_STEP_NUM_TASKS": "1"},
                                        2, "hydra"),
    "no launcher": ({}, None, "none"),
}


@pytest.mark.parametrize("name", list(ENVS))
def test_the_launchers_size_is_read_from_the_variable_that_is_right(name):
    env, size, kind = ENVS[name]
    got = launcher.detect(env)
    assert (got.size, got.kind) == (size, kind), got
    if size is not None:  # the right size passes
        launcher.check_launch(size, OMPI, env)


@pytest.mark.parametrize("name,library,fix", [
    ("srun -n 2 --mpi=pmix", MPICH, "srun --mpi=pmi2"),
    ("srun -n 2 --mpi=none", MPICH, "srun --mpi=pmi2"),
    ("srun -n 2 --mpi=none", OMPI, "srun --mpi=pmix"),
    ("mpiexec.mpich -n 2", OMPI, "mpirun.openmpi"),
    ("mpirun -n 2", MPICH, "mpiexec.mpich"),
])
def test_a_world_of_one_is_refused_with_the_likely_fix(name, library, fix):
    env = ENVS[name][0]
    with pytest.raises(launcher.LaunchError) as info:
        launcher.check_launch(1, library, env)
    msg = str(info.value)
    assert fix in msg and "size 1" in msg and "\n" not in msg, msg
    assert not info.value.quiet  # launcher rank 0 says it
    with pytest.raises(launcher.LaunchError) as info:
        launcher.check_launch(1, library, {**env, "SLURM_PROCID": "1", "PMI_RANK": "1",
                                           "OMPI_COMM_WORLD_RANK": "1", "PMIX_RANK": "1"})
    assert info.value.quiet  # the other copies stay silent: one line in all


def test_stale_slurm_counts_are_not_believed():
    for name in ("sbatch -n 2, a plain python", "sbatch -n 2, mpirun -n 1",
                 "sbatch -n 2, mpiexec.mpich -n 2"):
        env, size, _ = ENVS[name]
        launcher.check_launch(size or 1, OMPI, env)


def test_heterogeneous_steps_and_the_switch_skip_the_check():
    launcher.check_launch(1, MPICH, {**SLURM_STEP, "SLURM_HET_SIZE": "2"})
    launcher.check_launch(1, MPICH, {**SLURM_STEP, "INSITU_LAUNCH_CHECK": "0"})


def test_mpi_family_names():
    assert launcher.mpi_family(OMPI) == launcher.Family("Open MPI", "4.1.4")
    assert launcher.mpi_family(MPICH) == launcher.Family("MPICH", "4.0.2")
    assert launcher.mpi_family("Intel(R) MPI Library 2021.5 for Linux* OS").name == "Intel MPI"
    assert launcher.mpi_family("MVAPICH2 Version      :\t2.3.7").name == "MVAPICH"
    cray = "MPI VERSION    : CRAY MPICH version 8.1.25.17 (ANL base 3.4a2)"
    assert launcher.mpi_family(cray) == launcher.Family("Cray MPICH", "8.1.25.17")
    assert launcher.mpi_family(cray).srun_option() == "--mpi=cray_shasta"
    assert launcher.mpi_family("").name == "unknown"


def test_insitu_run_refuses_before_writing(tmp_path):
    """What each task of ``srun -n 2 --mpi=none`` is given (Open MPI then
    aborts in MPI_Init; MPICH would run it as a singleton): exit status 2,
    one line naming the fix, no output file.  With the check switched off,
    the old behaviour: the copy writes the file and exits 0."""
    out = tmp_path / "out.h5"
    cmd = [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--steps", 3, "--output", out]
    r = run(cmd, timeout=120, env=mpi_env(SLURM_STEP), check=False)
    assert r.returncode == EXIT_CONFIG, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.startswith("insitu")]
    assert len(lines) == 1 and "srun --mpi=pmix" in lines[0], r.stderr
    assert not out.exists()
    # another copy (launcher rank 1) says nothing
    r = run(cmd, timeout=120, env=mpi_env({**SLURM_STEP, "SLURM_PROCID": "1"}), check=False)
    assert r.returncode == EXIT_CONFIG and "launch error" not in r.stderr, r.stderr
    run(cmd, timeout=120, env=mpi_env({**SLURM_STEP, "INSITU_LAUNCH_CHECK": "0"}))
    assert out.exists()


def test_insitu_init_refuses_in_a_fortran_host(libinsitu, tmp_path):
    """The C ABI's insitu_init goes through the same check: the Fortran heat
    model without ierr prints the message and aborts; nothing is written."""
    for f in ("heat2d.f90", "heat2d.yaml", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    r = run([tmp_path / "heat2d", tmp_path / "heat2d.yaml", 32, 24, 5], cwd=tmp_path,
            timeout=120, env=mpi_env(SLURM_STEP), check=False)
    assert r.returncode != 0 and "srun --mpi=pmix" in r.stderr, (r.returncode, r.stderr)
    assert "insitu_init" in r.stderr and not (tmp_path / "heat2d_fortran.h5").exists()
