"""Output writers: the parallel HDF5 writer and the in-memory stand-in.

The output is one parallel HDF5 file that xarray opens directly.  Its layout
(names, dimensions, fill values, CF attributes, the committed-row contract
for readers) is :mod:`insitu.layout`; the I/O (rows buffered until the
durable flush, growth, the flush policy, ``output.verify``, the MPI-IO
hints) is :mod:`insitu.h5io`; with ``output.writer: background`` the
durable flushes run on a writer thread (:mod:`insitu.background`,
``H5Writer(...)`` then makes a ``BackgroundWriter``).  This module keeps
the names the rest of insitu imports.

:class:`MemoryWriter` has the same interface and keeps results in lists; the
fake-communicator unit tests use it.
"""
from __future__ import annotations

from .analyses.base import Coord, Variable
from .h5io import FlushPolicy, H5Writer, check_output_path  # noqa: F401 - the public names
from .layout import NC_FILL, OutputError, dimension_sizes, fill_value  # noqa: F401


class MemoryWriter:
    """Keeps results in memory; the unit tests' stand-in for :class:`H5Writer`.

    Distributed results are kept as this rank's pieces."""

    def __init__(self, *args, **kwargs) -> None:
        self.variables: dict[str, Variable] = {}
        self.coords: dict[str, Coord] = {}
        self.attrs: dict = {}
        self.rows: list[tuple[int, float, dict]] = []
        self.closed = False

    def define(self, variables, coords, file_attrs, fill, axes=()):
        dimension_sizes(variables, coords)
        self.variables = {v.name: v for v in variables}
        self.coords = {c.name: c for c in coords}
        self.attrs.update(file_attrs)
        self.axes = {a.name: [] for a in axes}

    def flush_clock(self, rank):
        return 0.0

    def end_step(self, agreed_seconds):
        pass

    def append(self, step, time, values, axis="time", bounds=None):
        if axis == "time":
            self.rows.append((step, time, dict(values)))
        else:
            self.axes[axis].append((step, time, bounds, dict(values)))

    def set_attrs(self, attrs):
        self.attrs.update(attrs)

    def close(self):
        self.closed = True
