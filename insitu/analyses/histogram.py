"""Histograms with exact integer counts, and quantiles derived from them.

``{kind: histogram, field: T, bins: 200, range: [250, 330],
quantiles: [0.05, 0.5, 0.95]}`` writes, per output step:

``<name>``          (time, <name>_bin) int64 counts (numpy's bin rule)
``<name>_below``    (time) values below the range (-Inf included)
``<name>_above``    (time) values above the range (+Inf included)
``<name>_quantile`` (time, <name>_q) quantiles from the counts, linear
                    within a bin: accurate to one bin width (the
                    ``resolution`` attribute); NaN if out of range

Counts travel as float64 SUM slots of the step's one reduction: exact up to
2**53 per bin.

``weights:`` (the forms of :mod:`insitu.analyses.weights`) makes every
count a sum of weights (``numpy.histogram(x, weights=w)``): an
area-weighted distribution with cell areas or ``coslat``.  The counts are
then float64 in the weights' units, ``_below`` and ``_above`` too, and the
quantiles follow the weighted distribution: the q-quantile is where the
cumulative weight reaches ``q`` times the total weight, interpolated
linearly within its bin as without weights.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels import histogram as kh
from ..kernels.weighted import weighted_histogram
from ..reduction import SUM
from . import region as rg
from . import weights as wt
from .base import common_keys, Analysis, Coord, Variable


class Histogram(Analysis):
    kind = "histogram"
    schema = s.Record({
        **common_keys(),
        "bins": s.Int(minimum=1, doc="number of equal bins"),
        "range": s.ListOf(s.Num(), doc="[low, high] of the bins"),
        "quantiles": s.ListOf(s.Num(minimum=0.0, maximum=1.0, open_range=True), default=[],
                              unique=True, doc="quantiles to derive, each in (0, 1)"),
        "region": rg.SCHEMA,
        "weights": wt.schema(),
    }, check=lambda cfg, path: _check_range(cfg["range"], f"{path}.range"))

    def default_name(self):
        return f"{self.cfg['field']}_hist"

    @property
    def fields(self):
        return (self.cfg["field"], *wt.fields(self.cfg.get("weights")))

    def bind(self, ctx):
        where = f"analyses[{self.index}]"
        rng = self.cfg["range"]  # [low, high], checked by the schema
        spec = ctx.specs[self.cfg["field"]]
        self._slices = rg.local_slices(spec, rg.box(spec, self.cfg["region"], where, ctx.coords))
        self._weights = wt.bind(self.cfg["weights"], spec, ctx, f"{where}.weights")
        self.lo, self.hi = rng
        nb = self.cfg["bins"]
        self.edges = np.linspace(self.lo, self.hi, nb + 1)
        self._start = ctx.plan.reserve_many(SUM, nb + 2)
        self._local = np.zeros(nb + 2)
        meta = ctx.meta(spec.name)
        units = meta.get("units", "1")
        label = meta.get("long_name") or spec.name
        b, q = f"{self.name}_bin", f"{self.name}_q"
        self.coords = [
            Coord(b, (self.edges[:-1] + self.edges[1:]) / 2,
                  {"long_name": f"bin centre of {label}", "units": units,
                   "bounds": f"{b}_bounds"}),
            Coord(f"{b}_bounds", np.stack([self.edges[:-1], self.edges[1:]], axis=1),
                  {}, dims=(b, "nv")),  # CF 7.1: bounds take their units from the bins
        ]
        over = "area:"  # over the whole field (or region): CF 7.3.4, whatever its dims
        common = {"insitu_analysis": self.kind, "insitu_field": spec.name}
        ctype, cunits, what, method = np.dtype(np.int64), "1", "number of values", "(count)"
        if self._weights is not None:
            # Sums of weights: float64, in the weights' units.
            ctype, cunits = np.dtype(np.float64), self._weights.units
            what = "summed weight of the values"
            method = f"(count weighted by {self._weights.label})"
        out = [
            Variable(self.name, ctype,
                     {"long_name": ("weighted " if self._weights is not None else "")
                                   + f"histogram of {label}", "units": cunits,
                      "cell_methods": f"{over} sum {method}", **common},
                     dims=(b,), shape=(nb,)),
            Variable(f"{self.name}_below", ctype,
                     {"long_name": f"{what} of {label} below {self.lo}",
                      "units": cunits, **common}),
            Variable(f"{self.name}_above", ctype,
                     {"long_name": f"{what} of {label} above {self.hi}",
                      "units": cunits, **common}),
        ]
        if self.cfg["quantiles"]:
            self.coords.append(Coord(q, np.array(self.cfg["quantiles"]),
                                     {"long_name": "quantile level", "units": "1"}))
            out.append(Variable(
                f"{self.name}_quantile", np.dtype(np.float64),
                {"long_name": f"quantiles of {label} from the "
                              + ("weighted " if self._weights is not None else "")
                              + "histogram", "units": units,
                 "resolution": float(self.edges[1] - self.edges[0]),
                 "comment": "linear interpolation within a histogram bin: accurate to one "
                            "bin width; NaN where the quantile lies outside the range",
                 **common}, dims=(q,), shape=(len(self.cfg["quantiles"]),)))
        return out

    def local(self, views, record, step):
        full = views[self.cfg["field"]]
        view = full[self._slices]
        if self._weights is None:
            kh.histogram(view, self.lo, self.hi, self.cfg["bins"], self._local)
        else:
            w = self._weights.view(views, full.shape)[self._slices]
            weighted_histogram(view, w, self.lo, self.hi, self.cfg["bins"], self._local)
        record[self._start:self._start + self._local.size] = self._local

    def results(self, record):
        r = record[self._start:self._start + self.cfg["bins"] + 2]
        counts = r[1:-1]
        if self._weights is None:
            out = {self.name: counts.astype(np.int64), f"{self.name}_below": int(r[0]),
                   f"{self.name}_above": int(r[-1])}
        else:
            out = {self.name: counts.copy(), f"{self.name}_below": float(r[0]),
                   f"{self.name}_above": float(r[-1])}
        if self.cfg["quantiles"]:
            out[f"{self.name}_quantile"] = kh.quantiles_from_counts(
                counts, r[0], r[-1], self.edges, self.cfg["quantiles"])
        return out


def _check_range(rng, path):
    if len(rng) != 2 or not rng[0] < rng[1]:
        raise s.ConfigError(f"{path}: expected [low, high] with low < high, got {rng}")
