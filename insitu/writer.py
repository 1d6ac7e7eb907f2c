"""Output: one parallel HDF5 file that xarray opens directly.

Layout::

    /time        (time)  float64, dimension scale, CF units/calendar
    /step        (time)  int64, coordinate (named in each variable's
                         ``coordinates`` attribute)
    /<var>       (time)  one per scalar result, CF attributes

The file is opened with h5py's ``mpio`` driver on the session's communicator.
HDF5 requires every metadata change (create, resize, attribute, flush,
close) to be made by all ranks in the same order, so every method here is
collective; raw values are written by rank 0 alone (independent I/O), since
every rank holds the same reduced numbers.

:class:`MemoryWriter` has the same interface and keeps results in lists; the
fake-communicator unit tests use it.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Mapping, Sequence

import numpy as np

from .analyses.base import Variable

log = logging.getLogger("insitu")

CHUNK = 512
INT_FILL = np.int64(-(2 ** 63) + 2)  # netCDF's default int64 fill value


class OutputError(OSError):
    """The output file cannot be created or written."""


def check_output_path(path: str, overwrite: bool) -> str | None:
    """Why ``path`` cannot be the output file, or None if it can (rank 0 only)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"output directory {directory!r} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"output directory {directory!r} is not writable"
    if os.path.exists(path):
        if not overwrite:
            return (f"output file {path!r} exists; set output.overwrite: true "
                    "(or pass --overwrite) to replace it")
        if not os.access(path, os.W_OK):
            return f"output file {path!r} exists and is not writable"
    return None


class H5Writer:
    def __init__(self, comm, path: str, overwrite: bool, time_attrs: Mapping,
                 flush_every: int = 1) -> None:
        import h5py

        # Rank 0 names and checks the file; every rank learns the verdict, so
        # a bad path fails on all ranks at init instead of hanging at step 1.
        path = comm.bcast_str(os.path.abspath(path) if comm.rank == 0 else None)
        problem = comm.bcast_str((check_output_path(path, overwrite) or "") if comm.rank == 0 else None)
        if problem:
            raise OutputError(problem)
        self.comm = comm
        self.path = path
        self.flush_every = flush_every
        self.time_attrs = dict(time_attrs)
        try:
            self.file = h5py.File(path, "w", driver="mpio", comm=comm.comm, libver="earliest")
        except OSError as exc:
            raise OutputError(f"cannot create {path!r} with parallel HDF5: {exc}") from None
        self.length = 0
        self.datasets: dict[str, object] = {}
        self._order: list[str] = []
        self._fill: dict[str, object] = {}

    def define(self, variables: Sequence[Variable], file_attrs: Mapping, fill: bool) -> None:
        """Create the time axis and one variable per result (collective)."""
        f = self.file
        time = f.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(CHUNK,))
        time.make_scale("time")
        for k, v in {"standard_name": "time", "long_name": "model time", "axis": "T",
                     **self.time_attrs}.items():
            if v is not None:
                time.attrs[k] = v
        step = f.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(CHUNK,))
        step.dims[0].attach_scale(time)
        step.attrs["long_name"] = "model step number"
        step.attrs["units"] = "1"
        self.datasets = {"time": time, "step": step}
        self._order = ["time", "step"]
        for var in variables:
            fillvalue = None
            if fill:
                fillvalue = np.float64(np.nan) if var.dtype.kind == "f" else INT_FILL
            ds = f.create_dataset(var.name, shape=(0,), maxshape=(None,), dtype=var.dtype,
                                  chunks=(CHUNK,), fillvalue=fillvalue)
            ds.dims[0].attach_scale(time)
            if fillvalue is not None:
                ds.attrs["_FillValue"] = np.array(fillvalue, dtype=var.dtype)
            for k, v in var.attrs.items():
                ds.attrs[k] = v
            ds.attrs["coordinates"] = "step"
            self.datasets[var.name] = ds
            self._order.append(var.name)
            self._fill[var.name] = fillvalue
        for k, v in file_attrs.items():
            f.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v)
        f.flush()

    def append(self, step: int, time: float, values: Mapping[str, object]) -> None:
        """Add one output step (collective); variables missing from ``values``
        get their fill value."""
        n = self.length
        for name in self._order:
            self.datasets[name].resize((n + 1,))
        if self.comm.rank == 0:
            self.datasets["time"][n] = time
            self.datasets["step"][n] = step
            for name in self._order[2:]:
                value = values.get(name, self._fill[name])
                if value is not None:
                    self.datasets[name][n] = value
        self.length = n + 1
        if self.length % self.flush_every == 0:
            self.file.flush()

    def set_attrs(self, attrs: Mapping) -> None:
        for k, v in attrs.items():
            self.file.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v)

    def close(self) -> None:
        if getattr(self, "file", None) is not None and self.file.id.valid:
            self.file.close()
        self.file = None


class MemoryWriter:
    """Keeps results in memory; the unit tests' stand-in for :class:`H5Writer`."""

    def __init__(self, *args, **kwargs) -> None:
        self.variables: dict[str, Variable] = {}
        self.attrs: dict = {}
        self.rows: list[tuple[int, float, dict]] = []
        self.closed = False

    def define(self, variables, file_attrs, fill):
        self.variables = {v.name: v for v in variables}
        self.attrs.update(file_attrs)

    def append(self, step, time, values):
        self.rows.append((step, time, dict(values)))

    def set_attrs(self, attrs):
        self.attrs.update(attrs)

    def series(self, name: str) -> np.ndarray:
        return np.array([row[2].get(name, np.nan) for row in self.rows])

    def close(self):
        self.closed = True
