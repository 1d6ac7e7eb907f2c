"""Global statistics of a field: count, sum, mean, min, max, std, var, NaN and
Inf counts, and where the extremes are (argmax, argmin).

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

Extremes.  ``argmax``/``argmin`` write the global flat index of the
largest/smallest finite value (C order over the field's dims) and its
coordinate along each dim.  Each rank finds its candidate with its global
index (:mod:`insitu.kernels.extremes`); the ``(value, index)`` pairs merge
in the step's one reduction (an ``ARGMAX`` slot: larger value, then lower
index), so ties go to the lowest global index for any decomposition and
no rank gathers anything.  The argmin travels as the argmax of ``-x``.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .. import schema as s
from ..kernels import finish as kf
from ..kernels import moments as km
from ..kernels import reprosum as rs
from ..kernels.extremes import arg_extremes
from ..reduction import ARGMAX, MAX, MIN, MOMENTS, SUM
from ..step_memo import frozen, region_key
from ..step_values import Pack, PackLayout
from . import region as rg
from . import weights as wt
from .base import Analysis, Variable, common_keys

ALL_STATS = ("count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count",
             "argmax", "argmin")
DEFAULT_STATS = ("count", "sum", "mean", "min", "max", "std", "nan_count", "inf_count")
COUNTS = ("count", "nan_count", "inf_count")
ARGS = ("argmax", "argmin")
#: the global index written when the field (or region) has no finite value:
#: netCDF's default int64 fill (insitu.layout.NC_FILL), declared as the
#: variable's missing_value, so that it equals the _FillValue the writer
#: gives int64 variables of a run with several cadences (CF 2.5.1)
NO_INDEX = -9223372036854775806

#: the kernel's values in the order of the record's slots from ``_mom``:
#: the MOMENTS quadruple, then sum, min, max and the NaN and Inf counts
#: (reserved in this order at bind), so one ``take`` fills all nine
_TAKE = np.array([km.COUNT, km.MEAN, km.M2, km.MEAN_LO, km.SUM, km.MIN, km.MAX,
                  km.NAN_COUNT, km.INF_COUNT], dtype=np.intp)

_METHOD = {"sum": "sum", "mean": "mean", "min": "minimum", "max": "maximum",
           "std": "standard_deviation", "var": "variance"}
_LONG = {"count": "number of finite values of", "sum": "sum of", "mean": "mean of",
         "min": "minimum of", "max": "maximum of", "std": "standard deviation of",
         "var": "variance of", "nan_count": "number of NaN values of",
         "inf_count": "number of infinite values of",
         "argmax": "maximum of", "argmin": "minimum of"}


class Stats(Analysis):
    kind = "stats"
    schema = s.Record({
        **common_keys(),
        "stats": s.ListOf(s.Enum(ALL_STATS), default=list(DEFAULT_STATS), nonempty=True,
                          unique=True, doc="which statistics to write"),
        "weights": wt.schema(),
        "region": rg.SCHEMA,
        "ddof": s.Int(default=0, minimum=0,
                      doc="delta degrees of freedom of var and std: 0 the population "
                          "value (numpy's and xarray's default), 1 the sample value"),
    }, check=lambda cfg, path: _check(cfg, path))

    @property
    def fields(self):
        return (self.cfg["field"], *wt.fields(self.cfg["weights"]))

    def bind(self, ctx):
        spec = ctx.specs[self.cfg["field"]]
        meta = ctx.meta(spec.name)
        self._spec = spec
        self._rbox = rg.box(spec, self.cfg["region"], f"analyses[{self.index}]",
                            ctx.coords)
        self._slices = rg.local_slices(spec, self._rbox)
        self._weights = wt.bind(self.cfg["weights"], spec, ctx,
                                f"analyses[{self.index}].weights")
        # The step's kernel passes, shared with every analysis that makes the
        # same one (insitu.step_memo): ten stats of T read T once.  A key
        # names the kernel, the field and what selects or weighs the values.
        self._memo = ctx.memo
        where = (spec.name, region_key(self._slices if self.cfg["region"] else None))
        key = ctx.memo.key
        self._key_moments = key(("moments", *where))
        self._key_weighted = key(("weighted_moments", *where, frozen(self.cfg["weights"])))
        self._key_extremes = key(("arg_extremes", *where))
        self._key_call = key(("moments call", self.index))  # StepMemo.prepared
        # What is shared at the reduction (StepMemo.formed, local_key) is
        # keyed by the region's global box, not its local slices: two
        # regions can cover the same part of one rank's slab and differ on
        # another's (y [0, 4) and y [0, 8) on the rank holding rows 0-3),
        # where the local kernel pass may be shared but the combined
        # numbers may not (tests/test_review8_region_keys.py).
        self._key_over = key(("moments over", spec.name,
                              self._rbox if self.cfg["region"] else None))
        self._key_wover = key(("weighted over", self._key_over, frozen(self.cfg["weights"])))
        self._field, self._region = self.cfg["field"], bool(self.cfg["region"])
        # What this analysis's statistics depend on beyond the step (the
        # kernel pass, the weights, ddof, the exact sums): analyses with the
        # same key hold the same numbers in their slots, and the first to
        # form them lends them to the others (StepMemo.formed).  Not with
        # argmax/argmin, whose outputs carry the analysis's own names.
        self._key_values = None
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
        assert (self._sum, self._min, self._max, self._nan, self._inf) == tuple(
            range(self._mom + 4, self._mom + 9))  # one take fills them (local)
        self._dst = None  # the record's nine slots, a view made at the first step
        self.integer = spec.dtype.kind in "iu"
        if self.integer:
            self._isum = plan.reserve(SUM)
            plan.reserve(SUM)
        self._local = np.empty(len(km.FIELDS), dtype=np.float64)
        if self._weights is not None:
            self._wmom = plan.reserve(MOMENTS)
            self._wlocal = np.empty(4, dtype=np.float64)
            # (the weight field's view it was made from, the weights on the
            # region): rebuilt only when the model exposes other memory
            self._wview = (False, None)
        # argmax and argmin: (value, global index) pairs, the argmin as the
        # argmax of -x, merged in the same record (insitu.reduction.ARGMAX)
        self._args = bool(set(ARGS) & set(self.stats))
        if self._args:
            self._argmax = plan.reserve(ARGMAX)
            self._argmin = plan.reserve(ARGMAX)
            self._arglocal = np.empty(4, dtype=np.float64)
            self._offset = tuple(max(o, ro) for o, ro in zip(spec.offset, self._rbox[0]))
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
        self._arg_coords = {}
        out = []
        for stat in self.stats:
            if stat in ARGS:
                out += self._arg_variables(stat, spec, long_name, ctx.coords)
                continue
            vname = f"{self.name}_{stat}"
            attrs = {"long_name": f"{_LONG[stat]} {long_name}",
                     "units": "1" if stat in COUNTS else
                     (f"({units})2" if stat == "var" and units != "1" else units),
                     "insitu_analysis": self.kind, "insitu_field": spec.name}
            if stat in _METHOD:
                attrs["cell_methods"] = f"{over} {_METHOD[stat]}"
                if self._weights is not None and stat in ("mean", "std", "var"):
                    attrs["cell_methods"] += f" {self._weights.cell_methods_comment()}"
            if stat in ("std", "var"):
                attrs["insitu_ddof"] = int(self.cfg["ddof"])
            if self.cfg["region"]:
                attrs["insitu_region"] = ", ".join(
                    f"{d}: [{o}, {o + n})" for d, o, n in zip(spec.dims, *self._rbox))
            dtype = np.dtype(np.int64) if stat in COUNTS else np.dtype(np.float64)
            self.variables[stat] = vname
            out.append(Variable(vname, dtype, attrs))
        # the scalar outputs' statistics and variables, for results: picked
        # and named by C calls (itemgetter, zip), no comprehension
        scalar = [k for k in self.stats if k not in ARGS]
        self._names = tuple(self.variables[k] for k in scalar)
        self._pick = (operator.itemgetter(*scalar) if len(scalar) > 1 else
                      (lambda v, k=scalar[0]: (v[k],)) if scalar else (lambda v: ()))
        # Whether the session may form this analysis's results with those of
        # its neighbours in one compiled call (StatsBatch): every output is
        # a scalar statistic of float moments.  Not with argmax/argmin, the
        # exact reproducible sum or an integer field's exact sum, which
        # _values forms with Python's integers.
        self.batchable = not (self._args or self.phase2 or self.integer)
        # Analyses with the same local key fill their slots with the same
        # numbers from the same views (the moments, weighted the same way):
        # at a step where several are due the session runs the first one's
        # local pass alone, and the others' results are formed from its
        # slots (StatsBatch's rows, borrow), not copied into their own
        # (Session._due_at, issue 12).
        self.local_key = (self._key_over, self._key_wover
                          if self._weights is not None else None) if self.batchable else None
        if not self._args and not self.phase2:
            self._key_values = self._memo.key(
                ("stats", self._key_over,
                 self._key_wover if self._weights is not None else None,
                 self.integer, int(self.cfg["ddof"])))
        return out

    def _arg_variables(self, stat, spec, long_name, coords_cfg):
        """``<name>_<stat>`` (the global flat index of the extreme, C order
        over the field's dims) and ``<name>_<stat>_<dim>`` (its coordinate
        along each dim, or its index where the dim has no ``coords:``)."""
        what = "maximum" if stat == "argmax" else "minimum"
        common = {"insitu_analysis": self.kind, "insitu_field": spec.name}
        if self.cfg["region"]:
            common["insitu_region"] = ", ".join(
                f"{d}: [{o}, {o + n})" for d, o, n in zip(spec.dims, *self._rbox))
        vname = f"{self.name}_{stat}"
        self.variables[stat] = vname
        out = [Variable(vname, np.dtype(np.int64), {
            "long_name": f"global index of the {what} of {long_name}",
            "units": "1", "missing_value": np.int64(NO_INDEX),
            "comment": f"flat index in C order over ({', '.join(spec.dims)}), shape "
                       f"{tuple(spec.global_shape)}; of equal values, the lowest index; "
                       "NaN and Inf skipped; missing when no value is finite",
            **common})]
        self._arg_coords[stat] = []
        for d in spec.dims:
            c = coords_cfg.get(d)
            attrs = {"long_name": f"{(c or {}).get('long_name') or d} of the {what} of "
                                  f"{long_name}",
                     "units": c["units"] if c else "1", **common}
            if c is None:
                attrs["comment"] = f"index along {d} (the dim has no coords: entry)"
            elif c.get("standard_name"):  # CF 4.1/4.2 know a latitude by its units
                attrs["standard_name"] = c["standard_name"]
            name = f"{vname}_{d}"
            self._arg_coords[stat].append((name, c))
            out.append(Variable(name, np.dtype(np.float64), attrs))
        return out

    def local(self, views, record, step):
        # The view (a region's is a new array object) is made only for a
        # kernel that runs: an analysis whose passes another one made at
        # this step only copies their results into its slots.
        view = None
        memo = self._memo
        m = memo.lookup(self._key_moments)
        if m is None:
            # The kernel's call made ready once for this view object
            # (kernels.moments.prepare: its checks, its C-order view and
            # numba's typing cost about 30 us per due step after the
            # model's step otherwise, issue 12), then only called.
            # Keyed by the view object's id: the entry holds the view, so
            # no other object can have that id while the entry is there;
            # a C model's two swapped buffers keep two entries.
            src = views[self._field]
            call = (self._key_call, id(src))
            prep = memo.prepared.get(call)
            if prep is None:
                prep = memo.ready(call, src, *km.prepare(
                    src[self._slices] if self._region else src, self._local))
            prep[1](*prep[2])
            m = memo.keep(self._key_moments, self._local)
        if self._weights is not None:
            wm = memo.lookup(self._key_weighted)
            if wm is None:
                if view is None:
                    view = self._field_view(views)
                wm = memo.keep(self._key_weighted,
                               km.weighted_moments(view, self._weight_view(views), self._wlocal))
            record[self._wmom:self._wmom + 4] = wm
        if self._args:
            e = memo.lookup(self._key_extremes)
            if e is None:
                if view is None:
                    view = self._field_view(views)
                e = memo.keep(self._key_extremes, arg_extremes(
                    view, self._offset, self._spec.global_shape, self._arglocal))
            record[self._argmax] = e[0]
            record[self._argmax + 1] = e[1]
            record[self._argmin] = -e[2]
            record[self._argmin + 1] = e[3]
        # One take into the record's nine slots, not nine item copies: a due
        # step's Python runs right after the model swept the caches, where
        # every call costs (issue 12).
        dst = self._dst
        if dst is None or dst.base is not record:
            dst = self._dst = record[self._mom:self._mom + 9]
        m.take(_TAKE, out=dst)
        if self.integer:
            record[self._isum] = m[km.ISUM_HI]
            record[self._isum + 1] = m[km.ISUM_LO]

    def _field_view(self, views):
        """This rank's view of the field, on the region if there is one."""
        view = views[self.cfg["field"]]
        return view[self._slices] if self.cfg["region"] else view

    def _weight_view(self, views):
        """The weights on this rank's part of the region: views of the
        weight field (or of the bound 1-D array), transposed and broadcast
        by strides, so they stay right while the field's view object is the
        same one (the same memory, insitu.fields.FieldSlot) and are made
        again, about 7 us, only when it changes."""
        source = views[self._weights.field] if self._weights.field is not None else None
        if self._wview[0] is not source:
            w = self._weights.view(views, views[self.cfg["field"]].shape)
            if self.cfg["region"]:
                w = w[self._slices]
            self._wview = (source, w)
        return self._wview[1]

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

    @classmethod
    def batch_results(cls, analyses, sources) -> "StatsBatch":
        """One producer of the results of ``analyses`` (consecutive due
        analyses, each :attr:`batchable`), whose slots are those of
        ``sources`` (each analysis itself, or the one whose local pass it
        shares at this step: :attr:`local_key`): :class:`StatsBatch`."""
        return StatsBatch(analyses, sources)

    def borrow(self, source, record) -> None:
        """Fill this analysis's slots of the combined ``record`` from those
        of ``source``, the analysis whose local pass it shared at this step
        (same :attr:`local_key`): what its own slots would hold had it run
        its local pass, since every rank would have put the same numbers in
        both and the reduction combines each slot group alike.  For the
        step's failure path, which forms each analysis's results alone."""
        record[self._mom:self._mom + 9] = record[source._mom:source._mom + 9]
        if self._weights is not None:
            record[self._wmom:self._wmom + 4] = record[source._wmom:source._wmom + 4]

    def result_items(self, record):
        """The results as ``(name, value)`` pairs for the session's
        ``values.update`` (:meth:`insitu.session.Session.step`), the same
        pairs in the same order as :meth:`results`: a zip over the scalar
        statistics, not a dict made only to be copied into the step's
        values (a due step's Python runs right after the model's step,
        where each object made costs, issue 12).  With argmax/argmin,
        :meth:`results`."""
        if self._args:
            return self.results(record)
        key = self._key_values
        if key is None:  # phase2: the exact sum is this analysis's own
            return zip(self._names, self._pick(self._values(record)))
        formed = self._memo.formed
        values = formed.get(key)
        if values is None:  # the first analysis with these numbers forms them
            values = formed[key] = self._values(record)
        return zip(self._names, self._pick(values))

    def results(self, record):
        key = self._key_values
        if key is not None:
            values = self._memo.formed.get(key)
            if values is not None:  # formed by an analysis with the same numbers
                return dict(zip(self._names, self._pick(values)))
        values = self._values(record)
        if key is not None:
            self._memo.formed[key] = values
        out = dict(zip(self._names, self._pick(values)))
        if self._args:
            for stat, slot in (("argmax", self._argmax), ("argmin", self._argmin)):
                if stat in self.stats:
                    out.update(self._arg_results(stat, record[slot + 1]))
        return out

    def _values(self, record) -> dict:
        """Every scalar statistic (count ... std) from this analysis's slots."""
        # the nine slots as Python floats in one call (tolist), and Python
        # arithmetic on them (math.sqrt, not numpy's ufunc on a scalar)
        n, mean, m2, _, total, lo, hi, nans, infs = \
            record[self._mom:self._mom + 9].tolist()
        empty = n == 0
        ddof = self.cfg["ddof"]
        values = {
            "count": int(n),
            "sum": total,
            "mean": math.nan if empty else mean,
            "min": math.nan if empty else lo,
            "max": math.nan if empty else hi,
            "var": math.nan if n <= ddof else m2 / (n - ddof),
            "nan_count": int(nans),
            "inf_count": int(infs),
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
        values["std"] = math.sqrt(values["var"]) if values["var"] >= 0 else math.nan
        return values

    def _arg_results(self, stat, index):
        names = self._arg_coords[stat]
        if not np.isfinite(index):  # no finite value in the field (or region)
            return {self.variables[stat]: NO_INDEX, **{n: np.nan for n, _ in names}}
        index = int(index)
        at = np.unravel_index(index, self._spec.global_shape)
        out = {self.variables[stat]: index}
        for (name, c), i in zip(names, at):
            out[name] = float(i) if c is None else float(coordinate_at(c, int(i)))
        return out


class StatsBatch:
    """The results of a run of :attr:`Stats.batchable` analyses, formed in
    one compiled call (:func:`insitu.kernels.finish.finish_stats`) into two
    new arrays: a :class:`insitu.step_values.Pack`, whose pairs are the
    same names, in the same order, with values of the same types and bits,
    as the analyses' :meth:`Stats.result_items` one after the other.  Made
    by the session once per set of due analyses
    (:meth:`insitu.session.Session._due_at`); called after the record's
    reduction at each due step where no analysis failed (the failure path
    asks each analysis, :meth:`Stats.results`).

    Why: each analysis formed its own values in Python, a dict and a zip,
    about 2 us apiece right after the model's step, and the step's dict of
    80 Python numbers for ten analyses about 25 us more (issue 12); the
    writer keeps the two arrays as they are, and the Python values are made
    only when read (insitu.step_values)."""

    __slots__ = ("_rows", "layout", "_fn", "_for")

    def __init__(self, analyses, sources=None) -> None:
        k = len(analyses)
        sources = analyses if sources is None else sources
        self._rows = np.array(
            [(src._mom, src._wmom if a._weights is not None else -1, int(a.cfg["ddof"]))
             for a, src in zip(analyses, sources)], dtype=np.int64).reshape(k, 3)
        # each analysis's statistics, in its own order, as positions in the
        # floats followed by the ints
        names, at = [], []
        for i, a in enumerate(analyses):
            for stat in a.stats:
                names.append(a.variables[stat])
                at.append(kf.FLOATS * i + kf.FLOAT_STATS.index(stat)
                          if stat in kf.FLOAT_STATS else
                          kf.FLOATS * k + kf.INTS * i + kf.INT_STATS.index(stat))
        self.layout = PackLayout(tuple(names), tuple(at), kf.FLOATS * k, kf.INTS * k)
        self._fn = None  # the compiled entry point, for the record it is given
        self._for = None

    def __call__(self, record) -> Pack:
        floats = np.empty(self.layout.floats, dtype=np.float64)
        ints = np.empty(self.layout.ints, dtype=np.int64)
        fn = self._fn
        if self._for is not record:  # the plan's record: the same array for its life
            fn = self._fn = km.entry(kf.finish_stats, (record, self._rows, floats, ints))
            self._for = record
        fn(record, self._rows, floats, ints)
        return Pack(self.layout, floats, ints)


def coordinate_at(c: dict, i: int) -> float:
    """The ``coords:`` entry ``c``'s coordinate at index ``i`` (regular or
    irregular: ``start + step * i``, as every reader of ``coords:``)."""
    return c["start"] + c["step"] * float(i)


def _check(cfg, path):
    if cfg["ddof"] and cfg["weights"] is not None:
        raise s.ConfigError(f"{path}.ddof: weighted var and std are population values; "
                            "ddof must be 0 with weights")
