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
from typing import Callable, Mapping

import numpy as np

from ..fields import FieldSpec
from ..reduction import ReductionPlan
from ..step_memo import StepMemo


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
    #: the growing axis this variable lies along ("time", or a window's or
    #: a trigger's own axis)
    axis: str = "time"


@dataclass
class Axis:
    """A growing, time-like axis: ``<name>`` (model time) and ``<step>``.

    ``bounds`` adds ``<name>_bounds`` (name, nv): the start and end of each
    entry's time window; ``climatology`` names them as CF 7.4 climatology
    bounds instead (the first period's start, the last one's end)."""
    name: str
    step: str
    long_name: str = "model time"
    bounds: bool = False
    climatology: bool = False


@dataclass
class Coord:
    """A coordinate variable written once: a dimension coordinate when
    ``dims == (name,)`` (the default), an auxiliary one otherwise; a scalar
    coordinate when ``dims == ()``."""
    name: str
    values: np.ndarray
    attrs: dict = field(default_factory=dict)
    dims: tuple = None

    def __post_init__(self):
        self.values = np.asarray(self.values)
        if self.dims is None:
            self.dims = (self.name,)
        self.dims = tuple(self.dims)


@dataclass
class Piece:
    """This rank's hyperslab of a distributed result: where it starts in the
    variable's non-time dims, and the values."""
    start: tuple
    values: np.ndarray


class IntRecord:
    """int64 words reserved by analyses, summed across ranks in ONE collective."""

    def __init__(self) -> None:
        self.size = 0
        self.array = np.zeros(0, dtype=np.int64)

    def reserve(self, n: int) -> slice:
        sl = slice(self.size, self.size + n)
        self.size += n
        self.array = np.zeros(self.size, dtype=np.int64)
        return sl


class AnalysisError(ValueError):
    """An analysis's config does not fit the declared fields."""


@dataclass
class BindContext:
    """What an analysis sees when it is bound at the first step."""
    specs: Mapping[str, FieldSpec]
    fields_cfg: Mapping[str, dict]
    plan: ReductionPlan
    decomposition: Mapping[str, dict]
    #: group(field, kept_dims) -> the ReduceGroup of ranks sharing this
    #: rank's slab projected onto ``kept_dims`` (collective on first use).
    group: Callable
    #: int64 words for exact sums, combined by one integer Allreduce after
    #: the step's main reduction (reproducible mode)
    ints: "IntRecord" = None
    reproducible: bool = False
    #: the config's ``coords:`` section (regular coordinates by dimension)
    coords: dict = field(default_factory=dict)
    #: the step's kernel results shared by analyses that make the same pass
    #: (insitu.step_memo; cleared by the session at every due step)
    memo: "StepMemo" = field(default_factory=lambda: StepMemo())

    def meta(self, name: str) -> dict:
        return self.fields_cfg.get(name, {})

    def boxes(self, name: str) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        d = self.decomposition[name]
        return [(tuple(o), tuple(s)) for o, s in zip(d["offsets"], d["shapes"])]


def common_keys(every: bool = True) -> dict:
    """The keys every analysis on one field takes: field, name, every."""
    from .. import schema as s
    keys = {"field": s.Str(doc="the field to analyse (declared or derived)"),
            "name": s.Name(default=None, doc="prefix of the output variables")}
    if every:
        keys["every"] = s.Int(default=1, minimum=1, doc="run at steps that are multiples of this")
    return keys


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
        self.name = cfg.get("name") or self.default_name()
        self.where = f"analyses[{index}] ({self.kind} {self.name!r})"

    def default_name(self) -> str:
        return self.cfg.get("field")

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.cfg["field"],)

    def check_fields(self, specs) -> None:
        for f in self.fields:
            if f not in specs:
                key = "weights" if f == self.cfg.get("weights") else "field"
                raise AnalysisError(
                    f"analyses[{self.index}].{key}: field {f!r} is not declared by the model "
                    f"(declared: {', '.join(specs) or 'none'})")

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def bind(self, ctx: BindContext) -> list[Variable]:
        """Reserve slots, check the config against the fields, describe the
        variables (and put coordinates in ``self.coords``)."""
        raise NotImplementedError

    def local(self, views: Mapping[str, np.ndarray], record: np.ndarray, step: int) -> None:
        raise NotImplementedError

    #: True for analyses with a second local phase after the main reduction
    phase2 = False

    def reproducible_outputs(self) -> list:
        """The variables that ``reproducible: true`` makes bitwise identical
        for any decomposition (after :meth:`bind`); none by default."""
        return []

    def local2(self, views, record: np.ndarray, ints: np.ndarray, step: int) -> None:
        """Second local phase: sees the reduced record, fills int64 words."""

    def results(self, record: np.ndarray) -> dict:
        """Results after the reduction: name -> scalar, array, or Piece."""
        raise NotImplementedError
