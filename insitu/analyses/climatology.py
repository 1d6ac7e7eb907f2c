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

Slots are those of xarray's ``groupby("time.month")``, ``"time.season"``
(DJF, MAM, JJA, SON) and ``"time.dayofyear"`` (1..365 in ``noleap``, 1..360
in ``360_day``, 1..366 in leap years of the standard calendars), and the
values equal that groupby's reduction of the source's series.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import schema as s
from ..calendar import CalendarPeriods, tolerance
from .base import Axis, Piece, Variable
from .window import OPS, Row, Window, _Acc

BY = ("month", "season", "dayofyear")
_PERIOD = {"month": "month", "season": "season", "dayofyear": "day"}
_CF = {"mean": "mean", "min": "minimum", "max": "maximum", "var": "variance"}

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
        from .base import AnalysisError
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
        self._vars = [v for v in source_vars if v.axis == "time"]
        if not self._vars:
            raise AnalysisError(f"{self.where}.source: {source.where} writes no variables")
        ax = self.axis.name
        out = []
        for v in self._vars:
            for op in self.cfg["ops"]:
                attrs = {**{k: val for k, val in v.attrs.items() if k != "coordinates"},
                         "long_name": f"climatological {op} by {self.cfg['by']} of "
                                      f"{v.attrs.get('long_name', v.name)}",
                         "insitu_analysis": self.kind}
                cm = f"{ax}: {_CF[op]} within years {ax}: {_CF[op]} over years"
                attrs["cell_methods"] = (attrs.get("cell_methods", "") + " " + cm).strip()
                if op == "var" and attrs.get("units", "1") != "1":
                    attrs["units"] = f"({attrs['units']})2"
                if op == "var":
                    attrs["insitu_ddof"] = int(self.cfg["ddof"])
                out.append(Variable(f"{v.name}_{self.name}_{op}", np.dtype(np.float64), attrs,
                                    dims=v.dims, shape=v.shape, distributed=v.distributed,
                                    axis=ax))
        out.append(Variable(self.samples_name, np.dtype(np.int32), {
            "long_name": f"outputs of {source.name} in each {self.cfg['by']} of the "
                         f"{self.name} climatology", "units": "1",
            "insitu_analysis": self.kind}, axis=ax))
        self.slots: dict = {}
        self.dropped = []
        return out

    def slot(self, time: float) -> int:
        """xarray's ``time.month`` / season index (DJF=0) / ``time.dayofyear``."""
        d = self.periods._date(time + tolerance(time))
        by = self.cfg["by"]
        if by == "month":
            return d.month
        if by == "season":
            return (d.month % 12) // 3
        return d.dayofyr

    def follow(self, step, time, values):
        k = self.slot(time)
        key = self.periods.key(time)
        start, end = self.periods.bounds(key)
        sl = self.slots.get(k)
        if sl is None:
            sl = _Slot(key, start, end, 0, {})
        sl = sl._replace(start=min(sl.start, start), end=max(sl.end, end), count=sl.count + 1)
        for v in self._vars:
            x = values.get(v.name)
            if v.distributed:
                if x is None:
                    sl.acc.setdefault(v.name, None)
                    continue
                if sl.acc.get(v.name) is None:
                    sl.acc[v.name] = (x.start, _Acc(x.values.shape))
                sl.acc[v.name][1].add(x.values)
            else:
                if v.name not in sl.acc:
                    sl.acc[v.name] = _Acc(np.shape(x))
                sl.acc[v.name].add(x)
        self.slots[k] = sl
        return None  # written at the end

    def finish(self, step, time):
        """One row per slot that saw an output, in slot order."""
        rows = []
        for k in sorted(self.slots):
            sl = self.slots[k]
            values = {self.samples_name: np.int32(sl.count)}
            for v in self._vars:
                acc = sl.acc.get(v.name)
                for op in self.cfg["ops"]:
                    out = f"{v.name}_{self.name}_{op}"
                    val = None if acc is None else (acc[1] if v.distributed else acc)
                    val = None if val is None else val.value(op, self.cfg["ddof"])
                    if v.distributed:
                        values[out] = None if acc is None else Piece(acc[0], val)
                    else:
                        values[out] = np.nan if val is None else val
            a, b = self.periods.bounds(sl.first_key)
            rows.append(Row(values, (sl.start, sl.end), 0.5 * (a + b)))
        self.slots = {}
        return rows
