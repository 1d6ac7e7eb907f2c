"""Output: one parallel HDF5 file that xarray opens directly.

Layout::

    /time          (time)  float64, dimension scale, CF units/calendar
    /step          (time)  int64, coordinate (named in ``coordinates``)
    /<dim>         (dim)   a dimension scale per other dimension, with its
                           coordinate values (bin centres, coarse cells, ...)
    /<coord>       (...)   auxiliary coordinates (probe positions, bounds)
    /<var>         (time, ...)  one per result, CF attributes

The file is opened with h5py's ``mpio`` driver on the session's
communicator.  HDF5 requires every metadata change (create, resize,
attribute, flush, close) to be made by all ranks in the same order, so every
method here is collective.  Replicated results (the same on every rank) are
written by rank 0 alone, independently; distributed results are written
independently too, each rank writing its own hyperslab and a rank with
nothing to write skipping the write.  Collective raw writes are avoided on
purpose: under Open MPI 4.1.x before 4.1.7 (and 5.0.x before 5.0.6), ompio's
collective write over a Cartesian communicator with MPI_THREAD_SINGLE, as a
Fortran host gives, silently loses cells (open-mpi/ompi#12718; see
docs/mpiio.md).  Only the raw writes are independent; every metadata change
stays collective and in the same order on all ranks.

:class:`MemoryWriter` has the same interface and keeps results in lists; the
fake-communicator unit tests use it.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Mapping, Sequence

import numpy as np

from .analyses.base import Axis, Coord, Piece, Variable

log = logging.getLogger("insitu")

CHUNK = 512

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


class OutputError(OSError):
    """The output file cannot be created or written."""


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


def _attr(v):
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


def _show_sel(sel) -> str:
    return ", ".join(f"{s.start}:{s.stop}" if isinstance(s, slice) else str(s) for s in sel)


class H5Writer:
    def __init__(self, comm, path: str, overwrite: bool, time_attrs: Mapping,
                 flush_every: int = 1, verify: bool = False) -> None:
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
        #: output.verify: re-read what this rank wrote after each flush
        self.verify = verify
        self._log: list = []   # (dataset, selection, the array written) since the last flush
        # The file itself is created by define(), at the first step, once
        # the whole config has been checked against the declared fields: a
        # run that fails on its config leaves no file behind (and replaces
        # no file with an empty one).
        self.file = None
        self.last_step = None   # the newest step handed to append
        self.safe_step = None   # the newest step flushed to the file
        self.datasets: dict[str, object] = {}
        self._vars: dict[str, Variable] = {}

    def _create(self) -> None:
        """Create the file (collective).  The path was checked at init; a
        file system that changed since then fails here, on every rank, in
        the collective open."""
        import h5py
        try:
            self.file = h5py.File(self.path, "w", driver="mpio", comm=self.comm.comm,
                                  libver="earliest")
        except OSError as exc:
            raise OutputError(f"cannot create {self.path!r} with parallel HDF5: {exc}") from None

    def define(self, variables: Sequence[Variable], coords: Sequence[Coord],
               file_attrs: Mapping, fill: bool, axes: Sequence[Axis] = ()) -> None:
        """Create the file, its axes, dimensions, coordinates and one
        variable per result (collective)."""
        self._create()
        f = self.file
        sizes = dimension_sizes(variables, coords)
        self.axes = {"time": Axis("time", "step")}
        self.axes.update({a.name: a for a in axes})
        self.written = {name: 0 for name in self.axes}
        self.pending: dict[str, list] = {name: [] for name in self.axes}
        self.members: dict[str, list[str]] = {name: [] for name in self.axes}
        scales = {}
        for ax in self.axes.values():
            t = f.create_dataset(ax.name, shape=(0,), maxshape=(None,), dtype="f8",
                                 chunks=(CHUNK,))
            t.make_scale(ax.name)
            attrs = {"standard_name": "time", "long_name": ax.long_name, "axis": "T",
                     **self.time_attrs}
            if attrs.get("calendar", "standard") in LEAP_SECOND_CALENDARS:
                # CF 1.11 4.4.1: model time counts no leap seconds.
                attrs.setdefault("units_metadata", "leap_seconds: none")
            if ax.bounds:
                attrs["bounds"] = f"{ax.name}_bounds"
            for k, v in attrs.items():
                if v is not None:
                    t.attrs[k] = v
            st = f.create_dataset(ax.step, shape=(0,), maxshape=(None,), dtype="i8",
                                  chunks=(CHUNK,))
            st.dims[0].attach_scale(t)
            st.attrs["long_name"] = "model step number"
            st.attrs["units"] = "1"
            self.datasets[ax.name], self.datasets[ax.step] = t, st
            self.members[ax.name] += [ax.name, ax.step]
            scales[ax.name] = t
            if ax.bounds:
                sizes.setdefault("nv", 2)
        given = {c.name: c for c in coords}
        for d, n in sizes.items():  # dimension coordinates: given values, or an index
            c = given.get(d)
            values = c.values if c is not None and c.dims == (d,) else np.arange(n)
            ds = f.create_dataset(d, data=values if self.comm.rank == 0 else None,
                                  shape=values.shape, dtype=values.dtype)
            ds.make_scale(d)
            for k, v in (c.attrs if c is not None and c.dims == (d,) else
                         {"long_name": f"index along {d}", "units": "1"}).items():
                ds.attrs[k] = _attr(v)
            scales[d] = ds
        for ax in self.axes.values():
            if ax.bounds:
                b = f.create_dataset(f"{ax.name}_bounds", shape=(0, 2), maxshape=(None, 2),
                                     dtype="f8", chunks=(CHUNK, 2))
                b.dims[0].attach_scale(scales[ax.name])
                b.dims[1].attach_scale(scales["nv"])
                self.datasets[b.name.lstrip("/")] = b
                self.members[ax.name].append(f"{ax.name}_bounds")
        for c in coords:  # auxiliary coordinates
            if c.dims == (c.name,):
                continue
            ds = f.create_dataset(c.name, shape=c.values.shape, dtype=c.values.dtype)
            if self.comm.rank == 0:
                ds[...] = c.values  # a scalar coordinate (dims ()) too
            for i, d in enumerate(c.dims):
                ds.dims[i].attach_scale(scales[d])
            for k, v in c.attrs.items():
                ds.attrs[k] = _attr(v)
        for var in variables:
            fillvalue = None
            if fill or var.distributed:
                fillvalue = fill_value(var.dtype)
            # An integer's fill is a value it could hold, so xarray is told
            # of it (_FillValue) only where a cell can be missing: rows of
            # the time axis where the analysis was not due or was disabled.
            # Rows of a snapshot or window axis are always written whole;
            # there HDF5 still fills never-written cells with the sentinel,
            # for an integrity check to find, but no reader masks real data.
            masked = fillvalue is not None and (var.dtype.kind == "f" or
                                                (fill and var.axis == "time"))
            chunks = (CHUNK,) if not var.shape else (1, *var.shape)
            ds = f.create_dataset(var.name, shape=(0, *var.shape), maxshape=(None, *var.shape),
                                  dtype=var.dtype, chunks=chunks, fillvalue=fillvalue)
            _attach_growing_axis(ds, scales[var.axis])
            for i, d in enumerate(var.dims):
                ds.dims[i + 1].attach_scale(scales[d])
            if masked:
                ds.attrs["_FillValue"] = np.array(fillvalue, dtype=var.dtype)
            attrs = dict(var.attrs)
            step = self.axes[var.axis].step
            attrs["coordinates"] = " ".join([step, *attrs.get("coordinates", "").split()])
            for k, v in attrs.items():
                ds.attrs[k] = _attr(v)
            self.datasets[var.name] = ds
            self._vars[var.name] = var
            self.members[var.axis].append(var.name)
        for k, v in file_attrs.items():
            f.attrs[k] = _attr(v)
        f.flush()

    def append(self, step: int, time: float, values: Mapping[str, object],
               axis: str = "time", bounds=None) -> None:
        """Add one entry along ``axis`` (collective).  A variable missing
        from ``values`` keeps its fill value there.

        Entries along ``time`` are kept in memory and written at each flush
        (every ``flush_every`` entries): one resize and one write per
        variable per flush instead of per step.  Only flushed entries
        survive a crash in any case, so buffering until then loses nothing
        that was safe."""
        self.pending[axis].append((step, time, values, bounds))
        self.last_step = step
        if axis != "time" or (self.written[axis] + len(self.pending[axis])) % self.flush_every == 0:
            self.flush()

    def flush(self) -> None:
        """Write the buffered entries and flush the file (collective).

        A write that fails (a full disk, an I/O error) is reported as an
        :class:`OutputError` that names the cause, the step and what the
        file still holds, instead of HDF5's "Unable to set dataset extent"."""
        try:
            wrote = False
            for axis, rows in self.pending.items():
                if rows:
                    self._write_rows(axis, rows)
                    self.pending[axis] = []
                    wrote = True
            if wrote:
                self.file.flush()
                if self.verify:
                    self._verify()
                self.safe_step = self.last_step
        except (OSError, RuntimeError) as exc:
            raise OutputError(self._write_failure(exc)) from None

    def _put(self, ds, sel, data) -> None:
        """``ds[sel] = data``, remembered for :meth:`_verify` if it is on."""
        ds[sel] = data
        if self.verify:
            self._log.append((ds, sel, np.asarray(data, dtype=ds.dtype)))

    def _verify(self) -> None:
        """``output.verify``: re-read every block this rank wrote since the
        last flush and compare it, bit for bit, with what was written.

        The flush has completed every rank's writes, so what is read is what
        any later reader will see.  This catches an MPI-IO layer that loses
        or overwrites cells (Open MPI 4.1's ompio did, docs/mpiio.md) at the
        step it happens, while the run can still be stopped, instead of in
        the analysis of a finished run.  Reads are independent: no
        collective, and each rank checks only its own blocks."""
        log, self._log = self._log, []
        for ds, sel, want in log:
            got = ds[sel]
            if got.tobytes() != want.tobytes():
                bad = int(np.count_nonzero(~((got == want) | (np.isnan(got) & np.isnan(want))
                                              if want.dtype.kind == "f" else got == want)))
                raise OutputError(
                    f"output.verify: rank {self.comm.rank} re-read {ds.name.lstrip('/')}"
                    f"[{_show_sel(sel)}] after step {self.last_step} and {bad} of {want.size} "
                    f"cell(s) differ from what it wrote: the file system or MPI-IO layer lost "
                    f"or overwrote them (docs/mpiio.md); steps up to {self.safe_step} were "
                    "verified")

    def _write_failure(self, exc: BaseException) -> str:
        import shutil
        directory = os.path.dirname(self.path)
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
        cause = ("no space left on device" if free is not None and free < 1 << 20
                 else f"the write failed ({exc})")
        kept = (f"steps up to {self.safe_step} are in the file" if self.safe_step is not None
                else "no step had been written yet")
        return (f"{cause} while writing step {self.last_step} to {self.path} "
                f"({free if free is not None else '?'} bytes free); {kept}")

    def _write_rows(self, axis: str, rows) -> None:
        ax = self.axes[axis]
        names = self.members[axis]
        n0 = self.written[axis]
        n1 = n0 + len(rows)
        for name in names:
            ds = self.datasets[name]
            ds.resize((n1, *ds.shape[1:]))
        if self.comm.rank == 0:
            rows_sel = (slice(n0, n1),)
            self._put(self.datasets[ax.name], rows_sel, np.array([r[1] for r in rows]))
            self._put(self.datasets[ax.step], rows_sel, np.array([r[0] for r in rows]))
            if ax.bounds:
                self._put(self.datasets[f"{ax.name}_bounds"], rows_sel,
                          np.array([r[3] for r in rows]))
            for name in names:
                var = self._vars.get(name)
                if var is None or var.distributed:
                    continue
                present = [k for k, r in enumerate(rows) if name in r[2]]
                if len(present) == len(rows):
                    self._put(self.datasets[name], rows_sel,
                              np.asarray([r[2][name] for r in rows], dtype=var.dtype))
                else:
                    for k in present:
                        self._put(self.datasets[name], (n0 + k,),
                                  np.asarray(rows[k][2][name], dtype=var.dtype))
        for k, r in enumerate(rows):
            for name in names:
                var = self._vars.get(name)
                if var is not None and var.distributed and name in r[2]:
                    self._write_piece(self.datasets[name], n0 + k, r[2][name])
        self.written[axis] = n1

    def _write_piece(self, ds, n: int, piece: Piece | None) -> None:
        """Write this rank's hyperslab of row ``n`` with independent I/O.

        Independent, not collective: Open MPI's ompio loses cells in
        collective writes under a real host's conditions (docs/mpiio.md),
        and a row's pieces never overlap, so nothing needs the collective
        path.  A rank with nothing to write makes no call at all.  The
        dataset was already resized collectively by every rank, so this
        changes no metadata."""
        if piece is None or piece.values.size == 0:
            return
        from h5py import h5s
        data = np.ascontiguousarray(piece.values, dtype=ds.dtype)
        fspace = ds.id.get_space()
        fspace.select_hyperslab((n, *piece.start), (1, *data.shape))
        ds.id.write(h5s.create_simple(data.shape), fspace, data)  # default dxpl: independent
        if self.verify:
            sel = (n, *(slice(o, o + m) for o, m in zip(piece.start, data.shape)))
            self._log.append((ds, sel, data))

    def set_attrs(self, attrs: Mapping) -> None:
        if self.file is None:
            return  # never defined: there is no file to describe
        for k, v in attrs.items():
            self.file.attrs[k] = _attr(v)

    def close(self) -> None:
        if getattr(self, "file", None) is not None and self.file.id.valid:
            if getattr(self, "pending", None):
                self.flush()
            self.file.close()
        self.file = None


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

    def append(self, step, time, values, axis="time", bounds=None):
        if axis == "time":
            self.rows.append((step, time, dict(values)))
        else:
            self.axes[axis].append((step, time, bounds, dict(values)))

    def set_attrs(self, attrs):
        self.attrs.update(attrs)

    def close(self):
        self.closed = True
