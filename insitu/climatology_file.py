"""A climatology from an insitu output file, for anomalies in derived fields.

::

    derived:
      T_anom: T - climatology("clim.h5", "T_c_mean")

``climatology(path, variable)`` is the row of ``variable`` (a
``kind: climatology`` output of an earlier run: one row per month, season
or day of the year, along ``time_<name>``) for the calendar slot of the
current model time, broadcast over the field:

- the slot comes from the model time in the run's ``time.units`` and
  ``calendar`` (:func:`insitu.analyses.climatology.slot_of`, xarray's
  ``time.month`` / season / ``time.dayofyear``); the file's rows are mapped
  to slots from their own times, in the file's units and calendar, and the
  kind of slot from the variable's ``insitu_climatology_by`` attribute;
- every dimension of the variable must be a dimension of the field, with
  the same global size; the field's other dimensions are broadcast (a
  zonal-mean climatology ``(plev, lat)`` gives ``T - [T]_clim`` over
  ``(plev, lat, lon)``);
- **each rank reads only its own slab** of the row (an HDF5 hyperslab, with
  a serial, read-only open of the file), when the slot changes: once a
  month for a monthly climatology, never a whole field on any rank;
- a slot the file has no row for (a climatology of a short run) gives NaN,
  logged once per slot.

Problems found at init (no file, no such variable, a variable that is not
a climatology, dims that do not fit the field) are errors naming the
derived field, the file and the variable.
"""
from __future__ import annotations

import logging

import numpy as np

from .fields import FieldError

log = logging.getLogger("insitu")


class ClimatologyTerm:
    """``climatology(path, variable)`` inside derived field ``derived``,
    bound to this rank's slab of ``spec``."""

    def __init__(self, derived: str, path: str, variable: str, spec) -> None:
        import h5py
        self.where = f"derived.{derived}: climatology({path!r}, {variable!r})"
        self.path, self.variable, self.spec = path, variable, spec
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise FieldError(f"{self.where}: cannot open the file: {exc}") from None
        with f:
            if variable not in f or not isinstance(f[variable], h5py.Dataset):
                names = sorted(k for k, v in f.items() if isinstance(v, h5py.Dataset)
                               and "insitu_climatology_by" in v.attrs)
                raise FieldError(f"{self.where}: the file has no variable {variable!r} "
                                 f"(its climatologies: {', '.join(names) or 'none'})")
            ds = f[variable]
            by = ds.attrs.get("insitu_climatology_by")
            if isinstance(by, bytes):
                by = by.decode()
            if by not in ("month", "season", "dayofyear"):
                raise FieldError(f"{self.where}: {variable!r} is not an insitu climatology "
                                 "(no insitu_climatology_by attribute)")
            names = [_dim_name(ds, i) for i in range(ds.ndim)]
            shape = ds.shape
            axis = f[names[0]]
            times = axis[...]
            units = _text(axis.attrs.get("units"))
            calendar = _text(axis.attrs.get("calendar")) or "standard"
        self.by = by
        dims = names[1:]
        for d, n in zip(dims, shape[1:]):
            if d not in spec.dims:
                raise FieldError(f"{self.where}: the variable's dimension {d!r} is not a "
                                 f"dimension of the field (its dims: {', '.join(spec.dims)})")
            g = spec.global_shape[spec.dims.index(d)]
            if n != g:
                raise FieldError(f"{self.where}: the variable's dimension {d!r} has "
                                 f"{n} points, the field's {g}")
        from .analyses.climatology import slot_of
        from .calendar import CalendarPeriods
        try:
            file_periods = CalendarPeriods("day", units, calendar)
        except (ValueError, TypeError) as exc:
            raise FieldError(f"{self.where}: the file's time units {units!r}: {exc}") from None
        #: slot -> row of the file
        self.rows = {slot_of(file_periods, by, float(t)): r for r, t in enumerate(times)
                     if np.isfinite(t)}
        # This rank's hyperslab of a row, and how it broadcasts over the slab.
        axes = [spec.dims.index(d) for d in dims]
        self._sel = tuple(slice(spec.offset[a], spec.offset[a] + spec.shape[a]) for a in axes)
        self._order = np.argsort(axes)          # the variable's dims in the field's order
        self._expand = tuple(a for a in range(len(spec.dims)) if a not in axes)
        self._slot = None
        self._value = None
        self._warned = set()
        self.periods = None

    def bind_time(self, time_cfg: dict) -> None:
        """The run's CF time units and calendar, where model times are."""
        from .calendar import CalendarPeriods
        try:
            self.periods = CalendarPeriods("day", time_cfg.get("units") or "1",
                                           time_cfg.get("calendar"))
        except ValueError as exc:
            raise FieldError(f"{self.where}: {exc}") from None

    def value(self, time: float) -> np.ndarray:
        """This rank's slab of the row for ``time``'s slot (read when the
        slot changes), broadcastable over the field's slab."""
        from .analyses.climatology import slot_of
        slot = slot_of(self.periods, self.by, time)
        if slot != self._slot:
            self._slot = slot
            row = self.rows.get(slot)
            if row is None:
                if slot not in self._warned:
                    self._warned.add(slot)
                    log.warning("%s: the file has no row for %s %d; the climatology is NaN "
                                "there", self.where, self.by, slot)
                self._value = np.array(np.nan)
            else:
                import h5py
                with h5py.File(self.path, "r") as f:
                    v = f[self.variable][(row, *self._sel)]
                v = np.asarray(v, dtype=np.float64).transpose(self._order)
                self._value = np.expand_dims(v, self._expand) if self._expand else v
        return self._value


def _dim_name(ds, i: int) -> str:
    """The name of dimension ``i`` of an h5py dataset (its attached scale)."""
    scales = list(ds.dims[i].keys()) if len(ds.dims[i]) else []
    if scales:
        return scales[0] if scales[0] else ds.dims[i][0].name.lstrip("/")
    return ds.dims[i][0].name.lstrip("/") if len(ds.dims[i]) else f"phony_dim_{i}"


def _text(v):
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))
