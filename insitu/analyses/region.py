"""Regions of interest: a box of the global grid.

Config: ``region: {x: [10, 50], y: {from: -30.0, to: 30.0}}`` -- per named
dimension either a half-open ``[start, stop)`` range of global indices, or
a closed range of coordinate values ``{from, to}`` (the dimension needs a
``coords:`` entry), which selects the points whose coordinate lies in it.
Dimensions not named are taken whole.  Each rank intersects the box with its own slab; a rank
whose slab misses the box gets an empty view and still joins every
collective, so nothing hangs.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..fields import FieldSpec
from .base import AnalysisError

class _Range(s.Node):
    """``[start, stop)`` indices, or ``{from: a, to: b}`` coordinate values."""

    _coord = s.Record({"from": s.Num(), "to": s.Num()})

    def check(self, value, path):
        if isinstance(value, dict):
            return self._coord.check(value, path)
        value = s.ListOf(s.Int(minimum=0)).check(value, path)
        if len(value) != 2:
            raise s.ConfigError(f"{path}: expected [start, stop], got {value}")
        return value


SCHEMA = s.MapOf(_Range(), default=None,
                 doc="dimension -> [start, stop) global indices, or {from, to} coordinates")


def coordinate_values(coords_cfg: dict, dim: str, n: int):
    """The coordinate values of ``dim`` (``start + step * i``), or None."""
    c = (coords_cfg or {}).get(dim)
    return None if c is None else c["start"] + c["step"] * np.arange(n)


def box(spec: FieldSpec, region, where: str, coords_cfg=None):
    """The region's global ``(offset, shape)`` for ``spec``; refuse bad regions."""
    region = dict(region or {})
    for d, r in region.items():
        if isinstance(r, dict):
            if d not in spec.dims:
                continue  # reported below
            values = coordinate_values(coords_cfg, d, spec.global_shape[spec.dims.index(d)])
            if values is None:
                raise AnalysisError(f"{where}.region.{d}: a coordinate range needs a "
                                    f"'coords: {d}:' entry giving its coordinates")
            inside = np.flatnonzero((values >= min(r["from"], r["to"])) &
                                    (values <= max(r["from"], r["to"])))
            if inside.size == 0:
                raise AnalysisError(f"{where}.region.{d}: no point has a coordinate in "
                                    f"[{r['from']}, {r['to']}] (coordinates run from "
                                    f"{values[0]:g} to {values[-1]:g})")
            region[d] = [int(inside[0]), int(inside[-1]) + 1]
    for d in region:
        if d not in spec.dims:
            raise AnalysisError(f"{where}.region.{d}: field {spec.name!r} has no dimension "
                                f"{d!r} (its dims: {', '.join(spec.dims)})")
    off, shp = [], []
    for d, n in zip(spec.dims, spec.global_shape):
        lo, hi = region.get(d, [0, n])
        if not 0 <= lo < hi <= n:
            raise AnalysisError(f"{where}.region.{d}: [{lo}, {hi}) is empty or outside the "
                                f"global range [0, {n})")
        off.append(lo)
        shp.append(hi - lo)
    return tuple(off), tuple(shp)


def local_slices(spec: FieldSpec, rbox) -> tuple[slice, ...]:
    """Slices of this rank's interior view that fall in the region (maybe empty)."""
    out = []
    for o, n, ro, rn in zip(spec.offset, spec.shape, *rbox):
        lo, hi = max(o, ro), min(o + n, ro + rn)
        out.append(slice(lo - o, hi - o) if hi > lo else slice(0, 0))
    return tuple(out)
