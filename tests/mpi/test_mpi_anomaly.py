"""Anomalies from a climatology file (issue 16, item 3): a first run writes
insitu climatologies (a whole field, through coarsen by 1, and a zonal
mean) by month; a second run subtracts them in a derived field,
``T - climatology("clim.h5", ...)``, each rank reading only its slab of the
month's row.  Checked from the second run's file against xarray,
``series.groupby("time.month") - clim``, at 1-4 ranks with uneven slabs,
NaN and +-Inf present (tests/perpoint_cases.py)."""
import numpy as np
import xarray as xr

import perpoint_cases as pc

CLIM = [{"kind": "coarsen", "field": "T", "factors": {"lat": 1}, "name": "Tf"},
        {"kind": "reduce", "field": "T", "over": ["lon"], "name": "Tz"},
        {"kind": "climatology", "source": "Tf", "by": "month", "name": "c"},
        {"kind": "climatology", "source": "Tz", "by": "month", "name": "cz"}]


def test_anomaly_equals_xarray_groupby_minus_the_climatology(comm, icomm, shared_dir):
    clim = shared_dir / "clim.h5"
    out = shared_dir / "anom.h5"
    pc.run(icomm, CLIM, 100, output=str(clim), first=0)
    comm.Barrier()
    an = [{"kind": "coarsen", "field": "A", "factors": {"lat": 1}, "name": "Af"},
          {"kind": "coarsen", "field": "Z", "factors": {"lat": 1}, "name": "Zf"}]
    derived = {"A": f'T - climatology("{clim}", "Tf_c_mean")',
               "Z": f'T - climatology("{clim}", "Tz_cz_mean")'}
    from insitu.comm import MPIComm
    pc.run(MPIComm(comm.Dup(), owned=True), an, 60, output=str(out), first=20,
           derived=derived)   # a session frees its communicator at finalize
    comm.Barrier()
    if comm.rank != 0:
        return
    a = pc.series(100, first=0)
    want = pc.series(60, first=20).groupby("time.month") - a.groupby("time.month").mean()
    wantz = (pc.series(60, first=20).groupby("time.month")
             - a.mean("lon").groupby("time.month").mean())
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds["Af"].values, want.values, rtol=1e-12, atol=1e-12,
                                   equal_nan=True)
        np.testing.assert_allclose(ds["Zf"].values, wantz.values, rtol=1e-12, atol=1e-12,
                                   equal_nan=True)
        assert np.isfinite(ds["Af"].values).mean() > 0.9
