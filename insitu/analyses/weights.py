"""Weights of a reduction: one implementation of the config's three forms.

``stats``, ``reduce``, ``coarsen``, ``histogram`` and ``exceedance`` take
``weights:`` in the same forms, checked and laid along the field here:

* ``weights: area``: a declared field over some or all of the field's dims,
  decomposed like it (each rank holds the weights of its own slab), with
  the units of its ``fields:`` entry;
* ``weights: {dim: plev, values: [w0, w1, ...], units: Pa}``: one value
  per point of one dim (layer thicknesses for a vertical integral);
* ``weights: {dim: lat, values: coslat}``: cos(latitude) from the dim's
  ``coords:`` entry, in degrees (dimensionless).

Every form gives a *view* broadcastable to the field's local interior (no
copy at any step: a field's weights are transposed and expanded by
strides, a 1-D array is sliced once at bind).  Weights must be finite and
non-negative; the given and ``coslat`` values are checked at bind, a
weight field's values are the model's responsibility (a NaN weight makes
the sums it enters NaN).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import schema as s
from .base import AnalysisError


class WeightsNode(s.Node):
    """A weight field's name, or ``{dim, values: [...] | coslat, units}``."""

    KEYS = ("dim", "values", "units")

    def check(self, value, path):
        if isinstance(value, str):
            return s.Str().check(value, path)
        if isinstance(value, dict):
            for k in value:
                if k not in self.KEYS:
                    s._fail(f"{path}.{k}", f"unknown key (known keys: {', '.join(self.KEYS)})")
            for k in ("dim", "values"):
                if k not in value:
                    s._fail(f"{path}.{k}", "missing required key")
            out = {"dim": s.Str().check(value["dim"], f"{path}.dim"),
                   "values": value["values"],
                   "units": s.Str().check(value.get("units", "1"), f"{path}.units")}
            if out["values"] == "coslat":
                if out["units"] != "1":
                    s._fail(f"{path}.units", f"coslat weights are dimensionless (units 1), "
                                             f"got {out['units']!r}")
            else:
                out["values"] = s.ListOf(s.Num(minimum=0.0), nonempty=True).check(
                    out["values"], f"{path}.values")
            return out
        s._fail(path, f"expected a field name or {{dim, values}}, got {s._show(value)}")


def schema(doc: str = "weights: a field, {dim, values, units} or {dim, values: coslat}"):
    """The ``weights:`` key of an analysis's schema (optional)."""
    return WeightsNode(default=None, doc=doc)


def fields(cfg_weights) -> tuple:
    """The declared fields the weights read: the weight field, or none."""
    return (cfg_weights,) if isinstance(cfg_weights, str) else ()


@dataclass
class Weights:
    """Weights bound to one field on this rank."""
    #: what the weights are, for ``cell_methods`` ("cos(latitude) along lat")
    label: str
    #: CF units of one weight
    units: str
    #: the weight field's name, or None for an array along one dim
    field: str | None
    #: the field's axes -> the weight view's axes (None: a dim the weights lack)
    order: list | None
    #: this rank's part of an array along one dim, shaped to broadcast
    array: np.ndarray | None
    #: the dims the weights vary along
    dims: tuple

    def view(self, views, shape) -> np.ndarray:
        """The weights on this rank's interior, broadcast to ``shape`` (the
        field's local interior shape), by strides only."""
        if self.field is None:
            return np.broadcast_to(self.array, shape)
        w = views[self.field]
        # Weight axes in the field's axis order, then length-1 axes where the
        # field has dims the weights lack; every step is a view.
        w = np.transpose(w, [i for i in self.order if i is not None])
        for axis, i in enumerate(self.order):
            if i is None:
                w = np.expand_dims(w, axis)
        return np.broadcast_to(w, shape)

    def cell_methods_comment(self) -> str:
        return f"(weighted by {self.label})"


def bind(cfg_weights, spec, ctx, where: str) -> Weights | None:
    """Check ``weights:`` (the config value at key path ``where``) against
    the field ``spec`` and the declarations; None when there are none."""
    if cfg_weights is None:
        return None
    if isinstance(cfg_weights, str):
        return _bind_field(cfg_weights, spec, ctx, where)
    return _bind_array(cfg_weights, spec, ctx, where)


def _bind_field(wname, spec, ctx, where) -> Weights:
    if wname not in ctx.specs:
        raise AnalysisError(f"{where}: field {wname!r} is not declared by the model "
                            f"(declared: {', '.join(ctx.specs) or 'none'})")
    wspec = ctx.specs[wname]
    if not set(wspec.dims) <= set(spec.dims):
        raise AnalysisError(f"{where}: weight field {wname!r} has dims {wspec.dims}, which "
                            f"are not among {spec.name!r}'s dims {spec.dims}")
    axes = [spec.dims.index(d) for d in wspec.dims]
    for d, a, n in zip(wspec.dims, axes, wspec.global_shape):
        if spec.global_shape[a] != n:
            raise AnalysisError(f"{where}: {wname!r} has {n} points along {d!r}, "
                                f"{spec.name!r} has {spec.global_shape[a]}")
    for r, ((fo, fs), (wo, ws)) in enumerate(zip(ctx.boxes(spec.name), ctx.boxes(wname))):
        if tuple(fo[a] for a in axes) != tuple(wo) or tuple(fs[a] for a in axes) != tuple(ws):
            raise AnalysisError(f"{where}: on rank {r}, {wname!r} covers a different part "
                                f"of {wspec.dims} than {spec.name!r}; declare the weights "
                                "with the field's decomposition")
    return Weights(label=wname, units=ctx.meta(wname).get("units", "1"), field=wname,
                   order=[wspec.dims.index(d) if d in wspec.dims else None for d in spec.dims],
                   array=None, dims=tuple(wspec.dims))


def _bind_array(w, spec, ctx, where) -> Weights:
    """Weights as a 1-D array along one dim: given values, or cos(latitude)
    from the dim's ``coords:`` entry.  Each rank keeps its own part."""
    d = w["dim"]
    if d not in spec.dims:
        raise AnalysisError(f"{where}.dim: field {spec.name!r} has no dimension {d!r} "
                            f"(its dims: {', '.join(spec.dims)})")
    a = spec.dims.index(d)
    n = spec.global_shape[a]
    if w["values"] == "coslat":
        c = ctx.coords.get(d)
        if c is None:
            raise AnalysisError(f"{where}.values: coslat needs a 'coords: {d}:' entry "
                                "in degrees")
        values = np.cos(np.deg2rad(c["start"] + c["step"] * np.arange(n)))
        # a pole written as 90.0000000001 gives -2e-12: rounding, not a negative weight
        values = np.where((values < 0) & (values > -1e-9), 0.0, values)
        label = f"cos(latitude) along {d}"
    else:
        values = np.asarray(w["values"], dtype=np.float64)
        if values.shape != (n,):
            raise AnalysisError(f"{where}.values: {values.size} values for the {n} "
                                f"points along {d!r}")
        label = f"the given weights along {d}"
    if (values < 0).any():
        raise AnalysisError(f"{where}.values: weights must not be negative (a latitude "
                            f"beyond +-90 degrees along {d!r}?)")
    local = values[spec.offset[a]:spec.offset[a] + spec.shape[a]]
    shape = [1] * spec.ndim
    shape[a] = local.size
    return Weights(label=label, units=w["units"], field=None, order=None,
                   array=np.ascontiguousarray(local).reshape(shape), dims=(d,))


def product_units(field_units: str, weight_units: str) -> str:
    """CF units of a weighted sum: the field's units times the weights'
    (``K`` and ``Pa`` give ``K Pa``; a dimensionless side drops out).  Each
    side is parenthesised when it holds more than one factor, so UDUNITS
    reads ``(kg kg-1) (kg m-2)`` as the product it is."""
    def part(u):
        u = u.strip()
        return f"({u})" if (" " in u or "/" in u or "." in u) else u
    if field_units in ("1", ""):
        return weight_units
    if weight_units in ("1", ""):
        return field_units
    return f"{part(field_units)} {part(weight_units)}"
