"""Reductions over named dimensions: a zonal mean, a vertical integral...

``{kind: reduce, field: T, over: [x], op: mean}`` writes ``<name>``
(time, *kept dims), here a (y) profile.  Each rank reduces its slab over the
``over`` dims; the partials are combined only among the ranks that hold the
same part of the result (a :class:`~insitu.groups.ReduceGroup` with its own
sub-communicator), and the first rank of each group writes its piece of the
result collectively.  Non-finite values are skipped; a point with no finite
value is NaN.  ``op: sum`` is the plain sum of the finite values.

Weights (``weights:``, the forms of :mod:`insitu.analyses.weights`) make
``op: mean`` the weighted mean ``sum(w x) / sum(w)`` and give
``op: integral``, the weighted sum ``sum(w x)`` (a vertical integral with
layer thicknesses ``dp``), both over the finite values; a point of the
result where no finite value has a non-zero weight is NaN.  ``integral``
needs weights, and ``min``/``max``/``sum`` take none (a weighted sum is an
integral), refused in the config with the key path.

``region:`` (the forms of :mod:`insitu.analyses.region`) restricts the
values reduced.  The result keeps the kept dims whole: points of the kept
dims outside the region have no value and are NaN, as
``da.where(in_region).mean(dims)`` gives.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels.reduce import reduce_axes, row_sums_into
from ..kernels.weighted import Accumulation
from ..reduction import MAX, MIN, SUM
from . import region as rg
from . import weights as wt
from .base import Coord, common_keys, Analysis, AnalysisError, Piece, Variable

OPS = ("mean", "sum", "min", "max", "integral")
_METHODS = {"mean": "mean", "sum": "sum", "min": "minimum", "max": "maximum",
            "integral": "sum"}


def _check(cfg, path):
    op, w = cfg["op"], cfg["weights"]
    if op == "integral" and w is None:
        raise s.ConfigError(f"{s.join(path, 'weights')}: op: integral is the weighted sum "
                            "sum(w * x) and needs weights, e.g. {dim: plev, values: [dp, ...], "
                            "units: Pa} (op: sum is the plain sum)")
    if w is not None and op not in ("mean", "integral"):
        hint = "; a weighted sum is op: integral" if op == "sum" else ""
        raise s.ConfigError(f"{s.join(path, 'weights')}: weights apply to op: mean and "
                            f"op: integral, not op: {op}{hint}")


class Reduce(Analysis):
    kind = "reduce"
    schema = s.Record({
        **common_keys(),
        "over": s.ListOf(s.Str(), nonempty=True, unique=True, doc="dims to reduce over"),
        "op": s.Enum(OPS, default="mean"),
        "weights": wt.schema(),
        "region": rg.SCHEMA,
    }, check=_check)

    def default_name(self):
        return f"{self.cfg['field']}_{self.cfg['op']}_over_{'_'.join(self.cfg['over'])}"

    @property
    def fields(self):
        return (self.cfg["field"], *wt.fields(self.cfg.get("weights")))

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
        self._weights = wt.bind(self.cfg["weights"], spec, ctx,
                                f"analyses[{self.index}].weights")
        rbox = rg.box(spec, self.cfg["region"], f"analyses[{self.index}]", ctx.coords)
        self._slices = rg.local_slices(spec, rbox) if self.cfg["region"] else None
        self._axes = tuple(spec.dims.index(d) for d in self.cfg["over"])
        kaxes = [spec.dims.index(d) for d in kept]
        self.group = ctx.group(spec.name, kept, f"analyses[{self.index}]")
        self._kshape = tuple(spec.shape[a] for a in kaxes)
        n = int(np.prod(self._kshape))
        op = self.cfg["op"]
        plan = self.group.plan
        if op in ("mean", "sum", "integral"):
            self._a = plan.reserve_many(SUM, n)
            self._c = plan.reserve_many(SUM, n)
        else:
            self._a = plan.reserve_many(MIN if op == "min" else MAX, n)
        self._n = n
        self._general = self._weights is not None or self._slices is not None
        self._wfield = self._weights.field if self._weights is not None else None
        self._run = None
        if self._general:
            # The weighted-sum kernel's output over the slab's axes (length 1
            # along reduced ones) and its index maps (a region's slice starts
            # at its offset in the rank's kept extents).
            self._accshape = tuple(1 if a in self._axes else spec.shape[a]
                                   for a in range(spec.ndim))
            sl = self._slices or tuple(slice(0, m) for m in spec.shape)
            self._maps = [np.zeros(sl[a].stop - sl[a].start, dtype=np.int64)
                          if a in self._axes else
                          np.arange(sl[a].start, sl[a].stop, dtype=np.int64)
                          for a in range(spec.ndim)]
            self._ksl = tuple(sl[a] for a in kaxes)
        meta = ctx.meta(spec.name)
        units = meta.get("units", "1")
        label = meta.get("long_name") or spec.name
        over = ", ".join(self.cfg["over"])
        # The dims reduced over are gone from the result; CF names them in
        # cell_methods through scalar coordinates spanning their extent.
        # A region along a reduced dim narrows its extent (a coordinate of
        # its own name, so that whole and partial extents never clash).
        self.coords = [c for d in self.cfg["over"]
                       for c in extent_coords(d, spec.global_shape[spec.dims.index(d)],
                                              ctx.coords.get(d),
                                              *_span(rbox, spec.dims.index(d)))]
        extents = [c.name for c in self.coords]
        methods = " ".join(f"{e}:" for e in extents) + f" {_METHODS[op]}"
        if self._weights is not None:
            methods += f" {self._weights.cell_methods_comment()}"
        attrs = {"long_name": f"{op} over {over} of {label}", "units": units,
                 "cell_methods": methods,
                 "coordinates": " ".join(extents),
                 "insitu_analysis": self.kind, "insitu_field": spec.name}
        if op == "integral":
            attrs["long_name"] = f"integral over {over} of {label}"
            attrs["units"] = wt.product_units(units, self._weights.units)
            attrs["comment"] = (f"sum over {over} of {spec.name} times the weights "
                                f"({self._weights.label}, in {self._weights.units}), over "
                                "the finite values")
        elif self._weights is not None:
            attrs["long_name"] = f"weighted mean over {over} of {label}"
        if self.cfg["region"]:
            attrs["insitu_region"] = ", ".join(
                f"{d}: [{o}, {o + m})" for d, o, m in zip(spec.dims, *rbox))
        return [Variable(self.name, np.dtype(np.float64), attrs, dims=kept,
                         shape=tuple(spec.global_shape[a] for a in kaxes), distributed=True)]

    def local(self, views, record, step):
        v = views[self.cfg["field"]]
        rec = self.group.plan.record
        op = self.cfg["op"]
        if not self._general:
            # a zonal mean's shape: rows summed straight into the record's
            # slots (zeroed at each step), no array in between
            if op in ("mean", "sum") and self._axes == (v.ndim - 1,) and row_sums_into(
                    v, rec[self._a:self._a + self._n], rec[self._c:self._c + self._n]):
                return
            vals, counts = reduce_axes(v, self._axes, "sum" if op in ("mean", "sum") else op)
        elif op in ("min", "max"):  # a region, no weights
            vals = np.full(self._kshape, np.inf if op == "min" else -np.inf)
            vals[self._ksl] = reduce_axes(v[self._slices], self._axes, op)[0]
            counts = None
        else:
            # Straight into the group's record: its SUM slots were reset to 0,
            # and the kept extents in C order are the slots' order.  The
            # kernel's layout is made again only when the model exposes
            # other memory (or the record is another array).
            wsrc = views[self._wfield] if self._wfield is not None else None
            run = self._run
            if run is None or run.key[0] is not v or run.key[1] is not wsrc \
                    or run.key[2] is not rec:
                w = (self._weights.view(views, v.shape) if self._weights is not None
                     else np.broadcast_to(np.float64(1.0), v.shape))
                vv = v
                if self._slices is not None:
                    vv, w = v[self._slices], w[self._slices]
                run = self._run = Accumulation(
                    vv, w, self._maps, rec[self._a:self._a + self._n].reshape(self._accshape),
                    rec[self._c:self._c + self._n].reshape(self._accshape), key=(v, wsrc, rec))
            run.run()
            return
        rec[self._a:self._a + self._n] = vals.ravel()
        if counts is not None:
            rec[self._c:self._c + self._n] = counts.ravel()

    def results(self, record):
        if not self.group.writer:
            return {self.name: None}
        rec = self.group.plan.record
        a = rec[self._a:self._a + self._n]
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.cfg["op"] in ("mean", "sum", "integral"):
                c = rec[self._c:self._c + self._n]   # counts, or summed weights
                if self.cfg["op"] == "mean":
                    # c is 0 only where no finite value (or none with a
                    # non-zero weight) was added, and then a is 0 too:
                    # 0 / 0 is the NaN to write, in the division's one pass
                    val = a / c
                else:
                    val = np.where(c == 0, np.nan, a)
            else:
                val = np.where(np.isinf(a), np.nan, a)
        return {self.name: Piece(self.group.box[0], val.reshape(self._kshape))}


def _span(rbox, axis):
    """The region's ``[first, stop)`` indices along ``axis``."""
    return rbox[0][axis], rbox[0][axis] + rbox[1][axis]


def extent_coords(d: str, n: int, c: dict | None, first: int = 0,
                  stop: int | None = None) -> list:
    """``<d>_extent``: a scalar coordinate for the whole of dim ``d`` (``n``
    cells), at its centre, in the units of its ``coords:`` entry ``c`` (with
    its standard_name), or in index units; for the cells ``[first, stop)``
    only, ``<d>_extent_<first>_<stop>``.  The extent is said in
    ``comment``, not in a bounds variable: CF allows one-dimensional bounds
    for a scalar coordinate, but the IOOS compliance checker refuses them."""
    stop = n if stop is None else stop
    whole = (first, stop) == (0, n)
    lo, hi = first - 0.5, stop - 0.5
    what = "whole extent" if whole else "extent of a region"
    attrs = {"long_name": f"{what} of {d}", "units": "1"}
    if c is not None:
        lo, hi = c["start"] + c["step"] * lo, c["start"] + c["step"] * hi
        attrs = {"long_name": f"{what} of {c.get('long_name') or d}", "units": c["units"]}
        if c.get("standard_name"):
            attrs["standard_name"] = c["standard_name"]
    cover = f"all {n} cells" if whole else f"cells [{first}, {stop}) of the {n}"
    attrs["comment"] = f"the reduction covers {cover} of {d}, from {lo:g} to {hi:g}"
    name = f"{d}_extent" if whole else f"{d}_extent_{first}_{stop}"
    return [Coord(name, np.array((lo + hi) / 2), attrs, dims=())]
