"""Coordinates from ``coords:`` land in the file with their CF attributes:
bounds where the config gives them (replay takes them from the files), and
the ``axis``/``positive`` that a standard_name implies (issue 14's
"coordinates land in the output with CF attributes")."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

LAT = [-60.0, -20.0, 20.0, 60.0]
LAT_B = [[-90.0, -40.0], [-40.0, 0.0], [0.0, 40.0], [40.0, 90.0]]
PLEV = [100000.0, 85000.0, 50000.0]


def config(output=None):
    return {"fields": {"ta": {"dims": ["plev", "lat", "lon"], "units": "K"}},
            "coords": {"lat": {"values": LAT, "bounds": LAT_B, "units": "degrees_north",
                               "standard_name": "latitude"},
                       "plev": {"values": PLEV, "units": "Pa", "standard_name": "air_pressure"},
                       "lon": {"start": 0.0, "step": 90.0, "units": "degrees_east",
                               "standard_name": "longitude"}},
            "analyses": [{"kind": "reduce", "field": "ta", "over": ["lon"]}],
            "output": {"overwrite": True}}


def body(comm, output=None):
    shape = (3, 4, 4)
    rows = np.array_split(np.arange(shape[1]), comm.size)[comm.rank]
    s = api.init(comm, config(), output=output)
    try:
        api.declare_field("ta", np.float64, shape, (0, int(rows[0]) if len(rows) else 0, 0),
                          (3, len(rows), 4))
        api.expose("ta", np.ascontiguousarray(np.ones(shape)[:, rows]))
        api.step(0, 0.0)
        return s.writer
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 3])
def test_coordinate_bounds_and_axes(nranks):
    w = FakeWorld(nranks).run(body)[0]
    lat, b = w.coords["lat"], w.coords["lat_bounds"]
    assert lat.attrs["bounds"] == "lat_bounds" and lat.attrs["axis"] == "Y"
    assert b.dims == ("lat", "nv")
    np.testing.assert_array_equal(b.values, LAT_B)
    np.testing.assert_array_equal(lat.values, LAT)
    assert w.coords["plev"].attrs["axis"] == "Z" and w.coords["plev"].attrs["positive"] == "down"
    assert "bounds" not in w.coords["plev"].attrs   # none given, none invented
    assert w.coords["lon"].attrs["axis"] == "X"
