"""A growing axis with no rows in a non-standard calendar (a trigger that
never fired, a monthly window a short run did not complete) breaks
xarray's default time decoding; ``insitu.inspect.open_dataset`` opens such
a file anyway, with cftime dates."""
import h5py
import numpy as np
import pytest
import xarray as xr

from insitu.inspect import open_dataset


def _file(path, calendar):
    with h5py.File(path, "w") as f:
        for name, n in (("time", 3), ("time_warm", 0)):
            t = f.create_dataset(name, data=np.arange(float(n)), maxshape=(None,))
            t.make_scale(name)
            t.attrs["units"] = "days since 2000-01-01"
            t.attrs["calendar"] = calendar
            v = f.create_dataset(f"x_{name}", data=np.arange(float(n)), maxshape=(None,))
            v.dims[0].attach_scale(t)


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_empty_axis_in_a_model_calendar(tmp_path, calendar):
    path = tmp_path / "e.h5"
    _file(path, calendar)
    with pytest.raises(ValueError, match="unable to decode time units"):
        xr.open_dataset(path, engine="h5netcdf")  # xarray's own limit: if it goes, so can this
    with open_dataset(str(path)) as ds:
        assert ds.sizes["time_warm"] == 0 and ds.sizes["time"] == 3
        assert ds["time"].values[1].strftime("%Y-%m-%d") == "2000-01-02"
        assert ds["time"].values[0].calendar == calendar


def test_standard_calendar_is_decoded_as_before(tmp_path):
    path = tmp_path / "s.h5"
    _file(path, "standard")
    with open_dataset(str(path)) as ds:
        assert ds["time"].dtype.kind == "M"
