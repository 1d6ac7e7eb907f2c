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
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels.coarsen import coarsen_mean
from .base import common_keys, Analysis, AnalysisError, Coord, Piece, Variable


class Coarsen(Analysis):
    kind = "coarsen"
    schema = s.Record({
        **common_keys(),
        "factors": s.MapOf(s.Int(minimum=1), doc="dimension -> integer factor"),
    })

    def default_name(self):
        return f"{self.cfg['field']}_coarse"

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
        return [Variable(
            self.name, np.dtype(np.float64),
            {"long_name": f"block mean of {meta.get('long_name') or spec.name} "
                          f"({' x '.join(map(str, self.factors))} cells)",
             "units": meta.get("units", "1"),
             "cell_methods": " ".join(f"{cd}:" for cd, f in zip(dims, self.factors) if f > 1)
                             + " mean",
             "insitu_analysis": self.kind, "insitu_field": spec.name},
            dims=dims, shape=shape, distributed=True)]

    def local(self, views, record, step):
        self._piece = coarsen_mean(views[self.cfg["field"]], self.factors)

    def results(self, record):
        return {self.name: Piece(self._start, self._piece)}
