"""Point probes: time series of a field at given global indices.

``{kind: probe, field: T, points: [[10, 20], [64, 48]]}`` (indices in the
field's dim order) writes ``<name>`` (time, <name>_point) with the points'
indices as auxiliary coordinates ``<name>_<dim>``.  Each point lives on one
rank; it contributes the value, the others zero, through the step's one
reduction.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..reduction import SUM
from .base import common_keys, Analysis, AnalysisError, Coord, Variable


class Probe(Analysis):
    kind = "probe"
    schema = s.Record({
        **common_keys(),
        "points": s.ListOf(s.ListOf(s.Int(minimum=0)), nonempty=True,
                           doc="global indices, one list per point"),
    })

    def default_name(self):
        return f"{self.cfg['field']}_probe"

    def bind(self, ctx):
        spec = ctx.specs[self.cfg["field"]]
        pts = self.cfg["points"]
        for k, p in enumerate(pts):
            where = f"analyses[{self.index}].points[{k}]"
            if len(p) != spec.ndim:
                raise AnalysisError(f"{where}: {p} has {len(p)} indices, field "
                                    f"{spec.name!r} has dims {spec.dims}")
            for d, i, n in zip(spec.dims, p, spec.global_shape):
                if i >= n:
                    raise AnalysisError(f"{where}: index {i} along {d!r} is outside [0, {n})")
        self._start = ctx.plan.reserve_many(SUM, len(pts))
        # The points this rank owns, as local interior indices.
        self._mine = []
        for k, p in enumerate(pts):
            local = tuple(i - o for i, o in zip(p, spec.offset))
            if all(0 <= li < n for li, n in zip(local, spec.shape)):
                self._mine.append((k, local))
        dim = f"{self.name}_point"
        self.coords = [Coord(f"{self.name}_{d}", np.array([p[a] for p in pts], dtype=np.int64),
                             {"long_name": f"global index along {d} of the probe",
                              "units": "1"}, dims=(dim,))
                       for a, d in enumerate(spec.dims)]
        meta = ctx.meta(spec.name)
        return [Variable(self.name, np.dtype(np.float64),
                         {"long_name": f"{meta.get('long_name') or spec.name} at probe points",
                          "units": meta.get("units", "1"), "insitu_analysis": self.kind,
                          "insitu_field": spec.name,
                          "coordinates": " ".join(c.name for c in self.coords)},
                         dims=(dim,), shape=(len(pts),))]

    def local(self, views, record, step):
        v = views[self.cfg["field"]]
        for k, idx in self._mine:
            record[self._start + k] = v[idx]

    def results(self, record):
        return {self.name: record[self._start:self._start + len(self.cfg["points"])].copy()}
