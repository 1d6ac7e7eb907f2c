"""The output file's layout: names, dimensions, fill values and CF attributes.

Everything here is pure (no MPI, no open file), so the layout can be tested
and reasoned about without a parallel run; :mod:`insitu.h5io` turns it into
datasets.  The layout::

    /time          (time)  float64, dimension scale, CF units/calendar
    /step          (time)  int64, coordinate (named in ``coordinates``)
    /<dim>         (dim)   a dimension scale per other dimension, with its
                           coordinate values (bin centres, coarse cells, ...)
    /<coord>       (...)   auxiliary coordinates (probe positions, bounds)
    /<var>         (time, ...)  one per result, CF attributes
    /insitu/committed_rows  (axis,) int64: the rows of each growing axis
                           committed by the last durable flush

Growing axes (``time``, a window's ``time_<name>``, a trigger's
``time_<name>``) are created empty and grow to their exact rows at each
durable flush, so a running, killed or finalized run's file has exact
sizes; only a crash inside a flush can leave an axis longer than what was
committed.  The contract for readers is :func:`committed_rows`
(docs/output.md).  The ``insitu`` group is invisible
to ``xarray.open_dataset``, which reads the root group only.
"""
from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np

from .analyses.base import Axis, Coord, Variable


class OutputError(OSError):
    """The output file cannot be created or written."""


#: netCDF's default fill value for each integer type (NC_FILL_BYTE ...
#: NC_FILL_UINT64).  They sit at the edge of each type's range, so a fill
#: never lies inside ordinary data (a 0/1 mask, counts, small labels).
NC_FILL = {np.dtype(t): t(v) for t, v in [
    (np.int8, -127), (np.int16, -32767), (np.int32, -2147483647),
    (np.int64, -9223372036854775806), (np.uint8, 255), (np.uint16, 65535),
    (np.uint32, 4294967295), (np.uint64, 18446744073709551614)]}

#: calendars whose time may or may not count leap seconds (CF 1.11 4.4.1);
#: their time coordinates say ``units_metadata: "leap_seconds: none"``
LEAP_SECOND_CALENDARS = ("standard", "gregorian", "proleptic_gregorian", "julian")

#: where the committed row counts live: a group that xarray does not show,
#: so a finalized file reads exactly as before, and a dataset (not an
#: attribute) so that rank 0 updates it with a plain independent write:
#: an attribute is metadata, and changing one costs a collective broadcast
#: and a metadata flush at every durable flush.
COMMITTED_GROUP = "insitu"
COMMITTED = f"{COMMITTED_GROUP}/committed_rows"


def fill_value(dtype) -> np.generic:
    """The ``_FillValue`` for a variable of ``dtype``: NaN for floats,
    netCDF's default for integers.

    One int64 constant cast to every integer type would wrap (int64 min + 2
    becomes 2 in int32), and xarray would then mask every real 2 as NaN."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.type(np.nan)
    try:
        return NC_FILL[dtype]
    except KeyError:
        raise OutputError(f"no fill value for dtype {dtype}") from None


def attr_value(v):
    """An attribute value h5py can store: numbers, strings and arrays as
    they are, anything else (lists of records, dicts) as JSON text."""
    return v if isinstance(v, (str, int, float, np.ndarray, np.generic)) else json.dumps(v)


def dimension_sizes(variables: Sequence[Variable], coords: Sequence[Coord]) -> dict:
    """Every non-time dimension and its size; refuse two sizes for one name."""
    sizes: dict[str, int] = {}
    owners: dict[str, str] = {}
    items = [(v.name, v.dims, v.shape) for v in variables] + \
            [(c.name, c.dims, c.values.shape) for c in coords]
    for name, dims, shape in items:
        for d, n in zip(dims, shape):
            if d in sizes and sizes[d] != n:
                raise OutputError(f"dimension {d!r} has size {sizes[d]} in {owners[d]!r} but "
                                  f"{n} in {name!r}; give one of them another name")
            sizes[d] = int(n)
            owners[d] = name
    return sizes


def time_attrs(ax: Axis, time_attrs: Mapping) -> dict:
    """CF attributes of a growing axis's time coordinate."""
    attrs = {"standard_name": "time", "long_name": ax.long_name, "axis": "T", **time_attrs}
    if attrs.get("calendar", "standard") in LEAP_SECOND_CALENDARS:
        # CF 1.11 4.4.1: model time counts no leap seconds.
        attrs.setdefault("units_metadata", "leap_seconds: none")
    if ax.bounds:
        # CF 7.4: a climatological time names its bounds "climatology" (the
        # first period's start, the last period's end), not "bounds"
        attrs["climatology" if getattr(ax, "climatology", False) else "bounds"] = \
            f"{ax.name}_bounds"
    return {k: v for k, v in attrs.items() if v is not None}


STEP_ATTRS = {"long_name": "model step number", "units": "1"}


def bounds_attrs(ax: Axis) -> dict:
    """Attributes of a growing axis's bounds variable.  CF needs none (a
    bounds variable takes its coordinate's), but a climatology's bounds
    are named by the ``climatology`` attribute, not ``bounds``, and CF
    checkers then want a ``long_name`` on them (CF 7.4)."""
    if getattr(ax, "climatology", False):
        return {"long_name": f"climatological time bounds of {ax.name}: the start of each "
                             "slot's first period and the end of its last"}
    return {}


def variable_fill(var: Variable, fill: bool):
    """``(HDF5 fill value or None, whether xarray is told of it)`` for ``var``.

    An integer's fill is a value it could hold, so xarray is told of it
    (``_FillValue``) only where a cell can be missing: rows of the time axis
    where the analysis was not due or was disabled.  Rows of a snapshot or
    window axis are always written whole; there HDF5 still fills
    never-written cells with the sentinel, for an integrity check to find,
    but no reader masks real data."""
    fillvalue = fill_value(var.dtype) if (fill or var.distributed) else None
    masked = fillvalue is not None and (np.dtype(var.dtype).kind == "f" or
                                        (fill and var.axis == "time"))
    return fillvalue, masked


def variable_attrs(var: Variable, step_name: str) -> dict:
    """A result's attributes, its axis's step coordinate named first in
    ``coordinates``."""
    attrs = dict(var.attrs)
    attrs["coordinates"] = " ".join([step_name, *attrs.get("coordinates", "").split()])
    return attrs


#: the chunk length of one-dimensional variables along a growing axis (8 KiB
#: of float64: large enough that a long run's chunk index stays small, small
#: enough that a short run's file does too)
ROWS = 1024


def committed_rows(f) -> dict[str, int]:
    """The rows of each growing axis that a reader may trust, from an open
    h5py file (the reader's contract, docs/output.md).

    They are the rows committed by the writer's last durable flush, never
    more than the dataset holds (a kill between a growth and its flush
    leaves the old extent on disk).  A file without the count (written
    before it existed) is taken as it is: every row of ``time``."""
    if COMMITTED not in f:
        return {"time": int(f["time"].shape[0])} if "time" in f else {}
    ds = f[COMMITTED]
    names = str(ds.attrs.get("axes", "")).split()
    rows = ds[...]
    return {n: max(0, min(int(r), int(f[n].shape[0]))) for n, r in zip(names, rows) if n in f}


def axis_of(ds) -> str | None:
    """The growing axis an h5py dataset lies along (its first dimension's
    scale), or None for a coordinate or a variable without one."""
    if ds.ndim == 0 or not len(ds.dims[0]):
        return None
    return [s.name.lstrip("/") for s in ds.dims[0].values()][0]
