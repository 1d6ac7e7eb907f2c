"""The ranks' HDF5 metadata caches must not drift apart (insitu/h5io.py,
``_keep_metadata_cache_in_step``): many window axes growing at every flush,
while rank 0 alone writes the replicated rows, failed at step 48 with
MPI_ERR_TRUNCATE inside H5Dset_extent before evictions were turned off."""
import h5py
import pytest

from conftest import PYTHON, ROOT, mpirun

PROGRAM = ROOT / "tests" / "mpi_programs" / "many_windows.py"


@pytest.mark.parametrize("nranks", [2, 3])
def test_many_growing_window_axes(tmp_path, nranks):
    out = tmp_path / "w.h5"
    steps = 120
    r = mpirun(nranks, [PYTHON, PROGRAM, out, steps], timeout=240, check=False)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]
    with h5py.File(out, "r") as f:
        assert f["time"].shape == (steps,)
        for i in range(24):  # a window of n steps: rows for [kn, (k+1)n) within 1..steps
            n = 3 + i
            assert f[f"time_wT{i}"].shape[0] == steps // n - 1, i
