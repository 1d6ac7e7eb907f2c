"""Windows, triggers and user analyses under MPI, read back from the file."""
import json

import h5py
import numpy as np
import xarray as xr

import test_time_and_triggers as tt


def test_windows_triggers_user_analyses_in_the_file(comm, icomm, shared_dir):
    path = shared_dir / "time.h5"
    analyses = [{"kind": "stats", "field": "T", "stats": ["mean", "max", "nan_count"]},
                {"kind": "window", "source": "T", "steps": 3, "ops": ["mean", "max"]},
                {"kind": "reduce", "field": "T", "over": ["x"]},
                {"kind": "window", "source": "T_mean_over_x", "steps": 2, "ops": ["mean"]},
                tt.USER]
    tt.drive(icomm, analyses, [tt.TRIG], output=str(path), first=0)
    comm.Barrier()
    if comm.rank != 0:
        return
    steps = range(0, tt.STEPS + 1)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        # windows [0, 3), [3, 6) of steps, written when the model reaches
        # their ends; [6, 9) is cut off by the end of the run
        assert ds["T_mean_w3_mean"].dims == ("time_w3",)
        assert list(ds["step_w3"].values) == [3, 6]
        np.testing.assert_array_equal(ds["time_w3_bounds"].values, [[0, 3], [3, 6]])
        means = np.array([tt.field(s).mean() for s in steps])
        np.testing.assert_allclose(ds["T_mean_w3_mean"].values,
                                   [means[0:3].mean(), means[3:6].mean()], rtol=1e-13)
        prof = np.array([tt.field(s).mean(axis=1) for s in steps])
        assert list(ds["step_w2"].values) == [2, 4, 6]
        np.testing.assert_allclose(ds["T_mean_over_x_w2_mean"].values,
                                   [prof[0:2].mean(0), prof[2:4].mean(0), prof[4:6].mean(0)],
                                   rtol=1e-13)
        assert ds["hot_T"].dims == ("time_hot", "y", "x")
        firing = [s for s in steps if tt.field(s).max() > 297][:2]
        assert list(ds["step_hot"].values) == firing
        for k, s in enumerate(firing):
            np.testing.assert_array_equal(ds["hot_T"].values[k], tt.field(s))
        np.testing.assert_array_equal(ds["u_hot"].values,
                                      [(tt.field(s) > 290).sum() for s in steps])
    with h5py.File(path, "r") as f:
        events = json.loads(f.attrs["insitu_triggers"])
    assert [e["step"] for e in events] == firing and events[0]["when"] == tt.TRIG["when"]


def test_calendar_windows_in_the_file(comm, icomm, shared_dir):
    """Monthly windows of a scalar and seasonal ones of a distributed
    profile, in a noleap calendar, written by the parallel writer: xarray
    decodes their bounds as calendar dates, and the values equal xarray's
    resample of the whole series (issue 16, item 2)."""
    import cftime
    import test_calendar_windows as cw
    path = shared_dir / "calendar.h5"
    steps = 400
    prof = [{"kind": "reduce", "field": "T", "over": ["x"]},
            {"kind": "window", "source": "T_mean_over_x", "name": "s",
             "calendar_period": "season", "complete_only": False}]
    cw.drive(icomm, {"calendar_period": "month"}, "noleap", steps, 1.0, output=str(path),
             extra=prof)
    comm.Barrier()
    if comm.rank != 0:
        return
    want = [g for g in cw.truth("noleap", "month", steps, 1.0) if g[1] <= steps]
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(path, engine="h5netcdf", decode_times=coder) as ds:
        b = ds["time_w_bounds"].values
        assert isinstance(b[0, 0], cftime.DatetimeNoLeap)
        assert [(x.year, x.month, x.day) for x in b[:, 0]][:3] == [(2000, 1, 1), (2000, 2, 1),
                                                                   (2000, 3, 1)]
        np.testing.assert_allclose(ds["T_mean_w_mean"].values, [g[3] for g in want], rtol=1e-13)
        assert list(ds["w_samples"].values) == [g[2] for g in want]
        # seasons of the y-profile, the partial DJF and last season included
        t = np.arange(0, steps + 1)
        times = xr.CFTimeIndex(cftime.num2date(t, cw.UNITS, "noleap"))
        profile = np.array([np.nanmean(cw.field(s), axis=1) for s in t])
        ref = xr.DataArray(profile, dims=("time", "y"), coords={"time": times}
                           ).resample(time="QS-DEC").mean()
        np.testing.assert_allclose(ds["T_mean_over_x_s_mean"].values, ref.values, rtol=1e-13)
        assert ds["T_mean_over_x_s_mean"].dims == ("time_s", "y")


def test_coordinate_bounds_in_the_file(comm, icomm, shared_dir):
    """xarray reads the bounds as the coordinate's bounds (cf_xarray-style
    lookup through the attribute) from the parallel writer's file."""
    import test_coord_bounds as cb
    path = shared_dir / "coords.h5"
    cb.body(icomm, output=str(path))
    comm.Barrier()
    if comm.rank != 0:
        return
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["lat"].attrs["bounds"] == "lat_bounds" and ds["lat"].attrs["axis"] == "Y"
        np.testing.assert_array_equal(ds[ds["lat"].attrs["bounds"]].values, cb.LAT_B)
        assert ds["ta_mean_over_lon"].dims == ("time", "plev", "lat")


def test_climatology_in_the_file(comm, icomm, shared_dir):
    """A monthly climatology through the parallel writer: a climatological
    time axis (CF 7.4: the ``climatology`` attribute names its bounds), and
    values equal to xarray's groupby("time.month") of the whole series."""
    import cftime
    import test_climatology as tc
    path = shared_dir / "clim.h5"
    steps = 500
    tc.drive(icomm, {"source": "T_mean_over_x", "by": "month", "ops": ["mean", "max"]},
             "360_day", steps, output=str(path))
    comm.Barrier()
    if comm.rank != 0:
        return
    ref = tc.series("360_day", steps)["prof"].groupby("time.month")
    with h5py.File(path, "r") as f:
        assert f["time_c"].attrs["climatology"] == "time_c_bounds"
        assert "bounds" not in f["time_c"].attrs
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(path, engine="h5netcdf", decode_times=coder) as ds:
        assert ds["T_mean_over_x_c_mean"].dims == ("time_c", "y")
        assert [t.month for t in ds["time_c"].values] == list(range(1, 13))
        assert isinstance(ds["time_c"].values[0], cftime.Datetime360Day)
        np.testing.assert_allclose(ds["T_mean_over_x_c_mean"].values, ref.mean().values,
                                   rtol=1e-13)
        # the max of means insitu reduced (numpy's nanmean may differ by an ulp)
        np.testing.assert_allclose(ds["T_mean_over_x_c_max"].values, ref.max().values,
                                   rtol=1e-13)
        assert list(ds["c_samples"].values) == list(ref.count().values[:, 0])
