"""Fixtures for tests that run on every rank under mpiexec."""
import ctypes
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scenarios.py


@pytest.fixture
def comm():
    from mpi4py import MPI
    return MPI.COMM_WORLD


@pytest.fixture
def icomm(comm):
    """insitu's wrapper over a duplicate of COMM_WORLD, freed after the test."""
    from insitu.comm import MPIComm
    c = MPIComm(comm.Dup(), owned=True)
    yield c
    c.free()


@pytest.fixture
def shared_dir(comm):
    """A directory named by rank 0 and broadcast, as h5py's MPI tests do."""
    path = tempfile.mkdtemp(prefix="insitu-mpi-") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    yield Path(path)
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def lib():
    """libinsitu loaded into this interpreter through ctypes: the C ABI as a
    C host calls it, sharing the session with the test."""
    from insitu import config
    lib = ctypes.CDLL(config.library())
    i64p = ctypes.POINTER(ctypes.c_int64)
    lib.insitu_init.argtypes = [ctypes.c_int, ctypes.c_char_p]
    lib.insitu_declare_field.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int] + \
        [i64p] * 5 + [ctypes.c_int]
    lib.insitu_expose.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                  i64p]
    lib.insitu_step.argtypes = [ctypes.c_int64, ctypes.c_double]
    lib.insitu_last_error.restype = ctypes.c_char_p
    return lib
