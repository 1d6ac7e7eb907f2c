"""insitu.mpiio: which Open MPI versions get the lock default, and that the
version is learned before MPI_Init."""
import json
import subprocess

import pytest

from conftest import PYTHON, ROOT, mpi_env
from insitu import mpiio

LOCK = {"OMPI_MCA_fs_ufs_lock_algorithm": "3"}


@pytest.mark.parametrize("version, want", [
    ("Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022",
     LOCK),
    ("Open MPI v4.1.0, package: Open MPI", LOCK),
    ("Open MPI v4.1.6, package: Open MPI", LOCK),
    ("Open MPI v4.1.7, package: Open MPI", {}),
    ("Open MPI v4.1.8, package: Open MPI", {}),
    ("Open MPI v4.0.7, package: Open MPI", {}),  # no write data sieving before 4.1
    ("Open MPI v5.0.5, package: Open MPI", LOCK),
    ("Open MPI v5.0.6, package: Open MPI", {}),
    ("Open MPI v6.0.0, package: Open MPI", {}),
    ("MPICH Version:      4.0.2\nMPICH Release date: Thu May  5 15:47:04 CDT 2022", {}),
    ("", {}),
])
def test_defaults_by_version(version, want):
    assert mpiio.mca_defaults(version, {}) == want


@pytest.mark.parametrize("key", ["OMPI_MCA_io", "OMPI_MCA_fs_ufs_lock_algorithm",
                                 "OMPI_MCA_fcoll"])
def test_a_user_choice_wins(key):
    assert mpiio.mca_defaults("Open MPI v4.1.4", {key: "anything"}) == {}


def test_apply_defaults_changes_only_the_given_mapping():
    env = {"PATH": "/bin"}
    assert mpiio.apply_defaults(env, version="Open MPI v4.1.4") == LOCK
    assert env == {"PATH": "/bin", **LOCK}
    env = {"OMPI_MCA_io": "romio321"}
    assert mpiio.apply_defaults(env, version="Open MPI v4.1.4") == {}
    assert env == {"OMPI_MCA_io": "romio321"}


def test_version_is_read_before_mpi_init():
    """In a fresh interpreter: the library version comes from libmpi before
    mpi4py.MPI is imported (so before MPI_Init), it is the one mpi4py then
    reports, and importing mpi4py.MPI afterwards still works."""
    code = r"""
import json, os, sys
from insitu import mpiio
version = mpiio.library_version()
before = "mpi4py.MPI" in sys.modules
added = mpiio.apply_defaults()
from mpi4py import MPI
print(json.dumps({"version": version, "mpi_imported_before": before, "added": added,
                  "initialized": MPI.Is_initialized(),
                  "mpi4py_version": MPI.Get_library_version()}))
"""
    env = mpi_env()
    for k in mpiio.USER_CHOICES:
        env.pop(k, None)
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["mpi_imported_before"] is False
    assert out["version"].split(",")[0] == out["mpi4py_version"].split(",")[0]
    assert out["added"] == mpiio.mca_defaults(out["mpi4py_version"], {})
