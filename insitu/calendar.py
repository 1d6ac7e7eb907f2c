"""Calendar periods of model time: days, months, seasons and years in the
model's own CF calendar (``noleap``, ``360_day``, ``proleptic_gregorian``...).

Pure functions over cftime, so that window grouping can be tested without
a session.  A period is named by a key that sorts in time order:

- ``day``: ``(year, month, day)``
- ``month``: ``(year, month)``
- ``season``: ``(year, s)`` with s = 0 DJF, 1 MAM, 2 JJA, 3 SON; December
  belongs to the *following* year's DJF, as xarray's
  ``resample(time="QS-DEC")`` groups it
- ``year``: ``(year,)``

Model times are numbers in the config's ``time.units`` (``days since
2000-01-01``); period bounds are returned in the same units.  A time within
1e-9 (relative) below a period's start counts as in that period, the rule
``period:`` windows follow, so that ``step * dt`` rounding a hair low does
not move an output into the previous month.
"""
from __future__ import annotations

from typing import Tuple

PERIODS = ("day", "month", "season", "year")
#: the default window name of each period
ADJECTIVE = {"day": "daily", "month": "monthly", "season": "seasonal", "year": "yearly"}
#: CF-style words for cell_methods and long names
PLURAL = {"day": "days", "month": "months", "season": "seasons", "year": "years"}
_SEASON_START = (12, 3, 6, 9)   # DJF, MAM, JJA, SON

Key = Tuple[int, ...]


def tolerance(t: float) -> float:
    return 1e-9 * max(1.0, abs(t))


class CalendarPeriods:
    """Keys and bounds of one kind of period in one CF time axis."""

    def __init__(self, period: str, units: str, calendar: str | None) -> None:
        if period not in PERIODS:
            raise ValueError(f"unknown calendar period {period!r}; expected one of {PERIODS}")
        import cftime  # only runs with calendar windows pay for it
        self._cftime = cftime
        self.period = period
        self.units = units
        self.calendar = calendar or "standard"
        if " since " not in f" {units.strip()} ":
            raise ValueError(f"time.units {units!r} is not a CF time unit "
                             "('<unit> since <date>'), so model time has no calendar")
        cftime.num2date(0.0, units, self.calendar)  # raises on a bad unit or calendar

    def _date(self, t: float):
        return self._cftime.num2date(t, self.units, self.calendar)

    def _num(self, d) -> float:
        return float(self._cftime.date2num(d, self.units, self.calendar))

    def key(self, t: float) -> Key:
        """The period holding model time ``t`` (left-closed, right-open)."""
        d = self._date(t + tolerance(t))
        if self.period == "day":
            return (d.year, d.month, d.day)
        if self.period == "month":
            return (d.year, d.month)
        if self.period == "year":
            return (d.year,)
        s = (d.month % 12) // 3          # Dec, Jan, Feb -> 0; Mar-May -> 1; ...
        return (d.year + (d.month == 12), s)

    def _start_date(self, key: Key):
        dt = self._cftime.datetime
        c = self.calendar
        if self.period == "day":
            return dt(*key, calendar=c)
        if self.period == "month":
            return dt(key[0], key[1], 1, calendar=c)
        if self.period == "year":
            return dt(key[0], 1, 1, calendar=c)
        y, s = key
        m = _SEASON_START[s]
        return dt(y - 1 if s == 0 else y, m, 1, calendar=c)

    def next(self, key: Key) -> Key:
        """The period after ``key``."""
        if self.period == "day":
            import datetime
            d = self._start_date(key) + datetime.timedelta(days=1)
            return (d.year, d.month, d.day)
        if self.period == "month":
            y, m = key
            return (y + 1, 1) if m == 12 else (y, m + 1)
        if self.period == "year":
            return (key[0] + 1,)
        y, s = key
        return (y + 1, 0) if s == 3 else (y, s + 1)

    def bounds(self, key: Key) -> tuple[float, float]:
        """``[start, end)`` of the period, in the time units."""
        return self._num(self._start_date(key)), self._num(self._start_date(self.next(key)))

    def label(self, key: Key) -> str:
        if self.period == "season":
            return f"{('DJF', 'MAM', 'JJA', 'SON')[key[1]]} {key[0]}"
        return "-".join(f"{v:02d}" if i else f"{v:04d}" for i, v in enumerate(key))
