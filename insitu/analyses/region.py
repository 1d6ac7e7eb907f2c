"""Regions of interest: a box of the global grid, by global index ranges.

Config: ``region: {x: [10, 50], y: [0, 20]}`` -- half-open ``[start,
stop)`` ranges of global indices per named dimension; dimensions not named
are taken whole.  Each rank intersects the box with its own slab; a rank
whose slab misses the box gets an empty view and still joins every
collective, so nothing hangs.
"""
from __future__ import annotations

from .. import schema as s
from ..fields import FieldSpec
from .base import AnalysisError

SCHEMA = s.MapOf(s.ListOf(s.Int(minimum=0)), default=None,
                 doc="dimension -> [start, stop) global indices")


def box(spec: FieldSpec, region, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The region's global ``(offset, shape)`` for ``spec``; refuse bad regions."""
    region = region or {}
    for d in region:
        if d not in spec.dims:
            raise AnalysisError(f"{where}.region.{d}: field {spec.name!r} has no dimension "
                                f"{d!r} (its dims: {', '.join(spec.dims)})")
    off, shp = [], []
    for d, n in zip(spec.dims, spec.global_shape):
        lo, hi = region.get(d, [0, n])
        if len((lo, hi)) != 2 or not 0 <= lo < hi <= n:
            raise AnalysisError(f"{where}.region.{d}: [{lo}, {hi}) is empty or outside the "
                                f"global range [0, {n})")
        off.append(lo)
        shp.append(hi - lo)
    return tuple(off), tuple(shp)


def check_pairs(region, where: str) -> None:
    for d, r in (region or {}).items():
        if len(r) != 2:
            raise AnalysisError(f"{where}.region.{d}: expected [start, stop], got {r}")


def local_slices(spec: FieldSpec, rbox) -> tuple[slice, ...]:
    """Slices of this rank's interior view that fall in the region (maybe empty)."""
    out = []
    for o, n, ro, rn in zip(spec.offset, spec.shape, *rbox):
        lo, hi = max(o, ro), min(o + n, ro + rn)
        out.append(slice(lo - o, hi - o) if hi > lo else slice(0, 0))
    return tuple(out)
