"""Coarse-graining: block means by integer factors, written as a coarse field.

``{kind: coarsen, field: T, factors: {x: 8, y: 8}}`` writes ``<name>``
(time, x_c8, y_c8) each output step; each rank writes its own hyperslab,
collectively.  Dims without a factor keep full resolution.

Blocks never straddle ranks: the config is REFUSED unless every rank's slab
starts and ends on block boundaries (and the global size is a multiple of
the factor), with a message naming the rank and dimension.  Combining
partial blocks across ranks would need neighbour communication for little
gain; choosing factors that divide the slabs is the usual practice.
Non-finite values are skipped; a block with none is NaN.

``weights:`` (the forms of :mod:`insitu.analyses.weights`: a cell-area
field, ``{dim: lat, values: coslat}``...) makes each block the weighted mean
``sum(w x) / sum(w)`` of its finite values, as area-weighted
coarse-graining of a lat-lon grid needs; a block whose finite values all
have zero weight is NaN.  ``region:`` keeps the coarse grid whole and
leaves the values outside the region out, as if they were NaN: a block
that straddles the region's edge is the mean of its cells inside, a block
wholly outside is NaN (``da.where(in_region).coarsen(...).mean()``).
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels.weighted import Accumulation
from . import region as rg
from . import weights as wt
from .base import common_keys, Analysis, AnalysisError, Coord, Piece, Variable


class Coarsen(Analysis):
    kind = "coarsen"
    schema = s.Record({
        **common_keys(),
        "factors": s.MapOf(s.Int(minimum=1), doc="dimension -> integer factor"),
        "weights": wt.schema(),
        "region": rg.SCHEMA,
    })

    def default_name(self):
        return f"{self.cfg['field']}_coarse"

    @property
    def fields(self):
        return (self.cfg["field"], *wt.fields(self.cfg.get("weights")))

    def bind(self, ctx):
        spec = ctx.specs[self.cfg["field"]]
        where = f"analyses[{self.index}].factors"
        factors = self.cfg["factors"]
        if not factors:
            raise AnalysisError(f"{where}: give at least one dimension and factor")
        for d in factors:
            if d not in spec.dims:
                raise AnalysisError(f"{where}.{d}: field {spec.name!r} has no dimension {d!r} "
                                    f"(its dims: {', '.join(spec.dims)})")
        self.factors = tuple(factors.get(d, 1) for d in spec.dims)
        for d, n, f in zip(spec.dims, spec.global_shape, self.factors):
            if n % f:
                raise AnalysisError(f"{where}.{d}: the global size {n} is not a multiple of "
                                    f"the factor {f}")
        for r, (off, shp) in enumerate(ctx.boxes(spec.name)):
            for d, o, n, f in zip(spec.dims, off, shp, self.factors):
                if o % f or n % f:
                    raise AnalysisError(
                        f"{where}.{d}: rank {r}'s slab covers [{o}, {o + n}) along {d!r}, "
                        f"which does not start and end on blocks of {f}; blocks would "
                        "straddle ranks. Use factors that divide every slab, or a "
                        "decomposition aligned to the factors")
        dims = tuple(d if f == 1 else f"{d}_c{f}" for d, f in zip(spec.dims, self.factors))
        shape = tuple(n // f for n, f in zip(spec.global_shape, self.factors))
        self._start = tuple(o // f for o, f in zip(spec.offset, self.factors))
        self._weights = wt.bind(self.cfg["weights"], spec, ctx,
                                f"analyses[{self.index}].weights")
        rbox = rg.box(spec, self.cfg["region"], f"analyses[{self.index}]", ctx.coords)
        self._slices = rg.local_slices(spec, rbox) if self.cfg["region"] else None
        # Block index of each local index inside the region (slabs start on
        # block boundaries, so local // f is the local block).  Unweighted
        # blocks are the weighted kernel's with a broadcast 1.0 (its weight
        # sums are then counts): one kernel, whose rows of one weight are
        # added element by element (kernels.weighted._accumulate_rows).
        sl = self._slices or tuple(slice(0, m) for m in spec.shape)
        self._maps = [np.arange(q.start, q.stop, dtype=np.int64) // f
                      for q, f in zip(sl, self.factors)]
        self._cshape = tuple(m // f for m, f in zip(spec.shape, self.factors))
        self._total = np.zeros(self._cshape)
        self._wsum = np.zeros(self._cshape)
        self._wfield = self._weights.field if self._weights is not None else None
        self._run = None
        self.coords = []
        for d, cd, f, n in zip(spec.dims, dims, self.factors, shape):
            if f == 1:
                continue
            # Coarse cell i covers fine cells [f*i, f*(i+1)): its centre and
            # bounds, in fine-grid index units, then in the fine coordinate's.
            centre = f * np.arange(n) + (f - 1) / 2.0
            edges = np.stack([f * np.arange(n) - 0.5, f * np.arange(1, n + 1) - 0.5], axis=1)
            c = ctx.coords.get(d)
            if c is None:  # the fine dim is an index (the writer's default coordinate)
                attrs = {"long_name": f"index along {d}", "units": "1"}
            else:
                centre = c["start"] + c["step"] * centre
                edges = c["start"] + c["step"] * edges
                attrs = {"long_name": c.get("long_name") or d, "units": c["units"]}
                if c.get("standard_name"):
                    attrs["standard_name"] = c["standard_name"]
            attrs["comment"] = f"centres of blocks of {f} cells along {d}"
            attrs["bounds"] = f"{cd}_bounds"
            self.coords += [Coord(cd, centre, attrs),
                            Coord(f"{cd}_bounds", edges, {}, dims=(cd, "nv"))]
        meta = ctx.meta(spec.name)
        methods = " ".join(f"{cd}:" for cd, f in zip(dims, self.factors) if f > 1) + " mean"
        attrs = {"long_name": f"block mean of {meta.get('long_name') or spec.name} "
                              f"({' x '.join(map(str, self.factors))} cells)",
                 "units": meta.get("units", "1"), "cell_methods": methods,
                 "insitu_analysis": self.kind, "insitu_field": spec.name}
        if self._weights is not None:
            attrs["long_name"] = "weighted " + attrs["long_name"]
            attrs["cell_methods"] += f" {self._weights.cell_methods_comment()}"
        if self.cfg["region"]:
            attrs["insitu_region"] = ", ".join(
                f"{d}: [{o}, {o + m})" for d, o, m in zip(spec.dims, *rbox))
        return [Variable(self.name, np.dtype(np.float64), attrs, dims=dims, shape=shape,
                         distributed=True)]

    def local(self, views, record, step):
        v = views[self.cfg["field"]]
        wsrc = views[self._wfield] if self._wfield is not None else None
        run = self._run
        if run is None or run.key[0] is not v or run.key[1] is not wsrc:
            # the region's view, its weights and the kernel's layout, made
            # again only when the model exposes other memory
            w = (self._weights.view(views, v.shape) if self._weights is not None
                 else np.broadcast_to(np.float64(1.0), v.shape))
            vv = v
            if self._slices is not None:
                vv, w = v[self._slices], w[self._slices]
            run = self._run = Accumulation(vv, w, self._maps, self._total, self._wsum,
                                           key=(v, wsrc))
        total, wsum = self._total, self._wsum
        total.fill(0.0)
        wsum.fill(0.0)
        run.run()
        # a new array each step: the writer may keep the piece until its flush
        piece = np.empty(self._cshape)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(total, wsum, out=piece)
        piece[wsum == 0] = np.nan
        self._piece = piece

    def results(self, record):
        return {self.name: Piece(self._start, self._piece)}
