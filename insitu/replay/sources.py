"""Archived files, opened for reading in place: netCDF-4 through h5py, and
classic netCDF-3 through netCDF4-python when it is installed.

netCDF-4 is HDF5, so h5py reads a rank's hyperslab of a variable straight
into the rank's buffer, and nothing converts the file first.  A netCDF-3
file is not HDF5; netCDF4-python reads it (each rank its own slab, still in
place) or, without it, the file is refused with the one command that
converts it.

Both backends offer the few things replay asks of a file: its variables,
their dimension names, shapes, dtypes and attributes, the file's global
attributes, and a read of a selection into a caller's array.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np


class InputError(ValueError):
    """An input file set cannot be replayed; the message names the file and what."""


#: attributes of the netCDF-4 / HDF5 dimension-scale machinery, not the data's
_MACHINERY = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid",
              "_Netcdf4Coordinates", "_nc3_strict", "_NCProperties", "_IsNetcdf4"}

_NETCDF3_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


def _plain(value):
    """An attribute as a plain Python value: text as str, one-element arrays
    as scalars (netCDF-C writes ``_FillValue`` as a 1-element array)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO" or value.dtype.kind == "U":
            items = [_plain(v) for v in value.ravel()]
            return items[0] if len(items) == 1 else items
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def file_kind(path: str) -> str:
    """``"hdf5"`` (netCDF-4 included), ``"netcdf3"``, or an InputError saying
    why the file cannot be read."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
    if head[:4] in _NETCDF3_MAGIC:
        return "netcdf3"
    import h5py
    try:
        if h5py.is_hdf5(path):
            return "hdf5"
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc}") from None
    raise InputError(f"{path}: not a netCDF or HDF5 file (it starts with {head[:8]!r})")


def open_source(path: str):
    """Open ``path`` for reading with the backend its format needs."""
    kind = file_kind(path)
    if kind == "hdf5":
        return H5Source(path)
    try:
        import netCDF4  # noqa: F401 - optional: only classic netCDF-3 needs it
    except ImportError:
        raise InputError(
            f"{path}: a classic netCDF-3 file, which is not HDF5 and needs netCDF4-python "
            f"(not installed); convert it once with: nccopy -k nc4 {path} "
            f"{os.path.splitext(path)[0]}.nc4.nc (or pip install netCDF4)") from None
    return NC3Source(path)


class _Attrs(Mapping):
    """HDF5 attributes as plain values, each read when it is asked for: a
    CMIP file carries about 50 global attributes and a dozen per variable,
    of which the scan reads a few (reading them all was a third of the
    scan's time)."""

    def __init__(self, attrs) -> None:
        self._attrs = attrs

    def __getitem__(self, key: str):
        if key in _MACHINERY:
            raise KeyError(key)
        return _plain(self._attrs[key])

    def __contains__(self, key) -> bool:
        return key not in _MACHINERY and key in self._attrs

    def __iter__(self):
        return (k for k in self._attrs if k not in _MACHINERY)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class H5Source:
    """A netCDF-4 file read with h5py (independent reads, no MPI-IO: each
    rank reads its own hyperslab)."""

    kind = "hdf5"

    def __init__(self, path: str) -> None:
        import h5py
        self.path = path
        try:
            self.file = h5py.File(path, "r", locking=False)
        except OSError as exc:
            raise InputError(f"{path}: cannot open with h5py: {exc}") from None
        self._plans: dict = {}
        self._datasets: dict = {}

    def _dataset(self, name: str):
        """The dataset ``name`` (or None), looked up once: each of h5py's
        look-ups builds a new object (about 30 us), and a scan asks for the
        same few datasets 18 times a file."""
        try:
            return self._datasets[name]
        except KeyError:
            import h5py
            ds = self.file.get(name)
            ds = self._datasets[name] = ds if isinstance(ds, h5py.Dataset) else None
            return ds

    def has(self, name: str) -> bool:
        return self._dataset(name) is not None

    def dims(self, name: str) -> tuple[str, ...]:
        """Dimension names from the dataset's dimension scales (how netCDF-4
        stores dimensions); a plain HDF5 dataset without them is refused."""
        ds = self._dataset(name)
        out = []
        for i, dim in enumerate(ds.dims):
            if len(dim) == 0:
                raise InputError(f"{self.path}: variable {name!r} has no dimension scale for "
                                 f"its dimension {i} (a plain HDF5 dataset, not netCDF-4); "
                                 "replay needs named dimensions")
            out.append(dim[0].name.rsplit("/", 1)[-1])
        return tuple(out)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(n) for n in self._dataset(name).shape)

    def dtype(self, name: str) -> np.dtype:
        return self._dataset(name).dtype

    def attrs(self, name: str) -> Mapping:
        return _Attrs(self._dataset(name).attrs)

    def global_attrs(self) -> Mapping:
        return _Attrs(self.file.attrs)

    def raw_attr(self, name: str, key: str):
        """An attribute as stored (a numpy value: its type decides how a
        packed variable decodes), or None."""
        a = self._dataset(name).attrs
        return np.asarray(a[key]) if key in a else None

    def read(self, name: str, selection=()) -> np.ndarray:
        return self._dataset(name)[selection]

    def read_into(self, name: str, selection, out: np.ndarray) -> None:
        """Read ``selection`` (an index along the first dimension, then
        slices) of ``name`` into ``out`` (C-contiguous), with no
        intermediate array: HDF5 converts byte order and type on the way.

        The dataset, its file dataspace and the memory dataspace are looked
        up once per (variable, slab) and only the hyperslab's start moves
        from record to record: h5py's high-level ``read_direct`` rebuilt
        them on every call, which cost more than reading a small slab."""
        from h5py import h5s
        key = (name, tuple((s.start, s.stop) for s in selection[1:]), out.shape, out.dtype)
        plan = self._plans.get(key)
        if plan is None:
            ds = self._dataset(name)
            start = [0] + [s.start for s in selection[1:]]
            count = [1] + [s.stop - s.start for s in selection[1:]]
            plan = (ds.id, ds.id.get_space(), h5s.create_simple(out.shape), start, count)
            self._plans[key] = plan
        dsid, fspace, mspace, start, count = plan
        start[0] = int(selection[0])
        fspace.select_hyperslab(tuple(start), tuple(count))
        dsid.read(mspace, fspace, out)

    def close(self) -> None:
        self._datasets.clear()
        self.file.close()


class NC3Source:
    """A classic netCDF-3 file read with netCDF4-python, raw (no masking or
    scaling there: replay masks the same way for every backend)."""

    kind = "netcdf3"

    def __init__(self, path: str) -> None:
        import netCDF4
        self.path = path
        try:
            self.file = netCDF4.Dataset(path, "r")
        except OSError as exc:
            raise InputError(f"{path}: cannot open with netCDF4-python: {exc}") from None
        self.file.set_auto_maskandscale(False)

    def has(self, name: str) -> bool:
        return name in self.file.variables

    def dims(self, name: str) -> tuple[str, ...]:
        return tuple(self.file.variables[name].dimensions)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(n) for n in self.file.variables[name].shape)

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self.file.variables[name].dtype)

    def attrs(self, name: str) -> dict:
        v = self.file.variables[name]
        return {k: _plain(v.getncattr(k)) for k in v.ncattrs()}

    def global_attrs(self) -> dict:
        return {k: _plain(self.file.getncattr(k)) for k in self.file.ncattrs()}

    def raw_attr(self, name: str, key: str):
        v = self.file.variables[name]
        return np.asarray(v.getncattr(key)) if key in v.ncattrs() else None

    def read(self, name: str, selection=()) -> np.ndarray:
        return np.asarray(self.file.variables[name][selection if selection != () else ...])

    def read_into(self, name: str, selection, out: np.ndarray) -> None:
        out[...] = self.file.variables[name][selection]

    def close(self) -> None:
        self.file.close()
