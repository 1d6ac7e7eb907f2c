"""The MPICH family: .venv-mpich (``./scripts/install.sh --mpi mpich``)
beside the Open MPI venv, run by ``./scripts/test.sh --mpi mpich`` (and CI).

* Installing MPICH must not move the alternatives: ``mpicc``, ``mpiexec``,
  ``mpif90`` and ``libmpi.so`` stay Open MPI's.
* .venv-mpich links MPICH everywhere (mpi4py, h5py, libinsitu's Fortran
  module), and doctor says so.
* The MPI suite (tests/mpi) passes under ``mpiexec.mpich`` at 1 and 2 ranks
  (MPICH 4.0 busy-polls, so never more ranks than the 2 cores).
* The Python stand-in and the Fortran model (built with ``mpif90.mpich``)
  write the same data as under Open MPI.
* Under Slurm, ``srun --mpi=pmi2`` writes the same data; ``--mpi=pmix``
  (MPICH then starts one-rank copies) is refused by the wrong-size guard, and
  so is one MPI's mpiexec starting the other's program.

The module runs under ./scripts/test.sh --mpi mpich, which sets
INSITU_MPICH_SUITE=1 (set it to run this file by hand); the default suite
skips it with that reason, so that it stays as it was, in content and time."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun, run
from slurm_local import assert_same_datasets, slurm  # noqa: F401 - the fixture

VENV = ROOT / ".venv-mpich"
MPY = VENV / "bin" / "python"
MPIEXEC = "mpiexec.mpich"
SUITE = bool(os.environ.get("INSITU_MPICH_SUITE"))

if not SUITE:
    pytest.skip("the MPICH suite runs with ./scripts/test.sh --mpi mpich (CI runs it; "
                "docs/mpich.md)", allow_module_level=True)

CONFIG = ROOT / "examples" / "heat2d_analyses.yaml"
ARGS = ["-m", "insitu.run", "--model", "heat2d", "--config", CONFIG, "--steps", 20,
        "--no-progress"]


def mpich_env(extra=None) -> dict:
    """Open MPI's variables are harmless to MPICH; PYTHONSAFEPATH keeps the
    checkout's insitu (Open MPI's libinsitu) off sys.path (scripts/env.sh)."""
    env = mpi_env({"PYTHONSAFEPATH": "1", "INSITU_MPI": "mpich"})
    env["PATH"] = str(VENV / "bin") + os.pathsep + env["PATH"]
    env.update(extra or {})
    return env


def mpich_run(n, args, timeout=300, **kw):
    return run([MPIEXEC, "-n", n, *args], timeout=timeout, env=kw.pop("env", mpich_env()), **kw)


@pytest.fixture(scope="module", autouse=True)
def mpich_venv():
    if not MPY.exists():
        pytest.fail(f"{VENV} is missing: ./scripts/install.sh --mpi mpich builds it")
    # The venv links the checkout's modules one by one: add any new ones.
    r = subprocess.run(["bash", str(ROOT / "scripts" / "install-mpich.sh")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]


def test_the_alternatives_stay_open_mpis():
    for name in ("mpicc", "mpiexec", "mpirun", "mpif90"):
        target = os.path.realpath(shutil.which(name))
        assert target == os.path.realpath(shutil.which(f"{name}.openmpi")), (name, target)
    libmpi = os.path.realpath("/usr/lib/x86_64-linux-gnu/libmpi.so")
    assert "libmpi.so.40" in libmpi, libmpi  # Open MPI's soname; MPICH's is libmpich.so.12
    q = subprocess.run(["update-alternatives", "--query", "mpi"], capture_output=True,
                       text=True).stdout
    assert "Value: /usr/bin/mpicc.openmpi" in q, q


def test_the_mpich_venv_links_mpich_everywhere():
    code = ("import insitu, mpi4py.MPI as M, h5py, h5py._conv as c; from insitu import config;"
            "print(M.Get_library_version().splitlines()[0]); print(h5py.get_config().mpi);"
            "print(insitu.__file__); print(config.LIBDIR); print(c.__file__)")
    r = run([MPY, "-c", code], timeout=120, env=mpich_env())
    lib, h5mpi, init, libdir, conv = r.stdout.split("\n")[:5]
    assert lib.startswith("MPICH Version") and h5mpi == "True", r.stdout
    assert init.startswith(str(VENV)) and libdir.startswith(str(VENV)), r.stdout
    ldd = subprocess.run(["ldd", conv], capture_output=True, text=True).stdout
    assert "libhdf5_mpich" in ldd and "libmpi.so.40" not in ldd, ldd
    ldd = subprocess.run(["ldd", os.path.join(libdir, "libinsitu_fortran.so")],
                         capture_output=True, text=True).stdout
    assert "libmpich" in ldd and "libmpi.so.40" not in ldd, ldd


def test_doctor_names_mpich_and_one_library():
    r = run([MPY, "-m", "insitu.doctor"], timeout=300, env=mpich_env(), check=False)
    assert "[OK  ] MPI family: MPICH 4.0.2" in r.stdout and "--mpi=pmi2" in r.stdout, r.stdout
    line = next(l for l in r.stdout.splitlines() if "MPI libraries linked" in l)
    assert line.startswith("[OK  ]") and "libmpich" in line, line
    assert "[OK  ] embedded interpreter" in r.stdout, r.stdout


def test_doctor_warns_on_a_host_of_the_other_mpi(tmp_path):
    """An Open MPI-built model with MPICH's mpi4py: two MPIs in one process."""
    for f in ("heat2d.f90", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    r = run([MPY, "-m", "insitu.doctor", "--host", tmp_path / "heat2d"], timeout=300,
            env=mpich_env(), check=False)
    line = next(l for l in r.stdout.splitlines() if "MPI libraries linked" in l)
    assert line.startswith("[WARN]") and "libmpich" in line and "libmpi.so.40" in line, line


@pytest.mark.parametrize("nranks", [1, 2])
def test_mpi_suite_under_mpich(nranks):
    r = mpich_run(nranks, [MPY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           ROOT / "tests" / "mpi"], timeout=900,
                  env=mpich_env({"INSITU_MPI_TESTS": "1"}))
    assert " passed" in r.stdout and " failed" not in r.stdout, r.stdout[-3000:]


@pytest.fixture(scope="module")
def open_mpi_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("openmpi") / "openmpi.h5"
    mpirun(2, [PYTHON, *ARGS, "--output", out], timeout=300)
    return out


def test_python_stand_in_writes_what_open_mpi_writes(open_mpi_file, tmp_path):
    """The same decomposition: floats equal to rounding (the two MPIs may
    combine the two ranks' partials in a different order), the rest exact."""
    out = tmp_path / "mpich.h5"
    r = mpich_run(2, [MPY, *ARGS, "--output", out])
    assert "on 2 rank(s)" in r.stderr, r.stderr
    assert assert_same_datasets(out, open_mpi_file, exact=False) > 10


def test_fortran_model_built_with_mpif90_mpich_writes_what_open_mpi_writes(libinsitu,
                                                                           tmp_path):
    files = {}
    for mpi, py, fc in (("openmpi", PYTHON, "mpif90.openmpi"), ("mpich", MPY, "mpif90.mpich")):
        d = tmp_path / mpi
        d.mkdir()
        for f in ("heat2d.f90", "heat2d.yaml", "Makefile"):
            shutil.copy(ROOT / "examples" / "fortran" / f, d)
        env = mpich_env() if mpi == "mpich" else mpi_env()
        run(["make", "-s", "-C", d, f"PYTHON={py}", f"FC={fc}", "heat2d"], timeout=300, env=env)
        ldd = subprocess.run(["ldd", d / "heat2d"], capture_output=True, text=True).stdout
        assert ("libmpich" in ldd) == (mpi == "mpich"), ldd
        cmd = [d / "heat2d", d / "heat2d.yaml", 64, 48, 20]
        if mpi == "mpich":
            mpich_run(2, cmd, cwd=d)
        else:
            mpirun(2, cmd, cwd=d, timeout=300)
        files[mpi] = d / "heat2d_fortran.h5"
    assert assert_same_datasets(files["mpich"], files["openmpi"], exact=False) > 3


def test_srun_pmi2_writes_what_open_mpi_writes(slurm, open_mpi_file, tmp_path):  # noqa: F811
    out = tmp_path / "srun.h5"
    r = run(["srun", "-n", 2, "--mpi=pmi2", "--time=5", MPY, *ARGS, "--output", out],
            timeout=300, env=mpich_env(slurm))
    assert "on 2 rank(s)" in r.stderr, r.stderr
    assert assert_same_datasets(out, open_mpi_file, exact=False) > 10


def test_srun_with_the_wrong_mpi_plugin_is_refused(slurm, tmp_path):  # noqa: F811
    """MPICH under --mpi=pmix starts two one-rank jobs.  Before the guard,
    both ran to the end, exit 0, and wrote the same file; now: exit 2, one
    line naming --mpi=pmi2 (from task 0 only), no file."""
    out = tmp_path / "never.h5"
    r = run(["srun", "-n", 2, "--mpi=pmix", "--time=5", MPY, *ARGS, "--output", out],
            timeout=300, env=mpich_env(slurm), check=False)
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = [l for l in r.stderr.splitlines() if "launch error" in l]
    assert len(lines) == 1 and "srun --mpi=pmi2" in lines[0], r.stderr
    assert "MPICH 4.0.2" in lines[0] and not out.exists()
    # With the guard off, the old behaviour: two singletons, exit 0, one file.
    r = run(["srun", "-n", 2, "--mpi=pmix", "--time=5", MPY, *ARGS, "--output", out,
             "--overwrite"], timeout=300, env=mpich_env({**slurm, "INSITU_LAUNCH_CHECK": "0"}),
            check=False)
    assert r.returncode == 0 and r.stderr.count("on 1 rank(s)") == 2, r.stderr[-3000:]


def test_fortran_host_under_the_wrong_srun_plugin_is_refused(slurm, tmp_path):  # noqa: F811
    for f in ("heat2d.f90", "heat2d.yaml", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={MPY}", "FC=mpif90.mpich", "heat2d"],
        timeout=300, env=mpich_env())
    r = run(["srun", "-n", 2, "--mpi=pmix", "--time=5", tmp_path / "heat2d",
             tmp_path / "heat2d.yaml", 32, 24, 5], cwd=tmp_path, timeout=300,
            env=mpich_env(slurm), check=False)
    assert r.returncode != 0 and "srun --mpi=pmi2" in r.stderr, (r.returncode, r.stderr)
    assert not (tmp_path / "heat2d_fortran.h5").exists()


def test_one_mpis_mpiexec_starting_the_others_program_is_refused(tmp_path):
    out = tmp_path / "never.h5"
    r = mpich_run(2, [PYTHON, *ARGS, "--output", out], env=mpi_env(), check=False)
    assert r.returncode == 2 and "mpirun.openmpi" in r.stderr and not out.exists(), r.stderr
    r = mpirun(2, [MPY, *ARGS, "--output", out], env=mpich_env(), check=False)
    assert r.returncode == 2 and "mpiexec.mpich" in r.stderr and not out.exists(), r.stderr


def test_restart_after_sigkill_equals_the_uninterrupted_run(tmp_path):
    """Issue 13 under MPICH at 2 ranks: a run SIGKILLed after step 130 with
    checkpoints at 50 and 100 restarts from 100 to 200 and equals the
    uninterrupted run bitwise.  The file is cut by a new file renamed over
    the old one, never by shrinking a dataset (which hangs MPICH's close,
    docs/mpich.md)."""
    from test_restart_mpi import CONFIG
    args = ["--model", "heat2d", "--shape", 36, 50, "--no-progress"]
    files = {}
    for name in ("ref", "run"):
        files[name] = tmp_path / f"{name}.h5"
        (tmp_path / f"{name}.yaml").write_text(CONFIG.format(out=files[name],
                                                             reproducible="false"))
    mpich_run(2, [MPY, "-m", "insitu.run", "--config", tmp_path / "ref.yaml", *args,
                  "--steps", 200])
    r = mpich_run(2, [MPY, ROOT / "tests" / "mpi_programs" / "flush_run.py", "--kill-after", 130,
                      "--", "--config", tmp_path / "run.yaml", *args, "--steps", 200,
                      "--checkpoint-every", 50], check=False)
    assert r.returncode != 0, "the run was not killed"
    r = mpich_run(2, [MPY, "-m", "insitu.run", "--config", tmp_path / "run.yaml", *args,
                      "--steps", 200, "--restart"])
    assert "restarted from the checkpoint of step 100" in r.stderr, r.stderr[-3000:]
    c = run([PYTHON, ROOT / "tests" / "mpi_programs" / "restart_compare.py", files["ref"],
             files["run"], "--ignore-attr", "insitu_config", "--ignore-attr",
             "insitu_config_path"], timeout=120, check=False)
    assert c.returncode == 0, c.stdout[-4000:]
