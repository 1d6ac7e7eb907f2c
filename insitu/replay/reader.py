"""Per-rank slab reads: each rank reads only its own box of each record.

A rank keeps, per field, two buffers the shape of its box, allocated once:
the session steps on one while the next record is read into the other, by
one reader thread (:class:`Prefetcher`), and each buffer is exposed to the
session as the step that uses it begins (``insitu.expose`` of a buffer
already seen costs a few microseconds, and views it without a copy).  No
rank reads, holds or gathers a whole field, and a set keeps one file open
at a time, so memory and open handles stay flat in the number of files.

A slab is read with an HDF5 hyperslab straight into the buffer (h5py's
low-level ``H5Dread``; netCDF4-python for classic netCDF-3 files).  h5py
holds Python's lock through ``H5Dread`` (measured: a thread reading while
the main thread computed took the sum of both times), so the read overlaps
what the step does without the lock: its waits in the collectives, which
at 2 ranks are most of a step.  Reading contiguous variables with
``os.preadv`` instead, which releases the lock, was tried and measured no
faster at 1 or 2 ranks (benchmark archive, 8 interleaved rounds), so the
one HDF5 path stays.

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
    # in the packed type first, as mask_invalid does (float32 data hold
    # float32(1e20)); integer fills are exact either way
    fills = [float(raw.dtype.type(f)) for f in fills]
    r, o = raw.reshape(-1), out.reshape(-1)
    first = fills[:2] + [np.nan] * (2 - len(fills[:2]))
    _unpack(r, o, first[0], first[1], -np.inf if lo is None else float(lo),
            np.inf if hi is None else float(hi), t(1 if scale is None else scale),
            t(0 if offset is None else offset), scale is not None, offset is not None,
            t(np.nan))
    if len(fills) > 2:  # rare: more fill values than the pass takes
        o[np.isin(r, np.array(fills[2:]))] = t(np.nan)


class OpenFile:
    """The one file of a set that is open, reopened as the series moves on."""

    def __init__(self, fileset: FileSet) -> None:
        self.set = fileset
        self.index = None
        self.source = None

    def get(self, index: int):
        if index != self.index:
            self.close()
            path = self.set.files[index]
            if not os.path.exists(path):
                raise InputError(f"{path}: the file is gone (it was there when the set was "
                                 "scanned)")
            cls = H5Source if self.set.kinds[index] == "hdf5" else NC3Source
            self.source = cls(path)
            self.index = index
        return self.source

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.source, self.index = None, None


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

    The step's waits in its collectives (and numba's ``nogil`` kernels)
    release Python's lock, and the thread reads then: at 2 ranks on the
    benchmark archive the replay took 0.35 s instead of 0.81 s (median of
    8 interleaved rounds, load 4); at 1 rank, where the step leaves no wait
    to fill, it made no difference.  Two buffers per field: the one
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
