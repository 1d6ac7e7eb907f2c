"""Weighted reductions (reduce, coarsen, histogram), argmax/argmin and
exceedance under real MPI and parallel HDF5, checked from the file against
xarray and numpy on the whole field (tests/climate_cases.py; the same cases
run on fake ranks in tests/test_weights_everywhere.py)."""
import numpy as np
import xarray as xr

import climate_cases as cc


def test_climate_kinds_equal_xarray_from_the_file(comm, icomm, shared_dir):
    path = shared_dir / "climate.h5"
    cc.run(icomm, steps=(1, 2), output=str(path))
    comm.Barrier()
    if comm.rank != 0:
        return
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["zonal"].dims == ("time", "plev", "lat")
        assert ds["column"].dims == ("time", "lat", "lon")
        assert ds["band"].dims == ("time", "plev", "lon")
        assert ds["U_w"].dims == ("time", "ya_c2", "xa_c4")
        assert ds["T_hist_w"].dims == ("time", "T_hist_w_bin")
        for step in (1, 2):
            got = {k: ds[k].values[step - 1] for k in ds.data_vars}
            cc.check(got, cc.truth(step))
        # CF: units and cell_methods of the new outputs
        assert ds["column"].attrs["units"] == "K Pa"
        assert ds["column_f"].attrs["units"] == "K Pa"
        assert ds["column"].attrs["cell_methods"] == \
            "plev_extent: sum (weighted by the given weights along plev)"
        assert ds["zonal"].attrs["cell_methods"] == "lon_extent: mean (weighted by area)"
        assert ds["band"].attrs["cell_methods"] == "lat_extent_3_9: mean"
        assert ds["U_w"].attrs["cell_methods"] == \
            "ya_c2: xa_c4: mean (weighted by cos(latitude) along ya)"
        assert ds["T_hist_w"].attrs["units"] == "m2"
        assert ds["T_warm_area_fraction"].attrs["units"] == "1"
        assert ds["T_argmax_lat"].attrs["units"] == "degrees_north"
        assert np.issubdtype(ds["T_gt_262_count"].dtype, np.integer)
