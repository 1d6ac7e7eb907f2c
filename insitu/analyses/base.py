"""What every analysis provides to the session.

An analysis is built from its validated config entry at init.  At the first
step it is *bound* to the declared fields: it reserves slots in the step's
:class:`~insitu.reduction.ReductionPlan` and describes the variables it
writes.  At each due step it fills its slots from the local views
(:meth:`local`); after the one batched reduction it turns the record into
results (:meth:`results`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..fields import FieldSpec
from ..reduction import ReductionPlan


@dataclass
class Variable:
    """One output variable: ``(time, *dims)``.

    ``distributed`` variables are written piecewise: each rank that owns part
    of the result writes its own hyperslab (a :class:`Piece`), collectively.
    Other variables hold the same values on every rank, and rank 0 writes
    them.
    """
    name: str
    dtype: np.dtype
    attrs: dict = field(default_factory=dict)
    dims: tuple = ()
    shape: tuple = ()
    distributed: bool = False


@dataclass
class Coord:
    """A coordinate variable written once: a dimension coordinate when
    ``dims == (name,)``, an auxiliary one otherwise."""
    name: str
    values: np.ndarray
    attrs: dict = field(default_factory=dict)
    dims: tuple = ()

    def __post_init__(self):
        self.values = np.asarray(self.values)
        if not self.dims:
            self.dims = (self.name,)


@dataclass
class Piece:
    """This rank's hyperslab of a distributed result: where it starts in the
    variable's non-time dims, and the values."""
    start: tuple
    values: np.ndarray


class AnalysisError(ValueError):
    """An analysis's config does not fit the declared fields."""


class Analysis:
    kind: str = ""
    schema = None  # a schema.Record, set by subclasses

    def __init__(self, index: int, cfg: dict, rank: int = 0, size: int = 1) -> None:
        self.index = index
        self.cfg = cfg
        self.rank = rank
        self.size = size
        self.coords: list[Coord] = []   # filled by bind
        self.every = cfg["every"]
        self.name = cfg.get("name") or cfg.get("field")
        self.where = f"analyses[{index}] ({self.kind} {self.name!r})"

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.cfg["field"],)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def bind(self, specs: Mapping[str, FieldSpec], meta: Mapping[str, dict],
             plan: ReductionPlan) -> list[Variable]:
        raise NotImplementedError

    def local(self, views: Mapping[str, np.ndarray], record: np.ndarray, step: int) -> None:
        raise NotImplementedError

    def results(self, record: np.ndarray) -> dict:
        """Results after the reduction: name -> scalar, array, or Piece."""
        raise NotImplementedError
