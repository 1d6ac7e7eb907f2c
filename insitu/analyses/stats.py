"""Global statistics of a field: count, sum, mean, min, max, std, var, NaN and Inf counts.

Each rank runs the one-pass :func:`~insitu.kernels.moments.moments` kernel on
its interior view; the partials join the step's single batched reduction.
NaN and +-Inf are skipped and counted (``nan_count``, ``inf_count``); the
other statistics are those of the finite values (documented in the README).
``std`` and ``var`` are population values (``ddof=0``).
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels import moments as km
from ..reduction import MAX, MIN, MOMENTS, SUM
from .base import Analysis, Variable

ALL_STATS = ("count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count")
DEFAULT_STATS = ("count", "sum", "mean", "min", "max", "std", "nan_count", "inf_count")
COUNTS = ("count", "nan_count", "inf_count")

_METHOD = {"sum": "sum", "mean": "mean", "min": "minimum", "max": "maximum",
           "std": "standard_deviation", "var": "variance"}
_LONG = {"count": "number of finite values of", "sum": "sum of", "mean": "mean of",
         "min": "minimum of", "max": "maximum of", "std": "standard deviation of",
         "var": "variance of", "nan_count": "number of NaN values of",
         "inf_count": "number of infinite values of"}


class Stats(Analysis):
    kind = "stats"
    schema = s.Record({
        "field": s.Str(doc="the field to summarise"),
        "name": s.Str(default=None, doc="prefix of the output variables; default the field name"),
        "every": s.Int(default=1, minimum=1, doc="run at steps that are multiples of this"),
        "stats": s.ListOf(s.Enum(ALL_STATS), default=list(DEFAULT_STATS), nonempty=True,
                          unique=True, doc="which statistics to write"),
    })

    def bind(self, specs, meta, plan):
        spec = specs[self.cfg["field"]]
        self.stats = tuple(self.cfg["stats"])
        # Slots: moments triple, sum, min, max, NaN and Inf counts.
        self._mom = plan.reserve(MOMENTS)
        self._sum = plan.reserve(SUM)
        self._min = plan.reserve(MIN)
        self._max = plan.reserve(MAX)
        self._nan = plan.reserve(SUM)
        self._inf = plan.reserve(SUM)
        self._local = np.empty(len(km.FIELDS), dtype=np.float64)
        units = meta.get("units", "1")
        long_name = meta.get("long_name") or spec.name
        over = " ".join(f"{d}:" for d in spec.dims)
        self.variables = {}
        out = []
        for stat in self.stats:
            vname = f"{self.name}_{stat}"
            attrs = {"long_name": f"{_LONG[stat]} {long_name}",
                     "units": "1" if stat in COUNTS else
                     (f"({units})2" if stat == "var" and units != "1" else units),
                     "insitu_analysis": self.kind, "insitu_field": spec.name}
            if stat in _METHOD:
                attrs["cell_methods"] = f"{over} {_METHOD[stat]}"
            dtype = np.dtype(np.int64) if stat in COUNTS else np.dtype(np.float64)
            self.variables[stat] = vname
            out.append(Variable(vname, dtype, attrs))
        return out

    def local(self, views, record, step):
        m = km.moments(views[self.cfg["field"]], self._local)
        record[self._mom] = m[km.COUNT]
        record[self._mom + 1] = m[km.MEAN]
        record[self._mom + 2] = m[km.M2]
        record[self._sum] = m[km.SUM]
        record[self._min] = m[km.MIN]
        record[self._max] = m[km.MAX]
        record[self._nan] = m[km.NAN_COUNT]
        record[self._inf] = m[km.INF_COUNT]

    def results(self, record):
        n = record[self._mom]
        empty = n == 0
        values = {
            "count": int(n),
            "sum": record[self._sum],
            "mean": np.nan if empty else record[self._mom + 1],
            "min": np.nan if empty else record[self._min],
            "max": np.nan if empty else record[self._max],
            "var": np.nan if empty else record[self._mom + 2] / n,
            "nan_count": int(record[self._nan]),
            "inf_count": int(record[self._inf]),
        }
        values["std"] = np.sqrt(values["var"])
        return {self.variables[k]: values[k] for k in self.stats}
