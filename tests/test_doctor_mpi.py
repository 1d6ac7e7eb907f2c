"""python -m insitu.doctor names the MPI family, version and launcher, and
warns when mpi4py, h5py, libinsitu's Fortran module and the host model do
not all link the same MPI library (issue 17).  The MPICH cases, with a real
second MPI, are in test_mpich.py."""
import os
import shutil

from conftest import PYTHON, ROOT, mpi_env, run
from insitu import doctor as doc
from test_doctor import doctor


def test_the_family_version_and_launcher_are_named():
    r = doctor()
    assert "[OK  ] MPI family: Open MPI 4.1.4 (mpi4py); launcher: no launcher" in r.stdout, \
        r.stdout
    assert "srun --mpi=pmix" in r.stdout


def test_the_launcher_is_named_from_its_environment():
    """(doctor itself is not run under mpirun: its probes are MPI programs,
    which would take the launcher's environment for their own.)"""
    status, msg = doc.check_family({"SLURM_JOB_ID": "3", "SLURM_STEP_ID": "0",
                                    "SLURM_STEP_NUM_TASKS": "2"})
    assert status == doc.OK and "launcher: srun (Slurm job 3, step 0), 2 process(es) " \
        "(SLURM_STEP_NUM_TASKS)" in msg, msg
    status, msg = doc.check_family({"OMPI_COMM_WORLD_SIZE": "4"})
    assert "Open MPI's mpirun, 4 process(es)" in msg, msg


def test_one_mpi_library_everywhere_passes(libinsitu):
    r = doctor()
    line = next(l for l in r.stdout.splitlines() if "MPI libraries linked" in l)
    assert line.startswith("[OK  ]") and "mpi4py, h5py, libinsitu_fortran all link" in line
    assert "libmpi.so.40" in line, line


def test_two_mpi_libraries_are_a_warning_naming_each():
    status, msg = doc.compare_links({"mpi4py": "/usr/lib/libmpi.so.40.30.4",
                                     "h5py": "/usr/lib/libmpich.so.12.2.2",
                                     "host model": "/usr/lib/libmpi.so.40.30.4"})
    assert status == doc.WARN, msg
    assert "h5py: /usr/lib/libmpich.so.12.2.2" in msg and "mpi4py: /usr/lib/libmpi" in msg
    assert doc.compare_links({"mpi4py": "/a/libmpi.so.40", "h5py": "/a/libmpi.so.40",
                              "host": None})[0] == doc.OK
    assert doc.compare_links({"mpi4py": None})[0] == doc.WARN


def test_linked_mpi_reads_ldd(libinsitu, tmp_path):
    import mpi4py.MPI
    assert os.path.basename(doc.linked_mpi(mpi4py.MPI.__file__)).startswith("libmpi.so")
    assert doc.linked_mpi(shutil.which("ls")) is None
    for f in ("heat2d.f90", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    r = doctor("--host", str(tmp_path / "heat2d"), env=mpi_env())
    line = next(l for l in r.stdout.splitlines() if "MPI libraries linked" in l)
    assert line.startswith("[OK  ]") and "host heat2d" in line, line
