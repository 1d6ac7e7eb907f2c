"""Climatologies (issue 16, item 3) against xarray's groupby on the whole
series: ``groupby("time.month")``, ``"time.season"``, ``"time.dayofyear"``,
in noleap and 360_day calendars, at 1 and 3 ranks (uneven), scalars and
distributed profiles, NaN cells present."""
import cftime
import numpy as np
import pytest
import xarray as xr

from insitu import api
from insitu.comm import FakeWorld
from insitu.options import ConfigError

import test_calendar_windows as cw

SEASONS = ["DJF", "MAM", "JJA", "SON"]


def drive(comm, clim, calendar, steps, dt=1.0, output=None):
    rows = np.array_split(np.arange(cw.SHAPE[0]), comm.size)[comm.rank]
    s = api.init(comm, {"fields": {"T": {"dims": ["y", "x"], "units": "K"}},
                        "time": {"units": cw.UNITS, "calendar": calendar},
                        "output": {"overwrite": True},
                        "analyses": [{"kind": "stats", "field": "T", "stats": ["mean", "max"]},
                                     {"kind": "reduce", "field": "T", "over": ["x"]},
                                     {"kind": "climatology", "name": "c", **clim}]},
                 output=output)
    try:
        api.declare_field("T", np.float64, cw.SHAPE, (int(rows[0]) if len(rows) else 0, 0),
                          (len(rows), cw.SHAPE[1]))
        for step in range(0, steps + 1):
            api.expose("T", np.ascontiguousarray(cw.field(step)[rows]))
            api.step(step, step * dt)
        return s.writer
    finally:
        api.finalize()


def series(calendar, steps, dt=1.0):
    t = np.arange(0, steps + 1) * dt
    times = xr.CFTimeIndex(cftime.num2date(t, cw.UNITS, calendar))
    fields = [cw.field(s) for s in range(0, steps + 1)]
    return xr.Dataset({"mean": ("time", [np.nanmean(f) for f in fields]),
                       "max": ("time", [np.nanmax(f) for f in fields]),
                       "prof": (("time", "y"), [np.nanmean(f, axis=1) for f in fields])},
                      coords={"time": times})


@pytest.mark.parametrize("calendar,by,steps", [
    ("noleap", "month", 800), ("360_day", "month", 800), ("noleap", "season", 800),
    ("360_day", "season", 500), ("noleap", "dayofyear", 800)])
@pytest.mark.parametrize("nranks", [1, 3])
def test_climatology_equals_xarray_groupby(calendar, by, steps, nranks):
    outs = FakeWorld(nranks).run(lambda c: drive(
        c, {"source": "T", "by": by, "ops": ["mean", "max", "var"]}, calendar, steps))
    rows = outs[0].axes["time_c"]
    g = series(calendar, steps).groupby(f"time.{by}")
    mean, mx, var, n = g.mean(), g.max(), g.var(), g.count()
    labels = list(mean[by].values)
    if by == "season":  # xarray sorts the labels; insitu writes DJF, MAM, JJA, SON
        order = [labels.index(x) for x in SEASONS if x in labels]
    else:
        order = list(range(len(labels)))
    assert len(rows) == len(order) == {"month": 12, "season": 4, "dayofyear": 365 if
                                       calendar == "noleap" else 360}[by]
    for (step, time, bounds, values), k in zip(rows, order):
        assert values["c_samples"] == int(n["mean"].values[k])
        assert values["T_mean_c_mean"] == pytest.approx(float(mean["mean"].values[k]), rel=1e-13)
        assert values["T_max_c_max"] == float(mx["max"].values[k])
        assert values["T_mean_c_var"] == pytest.approx(float(var["mean"].values[k]),
                                                       rel=1e-9, abs=1e-12)
    # climatology bounds: the first period's start, the last period's end;
    # the time is the middle of the first period
    if by == "month" and steps == 800:  # January: Jan 2000 to the end of Jan 2002
        year, jan = (365.0, 31.0) if calendar == "noleap" else (360.0, 30.0)
        assert rows[0][2] == (0.0, 2 * year + jan)
        assert rows[0][1] == jan / 2
    assert all(b[0] < t < b[1] for _, t, b, _ in rows)


def test_climatology_of_a_distributed_profile():
    """Each rank keeps its piece of the y-profile per month; the pieces
    assembled equal xarray's groupby on the whole profile."""
    steps = 400
    outs = FakeWorld(3).run(lambda c: drive(c, {"source": "T_mean_over_x", "by": "month"},
                                            "noleap", steps))
    ref = series("noleap", steps)["prof"].groupby("time.month").mean()
    rows = [w.axes["time_c"] for w in outs]
    for k in range(12):
        full = np.full(cw.SHAPE[0], np.nan)
        for r in rows:
            p = r[k][3]["T_mean_over_x_c_mean"]
            if p is not None:
                full[p.start[0]:p.start[0] + p.values.shape[0]] = p.values
        np.testing.assert_allclose(full, ref.values[k], rtol=1e-13)


def test_climatology_needs_a_calendar():
    from insitu.options import parse
    with pytest.raises(ConfigError, match=r"analyses\[1\].by: time.units '1' is not a CF"):
        parse({"analyses": [{"kind": "stats", "field": "T"},
                            {"kind": "climatology", "source": "T", "by": "month"}]})
    with pytest.raises(ConfigError, match=r"analyses\[1\].by"):
        parse({"time": {"units": cw.UNITS},
               "analyses": [{"kind": "stats", "field": "T"},
                            {"kind": "climatology", "source": "T", "by": "week"}]})
