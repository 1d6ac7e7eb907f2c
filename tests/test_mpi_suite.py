"""Run tests/mpi under real mpiexec at 1, 2, 3 and 4 ranks (pytest on every rank)."""
import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_mpi_suite(nranks):
    result = mpirun(nranks, [PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             str(ROOT / "tests" / "mpi")],
                    timeout=300, env=mpi_env({"INSITU_MPI_TESTS": "1"}))
    assert " passed" in result.stdout, result.stdout[-2000:]
