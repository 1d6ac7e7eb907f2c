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
