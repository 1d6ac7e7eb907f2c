"""Reductions over named dimensions: a zonal mean, a vertical integral...

``{kind: reduce, field: T, over: [x], op: mean}`` writes ``<name>``
(time, *kept dims), here a (y) profile.  Each rank reduces its slab over the
``over`` dims; the partials are combined only among the ranks that hold the
same part of the result (a :class:`~insitu.groups.ReduceGroup` with its own
sub-communicator), and the first rank of each group writes its piece of the
result collectively.  Non-finite values are skipped; a point with no finite
value is NaN.  ``op: sum`` is the plain sum of the finite values (multiply
by a cell thickness in a derived field for an integral).
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels.reduce import reduce_axes
from ..reduction import MAX, MIN, SUM
from .base import Coord, common_keys, Analysis, AnalysisError, Piece, Variable

OPS = ("mean", "sum", "min", "max")


class Reduce(Analysis):
    kind = "reduce"
    schema = s.Record({
        **common_keys(),
        "over": s.ListOf(s.Str(), nonempty=True, unique=True, doc="dims to reduce over"),
        "op": s.Enum(OPS, default="mean"),
    })

    def default_name(self):
        return f"{self.cfg['field']}_{self.cfg['op']}_over_{'_'.join(self.cfg['over'])}"

    def bind(self, ctx):
        spec = ctx.specs[self.cfg["field"]]
        where = f"analyses[{self.index}].over"
        for d in self.cfg["over"]:
            if d not in spec.dims:
                raise AnalysisError(f"{where}: field {spec.name!r} has no dimension {d!r} "
                                    f"(its dims: {', '.join(spec.dims)})")
        kept = tuple(d for d in spec.dims if d not in self.cfg["over"])
        if not kept:
            raise AnalysisError(f"{where}: reducing over every dimension leaves a scalar; "
                                "use kind: stats for global statistics")
        self._axes = tuple(spec.dims.index(d) for d in self.cfg["over"])
        kaxes = [spec.dims.index(d) for d in kept]
        self.group = ctx.group(spec.name, kept, f"analyses[{self.index}]")
        self._kshape = tuple(spec.shape[a] for a in kaxes)
        n = int(np.prod(self._kshape))
        op = self.cfg["op"]
        plan = self.group.plan
        if op in ("mean", "sum"):
            self._a = plan.reserve_many(SUM, n)
            self._c = plan.reserve_many(SUM, n)
        else:
            self._a = plan.reserve_many(MIN if op == "min" else MAX, n)
        self._n = n
        meta = ctx.meta(spec.name)
        methods = {"mean": "mean", "sum": "sum", "min": "minimum", "max": "maximum"}
        # The dims reduced over are gone from the result; CF names them in
        # cell_methods through scalar coordinates spanning their extent.
        self.coords = [c for d in self.cfg["over"]
                       for c in extent_coords(d, spec.global_shape[spec.dims.index(d)],
                                              ctx.coords.get(d))]
        return [Variable(
            self.name, np.dtype(np.float64),
            {"long_name": f"{op} over {', '.join(self.cfg['over'])} of "
                          f"{meta.get('long_name') or spec.name}",
             "units": meta.get("units", "1"),
             "cell_methods": " ".join(f"{d}_extent:" for d in self.cfg["over"])
                             + f" {methods[op]}",
             "coordinates": " ".join(f"{d}_extent" for d in self.cfg["over"]),
             "insitu_analysis": self.kind, "insitu_field": spec.name},
            dims=kept, shape=tuple(spec.global_shape[a] for a in kaxes), distributed=True)]

    def local(self, views, record, step):
        v = views[self.cfg["field"]]
        rec = self.group.plan.record
        op = self.cfg["op"]
        vals, counts = reduce_axes(v, self._axes, "sum" if op in ("mean", "sum") else op)
        rec[self._a:self._a + self._n] = vals.ravel()
        if counts is not None:
            rec[self._c:self._c + self._n] = counts.ravel()

    def results(self, record):
        if not self.group.writer:
            return {self.name: None}
        rec = self.group.plan.record
        a = rec[self._a:self._a + self._n]
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.cfg["op"] in ("mean", "sum"):
                c = rec[self._c:self._c + self._n]
                val = a / c if self.cfg["op"] == "mean" else a.copy()
                val[c == 0] = np.nan
            else:
                val = np.where(np.isinf(a), np.nan, a)
        return {self.name: Piece(self.group.box[0], val.reshape(self._kshape))}


def extent_coords(d: str, n: int, c: dict | None) -> list:
    """``<d>_extent``: a scalar coordinate for the whole of dim ``d`` (``n``
    cells), at its centre, in the units of its ``coords:`` entry ``c`` (with
    its standard_name), or in index units.  The extent is said in
    ``comment``, not in a bounds variable: CF allows one-dimensional bounds
    for a scalar coordinate, but the IOOS compliance checker refuses them."""
    lo, hi = -0.5, n - 0.5
    attrs = {"long_name": f"whole extent of {d}", "units": "1"}
    if c is not None:
        lo, hi = c["start"] + c["step"] * lo, c["start"] + c["step"] * hi
        attrs = {"long_name": f"whole extent of {c.get('long_name') or d}", "units": c["units"]}
        if c.get("standard_name"):
            attrs["standard_name"] = c["standard_name"]
    attrs["comment"] = f"the reduction covers all {n} cells of {d}, from {lo:g} to {hi:g}"
    return [Coord(f"{d}_extent", np.array((lo + hi) / 2), attrs, dims=())]
