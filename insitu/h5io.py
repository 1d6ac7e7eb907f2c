"""Output I/O: one parallel HDF5 file, rows buffered until a durable flush.

The file is opened with h5py's ``mpio`` driver on the session's
communicator (and the ``output.mpi_info`` hints).  HDF5 requires every
metadata change (create, resize, attribute, flush, close) to be made by all
ranks in the same order, so every method here that makes one is collective;
the layout itself comes from :mod:`insitu.layout`.

What an output step costs (docs/output.md):

* **Rows wait in memory until the durable flush**, with no I/O and no
  MPI communication: rank 0 keeps the replicated results (the same on
  every rank) and each rank a copy of its own pieces of the distributed
  ones.  They are copied because a piece may be a view of the model's
  memory (a trigger's snapshot), which the model overwrites at its next
  step.
* **The durable flush** comes at the cadence of :class:`FlushPolicy`,
  after an attribute changed, when a rank holds :data:`BUFFER_BYTES` of
  rows, and at close.  It grows every axis that has new rows to exactly
  its row count (collective, one ``H5Dset_extent`` per dataset on that
  axis), then rank 0 writes each replicated dataset's new rows as one
  block and each rank its pieces (independent I/O), then rank 0 writes
  the committed row count of every axis into ``/insitu/committed_rows``
  (the readers' contract), then ``H5Fflush`` writes HDF5's metadata and
  calls ``MPI_File_sync``.  Between two flushes the file on disk does not
  change at all.  A flush is :meth:`H5Writer._take` (the model's thread
  hands the kept rows over) then :meth:`H5Writer._commit` (the I/O), which
  ``output.writer: background`` runs on a writer thread
  (:mod:`insitu.background`).
* **No dataset is ever shrunk.**  Datasets are created empty and grown to
  their exact size at each flush, so a finalized file has exact sizes
  without cutting anything.  Shrinking a chunked dataset that holds data
  (``H5Dset_extent`` to fewer rows) desynchronises the ranks at the
  file's close under parallel HDF5 1.10.8: every 2-rank run hung under
  MPICH 4.0.2, and under Open MPI 4.1.4 3-rank runs hung once the root
  group's attributes (the config text) passed a size, or with a window
  over a histogram (docs/mpich.md).
* **A restart** (docs/restart.md) opens a file that rank 0 first rewrote,
  alone and serially, as a copy cut to a checkpoint's rows
  (:func:`insitu.state.cut_to_checkpoint`: a new file renamed over the
  old one, never a dataset shrunk); every dataset it holds goes on growing
  from those rows, and a new analysis's datasets are created at that length,
  filled.  :meth:`H5Writer.write_checkpoint` stores the analysis state
  under ``/_insitu_state/<step>``.
* The flush decision must be the same on every rank (the flush is
  collective): it depends on the output steps since the last flush, which
  all ranks count alike, on rank 0's clock and on every rank's buffered
  bytes, which travel to every rank in the step's one reduction (the
  session puts :meth:`H5Writer.flush_clock` into a MAX slot of its
  record), never on a rank's own view.

Independent raw writes are used on purpose: under Open MPI 4.1.x before
4.1.7 (and 5.0.x before 5.0.6), ompio's collective write over a Cartesian
communicator with MPI_THREAD_SINGLE, as a Fortran host gives, silently
loses cells (open-mpi/ompi#12718; see docs/mpiio.md).
"""
from __future__ import annotations

import logging
import math
import operator
import os
import time
from typing import Mapping, Optional, Sequence

import numpy as np

from .analyses.base import Axis, Coord, Piece, Variable
from .step_values import Pack, RowValues, StepValues
from .layout import (COMMITTED, COMMITTED_GROUP, ROWS, STEP_ATTRS, OutputError, attr_value,
                     bounds_attrs, dimension_sizes, fill_value, time_attrs, variable_attrs,
                     variable_fill)

log = logging.getLogger("insitu")

#: a rank that holds this many bytes of rows not yet flushed asks for a
#: durable flush at the next output step (a trigger's snapshots of a big
#: field, or a coarse field every step under a long flush period, must not
#: grow a rank's memory without bound)
BUFFER_BYTES = 64 << 20
#: what a kept value costs beyond its data: the value's object and its
#: slot in the row's dict (measured with tracemalloc: about 195 bytes for a
#: scalar kept as a numpy array; a Python float is smaller), so that many
#: scalar analyses under a long flush period are counted at no less than
#: their real size, not at 8 bytes a value
VALUE_OVERHEAD = 192
#: how a replicated scalar is kept, by the dataset's dtype: a Python
#: number (immutable, so no copy), converted as numpy would at the write
_SCALAR_KEEP = {np.dtype(np.float64): float, np.dtype(np.int64): int}
#: the rest of a row whose values are all in packs (H5Writer.append)
_NO_VALUES: dict = {}


def _pack_columns(rows) -> dict:
    """The values the rows keep in packs (:class:`insitu.step_values.RowValues`),
    by name: a list of ``(row positions, values)``, one per layout, each
    taken as one column of the layout's rows stacked, so a flush writes a
    pack's name with one numpy assignment, not one ``get`` per row (about
    0.2 us each, 16 us a row with ten stats).  Names are unique in a row,
    so a name held in a pack is in no row's own dict.  Also the names
    that some row holds outside packs (the others need no look-up per row)."""
    by_layout = {}
    loose = set()
    for i, row in enumerate(rows):
        kept = row[3]
        loose.update(kept.plain if type(kept) is RowValues else kept)
        if type(kept) is RowValues:
            for p in kept.packs:
                entry = by_layout.get(id(p.layout))
                if entry is None:
                    entry = by_layout[id(p.layout)] = (p.layout, [], [])
                entry[1].append(i)
                entry[2].append(p)
    out = {}
    for layout, at, packs in by_layout.values():
        floats = np.stack([p.floats for p in packs])
        ints = np.stack([p.ints for p in packs])
        at = np.array(at, dtype=np.intp)
        nf = layout.floats
        for name, k in layout.where.items():
            out.setdefault(name, []).append(
                (at, floats[:, k] if k < nf else ints[:, k - nf]))
    return out, loose


class FlushPolicy:
    """When the durable flush comes: every ``seconds`` of rank 0's clock
    and/or every ``every_steps`` output steps, whichever comes first (None
    turns either off; with both off, only growth, attributes and close
    flush).

    ``due`` is a pure function of values every rank agrees on."""

    def __init__(self, seconds: Optional[float] = 10.0,
                 every_steps: Optional[int] = None) -> None:
        self.seconds = seconds
        self.every_steps = every_steps

    @classmethod
    def from_options(cls, out: Mapping) -> "FlushPolicy":
        """From the validated ``output:`` section (insitu.options)."""
        return cls(out.get("flush_seconds", 10.0), out.get("flush_every_steps"))

    def due(self, steps_since: int, agreed_seconds: float) -> bool:
        if self.every_steps is not None and steps_since >= self.every_steps:
            return True
        return self.seconds is not None and agreed_seconds >= self.seconds

    def __repr__(self) -> str:
        return f"FlushPolicy(seconds={self.seconds}, every_steps={self.every_steps})"


def check_output_path(path: str, overwrite: bool) -> str | None:
    """Why ``path`` cannot be the output file, or None if it can (rank 0 only).

    Everything that would make the file's creation fail is checked here, at
    init, so that a week-long run does not learn at its first output step
    that it has nowhere to write.  The directory is probed by creating and
    removing a file, because ``os.access`` says yes to root on a read-only
    mount."""
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if not name:
        return f"output path {path!r} names a directory, not a file"
    if not os.path.isdir(directory):
        return f"output directory {directory!r} does not exist"
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(name)) > limit:
        return f"output file name is {len(os.fsencode(name))} bytes long; {directory!r} allows {limit}"
    if os.path.isdir(path):
        return f"output path {path!r} is a directory"
    if os.path.exists(path):
        if not os.path.isfile(path):
            return f"output path {path!r} exists and is not a regular file"
        if not overwrite:
            return (f"output file {path!r} exists; set output.overwrite: true "
                    "(or pass --overwrite) to replace it")
        if not os.access(path, os.W_OK):
            return f"output file {path!r} exists and is not writable"
    probe = os.path.join(directory, f".insitu-probe-{os.getpid()}")
    try:
        with open(probe, "x"):
            pass
        os.unlink(probe)
    except OSError as exc:
        return f"output directory {directory!r} is not writable: {exc.strerror}"
    return None


def mpi_info_problem(hints: Mapping[str, str], max_key: int, max_val: int) -> str | None:
    """Why ``hints`` cannot become an ``MPI_Info`` of this MPI library, or
    None.  The limits (``MPI_MAX_INFO_KEY``, ``MPI_MAX_INFO_VAL``) differ
    between libraries (36 and 256 in Open MPI, 255 and 1024 in MPICH), so
    they are checked here, against the library the run uses."""
    for k, v in hints.items():
        if len(k) > max_key:
            return (f"output.mpi_info.{k}: the key is {len(k)} characters long; this MPI "
                    f"library allows at most {max_key} (MPI_MAX_INFO_KEY)")
        if len(v) > max_val:
            return (f"output.mpi_info.{k}: the value is {len(v)} characters long; this MPI "
                    f"library allows at most {max_val} (MPI_MAX_INFO_VAL)")
    return None


def _attach_growing_axis(ds, scale) -> None:
    """Name ``ds``'s first dimension after the growing (unlimited) ``scale``
    through the dataset's ``DIMENSION_LIST`` alone, without adding ``ds`` to
    the scale's ``REFERENCE_LIST`` back-pointers (collective; call before
    attaching the other dims).

    Why: to size an unlimited dimension, h5netcdf dereferences every entry
    of its scale's ``REFERENCE_LIST``, and it does so each time it asks any
    variable on that dimension for its shape (several times per variable).
    With one back-pointer per output, opening a file with V outputs costs
    O(V**2) dereferences: 300 outputs took 13-50 s with xarray's h5netcdf
    engine (netCDF-C is not affected).  Readers find a variable's dims from
    its ``DIMENSION_LIST`` (netCDF-C through H5DSiterate_scales, h5netcdf,
    h5py's ``dims``), so the names are unchanged for every reader; the
    back-pointers only serve to size the dimension (the writer resizes the
    scale with every variable on it, so its own length is the size) and to
    detach scales.  The axis's own ``step`` and bounds variables keep
    theirs, so the scale still has a ``REFERENCE_LIST``."""
    import h5py
    refs = np.empty(len(ds.shape), dtype=object)
    for i in range(len(ds.shape)):
        refs[i] = np.array([scale.ref] if i == 0 else [], dtype=h5py.ref_dtype)
    ds.attrs.create("DIMENSION_LIST", refs, dtype=h5py.vlen_dtype(h5py.ref_dtype))


def _jsonable(v):
    """numpy scalars and arrays in a checkpoint's metadata, as JSON."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON: {type(v).__name__}")


def _keep_metadata_cache_in_step(f) -> None:
    """Turn off evictions from HDF5's metadata cache, on every rank alike
    (collective: called right after the open).

    Why: parallel HDF5 1.10.8 reads metadata collectively inside
    collective calls such as ``H5Dset_extent`` (rank 0 reads an entry and
    broadcasts it to the ranks that miss it), which assumes every rank's
    cache holds the same entries.  Raw writes are independent here: rank 0
    alone writes the replicated results, so it alone looks up (and caches)
    their chunk indexes.  Its cache fills faster and evicts other entries
    (a dataset's object header) that the other ranks still hold; the next
    growth then broadcasts on one side only, and fails with
    ``MPI_ERR_TRUNCATE`` or hangs.  48 windows over a zonal mean, flushed
    every step, failed at step 48 at 2 ranks, in the per-row writer too.
    Without evictions no rank drops what another keeps.

    The cost is memory: the cache keeps every object header and chunk
    index node the run touches, which grows with the chunks written (one
    per row of an array result); docs/output.md gives the sizes measured."""
    cfg = f.id.get_mdc_config()
    cfg.evictions_enabled = False
    cfg.incr_mode = 0        # H5C_incr__off: with evictions off the cache
    cfg.flash_incr_mode = 0  # H5C_flash_incr__off  grows as entries come,
    cfg.decr_mode = 0        # H5C_decr__off        and never shrinks
    f.id.set_mdc_config(cfg)


def _show_sel(sel) -> str:
    return ", ".join(f"{s.start}:{s.stop}" if isinstance(s, slice) else str(s) for s in sel)


class _Row:
    """One dataset along a growing axis, with what writing its rows needs:
    its dtype and fill (a row that lacks the variable keeps the fill), and
    the file dataspace, taken again after each growth."""

    __slots__ = ("name", "ds", "var", "dtype", "fill", "space")

    def __init__(self, name: str, ds, var: Optional[Variable]) -> None:
        self.name, self.ds, self.var = name, ds, var
        self.dtype = ds.dtype
        self.fill = ds.fillvalue
        self.refresh()

    def refresh(self) -> None:
        """Take the file dataspace again (after a resize)."""
        self.space = self.ds.id.get_space()

    @property
    def replicated(self) -> bool:
        """Rank 0 writes it: the axis's own time, step and bounds, and every
        result that is the same on every rank."""
        return self.var is None or not self.var.distributed


class _Batch:
    """One flush's worth of rows, handed from :meth:`H5Writer._take` to
    :meth:`H5Writer._commit`: ``step`` (the newest step in it), ``written``
    (rows per axis once it is written), ``rows`` (axis -> the kept rows),
    ``attrs`` (file attributes to set first) and ``must`` (an attribute
    changed: commit even without rows)."""

    __slots__ = ("step", "written", "rows", "attrs", "must")

    def __init__(self, step, written, rows, attrs, must) -> None:
        self.step, self.written, self.rows, self.attrs, self.must = \
            step, written, rows, attrs, must


class H5Writer:
    """The parallel HDF5 writer: :meth:`define` once, :meth:`append` rows,
    :meth:`end_step` after each output step, :meth:`close` at finalize
    (module docstring for the cost of each)."""

    def __new__(cls, *args, **kwargs):
        """``output.writer: background`` makes a
        :class:`insitu.background.BackgroundWriter` (the same writer with
        its I/O on a thread): the session picks the class, the config the
        mode."""
        options = kwargs.get("options", args[4] if len(args) > 4 else None) or {}
        if cls is H5Writer and options.get("writer", "inline") == "background":
            from .background import BackgroundWriter
            return super().__new__(BackgroundWriter)
        return super().__new__(cls)

    def __init__(self, comm, path: str, overwrite: bool, time_attrs: Mapping,
                 options: Optional[Mapping] = None, restart: Optional[Mapping] = None) -> None:
        options = dict(options or {})
        # Rank 0 names and checks the file; every rank learns the verdict, so
        # a bad path fails on all ranks at init instead of hanging at step 1.
        path = comm.bcast_str(os.path.abspath(path) if comm.rank == 0 else None)
        #: the checkpoint a restart goes on from (insitu.state), or None
        self.checkpoint = None
        if restart is not None:
            self.checkpoint = self._cut(comm, path, restart)
        else:
            problem = comm.bcast_str((check_output_path(path, overwrite) or "")
                                     if comm.rank == 0 else None)
            if problem:
                raise OutputError(problem)
        self.comm = comm
        #: the communicator of the file's collectives (HDF5's and the
        #: flush's agreement): the session's own here; a duplicate of it
        #: under the background writer (insitu.background), whose thread
        #: makes them while the model's thread makes the session's
        self.fcomm = comm
        self.path = path
        self.policy = FlushPolicy.from_options(options)
        self.mpi_info = dict(options.get("mpi_info") or {})
        if self.mpi_info:
            from mpi4py import MPI
            problem = mpi_info_problem(self.mpi_info, MPI.MAX_INFO_KEY, MPI.MAX_INFO_VAL)
            if problem:
                raise OutputError(problem)
        if options.get("flush_every") is not None and comm.rank == 0:
            log.warning("output.flush_every is deprecated; it is read as "
                        "output.flush_every_steps: %d (and output.flush_seconds still "
                        "applies, default 10 s)", options["flush_every"])
        self.time_attrs = dict(time_attrs)
        #: output.verify: re-read what this rank wrote after each durable flush
        self.verify = bool(options.get("verify", False))
        self._log: list = []   # (dataset, selection, the array written) since the last flush
        # The file itself is created by define(), at the first step, once
        # the whole config has been checked against the declared fields: a
        # run that fails on its config leaves no file behind (and replaces
        # no file with an empty one).
        self.file = None
        self.last_step = None   # the newest step handed to append
        self.safe_step = None   # the newest step committed by a durable flush
        self.datasets: dict[str, object] = {}
        self._vars: dict[str, Variable] = {}
        self.flushes = 0        # durable flushes so far (tests, benchmarks)
        self.growths = 0        # datasets grown (one per dataset per flush that grew its axis)
        #: the clock the flush policy reads on rank 0 (a test may replace it)
        self.clock = time.monotonic
        self._since = 0.0       # the clock at the last durable flush
        self._steps_since = 0   # output steps since the last durable flush
        self._must_flush = False  # metadata changed: flush at the end of this step
        self._pending_bytes = 0   # bytes of rows this rank holds for the next flush
        self._attrs: dict = {}    # file attributes for the next flush (background writer)

    @staticmethod
    def _cut(comm, path: str, restart: Mapping) -> dict:
        """A restart: rank 0 alone (serial h5py, before any parallel open)
        checks the checkpoint and replaces the file by a copy cut to its
        rows (:func:`insitu.state.cut_to_checkpoint`: a new file renamed
        over the old, never a dataset shrunk); every rank learns the
        checkpoint's metadata, or the same error."""
        import json
        from .state import RestartError, cut_to_checkpoint
        text = None
        if comm.rank == 0:
            try:
                text = json.dumps({"ok": cut_to_checkpoint(path, restart.get("step"),
                                                           restart["config"])})
            except RestartError as exc:
                text = json.dumps({"error": str(exc)})
            except Exception as exc:  # noqa: BLE001 - every rank must learn it
                text = json.dumps({"error": f"restart: cannot cut {path} to its checkpoint: "
                                            f"{type(exc).__name__}: {exc}"})
        got = json.loads(comm.bcast_str(text))
        if "error" in got:
            raise RestartError(got["error"])
        return got["ok"]

    # -- creation -------------------------------------------------------------
    def _create(self) -> None:
        """Create the file (collective).  The path was checked at init; a
        file system that changed since then fails here, on every rank, in
        the collective open."""
        import h5py
        kwargs = {}
        info = None
        if self.mpi_info:
            from mpi4py import MPI
            info = MPI.Info.Create()
            for k, v in self.mpi_info.items():
                info.Set(k, v)
            kwargs["info"] = info
            log.debug("MPI-IO hints for %s: %s", self.path, self.mpi_info)
        try:
            self.file = h5py.File(self.path, "r+" if self.checkpoint else "w", driver="mpio",
                                  comm=self.fcomm.comm, libver="earliest", **kwargs)
        except OSError as exc:
            raise OutputError(f"cannot create {self.path!r} with parallel HDF5: {exc}") from None
        finally:
            if info is not None:
                info.Free()  # HDF5 keeps its own duplicate
        _keep_metadata_cache_in_step(self.file)

    def define(self, variables: Sequence[Variable], coords: Sequence[Coord],
               file_attrs: Mapping, fill: bool, axes: Sequence[Axis] = ()) -> None:
        """Create the file, its axes, dimensions, coordinates and one
        variable per result, every growing axis empty (collective).

        On a restart the file exists, cut to the checkpoint's rows: what it
        holds is opened and goes on growing from those rows; what it lacks
        (a new analysis's variables, which start empty: fill in the rows
        before the restart) is created as in a new file."""
        self._create()
        f = self.file
        sizes = dimension_sizes(variables, coords)
        self.axes = {"time": Axis("time", "step")}
        self.axes.update({a.name: a for a in axes})
        on_axis = {name: [v for v in variables if v.axis == name] for name in self.axes}
        start = dict(self.checkpoint["rows"]) if self.checkpoint else {}
        self.written = {name: int(start.get(name, 0)) for name in self.axes}  # rows appended
        self.committed = dict(self.written)   # rows the last flush committed
        # Every axis is created empty and grows to its exact row count at
        # each flush; nothing is ever shrunk (module docstring).
        self.allocated = dict(self.written)
        if self.checkpoint:
            self.last_step = self.safe_step = int(self.checkpoint["step"])
            if COMMITTED_GROUP in f:  # rewritten below, for the axes of this run
                del f[COMMITTED_GROUP]
        #: rows appended since the last flush, per axis: (step, time, bounds,
        #: values), the values this rank writes (copies)
        self.pending: dict[str, list] = {name: [] for name in self.axes}
        self.rows: dict[str, list[_Row]] = {name: [] for name in self.axes}
        self.distributed = {name: any(v.distributed for v in on_axis[name]) for name in self.axes}
        # Datasets that rank 0 writes whole (every row it grows, with the
        # fill where a row lacks the variable) are created with fill_time
        # never: HDF5 then allocates their chunks with no collective fill
        # write (4 MPI calls per dataset at each new chunk).  Distributed
        # ones keep the fill at allocation, as their pieces need not cover
        # every cell of a row.
        scales = {}
        for ax in self.axes.values():
            n = self.allocated[ax.name]
            if ax.name in f:  # a restart
                t, st = f[ax.name], f[ax.step]
                self.datasets[ax.name], self.datasets[ax.step] = t, st
                self.rows[ax.name] += [_Row(ax.name, t, None), _Row(ax.step, st, None)]
                scales[ax.name] = t
                if ax.bounds:
                    sizes.setdefault("nv", 2)
                continue
            # Rows never written read as NaT (time) and the netCDF fill
            # (step), without a _FillValue attribute: a file holds no such
            # rows, and xarray keeps the step an integer.
            t = f.create_dataset(ax.name, shape=(n,), maxshape=(None,), dtype="f8",
                                 chunks=(ROWS,), fillvalue=np.nan, fill_time="never")
            t.make_scale(ax.name)
            for k, v in time_attrs(ax, self.time_attrs).items():
                t.attrs[k] = v
            st = f.create_dataset(ax.step, shape=(n,), maxshape=(None,), dtype="i8",
                                  chunks=(ROWS,), fillvalue=fill_value(np.int64),
                                  fill_time="never")
            st.dims[0].attach_scale(t)
            for k, v in STEP_ATTRS.items():
                st.attrs[k] = v
            self.datasets[ax.name], self.datasets[ax.step] = t, st
            self.rows[ax.name] += [_Row(ax.name, t, None), _Row(ax.step, st, None)]
            scales[ax.name] = t
            if ax.bounds:
                sizes.setdefault("nv", 2)
        given = {c.name: c for c in coords}
        for d, n in sizes.items():  # dimension coordinates: given values, or an index
            c = given.get(d)
            values = c.values if c is not None and c.dims == (d,) else np.arange(n)
            if d in f:  # a restart: written by the run that began the file
                scales[d] = f[d]
                continue
            ds = f.create_dataset(d, data=values if self.comm.rank == 0 else None,
                                  shape=values.shape, dtype=values.dtype)
            ds.make_scale(d)
            for k, v in (c.attrs if c is not None and c.dims == (d,) else
                         {"long_name": f"index along {d}", "units": "1"}).items():
                ds.attrs[k] = attr_value(v)
            scales[d] = ds
        for ax in self.axes.values():
            if ax.bounds:
                name = f"{ax.name}_bounds"
                if name in f:
                    self.datasets[name] = f[name]
                    self.rows[ax.name].append(_Row(name, f[name], None))
                    continue
                b = f.create_dataset(name, shape=(self.allocated[ax.name], 2),
                                     maxshape=(None, 2), dtype="f8", chunks=(ROWS, 2),
                                     fillvalue=np.nan, fill_time="never")
                b.dims[0].attach_scale(scales[ax.name])
                b.dims[1].attach_scale(scales["nv"])
                for k, v in bounds_attrs(ax).items():
                    b.attrs[k] = v
                self.datasets[name] = b
                self.rows[ax.name].append(_Row(name, b, None))
        for c in coords:  # auxiliary coordinates
            if c.dims == (c.name,) or c.name in f:
                continue
            ds = f.create_dataset(c.name, shape=c.values.shape, dtype=c.values.dtype)
            if self.comm.rank == 0:
                ds[...] = c.values  # a scalar coordinate (dims ()) too
            for i, d in enumerate(c.dims):
                ds.dims[i].attach_scale(scales[d])
            for k, v in c.attrs.items():
                ds.attrs[k] = attr_value(v)
        for var in variables:
            if var.name in f:  # a restart
                ds = f[var.name]
                self.datasets[var.name] = ds
                self._vars[var.name] = var
                self.rows[var.axis].append(_Row(var.name, ds, var))
                continue
            fillvalue, masked = variable_fill(var, fill)
            chunks = (ROWS,) if not var.shape else (1, *var.shape)
            ds = f.create_dataset(var.name, shape=(self.allocated[var.axis], *var.shape),
                                  maxshape=(None, *var.shape), dtype=var.dtype, chunks=chunks,
                                  fillvalue=fillvalue,
                                  # a variable new at a restart has rows before it
                                  # that nobody writes: they read as its fill
                                  fill_time="alloc" if var.distributed or self.allocated[var.axis]
                                  else "never")
            _attach_growing_axis(ds, scales[var.axis])
            for i, d in enumerate(var.dims):
                ds.dims[i + 1].attach_scale(scales[d])
            if masked:
                ds.attrs["_FillValue"] = np.array(fillvalue, dtype=var.dtype)
            for k, v in variable_attrs(var, self.axes[var.axis].step).items():
                ds.attrs[k] = attr_value(v)
            self.datasets[var.name] = ds
            self._vars[var.name] = var
            self.rows[var.axis].append(_Row(var.name, ds, var))
        g = f.create_group(COMMITTED_GROUP)
        names = list(self.axes)
        # a dimension of its own, so that netCDF readers name it (no phony dim)
        ax = g.create_dataset("axis", data=np.arange(len(names)) if self.comm.rank == 0 else None,
                              shape=(len(names),), dtype="i8")
        ax.make_scale("axis")
        ax.attrs["long_name"] = "growing axis, in the order committed_rows.axes names them"
        c = g.create_dataset(COMMITTED.split("/", 1)[1], shape=(len(names),), dtype="i8",
                             fillvalue=0)
        c.dims[0].attach_scale(ax)
        c.attrs["axes"] = " ".join(names)
        c.attrs["long_name"] = ("rows of each growing axis committed by the last durable "
                                "flush; rows past them are not committed")
        self._count = c
        self._count_space = c.id.get_space()
        for k, v in file_attrs.items():
            f.attrs[k] = attr_value(v)
        f.flush()
        self._since = self.clock()
        self._steps_since = 0
        self._keep = {a: self._keep_plan(a) for a in self.axes}
        self._fits = {}  # _pack_fits's answers, by (axis, id(layout))
        # each axis's scalars as (names, converters, the set of names), for
        # append's check that a row is exactly its scalars
        self._scalar_row = {a: (tuple(n for n, _ in sc), tuple(k for _, k in sc),
                                frozenset(n for n, _ in sc))
                            for a, (sc, _, _) in self._keep.items()}

    def _keep_plan(self, axis: str) -> tuple:
        """What :meth:`append` keeps of a row on ``axis``, decided once:
        ``(scalars, arrays, pieces)``, the replicated scalar variables this
        rank keeps as ``(name, convert)`` (rank 0 only), the replicated
        arrays it copies as ``(name, dtype)`` (rank 0 only), and the
        distributed variables whose pieces it copies as ``(name, dtype)``."""
        rank0 = self.comm.rank == 0
        scalars, arrays, pieces = [], [], []
        for r in self.rows[axis]:
            if r.var is None:
                continue
            if r.var.distributed:
                pieces.append((r.name, r.dtype))
            elif rank0:
                keep = _SCALAR_KEEP.get(r.dtype) if not r.var.shape else None
                if keep is not None:
                    scalars.append((r.name, keep))
                else:
                    arrays.append((r.name, r.dtype))
        return tuple(scalars), tuple(arrays), tuple(pieces)

    # -- rows -----------------------------------------------------------------
    def append(self, step: int, time: float, values: Mapping[str, object],
               axis: str = "time", bounds=None) -> None:
        """Keep one row along ``axis`` for the next durable flush (no I/O,
        no MPI communication).  A variable missing from ``values`` keeps
        its fill value in that row.

        Rank 0 keeps the replicated values, and every rank a copy of its
        own pieces of the distributed ones: a piece may be a view of the
        model's memory, which the model overwrites at its next step.  A
        replicated float64 or int64 scalar is kept as a Python number
        (immutable: no copy; a value that does not convert raises here, as
        the numpy copy did), not as a numpy array made per value: about
        0.6 us each, most of rank 0's append with ten analyses (issue 12).
        What to keep of each variable is decided at :meth:`define`."""
        self.last_step = step
        scalars, arrays, pieces = self._keep[axis]
        packs = ()
        if type(values) is StepValues:
            # A due step's results (insitu.step_values): packs of batched
            # analyses are kept as their two arrays, not as 80 Python
            # numbers (issue 12), where every name of the pack is a scalar
            # variable of this axis of the pack's kind (checked once per
            # layout); the rest of the row as before.
            parts = values.parts
            if len(parts) == 1 and type(parts[0]) is Pack:
                packs, values = (parts[0],), _NO_VALUES
            else:
                packs = tuple(p for p in parts if type(p) is Pack)
                values = {k: v for p in parts if type(p) is dict for k, v in p.items()}
            if packs:
                if not scalars:  # another rank than 0: replicated values are rank 0's
                    packs = ()
                elif not all([self._pack_fits(axis, p.layout) for p in packs]):
                    values = {**values, **{k: v for p in packs for k, v in p.items()}}
                    packs = ()
        kept = {}
        nbytes = 0
        if scalars and values:
            names, keeps, every = self._scalar_row[axis]
            if (not arrays and not pieces and values.keys() == every
                    and all(map(operator.is_, map(type, map(values.__getitem__, names)),
                                keeps))):
                # The row is these scalars alone, each already a Python
                # float or int of its variable's kind, which its converter
                # would return as the same object: one dict copy in C, not
                # a Python loop of 80 calls with ten stats (about 1.2 us
                # warm, more right after the model's step, issue 12).
                kept = dict(values)
            else:
                get = values.get
                for name, keep in scalars:
                    v = get(name)
                    if v is not None:
                        kept[name] = keep(v)
            nbytes = len(kept) * (8 + VALUE_OVERHEAD)
        for name, dtype in arrays:
            v = values.get(name)
            if v is not None:
                data = kept[name] = np.array(v, dtype=dtype, copy=True)
                nbytes += data.nbytes + VALUE_OVERHEAD
        for name, dtype in pieces:
            v = values.get(name)
            if v is None or v.values.size == 0:
                continue
            data = np.array(v.values, dtype=dtype, order="C", copy=True)
            kept[name] = Piece(tuple(v.start), data)
            nbytes += data.nbytes + VALUE_OVERHEAD
        if packs:  # the row's values: its own, then the packs' (RowValues.get)
            kept = RowValues(kept, packs)
            for p in packs:
                nbytes += p.floats.nbytes + p.ints.nbytes + VALUE_OVERHEAD
        self.pending[axis].append((step, time, bounds, kept))
        self.written[axis] += 1
        self._pending_bytes += nbytes

    def _pack_fits(self, axis: str, layout) -> bool:
        """Whether every output of a pack's ``layout`` is a scalar variable
        on ``axis`` whose kept kind is the pack's (float64 as float, int64 as
        int), so that the row may keep the pack's arrays as they are;
        decided once per layout and axis."""
        key = (axis, id(layout))
        fits = self._fits.get(key)
        if fits is None:
            kinds = dict(self._keep[axis][0])
            fits = all(kinds.get(name) is _SCALAR_KEEP[layout.dtype_of(name)]
                       for name in layout.names)
            self._fits[key] = (fits, layout)  # the layout kept: its id stays its own
            return fits
        return fits[0]

    def _grow(self, axis: str, n: int) -> None:
        """Grow every dataset on ``axis`` to exactly its ``n`` rows
        (collective: every rank appended the same rows).  Growing never
        shrinks, and growing is the only resize there is (module
        docstring)."""
        for r in self.rows[axis]:
            r.ds.resize((n, *r.ds.shape[1:]))
            r.refresh()
            self.growths += 1
        self.allocated[axis] = n

    def _write_pending(self, axis: str, rows: list, n: int) -> None:
        """Write ``rows``, the rows kept for ``axis``, the last of which is
        row ``n - 1`` (independent I/O).

        Rank 0 writes each replicated dataset's new rows as one block (a
        row that lacks the variable holds its fill), and each rank its
        pieces, consecutive rows with the same piece as one block.
        Independent, not collective: Open MPI's ompio loses cells in
        collective writes under a real host's conditions (docs/mpiio.md),
        and no two ranks write the same cell."""
        n0 = n - len(rows)
        ax = self.axes[axis]
        rank0 = self.comm.rank == 0
        columns, loose = _pack_columns(rows) if rank0 else ({}, None)
        for r in self.rows[axis]:
            if r.replicated:
                if not rank0:
                    continue
                block = np.full((len(rows), *r.ds.shape[1:]), r.fill, dtype=r.dtype)
                for i, (step, when, bounds, kept) in enumerate(
                        () if r.var is not None and r.name not in loose else rows):
                    if r.var is not None:
                        value = kept.get(r.name)
                    else:
                        value = when if r.name == ax.name else step if r.name == ax.step else bounds
                    if value is not None:
                        block[i] = value
                for at, values in columns.get(r.name, ()):
                    block[at] = values
                self._write(r, (n0,) + (0,) * (block.ndim - 1), block)
            else:
                run, first = [], 0
                for i, row in enumerate(rows):
                    piece = row[3].get(r.name)
                    if run and (piece is None or piece.start != run[0].start
                                or piece.values.shape != run[0].values.shape):
                        self._write_run(r, first, run)
                        run = []
                    if piece is not None:
                        if not run:
                            first = n0 + i
                        run.append(piece)
                if run:
                    self._write_run(r, first, run)

    def _write_run(self, r: _Row, first: int, run: list) -> None:
        block = run[0].values[None] if len(run) == 1 else np.stack([p.values for p in run])
        self._write(r, (first, *run[0].start), block)

    def _write(self, r: _Row, start: tuple, block: np.ndarray) -> None:
        """One hyperslab write of ``block`` at ``start`` (one ``H5Dwrite``;
        h5py's ``ds[...] = v`` costs several times more), remembered for
        :meth:`_verify` if it is on."""
        from h5py import h5s
        block = np.ascontiguousarray(block)
        r.space.select_hyperslab(start, block.shape)
        r.ds.id.write(h5s.create_simple(block.shape), r.space, block)
        if self.verify:
            sel = tuple(slice(o, o + m) for o, m in zip(start, block.shape))
            self._log.append((r.ds, sel, block))

    # -- the flush policy --------------------------------------------------------
    def flush_clock(self, rank: int) -> float:
        """What this rank puts into the step's record for the flush
        decision (combined with MAX): rank 0's seconds since the last
        durable flush, ``-inf`` elsewhere, so every rank decides on rank
        0's clock; ``inf`` from any rank that holds :data:`BUFFER_BYTES`
        of rows, so every rank flushes at the end of that step."""
        if self._pending_bytes >= BUFFER_BYTES:
            return math.inf
        return self.clock() - self._since if rank == 0 else -math.inf

    def end_step(self, agreed_seconds: float) -> None:
        """After each output step (collective): flush durably if the policy
        says so, if a rank's buffer is full, or if an attribute changed.

        ``agreed_seconds`` is the MAX-combined :meth:`flush_clock` from the
        step's record, the same value on every rank."""
        if self.file is None:
            return
        if self._flush_due(agreed_seconds):
            self.flush()

    def _flush_due(self, agreed_seconds: float) -> bool:
        """Count this output step and say whether a durable flush is due:
        the policy's cadence, a rank's full buffer (``agreed_seconds`` is
        +inf) or a changed attribute.  One rule for the inline and the
        background writer (insitu.background), which differ only in who
        does the flush."""
        self._steps_since += 1
        return (self._must_flush or agreed_seconds == math.inf
                or self.policy.due(self._steps_since, agreed_seconds))

    def flush(self) -> None:
        """Write the rows kept since the last flush and commit them,
        durably (collective): :meth:`_take` the batch, :meth:`_commit` it."""
        if self.file is None:
            return
        self._commit(self._take())
        self._since = self.clock()

    def _take(self) -> "_Batch":
        """The rows kept since the last flush, handed over without a copy
        (each axis's list is replaced by a new one), with the row counts
        and attributes they commit; the policy's counters start again."""
        rows = {}
        for a in self.axes:
            if self.pending[a]:
                rows[a], self.pending[a] = self.pending[a], []
        batch = _Batch(self.last_step, dict(self.written), rows, self._attrs, self._must_flush)
        self._attrs = {}
        self._pending_bytes = 0
        self._must_flush = False
        self._steps_since = 0
        return batch

    def _commit(self, batch: "_Batch") -> None:
        """Write ``batch`` and commit it, durably (collective; the I/O half
        of a flush, on the background writer's thread there).

        Every axis with new rows grows to its exact size (collective, in
        the same order on every rank), then the rows are written with
        independent I/O.  When an axis has distributed variables, ranks
        then agree, in one small reduction, that each has written its
        pieces (a rank's writes have returned before it joins), so rank 0
        never commits a row that a rank has not written.  Rank 0 then
        writes the counts, and ``H5Fflush`` writes HDF5's metadata and
        syncs the file on every rank."""
        try:
            for k, v in batch.attrs.items():
                self.file.attrs[k] = v
            pending = [a for a in self.axes if batch.written[a] > self.committed[a]]
            for a in pending:
                self._grow(a, batch.written[a])
            for a in pending:
                self._write_pending(a, batch.rows.get(a, []), batch.written[a])
            counts = np.fromiter((batch.written[a] for a in self.axes), dtype=np.int64,
                                 count=len(self.axes))
            if self.fcomm.size > 1 and any(self.distributed[a] for a in pending):
                counts = self.fcomm.allreduce_int64(counts, "min")
            if self.comm.rank == 0 and (pending or batch.must):
                self._count.id.write(self._count_space, self._count_space, counts)
            self.file.flush()
            if self.verify:
                self._verify(batch.step)
        except (OSError, RuntimeError) as exc:
            raise OutputError(self._write_failure(exc, batch.step)) from None
        self.committed = dict(zip(self.axes, map(int, counts)))
        self.safe_step = batch.step
        self.flushes += 1

    def _verify(self, step) -> None:
        """``output.verify``: re-read every block this rank wrote since the
        last flush and compare it, bit for bit, with what was written.

        The flush has completed every rank's writes, so what is read is what
        any later reader will see.  This catches an MPI-IO layer that loses
        or overwrites cells (Open MPI 4.1's ompio did, docs/mpiio.md) at the
        flush after it happens, while the run can still be stopped, instead
        of in the analysis of a finished run.  Reads are independent: no
        collective, and each rank checks only its own blocks."""
        log_, self._log = self._log, []
        for ds, sel, want in log_:
            got = ds[sel]
            if got.tobytes() != want.tobytes():
                bad = int(np.count_nonzero(~((got == want) | (np.isnan(got) & np.isnan(want))
                                              if want.dtype.kind == "f" else got == want)))
                raise OutputError(
                    f"output.verify: rank {self.comm.rank} re-read {ds.name.lstrip('/')}"
                    f"[{_show_sel(sel)}] after step {step} and {bad} of {want.size} "
                    f"cell(s) differ from what it wrote: the file system or MPI-IO layer lost "
                    f"or overwrote them (docs/mpiio.md); steps up to {self.safe_step} were "
                    "verified")

    def _write_failure(self, exc: BaseException, step=None) -> str:
        import shutil
        directory = os.path.dirname(self.path)
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
        cause = ("no space left on device" if free is not None and free < 1 << 20
                 else f"the write failed ({exc})")
        kept = (f"steps up to {self.safe_step} are in the file" if self.safe_step is not None
                else "no step had been committed yet")
        step = self.last_step if step is None else step
        return (f"{cause} while writing step {step} to {self.path} "
                f"({free if free is not None else '?'} bytes free); {kept}")

    # -- checkpoints (insitu.state) ----------------------------------------------
    def write_checkpoint(self, step: int, meta: Mapping, arrays: Mapping, keep: int) -> None:
        """Store a checkpoint as ``/_insitu_state/<step>`` (collective; the
        caller flushed the rows first, so ``meta``'s row counts are
        committed rows).

        ``arrays`` maps names to :class:`insitu.state.StateArray`: rank 0
        writes the replicated ones, each rank its pieces of the distributed
        ones (``value``: a list of ``(start, values)``; independent I/O, as
        the rows).  The metadata goes in as JSON
        bytes (the dataset ``meta``); a durable flush; then the ``complete`` attribute and a
        second flush, so a run killed in between leaves a checkpoint a
        restart recognises as incomplete instead of trusting.  Then all but
        the ``keep`` newest checkpoints are unlinked."""
        import json
        from h5py import h5s
        from .state import GROUP
        if self.file is None:
            raise OutputError("insitu checkpoint before the output file exists")
        f = self.file
        rank0 = self.comm.rank == 0
        try:
            for a in arrays.values():  # read before any checkpoint is unlinked
                if a.copy_from:
                    a.copy_from = [(off, np.asarray(src[...])) for off, src in a.copy_from] \
                        if rank0 else []
            top = f.require_group(GROUP)
            name = str(int(step))
            if name in top:
                del top[name]
            g = top.create_group(name)
            for key, a in arrays.items():
                ds = g.create_dataset(key, shape=tuple(a.shape), dtype="f8",
                                      fill_time="never" if not a.distributed else "alloc",
                                      fillvalue=np.nan)
                if a.distributed:
                    # this rank's pieces (several arrays may share one
                    # dataset, stacked along its first axis), and rank 0's
                    # copies of restored partials no rank was handed yet
                    space = ds.id.get_space()
                    for start, values in a.value or ():
                        block = np.ascontiguousarray(values, dtype=np.float64)
                        space.select_hyperslab(tuple(start), block.shape)
                        ds.id.write(h5s.create_simple(block.shape), space, block)
                    for off, src in (a.copy_from or ()) if rank0 else ():
                        ds[off:off + len(src)] = src
                elif rank0 and a.value is not None and np.size(a.value):
                    ds.id.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(a.value, dtype=np.float64))
            # The metadata (tens of kB with many analyses: the config is in
            # it) is a byte dataset that rank 0 writes, not an attribute: a
            # large attribute grows the group's object header, the kind of
            # metadata change that desynchronised ranks in parallel HDF5
            # 1.10.8 (docs/mpich.md); a raw write is independent
            text = np.frombuffer(json.dumps(dict(meta), default=_jsonable).encode(), np.uint8)
            m = g.create_dataset("meta", shape=text.shape, dtype="u1", fill_time="never")
            if rank0 and text.size:
                m.id.write(h5s.ALL, h5s.ALL, text)
            f.flush()
            g.attrs["complete"] = np.int8(1)
            old = sorted((int(k) for k in top if k.lstrip("-").isdigit()))
            for k in old[:-keep] if keep > 0 else old:
                if k != int(step):
                    del top[str(k)]
            f.flush()
        except (OSError, RuntimeError) as exc:
            raise OutputError(self._write_failure(exc, step)) from None

    # -- attributes and the end ------------------------------------------------
    def set_attrs(self, attrs: Mapping) -> None:
        """Set file attributes (collective); the step ends with a durable
        flush, so that no metadata change waits in memory."""
        if self.file is None:
            return  # never defined: there is no file to describe
        for k, v in attrs.items():
            self.file.attrs[k] = attr_value(v)
        self._must_flush = True

    def close(self) -> None:
        """Write and commit what is left, then close (collective).  Every
        axis is already exactly as long as its rows: nothing is cut."""
        if getattr(self, "file", None) is not None and self.file.id.valid:
            if getattr(self, "axes", None):
                self.flush()
            self.file.close()
        self.file = None
