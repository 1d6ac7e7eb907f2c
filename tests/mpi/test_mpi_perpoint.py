"""Per-point kinds (spell, pointwise) under real MPI and parallel HDF5: each
rank writes its hyperslab along the analysis's own axis; read back with
xarray and checked against numpy/xarray on the whole series
(tests/perpoint_cases.py; the same cases on fake ranks in tests/test_spell.py
and tests/test_pointwise.py)."""
import numpy as np
import xarray as xr

import perpoint_cases as pc


def test_spell_from_the_file(comm, icomm, shared_dir):
    path = shared_dir / "spell.h5"
    an = [{"kind": "spell", "field": "T", "threshold": pc.THRESHOLD, "write_every": 10,
           "name": "sp"}]
    pc.run(icomm, an, 25, output=str(path))
    comm.Barrier()
    if comm.rank != 0:
        return
    with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as ds:
        assert ds["sp_max"].dims == ("time_sp", "lat", "lon")
        assert ds["sp_max"].dtype == np.int32
        np.testing.assert_array_equal(ds["time_sp"].values, [10.0, 20.0, 25.0])
        np.testing.assert_array_equal(ds["time_sp_bounds"].values[:, 0], 1.0)
        for i, last in enumerate((10, 20, 25)):
            cur, mx = pc.spell_truth([pc.field(s) for s in range(1, last + 1)],
                                     pc.THRESHOLD, "gt")
            np.testing.assert_array_equal(ds["sp_current"].values[i], cur)
            np.testing.assert_array_equal(ds["sp_max"].values[i], mx)
            assert int(ds["sp_samples"].values[i]) == last
        assert ds["sp_max"].attrs["cell_methods"] == "time_sp: maximum"
