"""A due step's results as the session forms them: Python values where an
analysis gives them one by one, and packed arrays where a batch of analyses
forms them in one compiled call (:class:`insitu.analyses.stats.StatsBatch`).

Why: right after the model's step every Python object made costs several
times its in-a-loop cost (issue 12): ten ``stats`` analyses' 80 values made
as Python floats and ints and put in a dict cost about 25 us on rank 0, more
than their kernel.  Most due steps of a compiled model need none of them:
the writer keeps the packed arrays as they are (:class:`RowValues`, one
copy of 720 bytes), and the dict is made only when someone reads it (the
Python API's return value, ``Session.last_results``, windows, triggers).

Order, names, types and bits are those of the analyses' own results: a
:class:`Pack` materializes as its batch's ``(name, value)`` pairs, Python
floats and ints from ``tolist``, in the analyses' order.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping

import numpy as np


class PackLayout:
    """Where each of a batch's outputs is in its two packed arrays: its
    names in order, and for each the array (floats or ints) and position.
    Made once per batch."""

    __slots__ = ("names", "floats", "ints", "where", "_pick")

    def __init__(self, names: tuple, at: tuple, nfloats: int, nints: int) -> None:
        #: the outputs' names, in the order their analyses give them
        self.names = tuple(names)
        self.floats, self.ints = int(nfloats), int(nints)
        #: name -> position in floats followed by ints (``at``)
        self.where = dict(zip(self.names, at))
        self._pick = operator.itemgetter(*at) if len(at) > 1 else \
            (lambda v, i=at[0]: (v[i],))

    def dtype_of(self, name: str) -> np.dtype:
        """The packed kind of ``name``'s value: float64 or int64."""
        return np.dtype(np.float64) if self.where[name] < self.floats else np.dtype(np.int64)


class Pack:
    """One batch's outputs at one step: its layout and its own two arrays
    (never reused for another step: the writer keeps them until the next
    durable flush)."""

    __slots__ = ("layout", "floats", "ints")

    def __init__(self, layout: PackLayout, floats: np.ndarray, ints: np.ndarray) -> None:
        self.layout, self.floats, self.ints = layout, floats, ints

    def items(self):
        """The ``(name, value)`` pairs, Python floats and ints."""
        values = self.floats.tolist()
        values += self.ints.tolist()
        return zip(self.layout.names, self.layout._pick(values))

    def get(self, name: str, default=None):
        """``name``'s value as a numpy scalar (what the writer puts in a
        block), or ``default``."""
        at = self.layout.where.get(name)
        if at is None:
            return default
        nf = self.layout.floats
        return self.floats[at] if at < nf else self.ints[at - nf]


class StepValues(Mapping):
    """A due step's results: parts in the order the analyses gave them,
    each a dict (of analyses that give Python values) or a :class:`Pack`.
    A read-only mapping whose dict (:meth:`as_dict`) is made once, at the
    first read."""

    __slots__ = ("parts", "_dict")

    def __init__(self, parts: list) -> None:
        self.parts = parts
        self._dict = None

    def as_dict(self) -> dict:
        """The results as one dict, in the analyses' order (made once)."""
        d = self._dict
        if d is None:
            d = {}
            for part in self.parts:
                d.update(part if type(part) is dict else part.items())
            self._dict = d
        return d

    def __getitem__(self, name):
        return self.as_dict()[name]

    def __iter__(self):
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __repr__(self) -> str:
        return f"StepValues({self.as_dict()!r})"


class RowValues:
    """What the writer keeps of a row made of packed parts: ``get(name)``
    from the row's own dict (the Python values it kept) or from the packs
    (:meth:`insitu.h5io.H5Writer.append`)."""

    __slots__ = ("plain", "packs")

    def __init__(self, plain: dict, packs: tuple) -> None:
        self.plain, self.packs = plain, packs

    def get(self, name: str, default=None):
        v = self.plain.get(name)
        if v is not None:
            return v
        for p in self.packs:
            v = p.get(name)
            if v is not None:
                return v
        return default
