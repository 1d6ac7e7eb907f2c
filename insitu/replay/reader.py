"""Per-rank slab reads: each rank reads only its own box of each record.

A rank keeps, per field, two buffers the shape of its box, allocated once:
the session steps on one while the next record is read into the other, by
one reader thread (:class:`Prefetcher`), and each buffer is exposed to the
session as the step that uses it begins (``insitu.expose`` of a buffer
already seen costs a few microseconds, and views it without a copy).  No
rank reads, holds or gathers a whole field, and a set keeps one file open
at a time, so memory and open handles stay flat in the number of files.

How a slab is read, per file:

* **directly**, when the variable is one contiguous, unfiltered,
  native-endian block of the file (CMIP files with fixed dimensions are;
  the scan records the block's offset, :meth:`.H5Source.contiguous_offset`):
  ``os.preadv`` of each contiguous run of the box straight into the
  buffer, or, when the runs are short (a box cut along the fastest dim),
  one read of the range that holds them and a strided copy.  Both release
  Python's lock, so the read really overlaps the step; and no HDF5 file is
  opened on the ranks at all;
* **through h5py** otherwise (chunked, compressed, byte-swapped): an HDF5
  hyperslab straight into the buffer (``H5Dread``, which holds Python's
  lock: measured, a thread reading while the main thread computed took the
  sum of both times; the overlap is then only with the step's waits);
* **through netCDF4-python** for classic netCDF-3 files.

Then CF decoding, in one pass over the box: ``_FillValue``/``missing_value``
and values outside ``valid_range`` become NaN in float fields, and packed
integers (``scale_factor``/``add_offset``) are unpacked as xarray does.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numba
import numpy as np

from .fileset import FileSet, Variable
from .sources import H5Source, InputError, NC3Source

#: runs of at least this many bytes are read one ``preadv`` each; shorter
#: ones by one read of the range holding them and a strided copy
RUN_BYTES = 64 * 1024

#: read contiguous variables with ``os.preadv`` (False: always h5py; for
#: measuring the difference)
DIRECT = True


@numba.njit(cache=True, nogil=True)
def _mask(flat, f0, f1, lo, hi, nan):
    """NaN where a value equals ``f0`` or ``f1`` or lies outside [lo, hi],
    in place, in one pass.  Every element is stored (the value or NaN) and
    the tests are combined without branches, so the loop vectorizes: 40x
    faster than testing a list of fill values with early exits."""
    for i in range(flat.size):
        x = flat[i]
        bad = (x == f0) | (x == f1) | (x < lo) | (x > hi)
        flat[i] = nan if bad else x


@numba.njit(cache=True, nogil=True)
def _unpack(raw, out, f0, f1, lo, hi, scale, offset, has_scale, has_offset, nan):
    """``out = raw * scale + offset`` in ``out``'s type (two roundings, no
    fused multiply-add: xarray's ``data *= scale_factor; data +=
    add_offset``), NaN where the packed value is a fill value or outside
    [lo, hi] (compared in float64, exact for packed integers up to 32
    bits)."""
    for i in range(raw.size):
        r = raw[i]
        x = np.float64(r)
        bad = (x == f0) | (x == f1) | (x < lo) | (x > hi)
        out[i] = r
        v = out[i]
        if has_scale:
            v = v * scale
        if has_offset:
            v = v + offset
        out[i] = nan if bad else v


def mask_invalid(buffer: np.ndarray, fills, lo, hi) -> None:
    """CF masking of a float buffer in place: ``_FillValue`` and
    ``missing_value`` become NaN, and so does a value outside
    ``valid_range`` (or ``valid_min``/``valid_max``).  The attributes are
    cast to the buffer's type first, as netCDF readers do: a float32 field
    holds float32(1e20), which is not the float64 1e20.  Two fill values
    per pass (NaN stands for none: it equals nothing)."""
    t = buffer.dtype.type
    flat = buffer.reshape(-1)
    fills = [t(f) for f in fills] or [t(np.nan)]
    lo, hi = t(-np.inf if lo is None else lo), t(np.inf if hi is None else hi)
    for k in range(0, len(fills), 2):
        pair = fills[k:k + 2] + [t(np.nan)] * (2 - len(fills[k:k + 2]))
        _mask(flat, pair[0], pair[1], lo, hi, t(np.nan))
        lo, hi = t(-np.inf), t(np.inf)


def unpack(raw: np.ndarray, out: np.ndarray, scale, offset, fills, lo, hi) -> None:
    """Decode a packed slab ``raw`` into the float buffer ``out`` (same
    shape), as xarray's CF decoding does: the fill values (``_FillValue``,
    ``missing_value``, compared with the packed values) become NaN, then
    ``raw * scale_factor + add_offset`` in ``out``'s type.  ``valid_range``
    and ``valid_min``/``valid_max`` are compared with the packed values too,
    as netCDF4-python does (xarray does not apply them)."""
    t = out.dtype.type
    fills = [float(f) for f in fills]
    r, o = raw.reshape(-1), out.reshape(-1)
    first = fills[:2] + [np.nan] * (2 - len(fills[:2]))
    _unpack(r, o, first[0], first[1], -np.inf if lo is None else float(lo),
            np.inf if hi is None else float(hi), t(1 if scale is None else scale),
            t(0 if offset is None else offset), scale is not None, offset is not None,
            t(np.nan))
    if len(fills) > 2:  # rare: more fill values than the pass takes
        o[np.isin(r, np.array(fills[2:]))] = t(np.nan)


class OpenFile:
    """The one file of a set that is open, reopened as the series moves on:
    a file descriptor for direct reads, a source for the others (opened
    only when a variable of the file needs it)."""

    def __init__(self, fileset: FileSet) -> None:
        self.set = fileset
        self.index = None
        self.source = None
        self.fd = None

    def _move(self, index: int) -> str:
        if index != self.index:
            self.close()
            self.index = index
        path = self.set.files[index]
        return path

    def get(self, index: int):
        path = self._move(index)
        if self.source is None:
            if not os.path.exists(path):
                raise InputError(f"{path}: the file is gone (it was there when the set was "
                                 "scanned)")
            cls = H5Source if self.set.kinds[index] == "hdf5" else NC3Source
            self.source = cls(path)
        return self.source

    def descriptor(self, index: int) -> int:
        path = self._move(index)
        if self.fd is None:
            try:
                self.fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise InputError(f"{path}: the file is gone (it was there when the set was "
                                 "scanned)") from None
            except OSError as exc:
                raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
        return self.fd

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.fd is not None:
            os.close(self.fd)
        self.source, self.fd, self.index = None, None, None


class _Runs:
    """Where a box's elements lie in one record of a contiguous C-order
    variable: runs of ``length`` elements, starting ``starts`` elements
    into the record, landing at ``k * length`` in the box's flat buffer.

    The run is the box's extent along the last dim it does not cover fully,
    times the dims after it (which it covers): 19 runs of 90 x 360 for half
    a 19 x 180 x 360 record cut along lat, one run for a whole record."""

    def __init__(self, shape, box, itemsize: int) -> None:
        offset, count = (tuple(int(x) for x in a) for a in box)
        shape = tuple(int(x) for x in shape)
        d = len(shape)
        j = d - 1
        while j > 0 and count[j] == shape[j]:
            j -= 1
        inner = int(np.prod(shape[j + 1:], dtype=np.int64))
        self.length = count[j] * inner
        strides = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(d)]
        outer = np.indices(count[:j]).reshape(j, -1).T if j else np.zeros((1, 0), np.int64)
        self.starts = np.array([sum((offset[i] + int(p[i])) * strides[i] for i in range(j))
                                + offset[j] * strides[j] for p in outer], dtype=np.int64)
        self.itemsize = itemsize
        self.record_bytes = int(np.prod(shape, dtype=np.int64)) * itemsize
        self.count, self.strides = count, [s * itemsize for s in strides]

    def read(self, fd: int, base: int, record: int, out: np.ndarray, path: str,
             scratch: list) -> None:
        """Record ``record`` of the variable whose data start at byte
        ``base`` of ``fd``, this box of it, into ``out`` (C-contiguous)."""
        at = base + record * self.record_bytes
        run = self.length * self.itemsize
        if run >= RUN_BYTES or self.starts.size == 1:
            flat = out.reshape(-1).view(np.uint8)
            for k, s in enumerate(self.starts):
                _preadv(fd, flat[k * run:(k + 1) * run], at + int(s) * self.itemsize, path)
            return
        first = int(self.starts[0]) * self.itemsize
        span = int(self.starts[-1]) * self.itemsize + run - first
        if not scratch or scratch[0].size < span:
            scratch[:] = [np.empty(span, dtype=np.uint8)]
        block = scratch[0][:span]
        _preadv(fd, block, at + first, path)
        view = np.lib.stride_tricks.as_strided(block.view(out.dtype), shape=self.count,
                                               strides=self.strides, writeable=False)
        np.copyto(out, view)


def _preadv(fd: int, into: np.ndarray, at: int, path: str) -> None:
    done = 0
    while done < into.size:  # a read may return fewer bytes than asked
        n = os.preadv(fd, [memoryview(into[done:])], at + done)
        if n == 0:
            raise InputError(f"{path}: the file ends before its data do (truncated since "
                             "the scan?)")
        done += n


class SlabReader:
    """One field on this rank: its two buffers and how to fill one for a
    record."""

    def __init__(self, files: OpenFile, var: Variable, box) -> None:
        self.files, self.var = files, var
        offset, shape = box
        dtype = np.dtype(var.field_dtype)
        self.buffers = [np.empty(tuple(shape), dtype=dtype) for _ in range(2)]
        self.selection = tuple(slice(o, o + n) for o, n in zip(offset, shape))
        self.raw = None if not var.decoded else np.empty(tuple(shape), np.dtype(var.dtype))
        self.runs = _Runs(var.shape, box, np.dtype(var.dtype).itemsize)
        self._scratch: list = []
        lo, hi = var.valid
        self._mask = None
        if dtype.kind == "f" and not var.decoded and (var.fill or lo is not None or
                                                      hi is not None):
            self._mask = (var.fill, lo, hi)

    @property
    def buffer(self) -> np.ndarray:
        return self.buffers[0]

    def read(self, file_index: int, index: int, slot: int = 0) -> np.ndarray:
        """Fill buffer ``slot`` with record ``index`` of file ``file_index``
        (decoded); returns it."""
        out = self.buffers[slot]
        into = out if self.raw is None else self.raw
        offsets = self.var.offsets
        base = offsets[file_index] if offsets and DIRECT else None
        if base is not None:
            fd = self.files.descriptor(file_index)
            self.runs.read(fd, base, index, into, self.files.set.files[file_index],
                           self._scratch)
        else:
            src = self.files.get(file_index)
            try:
                src.read_into(self.var.name, (index, *self.selection), into)
            except InputError:
                raise
            except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
                raise InputError(f"{src.path}: cannot read record {index} of "
                                 f"{self.var.name!r}: {exc}") from None
        if self.raw is not None:
            scale, offset = self.var.packing[file_index]
            unpack(self.raw, out, scale, offset, self.var.fill, *self.var.valid)
        elif self._mask is not None:
            mask_invalid(out, *self._mask)
        return out


class Prefetcher:
    """Reads record ``k + 1`` of every field in a thread while record ``k``
    is stepped on.

    The reads and decoding release Python's lock (``preadv``, numba's
    ``nogil`` kernels, numpy's copies), so on a rank whose step waits for
    the other ranks in its collectives, or computes in released kernels,
    the read costs no time of its own.  Two buffers per field: the one
    stepped on is never written while the step runs, since the read of the
    record after next is only started once that step has returned.

    ``ahead=False`` reads each record when it is asked for, in the calling
    thread (for measuring the difference)."""

    def __init__(self, readers: list, ahead: bool = True) -> None:
        self.readers = readers
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="insitu-replay-read") \
            if ahead else None
        self.pending = None

    def _fetch(self, k: int) -> Optional[str]:
        """Record ``k`` into buffer ``k % 2`` of every field; the first
        input error, after filling the failing field's buffer with NaN (0
        for integers), or None."""
        error = None
        for reader, records in self.readers:
            try:
                reader.read(*records[k], k % 2)
            except InputError as exc:
                error = error or f"input error: {exc}"
                buf = reader.buffers[k % 2]
                buf.fill(np.nan if buf.dtype.kind == "f" else 0)
        return error

    def get(self, k: int, last: int) -> Optional[str]:
        """Wait for record ``k`` (reading it now if it was not read ahead),
        start reading record ``k + 1``; record ``k``'s error, or None."""
        if self.pool is None:
            return self._fetch(k)
        pending = self.pending
        error = pending.result() if pending is not None else self._fetch(k)
        self.pending = self.pool.submit(self._fetch, k + 1) if k < last else None
        return error

    def close(self) -> None:
        if self.pool is not None:
            if self.pending is not None:
                self.pending.cancel()
                try:
                    self.pending.result()
                except BaseException:  # noqa: BLE001 - we are leaving anyway
                    pass
            self.pool.shutdown(wait=True)
            self.pool = None
