"""How much of a field lies past a threshold: a count and an area fraction.

``{kind: exceedance, field: T, threshold: 300.0}`` writes, per output step:

``<name>_count``     (time) int64: the finite values with ``T > 300``
``<name>_fraction``  (time) float64: that count over the number of finite
                     values, or with ``weights:`` the summed weight of those
                     values over the summed weight of the finite values (an
                     area fraction with cell areas or ``coslat``)

``op`` chooses the comparison: ``gt`` (the default, ``x > threshold``),
``ge``, ``lt`` or ``le``.  NaN and +-Inf are skipped, in the count and in
the total alike (as ``stats`` skips them); a field (or region) with no
finite value, or whose finite values all have zero weight, has count 0 and
fraction NaN.  ``region:`` limits both to a box.

Each rank runs one pass (:func:`insitu.kernels.weighted.exceedance`) and
the four sums join the step's one reduction as SUM slots (counts exact up
to 2**53).  The default name, ``<field>_<op>_<threshold>``, writes the
threshold with ``p`` for a decimal point and ``m`` for a minus sign
(``T_gt_300``, ``T_lt_m1p5``), so that trigger conditions can name its
variables.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels.weighted import OPS, Prepared, exceedance_prepared
from ..reduction import SUM
from . import region as rg
from . import weights as wt
from .base import Analysis, Variable, common_keys

_WORDS = {"gt": "above", "ge": "at or above", "lt": "below", "le": "at or below"}
_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


class Exceedance(Analysis):
    kind = "exceedance"
    schema = s.Record({
        **common_keys(),
        "threshold": s.Num(doc="the threshold, in the field's units"),
        "op": s.Enum(tuple(OPS), default="gt",
                     doc="gt: x > threshold (default), ge, lt or le"),
        "weights": wt.schema(),
        "region": rg.SCHEMA,
    })

    def default_name(self):
        t = f"{self.cfg['threshold']:g}".replace("-", "m").replace(".", "p").replace("+", "")
        return f"{self.cfg['field']}_{self.cfg['op']}_{t}"

    @property
    def fields(self):
        return (self.cfg["field"], *wt.fields(self.cfg.get("weights")))

    def bind(self, ctx):
        spec = ctx.specs[self.cfg["field"]]
        where = f"analyses[{self.index}]"
        rbox = rg.box(spec, self.cfg["region"], where, ctx.coords)
        self._slices = rg.local_slices(spec, rbox)
        self._weights = wt.bind(self.cfg["weights"], spec, ctx, f"{where}.weights")
        self._start = ctx.plan.reserve_many(SUM, 4)
        self._local = np.zeros(4)
        # decided once: the op's code, the threshold as a float, and the
        # kernel's layout of the slab, kept while the views are the same
        self._op = OPS[self.cfg["op"]]
        self._thr = float(self.cfg["threshold"])
        # the prepared layout is kept in the session's StepMemo.prepared
        # (by the views' ids), which FieldSlot empties when a Python model
        # binds a new array: a Prepared of our own would keep the dropped
        # array alive until this analysis's next due step
        self._memo = ctx.memo
        self._key_call = ctx.memo.key(("exceedance layout", self.index))
        self._wfield = self._weights.field if self._weights is not None else None
        meta = ctx.meta(spec.name)
        units = meta.get("units", "1")
        label = meta.get("long_name") or spec.name
        op, thr = self.cfg["op"], self.cfg["threshold"]
        past = f"{_WORDS[op]} {thr:g}" + ("" if units == "1" else f" {units}")
        common = {"insitu_analysis": self.kind, "insitu_field": spec.name,
                  "insitu_threshold": float(thr),
                  "insitu_condition": f"{spec.name} {_SIGNS[op]} {thr!r}"}
        if self.cfg["region"]:
            common["insitu_region"] = ", ".join(
                f"{d}: [{o}, {o + m})" for d, o, m in zip(spec.dims, *rbox))
        method = "area: mean"
        if self._weights is not None:
            method += f" {self._weights.cell_methods_comment()}"
        self.count_name = f"{self.name}_count"
        self.fraction_name = f"{self.name}_fraction"
        return [
            Variable(self.count_name, np.dtype(np.int64),
                     {"long_name": f"number of finite values of {label} {past}",
                      "units": "1", **common}),
            Variable(self.fraction_name, np.dtype(np.float64),
                     {"long_name": ("area fraction" if self._weights is not None
                                    else "fraction of the finite values")
                                   + f" of {label} {past}",
                      "units": "1", "cell_methods": method,
                      "comment": "the mean of the indicator of the condition over the "
                                 "finite values" + (", weighted" if self._weights is not None
                                                    else ""),
                      **common}),
        ]

    def local(self, views, record, step):
        full = views[self.cfg["field"]]
        wsrc = views[self._wfield] if self._wfield is not None else None
        call = (self._key_call, id(full), id(wsrc))
        entry = self._memo.prepared.get(call)
        if entry is None:
            w = (self._weights.view(views, full.shape) if self._weights is not None
                 else np.broadcast_to(np.float64(1.0), full.shape))
            prep = Prepared().get(full[self._slices], w[self._slices], (full, wsrc))
            entry = self._memo.ready(call, (full, wsrc), None, prep)
        prep = entry[2]
        exceedance_prepared(prep, self._thr, self._op, self._local)
        record[self._start:self._start + 4] = self._local

    def results(self, record):
        c, n, cw, nw = record[self._start:self._start + 4]
        part, whole = (cw, nw) if self._weights is not None else (c, n)
        return {self.count_name: int(c),
                self.fraction_name: part / whole if whole > 0 else np.nan}
