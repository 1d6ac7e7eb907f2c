"""The fake-communicator scenarios again, under real MPI and real parallel HDF5.

Run on every rank by tests/test_mpi_suite.py (mpiexec -n 1..4).
"""
import h5py
import numpy as np
import pytest
import xarray as xr

from scenarios import CASES, check_against_numpy, expected_stats, run_case


@pytest.mark.parametrize("case", sorted(CASES))
def test_stats_equal_numpy_under_mpi(comm, icomm, shared_dir, case):
    out = run_case(icomm, case, steps=2, output=str(shared_dir / f"{case}.h5"))
    check_against_numpy(case, out["results"])
    # What the file holds equals what step() returned, on every rank's view.
    comm.Barrier()
    ds = xr.open_dataset(shared_dir / f"{case}.h5", engine="h5netcdf")
    try:
        assert list(ds["step"].values) == [1, 2]
        for step in (1, 2):
            want = expected_stats(case, step)
            for k, v in want.items():
                got = ds[k].values[step - 1]
                assert got == pytest.approx(v, rel=1e-12,
                                            nan_ok=True), k
        assert ds["f_mean"].dims == ("time",)
        assert ds.attrs["insitu_ranks"] == comm.size
    finally:
        ds.close()


def test_one_collective_per_step_for_fifty_analyses(comm, icomm, shared_dir):
    """The first step: the step check (an allgather; the session binds
    there) and the record; each later one the record alone, which carries
    the step check (insitu.session._stamp)."""
    out = run_case(icomm, "c2d-uneven", steps=3, output=str(shared_dir / "many.h5"), copies=50)
    assert out["collectives_per_step"] == ((2 + 1 + 1) / 3 if comm.size > 1 else 0)


def test_results_identical_on_all_ranks(comm, icomm, shared_dir):
    res = run_case(icomm, "f3d-nan", steps=1, output=str(shared_dir / "same.h5"))["results"][1]
    vec = np.array([res[k] for k in sorted(res)], dtype=np.float64)
    root = vec.copy()
    comm.Bcast(root, root=0)
    assert np.array_equal(vec, root, equal_nan=True)


def test_file_layout_has_dimension_scales(comm, icomm, shared_dir):
    run_case(icomm, "c2d-even", steps=2, output=str(shared_dir / "layout.h5"))
    if comm.rank == 0:
        with h5py.File(shared_dir / "layout.h5", "r") as f:
            assert f["time"].is_scale
            assert f["f_mean"].dims[0][0] == f["time"]
            assert f["f_mean"].attrs["units"] == "K"
            assert "cell_methods" in f["f_mean"].attrs


def test_provenance_attributes_are_clean_text(comm, icomm, shared_dir):
    import json
    run_case(icomm, "c2d-even", steps=1, output=str(shared_dir / "prov.h5"))
    if comm.rank == 0:
        with h5py.File(shared_dir / "prov.h5", "r") as f:
            for k, v in f.attrs.items():
                if isinstance(v, str):
                    assert "\x00" not in v, k
            decomp = json.loads(f.attrs["insitu_decomposition"])["f"]
            assert len(decomp["offsets"]) == comm.size
            from mpi4py import MPI  # the library that ran, whichever MPI it is
            mpi = json.loads(f.attrs["insitu_versions"])["mpi"]
            assert mpi and mpi.strip() in MPI.Get_library_version(), mpi
            assert f.attrs["insitu_steps_written"] == 1 and "insitu_finished" in f.attrs
