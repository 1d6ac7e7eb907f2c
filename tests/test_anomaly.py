"""Anomalies from a climatology file in derived fields (issue 16, item 3):
``T - climatology("clim.h5", "var")`` on fake ranks, against a small
climatology file written here in insitu's layout (a time axis of one row
per month with CF units and calendar, dimension scales, the variable's
``insitu_climatology_by``), and the errors a bad file or call gives.
tests/mpi/test_mpi_anomaly.py runs the real chain: an insitu climatology
run, then an anomaly run, against xarray's groupby("time.month") - clim."""
import h5py
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld
from insitu.options import ConfigError, parse

import perpoint_cases as pc


def write_clim(path, dims=("lat", "lon"), by="month", rows=range(1, 13),
               units=pc.UNITS, calendar=pc.CAL):
    """Row m holds 100 * month + the point's flat index (of the given dims)."""
    shape = tuple(pc.SHAPE[["lat", "lon"].index(d)] for d in dims)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("time_c", data=[15.0 + 30.0 * (m - 1) for m in rows])
        t.make_scale("time_c")
        t.attrs["units"], t.attrs["calendar"] = units, calendar
        for d, n in zip(dims, shape):
            f.create_dataset(d, data=np.arange(n)).make_scale(d)
        data = np.array([100.0 * m + np.arange(np.prod(shape)).reshape(shape) for m in rows])
        v = f.create_dataset("T_c_mean", data=data)
        v.dims[0].attach_scale(f["time_c"])
        for i, d in enumerate(dims):
            v.dims[i + 1].attach_scale(f[d])
        v.attrs["insitu_climatology_by"] = by
    return {m: data[i] for i, m in enumerate(rows)}


def anomalies(tmp_path, nranks, steps=70, first=10, **kw):
    path = tmp_path / "clim.h5"
    rows = write_clim(path, **kw)
    an = [{"kind": "coarsen", "field": "A", "factors": {"lat": 1}, "name": "Af"}]
    der = {"A": f'T - climatology("{path}", "T_c_mean")'}

    def go(c):
        api_rows = []
        off, shp = pc.box(c.size, c.rank)
        api.init(c, {"fields": {"T": {"dims": ["lat", "lon"]}}, "derived": der,
                     "time": {"units": pc.UNITS, "calendar": pc.CAL}, "analyses": an})
        try:
            api.declare_field("T", np.float64, pc.SHAPE, off, shp)
            sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
            for s in range(first, first + steps):
                api.expose("T", np.ascontiguousarray(pc.field(s)[sl]))
                api_rows.append(api.step(s, float(s))["Af"])
        finally:
            api.finalize()
        return api_rows
    return rows, FakeWorld(nranks).run(go)


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_each_step_subtracts_its_months_row(tmp_path, nranks):
    rows, outs = anomalies(tmp_path, nranks)
    for i, s in enumerate(range(10, 80)):
        month = 1 if s < 31 else 2 if s < 59 else 3
        full = np.full(pc.SHAPE, np.nan)
        for out in outs:
            p = out[i]
            full[tuple(slice(o, o + n) for o, n in zip(p.start, p.values.shape))] = p.values
        T = pc.field(s)
        want = np.where(np.isfinite(T), T - rows[month], np.nan)
        np.testing.assert_array_equal(full, want)


def test_a_zonal_climatology_broadcasts_and_a_missing_month_is_nan(tmp_path):
    rows, outs = anomalies(tmp_path, 3, steps=40, first=20, dims=("lat",), rows=[1, 3])
    p = outs[0][0]          # step 20: January
    T = pc.field(20)[tuple(slice(o, o + n) for o, n in zip(p.start, p.values.shape))]
    lat = slice(p.start[0], p.start[0] + p.values.shape[0])
    want = np.where(np.isfinite(T), T - rows[1][lat, None], np.nan)
    np.testing.assert_array_equal(p.values, want)
    assert np.isnan(outs[0][15].values).all()    # step 35: February, not in the file


def test_errors_name_the_derived_field_the_file_and_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"derived\.A: .*not a CF time unit"):
        parse({"derived": {"A": 'T - climatology("c.h5", "v")'}, "analyses": [{"kind": "stats", "field": "A"}]})
    with pytest.raises(ConfigError, match=r"derived\.A: climatology\(1, 'v'\): expected"):
        parse({"derived": {"A": 'T - climatology(1, "v")'},
               "time": {"units": pc.UNITS}, "analyses": [{"kind": "stats", "field": "A"}]})
    with pytest.raises(ConfigError, match=r"derived\.A: climatology\(.*nowhere.h5.*cannot open"):
        FakeWorld(1).run(lambda c: _one(c, tmp_path / "nowhere.h5", "T_c_mean"))
    path = tmp_path / "clim.h5"
    write_clim(path, dims=("lon",))
    with pytest.raises(ConfigError, match=r"no variable 'T_x' \(its climatologies: T_c_mean\)"):
        FakeWorld(1).run(lambda c: _one(c, path, "T_x"))
    write_clim(path, dims=("lon", "lat"))
    FakeWorld(2).run(lambda c: _one(c, path, "T_c_mean"))    # transposed dims are fine
    with h5py.File(path, "a") as f:
        del f["T_c_mean"].attrs["insitu_climatology_by"]
    with pytest.raises(ConfigError, match=r"is not an insitu climatology"):
        FakeWorld(1).run(lambda c: _one(c, path, "T_c_mean"))


def _one(c, path, var):
    api.init(c, {"fields": {"T": {"dims": ["lat", "lon"]}},
                 "derived": {"A": f'T - climatology("{path}", "{var}")'},
                 "time": {"units": pc.UNITS, "calendar": pc.CAL},
                 "analyses": [{"kind": "stats", "field": "A", "stats": ["mean"]}]})
    try:
        off, shp = pc.box(c.size, c.rank)
        api.declare_field("T", np.float64, pc.SHAPE, off, shp)
        api.expose("T", np.zeros(shp))
        api.step(1, 1.0)
    finally:
        api.finalize()
