"""Reduction groups: ranks whose slabs cover the same part of a result.

A reduction over some dimensions of a field (a zonal mean over ``x``, say)
has a result over the *kept* dimensions.  Ranks whose slabs project onto the
same box of the kept dimensions hold partials of the same piece of the
result; they form a group with its own sub-communicator and batched
:class:`~insitu.reduction.ReductionPlan`.  The partials are combined only
within the group -- only along the decomposed reduced dimensions -- and the
group's first rank writes the piece.  No rank holds more of the result than
its own piece, and no rank ever holds another rank's field.
"""
from __future__ import annotations

from .analyses.base import AnalysisError
from .decomposition import tiling_problems
from .reduction import ReductionPlan


def project(boxes, axes):
    return [(tuple(o[a] for a in axes), tuple(s[a] for a in axes)) for o, s in boxes]


class ReduceGroup:
    def __init__(self, comm, projected, kept_shape, where: str, level: int = 0) -> None:
        distinct = sorted(set(projected))
        problems = tiling_problems(kept_shape, distinct)
        if problems:
            raise AnalysisError(
                f"{where}: the ranks' slabs do not form a Cartesian decomposition along the "
                f"kept dimensions ({'; '.join(problems[:3])}), so partial results cannot "
                "be combined by groups")
        self.color = distinct.index(projected[comm.rank])
        self.comm = comm.split(self.color)
        self.box = projected[comm.rank]
        self.writer = self.comm.rank == 0
        self.plan = ReductionPlan()
        self.level = level  # the pre-phase round that combines it (derived fields)

    def reduce(self) -> None:
        self.comm.reduce_record(self.plan)

    def free(self) -> None:
        self.comm.free()
