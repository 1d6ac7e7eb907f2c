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


def test_pointwise_from_the_file(comm, icomm, shared_dir):
    """Monthly windows (noleap) and the whole run, each rank's hyperslab,
    decoded by xarray (cftime dates) and equal to resample/mean of the
    whole series."""
    path = shared_dir / "pointwise.h5"
    an = [{"kind": "pointwise", "field": "T", "ops": ["mean", "min", "max", "var"],
           "calendar_period": "month", "name": "mon"},
          {"kind": "pointwise", "field": "T", "ops": ["mean"], "name": "all"}]
    pc.run(icomm, an, 120, order="F", output=str(path), first=0)
    comm.Barrier()
    if comm.rank != 0:
        return
    da = pc.series(120, first=0)
    r = da.resample(time="MS")
    with xr.open_dataset(path, engine="h5netcdf",
                         decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)) as ds:
        assert ds["mon_mean"].dims == ("time_mon", "lat", "lon")
        assert ds.sizes["time_mon"] == 3          # January to March; April is partial
        assert ds["mon_mean"].attrs["cell_methods"] == "time_mon: mean"
        assert ds["time_mon_bounds"].values[0, 0].month == 1
        for op in ("mean", "min", "max", "var"):
            np.testing.assert_allclose(ds[f"mon_{op}"].values,
                                       getattr(r, op)().isel(time=slice(0, 3)).values,
                                       rtol=1e-9, atol=1e-15, equal_nan=True, err_msg=op)
        np.testing.assert_array_equal(ds["mon_count"].values,
                                      r.count().isel(time=slice(0, 3)).values)
        assert ds.sizes["time_all"] == 1
        np.testing.assert_allclose(ds["all_mean"].values[0], da.mean("time").values,
                                   rtol=1e-12, equal_nan=True)


def test_per_point_state_restarts_from_the_file(comm, shared_dir):
    """A run checkpoints at step 33 and stops at 45; a restart from the
    checkpoint goes on to 75 at the same ranks: the spell's and the
    pointwise windows' rows equal an uninterrupted run's (each rank's slab
    of the state written and read back by hyperslab)."""
    from insitu.comm import MPIComm
    an = [{"kind": "spell", "field": "T", "threshold": 0.3, "write_every": 10, "name": "sp"},
          {"kind": "pointwise", "field": "T", "ops": ["mean", "max", "var"],
           "calendar_period": "month", "name": "mon"}]
    ref, cut = shared_dir / "ref.h5", shared_dir / "cut.h5"
    pc.run(MPIComm(comm.Dup(), owned=True), an, 76, output=str(ref), first=0)
    pc.run(MPIComm(comm.Dup(), owned=True), an, 46, output=str(cut), first=0, checkpoint=33)
    pc.run(MPIComm(comm.Dup(), owned=True), an, 42, output=str(cut), first=34, restart=33)
    comm.Barrier()
    if comm.rank != 0:
        return
    with xr.open_dataset(ref, engine="h5netcdf", decode_times=False) as a, \
            xr.open_dataset(cut, engine="h5netcdf", decode_times=False) as b:
        for v in ("sp_current", "sp_max", "sp_samples", "time_sp", "mon_mean", "mon_max",
                  "mon_var", "mon_count", "time_mon", "time_mon_bounds"):
            np.testing.assert_allclose(b[v].values, a[v].values, rtol=1e-12, equal_nan=True,
                                       err_msg=v)
        assert b.sizes["time_mon"] == 2 and b.sizes["time_sp"] == 8
