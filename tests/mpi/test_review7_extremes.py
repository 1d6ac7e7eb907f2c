"""Review 7: tests/test_review7_decomposition.py's extremes, exceedances
and histograms (ties across ranks, NaN, +-Inf, region edges on and off
the ranks' borders, halos of +-1e300) under real MPI, with the record
combined by MPI (compiled or Python op), at every rank count
tests/test_mpi_suite.py runs (1-4), against numpy on the whole field."""
import pytest

from test_review7_decomposition import STEPS, _body, check


@pytest.mark.parametrize("seed", [0, 10])
def test_extremes_exceedance_histograms_equal_numpy_under_mpi(icomm, shared_dir, seed):
    out = _body(icomm, seed, STEPS, output=str(shared_dir / f"r7ext{seed}.h5"))
    check([out], seed)
