"""Every analysis kind under real MPI and parallel HDF5, checked from the file."""
import numpy as np
import xarray as xr

import analysis_scenarios as sc


def test_every_analysis_equals_numpy_from_the_file(comm, icomm, shared_dir):
    path = shared_dir / "analyses.h5"
    sc.run(icomm, steps=2, output=str(path))
    comm.Barrier()
    if comm.rank == 0:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            assert ds["T_mean_over_x"].dims == ("time", "y")
            assert ds["T_coarse"].dims == ("time", "y_c4", "x_c4")
            assert ds["T_hist"].dims == ("time", "T_hist_bin")
            assert "T_hist_bin_bounds" in ds.coords or "T_hist_bin_bounds" in ds
            assert ds["T_probe"].dims == ("time", "T_probe_point")
            np.testing.assert_array_equal(ds["y"].values, -57.5 + 5.0 * np.arange(24))
            assert ds["y"].attrs["units"] == "degrees_north"
            np.testing.assert_array_equal(ds["y_c4"].values, -57.5 + 5.0 * (4 * np.arange(6) + 1.5))
            for step in (1, 2):
                got = {k: ds[k].values[step - 1] for k in ds.data_vars}
                sc.check(step, got)
