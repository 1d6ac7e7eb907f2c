"""One reader for insitu output files, safe while a run is writing them.

``inspect``, ``inspect --follow`` and the live viewer (:mod:`insitu.live`)
all read through here, so the rules a reader of a growing file must keep
live in one place (docs/live.md, docs/output.md "The committed-row
contract"):

* **No SWMR.** Parallel HDF5 cannot write in SWMR mode, so the writer
  publishes instead, at each durable flush, ``/insitu/committed_rows``: the
  rows of each growing axis that are complete on every rank.  A reader
  reads rows ``[0, committed)`` only; rows past it are preallocated fill or
  rows some rank has not finished, and are never shown.
* **No lock.** The file is opened read-only with HDF5 file locking off
  (``locking=False``), so a reader never takes a lock the writer could wait
  on.  (Open MPI's MPI-IO writer takes no ``flock`` on the file either, but
  a reader that did could still stall a later writer or another tool.)
* **Re-open to see growth, and hold nothing open.** HDF5 caches extents
  and metadata it read, so every poll opens the file anew; and HDF5 shares
  one open file among all the opens of a path in a process, so a handle
  left open (an xarray dataset not closed) makes every later open in that
  process see the file as it was then.
* **Bounded retry.** Without SWMR, HDF5 promises nothing to a reader while
  the writer changes metadata (at a growth, about every 1024 rows, or an
  attribute change, each followed by a flush).  A read that lands in that
  moment may fail to open ("bad object header", "file signature not
  found" on a file being created) or to read; :func:`retry` repeats the
  whole open-and-read a few times with a short sleep instead of giving up
  or, worse, waiting on the writer.  A missing file is not retried: the
  caller decides whether to wait for it (:func:`wait_for`).

Rows are never rewritten, so a row read once stays right.  The public
helpers: :func:`committed`, :func:`open_dataset` (xarray, cut to the
committed rows), :func:`snapshot` (counts, attributes, the catalogue of
variables), :func:`read_rows` (rows of some variables, from a start row).
"""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

log = logging.getLogger("insitu.reader")

T = TypeVar("T")

#: how many times one open-and-read is tried, and the sleep between tries:
#: about 2 s in all, far longer than a metadata flush of a summary file
#: (milliseconds) and short enough that a reader polling once a second
#: never falls far behind
RETRIES = 40
DELAY = 0.05

#: what a read that lands in the middle of a metadata update can raise:
#: h5py turns HDF5's errors into OSError, KeyError (an object not found
#: yet), ValueError or RuntimeError (an invalid identifier)
TRANSIENT = (OSError, KeyError, ValueError, RuntimeError)

#: counters of retried reads in this process, for tests and benchmarks
stats = {"reads": 0, "retries": 0}


class ReaderError(OSError):
    """A file that could not be read even after the bounded retry."""


@contextmanager
def open_file(path) -> Iterator:
    """``h5py.File(path, "r")`` without HDF5 file locking: never a lock the
    writer, or anything else, could wait on."""
    import h5py
    with h5py.File(path, "r", locking=False) as f:
        yield f


def retry(path, read: Callable, retries: int = RETRIES, delay: float = DELAY):
    """``read(f)`` on ``path`` opened by :func:`open_file`, the whole
    open-and-read repeated up to ``retries`` times while it raises an error
    a concurrent writer can cause.  A missing file raises FileNotFoundError
    at once (waiting for it is the caller's choice); the last failure is
    re-raised as a :class:`ReaderError` naming the file."""
    last = None
    stats["reads"] += 1
    for attempt in range(max(1, retries)):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file")
        try:
            with open_file(path) as f:
                return read(f)
        except FileNotFoundError:
            raise
        except TRANSIENT as exc:  # a metadata update in flight, most likely
            # keep the message, not the exception: its traceback holds the
            # frames, and with them any file the failed read left open
            last = f"{type(exc).__name__}: {exc}"
            stats["retries"] += 1
            log.debug("%s: read failed (%s), try %d of %d", path, last, attempt + 1, retries)
        _close_leaked(path)
        time.sleep(delay)
    raise ReaderError(f"{path}: cannot read after {retries} tries ({last})")


def _close_leaked(path) -> None:
    """Close every HDF5 handle of ``path`` still open in this process after
    a failed read (a library that raised between its open and its close,
    e.g. h5netcdf inside ``xarray.open_dataset``).  HDF5 shares one open
    file, with its cached metadata, among all the opens of a path in a
    process: one leaked handle would make every later read here see the
    file as it was then, forever (no new rows, never finished)."""
    import gc

    import h5py
    gc.collect()  # handles held only by reference cycles (tracebacks, frames)
    want = os.path.realpath(path)
    for fid in h5py.h5f.get_obj_ids(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE):
        try:
            name = fid.name.decode() if isinstance(fid.name, bytes) else fid.name
            if os.path.realpath(name) != want:
                continue
            log.debug("%s: closing a handle a failed read left open", path)
            fid._close_open_objects(h5py.h5f.OBJ_LOCAL | ~h5py.h5f.OBJ_FILE)
            fid._close_open_objects(h5py.h5f.OBJ_LOCAL | h5py.h5f.OBJ_FILE)
        except Exception as exc:  # noqa: BLE001 - best effort; the retry goes on
            log.debug("%s: could not close a leaked handle: %s", path, exc)


def wait_for(path, timeout: float | None = None, poll: float = 0.5) -> bool:
    """Wait until ``path`` exists and holds the committed-row index (the
    writer created it and flushed once); False if ``timeout`` passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if os.path.exists(path):
            try:
                if retry(path, lambda f: "time" in f, retries=2, delay=poll / 2):
                    return True
            except (FileNotFoundError, ReaderError):
                pass
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(poll)


def committed_rows(f) -> dict[str, int]:
    """The committed rows of each growing axis of an open file
    (:func:`insitu.layout.committed_rows`, the writer's contract)."""
    from .layout import committed_rows as rows
    return rows(f)


def committed(path) -> dict[str, int]:
    """The committed rows of each growing axis (``time``, each window's and
    trigger's) of the file at ``path``."""
    return retry(path, committed_rows)


def open_dataset(path, engine: str = "h5netcdf", load: bool = False, tail: int | None = None,
                 **kwargs):
    """``xarray.open_dataset`` cut to the committed rows of every growing
    axis: the same as a plain open for a finalized file (whose axes have
    exact sizes), and the way to read a file that a run is still writing or
    that a killed run left behind.  The count is read first, so the cut is
    never past what the file held when xarray opened it.  ``tail`` keeps
    only the last ``tail`` committed rows of ``time``.

    With ``load`` the rows are read into memory inside the retry and the
    file is closed: use it on a file a run is writing.  A lazy dataset
    reads later, outside the retry, and such a read can fail while the
    writer grows an axis (HDF5 "addr overflow": the chunk index it reads
    then is newer than the file's end it read at the open); a lazy read of
    a finished file is safe."""
    import xarray as xr
    if engine == "h5netcdf":
        kwargs.setdefault("driver_kwds", {"locking": False})

    def read(_f):
        rows = committed_rows(_f)
        try:
            ds = xr.open_dataset(path, engine=engine, **kwargs)
        except ValueError as exc:
            # xarray cannot decode an EMPTY time axis in a non-standard
            # calendar (noleap, 360_day) with its default coder: it probes
            # the first and last values (a window or trigger axis with no
            # row yet, or ever).  cftime decodes it, and decodes such axes
            # to cftime dates anyway when they hold rows.
            if "decode_times" in kwargs or "unable to decode time units" not in str(exc):
                raise
            ds = xr.open_dataset(path, engine=engine, **kwargs,
                                 decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        try:
            cut = ds.isel({a: slice(0, n) for a, n in rows.items() if a in ds.dims})
            if tail is not None and "time" in cut.dims:
                n = cut.sizes["time"]
                cut = cut.isel(time=slice(max(0, n - tail), n))
            if load:
                cut = cut.load()
                ds.close()
            else:
                # closing the cut dataset must close the file: HDF5 shares one
                # open file (and its cached metadata) among all the opens of
                # a path in a process, so a handle left open makes every
                # later open here see the file as it was (stale counts)
                cut.set_close(ds.close)
            return cut
        except BaseException:
            ds.close()
            raise
    return retry(path, read)


def written(ds, rows: slice) -> np.ndarray:
    """Which rows of ``ds`` (an h5py dataset along a growing axis) hold a
    value rather than the fill, judged from each row's first element: an
    analysis not due at an output step leaves the fill in that row (NaN in
    a float variable, the ``_FillValue`` otherwise).  All True when the
    variable has neither."""
    probe = np.asarray(ds[(rows,) + (0,) * (ds.ndim - 1)])
    fill = ds.attrs.get("_FillValue")
    if probe.dtype.kind == "f":
        return ~np.isnan(probe)
    if fill is not None:
        return probe != np.asarray(fill).item()
    return np.ones(probe.shape[0], bool)


def dims_of(ds) -> list[str]:
    """The dimension names of an h5py dataset (its scales), ``?`` where a
    dimension has none."""
    out = []
    for dim in ds.dims:
        names = [s.name.lstrip("/") for s in dim.values()] if len(dim) else []
        out.append(names[0] if names else "?")
    return out


@dataclass
class Var:
    """One result in the file, as a reader needs to know it."""
    name: str
    axis: str                 # the growing axis it lies along
    dims: tuple
    shape: tuple              # per row (the dataset's shape without the axis)
    dtype: str
    units: str
    kind: str                 # stats, histogram, window, trigger, ...
    field: str                # the field it is computed from ("" if none)
    long_name: str
    fill: object = None

    @property
    def scalar(self) -> bool:
        return not self.shape


@dataclass
class Snapshot:
    """What a reader knows of a file at one moment: the committed rows of
    each axis, the file's attributes (``insitu_*`` decoded from JSON where
    they hold JSON) and its results."""
    rows: dict
    attrs: dict
    variables: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return "insitu_finished" in self.attrs

    def errors(self) -> list:
        return _json(self.attrs.get("insitu_errors"), [])

    def triggers(self) -> list:
        return _json(self.attrs.get("insitu_triggers"), [])


def _json(value, default):
    if value is None:
        return default
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def catalogue(f) -> dict[str, Var]:
    """Every result along a growing axis, in name order: the variables a
    reader shows.  Coordinates (``time``, ``step``, ``step_<axis>``), bounds
    and auxiliary coordinates are left out: they are named by the results'
    ``coordinates`` and ``bounds`` attributes, and a plot of them (a series
    of step numbers, a Hovmoller of time bounds) only misleads."""
    import h5py
    from .layout import axis_of
    skip = set()
    for ds in f.values():
        if isinstance(ds, h5py.Dataset):
            skip.update(str(_text(ds.attrs.get("coordinates", ""))).split())
            for key in ("bounds", "climatology"):
                if key in ds.attrs:
                    skip.add(str(_text(ds.attrs[key])))
    out = {}
    for name, ds in sorted(f.items()):
        if not isinstance(ds, h5py.Dataset) or ds.is_scale or ds.ndim == 0 or name in skip:
            continue
        axis = axis_of(ds)
        if axis is None or not axis.startswith("time") or name.startswith("step"):
            continue
        a = ds.attrs
        kind = str(_text(a.get("insitu_analysis", "")))
        if not kind and "insitu_trigger" in a:
            kind = "trigger"
        out[name] = Var(name=name, axis=axis, dims=tuple(dims_of(ds)), shape=tuple(ds.shape[1:]),
                        dtype=str(ds.dtype), units=str(_text(a.get("units", ""))), kind=kind,
                        field=str(_text(a.get("insitu_field", ""))),
                        long_name=str(_text(a.get("long_name", name))),
                        fill=a.get("_FillValue"))
    return out


def _attrs(f) -> dict:
    return {k: _text(v) for k, v in f.attrs.items()}


def snapshot(path, variables: bool = True) -> Snapshot:
    """The committed rows, attributes and (with ``variables``) the
    catalogue of ``path``, read in one open."""
    return retry(path, lambda f: Snapshot(committed_rows(f), _attrs(f),
                                          catalogue(f) if variables else {}))


def read_rows(path, axis: str, names: Iterable[str], start: int = 0,
              stop: int | None = None) -> tuple[int, dict]:
    """``(committed, {name: rows})``: rows ``[start, min(stop, committed))``
    of ``time``/``step`` of ``axis`` (as ``"time"`` and ``"step"``) and of
    the named variables along it, all read in one open, after the count,
    so that every row returned is a committed, whole row."""
    names = list(names)
    step_name = "step" if axis == "time" else "step" + axis[len("time"):]

    def read(f):
        n = committed_rows(f).get(axis, 0)
        hi = n if stop is None else min(stop, n)
        lo = min(start, hi)
        out = {"time": f[axis][lo:hi] if axis in f else np.arange(lo, hi, dtype=float),
               "step": f[step_name][lo:hi] if step_name in f else np.arange(lo, hi)}
        for name in names:
            out[name] = f[name][lo:hi]
        return n, out
    return retry(path, read)
