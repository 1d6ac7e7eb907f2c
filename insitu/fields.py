"""Field declarations and their zero-copy views.

A :class:`FieldSpec` is what a model declares: dtype, global shape, where its
interior sits, its local shape including halos, and memory order.  A
:class:`FieldSlot` holds the current view of a field's interior.  Both routes
into insitu end in :meth:`FieldSlot.bind`:

* the C ABI hands over an address, wrapped as a flat buffer with no copy;
* a Python model hands over its numpy array, flattened as a view.

The view is the flat buffer reshaped in the declared order with the halos
sliced off: a strided window onto the model's own memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .schema import ConfigError

#: ABI dtype codes (insitu.h) and numpy dtypes.
DTYPES = {1: np.dtype(np.float32), 2: np.dtype(np.float64),
          3: np.dtype(np.int32), 4: np.dtype(np.int64)}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}
ORDERS = {0: "C", 1: "F"}
MAX_NDIM = 4  # INSITU_MAX_NDIM in insitu.h (4-D views: kernels/slices.py)


class FieldError(ValueError):
    """A field was declared or exposed wrongly; the message names it and the rank."""


class FieldConfigError(FieldError, ConfigError):
    """A declaration refused because of the config (its ``dims`` for the
    field): a field error at the call, and a config error for the exit
    status, since every rank reads the same config."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    dtype: np.dtype
    global_shape: tuple[int, ...]
    offset: tuple[int, ...]
    local_shape: tuple[int, ...]
    halo_lo: tuple[int, ...]
    halo_hi: tuple[int, ...]
    order: str = "C"
    dims: tuple[str, ...] = field(default=())

    @property
    def ndim(self) -> int:
        return len(self.global_shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """Interior shape of this rank's slab."""
        return tuple(n - lo - hi for n, lo, hi in
                     zip(self.local_shape, self.halo_lo, self.halo_hi))

    @property
    def nbytes(self) -> int:
        """Bytes of the whole local array, halos included."""
        return int(np.prod(self.local_shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def interior(self) -> tuple[slice, ...]:
        return tuple(slice(lo, n - hi) for n, lo, hi in
                     zip(self.local_shape, self.halo_lo, self.halo_hi))

    def view(self, flat: np.ndarray) -> np.ndarray:
        """The interior of ``flat`` (the whole local array, 1-D) as an N-D view."""
        return flat.reshape(self.local_shape, order=self.order)[self.interior]


def make_spec(name, dtype, global_shape, offset, local_shape, halo_lo=None,
              halo_hi=None, order="C", dims=None, rank: int = 0) -> FieldSpec:
    """Build and check a :class:`FieldSpec`; refuse anything inconsistent.

    The error names the field and the rank, because on a thousand ranks
    "shape mismatch" alone is not actionable.
    """
    where = f"field {name!r} on rank {rank}"
    if not isinstance(name, str) or not name.isidentifier():
        raise FieldError(f"field name {name!r} on rank {rank}: expected an identifier")
    if isinstance(dtype, (int, np.integer)) and not isinstance(dtype, bool):
        if int(dtype) not in DTYPES:
            raise FieldError(f"{where}: unsupported dtype code {dtype} "
                             "(1=real32, 2=real64, 3=int32, 4=int64)")
        dt = DTYPES[int(dtype)]
    else:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise FieldError(f"{where}: unknown dtype {dtype!r}") from None
        if dt.newbyteorder("=") not in DTYPE_CODES or not dt.isnative:
            raise FieldError(f"{where}: unsupported dtype {dt} "
                             "(supported: float32, float64, int32, int64)")
        dt = dt.newbyteorder("=")
    order = ORDERS.get(order, order) if isinstance(order, (int, np.integer)) else order
    if order not in ("C", "F"):
        raise FieldError(f"{where}: order must be 'C' or 'F' (0 or 1), got {order!r}")
    gshape = _ints(global_shape, "global_shape", where)
    ndim = len(gshape)
    if not 1 <= ndim <= MAX_NDIM:
        raise FieldError(f"{where}: rank {ndim} is not supported (1 to {MAX_NDIM})")
    zeros = (0,) * ndim
    off = _ints(offset, "offset", where, ndim)
    lshape = _ints(local_shape, "local_shape", where, ndim)
    hlo = _ints(zeros if halo_lo is None else halo_lo, "halo_lo", where, ndim)
    hhi = _ints(zeros if halo_hi is None else halo_hi, "halo_hi", where, ndim)
    for d in range(ndim):
        if gshape[d] < 1:
            raise FieldError(f"{where}: global_shape[{d}] = {gshape[d]} must be positive")
        if hlo[d] < 0 or hhi[d] < 0:
            raise FieldError(f"{where}: negative halo in dimension {d}")
        if lshape[d] - hlo[d] - hhi[d] < 1:
            raise FieldError(
                f"{where}: halos {hlo[d]}+{hhi[d]} leave no interior in dimension {d} "
                f"of local shape {lshape[d]}")
        if off[d] < 0 or off[d] + lshape[d] - hlo[d] - hhi[d] > gshape[d]:
            raise FieldError(
                f"{where}: interior [{off[d]}, {off[d] + lshape[d] - hlo[d] - hhi[d]}) "
                f"in dimension {d} lies outside the global range [0, {gshape[d]})")
    if dims is None:
        dims = _default_dims(name, ndim, order)
    dims = tuple(dims)
    if len(dims) != ndim:
        # Only the config's fields.<name>.dims can disagree (the defaults
        # have the field's rank), the same way on every rank: a config error.
        raise FieldConfigError(f"fields.{name}.dims: config gives {len(dims)} dims "
                               f"{list(dims)} for a field of rank {ndim} ({where})")
    return FieldSpec(name, dt, gshape, off, lshape, hlo, hhi, order, dims)


def _default_dims(name: str, ndim: int, order: str) -> tuple[str, ...]:
    # Fortran models index (x, y, z); C models index (z, y, x).
    names = ("x", "y", "z", "w")[:ndim]
    return names if order == "F" else names[::-1]


def _ints(values, what, where, ndim=None) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise FieldError(f"{where}: {what} must be a sequence of integers, got {values!r}") from None
    if ndim is not None and len(out) != ndim:
        raise FieldError(f"{where}: {what} has {len(out)} entries, the field has rank {ndim}")
    return out


def _contiguous_strides(spec: FieldSpec) -> tuple[int, ...]:
    """The strides of ``spec``'s local array laid out contiguously in its order."""
    out, step = [], spec.dtype.itemsize
    dims = range(spec.ndim) if spec.order == "F" else reversed(range(spec.ndim))
    for d in dims:
        out.append(step)
        step *= spec.local_shape[d]
    return tuple(out) if spec.order == "F" else tuple(reversed(out))


class FieldSlot:
    """The current zero-copy view of one declared field, and the views it
    can reuse.

    The two routes cache differently, each by what can change under it:

    * C route (:meth:`bind_address`): libinsitu's ``insitu_expose`` checks
      the dtype and the shape against the declaration at every call, so the
      layout of the memory is the declaration's and only the address can
      change.  Views are kept by address (up to :attr:`C_VIEWS` of them), so
      a model that swaps two buffers every step (the heat example) gets
      both from the cache.  A kept view owns nothing: it is read only while
      the model has exposed that address again, and then the memory there
      has the declared layout (the contract of ``insitu_expose``).
    * Python route (:meth:`bind_array`): the array object itself can change
      in place (``a.shape = ...``, ``a.dtype = ...``, ``a.strides = ...``),
      so its view is reused only for the same object with the same shape,
      strides and dtype, checked at every call.  The data address of a
      numpy array cannot change in place: ``ndarray.resize`` refuses while
      insitu's view refers to the array (its ``refcheck``).  A new array
      is checked in full and sliced (one basic index, about 0.15 us): cheaper
      than reading its address from Python (``__array_interface__``, about
      0.8 us), and only the array last exposed is kept alive (keeping more
      could hold a buffer the model has dropped, a whole field's memory).
    """

    __slots__ = ("spec", "index", "address", "view", "owner", "_views", "_shape", "_strides",
                 "_dtype", "_interior", "_contiguous_strides", "_forget")

    #: views kept by address on the C route (a swap of two buffers needs 2)
    C_VIEWS = 4

    def __init__(self, spec: FieldSpec, index: int, forget: Optional[dict] = None) -> None:
        self.spec = spec
        self.index = index
        # what to empty when a new Python array is bound: the session's
        # prepared kernel calls (insitu.step_memo.StepMemo.prepared), which
        # hold views of the old array and must not keep it alive
        self._forget = forget
        self.address = 0
        self.view: Optional[np.ndarray] = None
        self.owner = None  # keeps a Python model's array alive while viewed
        self._views: dict[int, np.ndarray] = {}
        self._shape = spec.local_shape
        self._strides = None
        self._dtype = None
        self._interior = spec.interior
        # the strides of the declared local array when contiguous in the
        # declared order: a moved array with these is contiguous, checked
        # by one tuple comparison instead of numpy's flags (0.1-0.2 us)
        self._contiguous_strides = _contiguous_strides(spec)

    def bind_address(self, address: int, wrap) -> Optional[np.ndarray]:
        """The C route: view the declared layout at ``address`` (0: not
        exposed).  ``wrap(address, nbytes, dtype)`` makes the flat buffer;
        it is called only for an address not among the views kept."""
        if address == 0:
            self.view, self.address, self.owner = None, 0, None
            return None
        view = self._views.get(address)
        if view is None:
            view = self.spec.view(wrap(address, self.spec.nbytes, self.spec.dtype))
            if len(self._views) >= self.C_VIEWS:
                del self._views[next(iter(self._views))]  # the oldest
            self._views[address] = view
        self.view, self.address, self.owner = view, address, None
        self._strides = None
        return view

    def bind_array(self, array: np.ndarray, rank: int = 0) -> np.ndarray:
        """The Python route: check a model's array and view it without a copy."""
        if array is self.owner and self._strides is not None and array.dtype is self._dtype \
                and array.strides == self._strides and array.shape == self._shape:
            return self.view
        spec = self.spec
        if not isinstance(array, np.ndarray):
            raise FieldError(f"field {spec.name!r} on rank {rank}: expose needs a numpy array, "
                             f"got {type(array).__name__}")
        if array.dtype is not spec.dtype and array.dtype != spec.dtype:
            raise FieldError(f"field {spec.name!r} on rank {rank}: exposed dtype {array.dtype} "
                             f"but declared {spec.dtype}")
        if array.shape != spec.local_shape:
            raise FieldError(f"field {spec.name!r} on rank {rank}: exposed shape {array.shape} "
                             f"but declared local shape {spec.local_shape} (halos included)")
        strides = array.strides
        if strides != self._contiguous_strides and not (
                array.flags.f_contiguous if spec.order == "F" else array.flags.c_contiguous):
            raise FieldError(f"field {spec.name!r} on rank {rank}: the array is not "
                             f"{spec.order}-contiguous; insitu views the model's memory and "
                             "will not copy it")
        # The array has the declared shape and is contiguous in the declared
        # order: its interior is the view (what spec.view makes of a flat
        # buffer), with no reshape.
        self.view = array[self._interior]
        self.owner, self.address = array, 0
        if self._forget:
            self._forget.clear()
        self._dtype, self._strides = array.dtype, strides
        return self.view
