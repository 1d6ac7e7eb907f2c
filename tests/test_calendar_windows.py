"""Calendar windows (issue 16, item 2): days, months, seasons and years of
the model's CF calendar, against xarray's ``resample`` on the whole series
(an independent truth: xarray's own cftime grouping, not insitu's)."""
import cftime
import numpy as np
import pytest
import xarray as xr

from insitu import api
from insitu.calendar import CalendarPeriods
from insitu.comm import FakeWorld
from insitu.options import ConfigError

UNITS = "days since 2000-01-01"
SHAPE = (7, 5)
#: xarray's resample frequency of each period ("QS-DEC": DJF with December
#: in the following year's season)
FREQ = {"day": "D", "month": "MS", "season": "QS-DEC", "year": "YS"}


def field(step):
    j, i = np.indices(SHAPE, dtype=np.float64)
    f = 280.0 + 10.0 * np.sin(0.013 * step + 0.3 * i) + 0.5 * j
    if step % 7 == 3:
        f[1, 2] = np.nan  # NaN cells: stats skip them, so does the truth
    return f


def drive(comm, window, calendar, steps, dt, first=0, output=None, extra=()):
    rows = np.array_split(np.arange(SHAPE[0]), comm.size)[comm.rank]   # uneven at 3
    s = api.init(comm, {"fields": {"T": {"dims": ["y", "x"], "units": "K"}},
                        "time": {"units": UNITS, "calendar": calendar},
                        "output": {"overwrite": True},
                        "analyses": [{"kind": "stats", "field": "T", "stats": ["mean", "max"]},
                                     {"kind": "window", "source": "T", "name": "w",
                                      "ops": ["mean", "max"], **window}, *extra]},
                 output=output)
    try:
        api.declare_field("T", np.float64, SHAPE, (int(rows[0]) if len(rows) else 0, 0),
                          (len(rows), SHAPE[1]))
        for step in range(first, steps + 1):
            api.expose("T", np.ascontiguousarray(field(step)[rows]))
            api.step(step, step * dt)
        return s.writer.axes.get("time_w", [])
    finally:
        api.finalize()


def truth(calendar, period, steps, dt, first=0):
    """xarray's resample of the per-step nanmean/nanmax series: per group,
    (start, end, count, mean, max) with start/end in UNITS."""
    t = np.arange(first, steps + 1) * dt
    times = cftime.num2date(t, UNITS, calendar)
    mean = [np.nanmean(field(s)) for s in range(first, steps + 1)]
    mx = [np.nanmax(field(s)) for s in range(first, steps + 1)]
    da = xr.Dataset({"mean": ("time", mean), "max": ("time", mx)},
                    coords={"time": xr.CFTimeIndex(times)})
    r = da.resample(time=FREQ[period])
    means, maxes, counts = r.mean(), r.max(), r.count()
    out = []
    starts = list(means["time"].values)
    for k, st in enumerate(starts):
        start = float(cftime.date2num(st, UNITS, calendar))
        if k + 1 < len(starts):
            end = float(cftime.date2num(starts[k + 1], UNITS, calendar))
        else:  # the last group's end: the next period's start
            p = CalendarPeriods(period, UNITS, calendar)
            end = p.bounds(p.next(p.key(start)))[0]
        out.append((start, end, int(counts["mean"].values[k]), float(means["mean"].values[k]),
                    float(maxes["max"].values[k])))
    return out


@pytest.mark.parametrize("calendar,period,steps,dt", [
    ("noleap", "month", 800, 1.0),
    ("360_day", "month", 400, 1.0),
    ("noleap", "season", 800, 1.0),
    ("360_day", "season", 760, 1.0),
    ("proleptic_gregorian", "year", 1200, 1.0),
    ("noleap", "day", 40, 0.25),
    ("standard", "month", 500, 0.5),
])
@pytest.mark.parametrize("nranks", [1, 3])
def test_calendar_windows_equal_xarray_resample(calendar, period, steps, dt, nranks):
    wins = FakeWorld(nranks).run(
        lambda c: drive(c, {"calendar_period": period}, calendar, steps, dt))[0]
    last = steps * dt
    want = [g for g in truth(calendar, period, steps, dt)
            if g[0] >= 0.0 and g[1] <= last]     # whole: covered by the run's times
    assert len(want) >= 3, "the case must hold several whole periods"
    assert [w[2] for w in wins] == [(g[0], g[1]) for g in want]   # bounds, exactly
    for (step, time, bounds, values), g in zip(wins, want):
        assert time == g[1]
        assert values["w_samples"] == g[2]
        assert values["T_mean_w_mean"] == pytest.approx(g[3], rel=1e-13)
        assert values["T_max_w_max"] == g[4]


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_partial_periods_are_written_with_their_count_when_asked(calendar):
    """complete_only: false writes the partial first season (DJF began in
    December 1999, the run on 2000-01-01) and the last one, with how many
    outputs each holds; the default drops them."""
    steps = 500
    full = truth(calendar, "season", steps, 1.0)
    got = FakeWorld(2).run(lambda c: drive(c, {"calendar_period": "season",
                                                "complete_only": False},
                                           calendar, steps, 1.0))[0]
    assert [w[2] for w in got] == [(g[0], g[1]) for g in full]
    assert [int(w[3]["w_samples"]) for w in got] == [g[2] for g in full]
    assert full[0][0] < 0 and full[-1][1] > steps   # both ends really are partial
    for w, g in zip(got, full):
        assert w[3]["T_mean_w_mean"] == pytest.approx(g[3], rel=1e-13)
    dropped = FakeWorld(2).run(lambda c: drive(c, {"calendar_period": "season"},
                                               calendar, steps, 1.0))[0]
    assert [w[2] for w in dropped] == [w[2] for w in got[1:-1]]


def test_month_boundary_rounding():
    """A model time a hair below a month's start (a model adding dt = 0.2
    day 155 times reaches 30.999999999999922) belongs to the new month, as
    ``period:`` windows count it."""
    p = CalendarPeriods("month", UNITS, "noleap")
    t = 0.0
    for _ in range(155):
        t += 0.2
    assert t < 31.0 and p.key(t) == (2000, 2)
    # cftime itself rounds to the microsecond; a longer run drifts further
    # (a century of dt = 0.1 additions is ~1e-7 days off), within 1e-9
    # relative of the boundary is on it, and further is not
    assert p.key(31.0 - 1e-8) == (2000, 2)
    assert p.key(30.9999) == (2000, 1)
    assert p.bounds((2000, 2)) == (31.0, 59.0)           # noleap: February has 28 days
    assert CalendarPeriods("month", UNITS, "360_day").bounds((2000, 2)) == (30.0, 60.0)
    s = CalendarPeriods("season", UNITS, "noleap")
    assert s.key(-1.0) == (2000, 0) and s.key(0.0) == (2000, 0)   # Dec 1999 -> DJF 2000
    assert s.bounds((2000, 0)) == (-31.0, 59.0)


@pytest.mark.parametrize("window,time_cfg,message", [
    ({"calendar_period": "month"}, {"units": "s"},
     r"analyses\[1\].calendar_period: time.units 's' is not a CF time unit"),
    ({"calendar_period": "month", "steps": 3}, {"units": UNITS},
     r"analyses\[1\]: give exactly one of steps, period or calendar_period \(got steps, "
     r"calendar_period\)"),
    ({"calendar_period": "fortnight"}, {"units": UNITS}, r"analyses\[1\].calendar_period"),
    ({"steps": 3, "complete_only": False}, {"units": UNITS},
     r"analyses\[1\].complete_only: false needs period or calendar_period"),
])
def test_bad_calendar_windows_are_refused(window, time_cfg, message):
    from insitu.analyses import AnalysisError

    def body(comm):
        api.init(comm, {"fields": {"T": {"dims": ["y", "x"]}}, "time": time_cfg,
                        "analyses": [{"kind": "stats", "field": "T"},
                                     {"kind": "window", "source": "T", **window}]})
        try:
            api.declare_field("T", np.float64, SHAPE, (0, 0), SHAPE)
            api.expose("T", field(0))
            api.step(0, 0.0)
        finally:
            api.finalize()

    with pytest.raises((ConfigError, AnalysisError), match=message):
        FakeWorld(1).run(body)
