"""Global statistics of a field: count, sum, mean, min, max, std, var, NaN and Inf counts.

Each rank runs the one-pass :func:`~insitu.kernels.moments.moments` kernel on
its interior view; the partials join the step's single batched reduction.
NaN and +-Inf are skipped and counted (``nan_count``, ``inf_count``); the
other statistics are those of the finite values (documented in the README).
``std`` and ``var`` are population values (``ddof=0``).

Accuracy.  ``var`` and ``std`` come from per-rank ``(n, mean, M2)``
partials whose means are double-doubles, merged with a compensated Chan
update (:mod:`insitu.reduction`), so they stay within ~1e-15 relative of the
exact value even for data at an offset 1e12 times their spread.  For an
integer field, ``sum`` and ``mean`` come from the exact integer sum, carried
across ranks as two float64 slots (a multiple of 2**32 and a rest, both
exact; see :func:`insitu.kernels.moments.moments`): ``sum`` is that integer
rounded once and ``mean`` is it divided once by the count, correctly
rounded.  This is exact while ``|sum| < 2**85`` (always for int32 fields);
beyond that the high part rounds (relative error <= 2**-53).  Exact integer
sums do not depend on the decomposition, so reproducible mode adds no
second pass for integer fields.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels import moments as km
from ..kernels import reprosum as rs
from ..reduction import MAX, MIN, MOMENTS, SUM
from . import region as rg
from .base import Analysis, AnalysisError, Variable, common_keys

ALL_STATS = ("count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count")
DEFAULT_STATS = ("count", "sum", "mean", "min", "max", "std", "nan_count", "inf_count")
COUNTS = ("count", "nan_count", "inf_count")

_METHOD = {"sum": "sum", "mean": "mean", "min": "minimum", "max": "maximum",
           "std": "standard_deviation", "var": "variance"}
_LONG = {"count": "number of finite values of", "sum": "sum of", "mean": "mean of",
         "min": "minimum of", "max": "maximum of", "std": "standard deviation of",
         "var": "variance of", "nan_count": "number of NaN values of",
         "inf_count": "number of infinite values of"}


class _Weights(s.Node):
    """A weight field's name, or ``{dim: y, values: [...] | coslat}``."""

    _array = s.Record({"dim": s.Str(), "values": s.Node()})

    def check(self, value, path):
        if isinstance(value, str):
            return s.Str().check(value, path)
        if isinstance(value, dict):
            out = dict(value)
            for k in value:
                if k not in ("dim", "values"):
                    raise s.ConfigError(f"{path}.{k}: unknown key (known keys: dim, values)")
            for k in ("dim", "values"):
                if k not in value:
                    raise s.ConfigError(f"{path}.{k}: missing required key")
            s.Str().check(value["dim"], f"{path}.dim")
            v = value["values"]
            if v != "coslat":
                s.ListOf(s.Num(minimum=0.0), nonempty=True).check(v, f"{path}.values")
            return out
        raise s.ConfigError(f"{path}: expected a field name or {{dim, values}}, got {value!r}")


class Stats(Analysis):
    kind = "stats"
    schema = s.Record({
        **common_keys(),
        "stats": s.ListOf(s.Enum(ALL_STATS), default=list(DEFAULT_STATS), nonempty=True,
                          unique=True, doc="which statistics to write"),
        "weights": _Weights(default=None),
        "region": rg.SCHEMA,
        "ddof": s.Int(default=0, minimum=0,
                      doc="delta degrees of freedom of var and std: 0 the population "
                          "value (numpy's and xarray's default), 1 the sample value"),
    }, check=lambda cfg, path: _check(cfg, path))

    @property
    def fields(self):
        w = self.cfg["weights"]
        return (self.cfg["field"], w) if isinstance(w, str) else (self.cfg["field"],)

    def bind(self, ctx):
        spec = ctx.specs[self.cfg["field"]]
        meta = ctx.meta(spec.name)
        self._rbox = rg.box(spec, self.cfg["region"], f"analyses[{self.index}]",
                            ctx.coords)
        self._slices = rg.local_slices(spec, self._rbox)
        self._weights = None
        if isinstance(self.cfg["weights"], str):
            self._bind_weights(ctx, spec)
        elif self.cfg["weights"]:
            self._bind_weight_array(ctx, spec)
        self.stats = tuple(self.cfg["stats"])
        # Slots: moments, sum, min, max, NaN and Inf counts, and for an
        # integer field the exact integer sum as two slots.
        plan = ctx.plan
        self._mom = plan.reserve(MOMENTS)
        self._sum = plan.reserve(SUM)
        self._min = plan.reserve(MIN)
        self._max = plan.reserve(MAX)
        self._nan = plan.reserve(SUM)
        self._inf = plan.reserve(SUM)
        self.integer = spec.dtype.kind in "iu"
        if self.integer:
            self._isum = plan.reserve(SUM)
            plan.reserve(SUM)
        self._local = np.empty(len(km.FIELDS), dtype=np.float64)
        if self._weights is not None:
            self._wmom = plan.reserve(MOMENTS)
            self._wlocal = np.empty(4, dtype=np.float64)
        self.phase2 = bool(ctx.reproducible and not self.integer
                           and {"sum", "mean"} & set(self.cfg["stats"]))
        if self.phase2:
            self._words = ctx.ints.reserve(rs.WORDS)
            self._ints = ctx.ints
            self._wbuf = np.zeros(rs.WORDS, dtype=np.int64)
        units = meta.get("units", "1")
        long_name = meta.get("long_name") or spec.name
        over = "area:"  # over the whole field (or region): CF 7.3.4, whatever its dims
        self.variables = {}
        out = []
        for stat in self.stats:
            vname = f"{self.name}_{stat}"
            attrs = {"long_name": f"{_LONG[stat]} {long_name}",
                     "units": "1" if stat in COUNTS else
                     (f"({units})2" if stat == "var" and units != "1" else units),
                     "insitu_analysis": self.kind, "insitu_field": spec.name}
            if stat in _METHOD:
                attrs["cell_methods"] = f"{over} {_METHOD[stat]}"
                if self._weights is not None and stat in ("mean", "std", "var"):
                    w = self.cfg["weights"]
                    label = w if isinstance(w, str) else (
                        f"cos(latitude) along {w['dim']}" if w["values"] == "coslat"
                        else f"given weights along {w['dim']}")
                    attrs["cell_methods"] += f" (weighted by {label})"
            if stat in ("std", "var"):
                attrs["insitu_ddof"] = int(self.cfg["ddof"])
            if self.cfg["region"]:
                attrs["insitu_region"] = ", ".join(
                    f"{d}: [{o}, {o + n})" for d, o, n in zip(spec.dims, *self._rbox))
            dtype = np.dtype(np.int64) if stat in COUNTS else np.dtype(np.float64)
            self.variables[stat] = vname
            out.append(Variable(vname, dtype, attrs))
        return out

    def _bind_weights(self, ctx, spec):
        wname = self.cfg["weights"]
        wspec = ctx.specs[wname]
        where = f"analyses[{self.index}].weights"
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
        # How to lay the weight view along the field's axes (a free view).
        self._weights = (wname, [wspec.dims.index(d) if d in wspec.dims else None
                                 for d in spec.dims])

    def _bind_weight_array(self, ctx, spec):
        """Weights as a 1-D array along one dim: given values, or cos(latitude)
        from the dim's ``coords:`` entry.  Each rank takes its own part."""
        w = self.cfg["weights"]
        where = f"analyses[{self.index}].weights"
        d = w["dim"]
        if d not in spec.dims:
            raise AnalysisError(f"{where}.dim: field {spec.name!r} has no dimension {d!r}")
        a = spec.dims.index(d)
        n = spec.global_shape[a]
        if w["values"] == "coslat":
            c = ctx.coords.get(d)
            if c is None:
                raise AnalysisError(f"{where}.values: coslat needs a 'coords: {d}:' entry "
                                    "in degrees")
            values = np.cos(np.deg2rad(c["start"] + c["step"] * np.arange(n)))
        else:
            values = np.asarray(w["values"], dtype=np.float64)
            if values.shape != (n,):
                raise AnalysisError(f"{where}.values: {values.size} values for the {n} "
                                    f"points along {d!r}")
        if (values < 0).any():
            raise AnalysisError(f"{where}.values: weights must not be negative")
        local = values[spec.offset[a]:spec.offset[a] + spec.shape[a]]
        shape = [1] * spec.ndim
        shape[a] = local.size
        self._weight_array = local.reshape(shape)
        self._weights = ("<array>", None)

    def _weight_view(self, views, shape):
        if self._weights[0] == "<array>":
            return np.broadcast_to(self._weight_array, shape)
        wname, order = self._weights
        w = views[wname]
        # Weight axes in the field's axis order, then length-1 axes where the
        # field has dims the weights lack; every step is a view.
        w = np.transpose(w, [i for i in order if i is not None])
        return np.broadcast_to(_expand(w, order), shape)

    def local(self, views, record, step):
        view = views[self.cfg["field"]]
        if self.cfg["region"]:
            view = view[self._slices]
        m = km.moments(view, self._local)
        if self._weights is not None:
            w = self._weight_view(views, views[self.cfg["field"]].shape)
            if self.cfg["region"]:
                w = w[self._slices]
            wm = km.weighted_moments(view, w, self._wlocal)
            record[self._wmom:self._wmom + 4] = wm
        record[self._mom] = m[km.COUNT]
        record[self._mom + 1] = m[km.MEAN]
        record[self._mom + 2] = m[km.M2]
        record[self._mom + 3] = m[km.MEAN_LO]
        if self.integer:
            record[self._isum] = m[km.ISUM_HI]
            record[self._isum + 1] = m[km.ISUM_LO]
        record[self._sum] = m[km.SUM]
        record[self._min] = m[km.MIN]
        record[self._max] = m[km.MAX]
        record[self._nan] = m[km.NAN_COUNT]
        record[self._inf] = m[km.INF_COUNT]

    def _grid(self, record) -> int:
        lo, hi = record[self._min], record[self._max]
        big = max(abs(lo), abs(hi)) if record[self._mom] > 0 else 0.0
        return rs.grid_exponent(big)

    def local2(self, views, record, ints, step):
        view = views[self.cfg["field"]]
        if self.cfg["region"]:
            view = view[self._slices]
        ints[self._words] = rs.local_words(view, self._grid(record), self._wbuf)

    def reproducible_outputs(self):
        """``sum`` and unweighted ``mean``: exact integer words for a float
        field (``phase2``), the exact integer sum for an integer one."""
        if not (self.phase2 or self.integer):
            return []
        return [self.variables[k] for k in ("sum", "mean") if k in self.variables
                and not (k == "mean" and self._weights is not None)]

    def results(self, record):
        n = record[self._mom]
        empty = n == 0
        values = {
            "count": int(n),
            "sum": record[self._sum],
            "mean": np.nan if empty else record[self._mom + 1],
            "min": np.nan if empty else record[self._min],
            "max": np.nan if empty else record[self._max],
            "var": np.nan if n <= self.cfg["ddof"] else
                   record[self._mom + 2] / (n - self.cfg["ddof"]),
            "nan_count": int(record[self._nan]),
            "inf_count": int(record[self._inf]),
        }
        if self.integer:
            # Both slots hold integers exactly; Python ints add them exactly,
            # and int / int is correctly rounded: one rounding each.
            total = int(record[self._isum]) + int(record[self._isum + 1])
            values["sum"] = float(total)
            values["mean"] = np.nan if empty else total / int(n)
        if self.phase2:
            if n >= 2.0 ** 52:
                raise OverflowError(f"{self.where}: {n:.0f} values are too many for the "
                                    "exact reproducible sum")
            total = rs.to_float(self._ints.array[self._words], self._grid(record))
            values["sum"] = total
            values["mean"] = np.nan if empty else total / n
        if self._weights is not None:
            wsum = record[self._wmom]
            values["mean"] = np.nan if wsum <= 0 else record[self._wmom + 1]
            values["var"] = np.nan if wsum <= 0 else record[self._wmom + 2] / wsum
        values["std"] = np.sqrt(values["var"])
        return {self.variables[k]: values[k] for k in self.stats}


def _expand(w, order):
    """Insert length-1 axes where the field has dims the weights lack (no copy)."""
    for axis, i in enumerate(order):
        if i is None:
            w = np.expand_dims(w, axis)
    return w


def _check(cfg, path):
    if cfg["ddof"] and cfg["weights"] is not None:
        raise s.ConfigError(f"{path}.ddof: weighted var and std are population values; "
                            "ddof must be 0 with weights")
