"""Climatologies: a running per-element mean (or min, max, var) of another
analysis's results for each calendar slot -- each month, season or day of
the year -- over the whole run, written at the end (CF section 7.4).

::

    - {kind: climatology, source: T_mean_over_lon, by: month}

This is the mean annual cycle that users otherwise store every field to
compute.  It follows its source as a window does (:mod:`.window`): each
output of the source goes, by its model time in the config's CF calendar,
into its slot's accumulator (the same compensated Chan merge, NaN skipped
per element).  At finalize one row per slot that saw an output is written
along ``time_<name>``: its time is the middle of the slot's first period
(mid-January of the first year), and ``climatology_bounds_<name>`` holds the
start of the slot's first period and the end of its last (January 1960 to
the end of January 1990), so that xarray and CF readers see a climatological
time axis.  ``<name>_samples`` holds each slot's number of outputs.

Its ``cell_methods`` are the source's, then ``time_<name>: m within years
time_<name>: m over years`` (CF 7.4's form, in CF 7.3's order: the
source's reduction was applied first).  The name is the climatological
axis, not the literal ``time`` of CF's examples: a cell method names a
dimension of the variable (CF 7.3; the conformance rules let only a
climatological dimension occur twice), and the run's own ``time`` is
another axis of the same file.  The IOOS checker reads 7.4 literally
(``time:``, nothing before it) and says so for every climatology
(tests/test_latlon.py checks the CF form and lets that one message through).

Slots are those of xarray's ``groupby("time.month")``, ``"time.season"``
(DJF, MAM, JJA, SON) and ``"time.dayofyear"`` (1..365 in ``noleap``, 1..360
in ``360_day``, 1..366 in leap years of the standard calendars), and the
values equal that groupby's reduction of the source's series.
"""
from __future__ import annotations

from collections import namedtuple

from .. import schema as s
from ..calendar import CalendarPeriods, tolerance
from .base import AnalysisError, Axis
from .window import CF_OPS, OPS, Row, Window

BY = ("month", "season", "dayofyear")
_PERIOD = {"month": "month", "season": "season", "dayofyear": "day"}

_Slot = namedtuple("_Slot", "first_key start end count acc")


class Climatology(Window):
    kind = "climatology"
    schema = s.Record({
        "source": s.Str(doc="the name of the analysis to aggregate"),
        "name": s.Name(default=None),
        "by": s.Enum(BY, doc="the calendar slot: month, season (DJF...) or dayofyear"),
        "ops": s.ListOf(s.Enum(OPS), default=["mean"], nonempty=True, unique=True),
        "ddof": s.Int(default=0, minimum=0,
                      doc="delta degrees of freedom of var: 0 population, 1 sample"),
    })

    def default_name(self):
        return f"clim_{self.cfg['by']}"

    def bind_window(self, source, source_vars, time_cfg=None):
        self.source = source
        t = time_cfg or {}
        try:
            self.periods = CalendarPeriods(_PERIOD[self.cfg["by"]], t.get("units") or "1",
                                           t.get("calendar"))
        except ValueError as exc:
            raise AnalysisError(f"{self.where}.by: {exc}") from None
        self.axis = Axis(f"time_{self.name}", f"step_{self.name}",
                         long_name=f"{self.cfg['by']} of the {self.name} climatology",
                         bounds=True, climatology=True)
        ax, by = self.axis.name, self.cfg["by"]
        out = self._variables(
            source, source_vars, lambda op, of: f"climatological {op} by {by} of {of}",
            lambda op: f"{ax}: {CF_OPS[op]} within years {ax}: {CF_OPS[op]} over years",
            f"outputs of {source.name} in each {by} of the {self.name} climatology")
        for v in out:   # what a reader (insitu.climatology_file) groups model time by
            v.attrs["insitu_climatology_by"] = by
        self.slots: dict = {}
        self.dropped = []
        return out

    def slot(self, time: float) -> int:
        """xarray's ``time.month`` / season index (DJF=0) / ``time.dayofyear``."""
        return slot_of(self.periods, self.cfg["by"], time)

    def follow(self, step, time, values):
        if getattr(self, "_pending", False):  # the first output after a restart
            for sl in self.slots.values():
                self._resolve_pending(sl.acc, values)
            self._pending = False
        k = self.slot(time)
        key = self.periods.key(time)
        start, end = self.periods.bounds(key)
        sl = self.slots.get(k)
        if sl is None:
            sl = _Slot(key, start, end, 0, {})
        sl = sl._replace(start=min(sl.start, start), end=max(sl.end, end), count=sl.count + 1)
        self._accumulate(sl.acc, values)
        self.slots[k] = sl
        return None  # written at the end

    def finish(self, step, time):
        """One row per slot that saw an output, in slot order."""
        rows = []
        for k in sorted(self.slots):
            sl = self.slots[k]
            a, b = self.periods.bounds(sl.first_key)
            rows.append(Row(self._results(sl.acc, sl.count), (sl.start, sl.end),
                            0.5 * (a + b)))
        self.slots = {}
        return rows

    def state(self):
        """Every slot's first period, bounds, count and partials."""
        arrays, slots = {}, []
        for k in sorted(self.slots):
            sl = self.slots[k]
            slots.append([k, sl.first_key, sl.start, sl.end, sl.count,
                          self._acc_state(sl.acc, f"{k}/", arrays)])
        return {"slots": slots, "dropped": self.dropped}, arrays

    def restore(self, meta, arrays) -> None:
        from .window import _key
        self.slots = {}
        for k, first, start, end, count, has in meta["slots"]:
            self.slots[k] = _Slot(_key(first), start, end, count,
                                  self._acc_restore(has, f"{k}/", arrays))
        self.dropped = [tuple(d) for d in meta["dropped"]]
        self._pending = True


def slot_of(periods: CalendarPeriods, by: str, time: float) -> int:
    """The climatology slot of model ``time`` (in ``periods``' units and
    calendar): xarray's ``time.month``, the season index (DJF=0, MAM, JJA,
    SON) or ``time.dayofyear``."""
    d = periods._date(time + tolerance(time))
    if by == "month":
        return d.month
    if by == "season":
        return (d.month % 12) // 3
    return d.dayofyr
