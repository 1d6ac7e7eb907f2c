"""Rank-4 fields under real MPI through the parallel HDF5 writer, checked
from the file against numpy (the fake-rank twin: tests/test_rank4.py)."""
import numpy as np
import xarray as xr

from insitu import api
from test_rank4 import CONFIG, FULL, SHAPE


def test_rank_4_field_from_the_file(comm, icomm, shared_dir):
    path = shared_dir / "rank4.h5"
    rows = np.array_split(np.arange(SHAPE[2]), comm.size)[comm.rank]
    local = np.full((SHAPE[0] + 2, SHAPE[1] + 2, len(rows) + 2, SHAPE[3] + 2), -1e30, order="F")
    local[1:-1, 1:-1, 1:-1, 1:-1] = FULL[:, :, rows[0]:rows[-1] + 1, :]
    api.init(icomm, CONFIG, output=str(path))
    try:
        api.declare_field("q", np.float64, SHAPE, (0, 0, int(rows[0]), 0), local.shape,
                          (1,) * 4, (1,) * 4, "F")
        api.expose("q", local)
        api.step(1, 0.0)
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank:
        return
    ok = np.isfinite(FULL)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["q_count"].values[0] == ok.sum()
        np.testing.assert_allclose(ds["q_sum"].values[0], FULL[ok].sum(), rtol=1e-13)
        assert ds["q_mean_over_a_c"].dims == ("time", "b", "d")
        np.testing.assert_allclose(ds["q_mean_over_a_c"].values[0],
                                   np.where(ok, FULL, 0).sum(axis=(0, 2)) / ok.sum(axis=(0, 2)),
                                   rtol=1e-13)
        np.testing.assert_array_equal(ds["q_max_over_d"].values[0],
                                      np.where(ok, FULL, -np.inf).max(axis=3))
        with np.errstate(invalid="ignore"):
            blocks = np.nanmean(FULL.reshape(3, 2, 2, 2, 7, 3), axis=(1, 3))
        np.testing.assert_allclose(ds["q_coarse"].values[0], blocks, rtol=1e-13)
