"""Histograms with exact integer counts, and quantiles derived from them.

``{kind: histogram, field: T, bins: 200, range: [250, 330],
quantiles: [0.05, 0.5, 0.95]}`` writes, per output step:

``<name>``          (time, <name>_bin) int64 counts (numpy's bin rule)
``<name>_below``    (time) values below the range (-Inf included)
``<name>_above``    (time) values above the range (+Inf included)
``<name>_quantile`` (time, <name>_q) quantiles from the counts, linear
                    within a bin: accurate to one bin width (the
                    ``resolution`` attribute); NaN if out of range

Counts travel as float64 SUM slots of the step's one reduction: exact up to
2**53 per bin.

``weights:`` (the forms of :mod:`insitu.analyses.weights`) makes every
count a sum of weights (``numpy.histogram(x, weights=w)``): an
area-weighted distribution with cell areas or ``coslat``.  The counts are
then float64 in the weights' units, ``_below`` and ``_above`` too, and the
quantiles follow the weighted distribution: the q-quantile is where the
cumulative weight reaches ``q`` times the total weight, interpolated
linearly within its bin as without weights.

``quantile_method: exact`` makes the quantiles exact to the value:
``numpy.quantile(x, q, method="inverted_cdf")`` over the field's non-NaN
values (+-Inf included, as the counts include them below and above the
range), the smallest value whose empirical CDF reaches ``q`` -- a value
the field holds, never an interpolation.  After the counts are combined,
every rank knows the slot holding the ``k``-th smallest value (``k - 1 =
order_index(n, q)``) and its rank ``j`` within the slot; each rank takes
its own values of that slot, keeps the ``j`` smallest or the ``C - j + 1``
largest, whichever is fewer (``C``: the slot's global count), by a
selection, and ONE more reduction merges the ranks' candidates
(:mod:`insitu.kernels.quantiles`).

Where do a rank's values of the slot come from?  A field changes little
from one output step to the next, and so do the bins of its quantiles: the
histogram pass copies out the values of the bins the previous output step
wanted while it counts them (eight values whose bins, known to the
counting loop, are none of those cost one comparison), and when those are the bins
wanted now, nothing more is read.  A bin not predicted (the first output
step, a quantile that moved to another bin) takes one more pass of the
histogram kernel over the slab that copies those bins only; so does a
predicted bin grown past its room (a fifth more values than at the last
step), on the rank where it grew.  A pass is no collective.

The merge is narrowed too: each rank finds the part of the bin each of its
values of every predicted bin is in, out of ``SUB_BINS`` (64) equal parts
(the histogram kernel's slot rule again, on the copies:
:func:`insitu.kernels.histogram.slots_of`), and the parts' counts travel in
the histogram's own reduction (``Q * 66`` more doubles).  After it, every rank knows the part that holds
the ``j``-th value of the bin and its rank there, and only that part's
values are candidates.  Counts and values are binned by the same rule
(numpy's, monotone in the value), so the answer stays exact.

Its cost, per output step: the copies (and, when the bins moved, one more
pass over the slab), the sub-histograms of the copies, and one more
collective (a merge-reduction) of ``Q * L`` doubles, ``L`` the largest
``min(j + 1, C - j)`` over the ``Q`` quantiles rounded up to a power of
two, ``C`` the count of the part (of the bin, when it was not predicted):
with ``B`` bins over ``N`` values spread over the range, about ``N / 128B``
per quantile when the bins were predicted (31 kB for 1e8 values in 100
bins) and ``N / 2B`` when not (4 MB); ``L`` is bounded by nothing else, so
choose the bins so that the quantiles' bins are small (a range that fits
the field, enough bins).  The merge is a user-defined operation: a
selection per pair of ranks.  Memory: the copies (float64, a fifth more
room) and their parts (int32) stay allocated between output steps.  Not
with ``weights:`` (a weighted quantile's candidates are not bounded by a
count).
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels import histogram as kh
from ..kernels import quantiles as kq
from ..reduction import SUM
from . import region as rg
from . import weights as wt
from .base import common_keys, Analysis, Coord, Variable


#: equal parts of a predicted quantile bin, counted in the histogram's own
#: reduction, so that the merge takes only the part holding the quantile
SUB_BINS = 64


class Histogram(Analysis):
    kind = "histogram"
    schema = s.Record({
        **common_keys(),
        "bins": s.Int(minimum=1, doc="number of equal bins"),
        "range": s.ListOf(s.Num(), doc="[low, high] of the bins"),
        "quantiles": s.ListOf(s.Num(minimum=0.0, maximum=1.0, open_range=True), default=[],
                              unique=True, doc="quantiles to derive, each in (0, 1)"),
        "region": rg.SCHEMA,
        "weights": wt.schema(),
        "quantile_method": s.Enum(("bins", "exact"), default="bins",
                                  doc="bins: linear within the bin (one bin width); exact: "
                                      "numpy's inverted_cdf, refined in a second pass"),
    }, check=lambda cfg, path: _check(cfg, path))

    def __init__(self, index, cfg, rank=0, size=1):
        super().__init__(index, cfg, rank, size)
        #: the exact quantiles' second pass (local2) after the counts' reduction
        self.phase2 = cfg.get("quantile_method") == "exact" and bool(cfg.get("quantiles"))

    def default_name(self):
        return f"{self.cfg['field']}_hist"

    @property
    def fields(self):
        return (self.cfg["field"], *wt.fields(self.cfg.get("weights")))

    def bind(self, ctx):
        where = f"analyses[{self.index}]"
        rng = self.cfg["range"]  # [low, high], checked by the schema
        spec = ctx.specs[self.cfg["field"]]
        self._slices = rg.local_slices(spec, rg.box(spec, self.cfg["region"], where, ctx.coords))
        self._weights = wt.bind(self.cfg["weights"], spec, ctx, f"{where}.weights")
        self.lo, self.hi = rng
        nb = self.cfg["bins"]
        self.edges = np.linspace(self.lo, self.hi, nb + 1)
        self._start = ctx.plan.reserve_many(SUM, nb + 2)
        if self.phase2:
            # every rank, one group: the communicator of the merge
            self._group = ctx.group(spec.name, (), f"{where}.quantile_method")
            self._plans = {}   # capacity -> CandidatePlan, kept (the comm caches its op)
            self._exact = np.full(len(self.cfg["quantiles"]), np.nan)
            self._collect = kh.Collector(self.cfg["bins"])   # the first pass's copies
            self._rescan = kh.Collector(self.cfg["bins"])    # a second pass's
            self._predicted = []   # the slots the last output step wanted (all ranks alike)
            self.passes = {"fused": 0, "second": 0}   # how the slots' values were found
            # The predicted bins' sub-histograms travel in the counts' reduction.
            nq = len(self.cfg["quantiles"])
            self._sub_start = ctx.plan.reserve_many(SUM, nq * (SUB_BINS + 2))
            self._subs = {}        # slot -> (its sub-histogram's place, its row) this step
            self._mine = {}        # slot -> this rank's values of it this step
            self._rescanned = False   # a predicted bin outgrew its room this step
            self._parts = np.empty((nq, 0), dtype=np.int32)   # per predicted bin: the
            self._counts = np.zeros((nq, SUB_BINS + 3), dtype=np.int64)  # parts of its values
        self._local = np.zeros(nb + 2)
        meta = ctx.meta(spec.name)
        units = meta.get("units", "1")
        label = meta.get("long_name") or spec.name
        b, q = f"{self.name}_bin", f"{self.name}_q"
        self.coords = [
            Coord(b, (self.edges[:-1] + self.edges[1:]) / 2,
                  {"long_name": f"bin centre of {label}", "units": units,
                   "bounds": f"{b}_bounds"}),
            Coord(f"{b}_bounds", np.stack([self.edges[:-1], self.edges[1:]], axis=1),
                  {}, dims=(b, "nv")),  # CF 7.1: bounds take their units from the bins
        ]
        over = "area:"  # over the whole field (or region): CF 7.3.4, whatever its dims
        common = {"insitu_analysis": self.kind, "insitu_field": spec.name}
        ctype, cunits, what, method = np.dtype(np.int64), "1", "number of values", "(count)"
        if self._weights is not None:
            # Sums of weights: float64, in the weights' units.
            ctype, cunits = np.dtype(np.float64), self._weights.units
            what = "summed weight of the values"
            method = f"(count weighted by {self._weights.label})"
        out = [
            Variable(self.name, ctype,
                     {"long_name": ("weighted " if self._weights is not None else "")
                                   + f"histogram of {label}", "units": cunits,
                      "cell_methods": f"{over} sum {method}", **common},
                     dims=(b,), shape=(nb,)),
            Variable(f"{self.name}_below", ctype,
                     {"long_name": f"{what} of {label} below {self.lo}",
                      "units": cunits, **common}),
            Variable(f"{self.name}_above", ctype,
                     {"long_name": f"{what} of {label} above {self.hi}",
                      "units": cunits, **common}),
        ]
        if self.cfg["quantiles"]:
            self.coords.append(Coord(q, np.array(self.cfg["quantiles"]),
                                     {"long_name": "quantile level", "units": "1"}))
            out.append(Variable(
                f"{self.name}_quantile", np.dtype(np.float64),
                {"long_name": f"quantiles of {label} from the "
                              + ("weighted " if self._weights is not None else "")
                              + "histogram", "units": units,
                 "resolution": float(self.edges[1] - self.edges[0]),
                 "comment": "linear interpolation within a histogram bin: accurate to one "
                            "bin width; NaN where the quantile lies outside the range",
                 **common}, dims=(q,), shape=(len(self.cfg["quantiles"]),)))
            if self.phase2:
                v = out[-1].attrs
                del v["resolution"]
                v["long_name"] = f"exact quantiles of {label}"
                v["comment"] = ("exact: numpy.quantile(values, q, method='inverted_cdf') over "
                                "the non-NaN values (+-Inf included), refined from the bins "
                                "in a second pass; NaN if there is none")
                v["insitu_quantile_method"] = "exact"
        return out

    def local(self, views, record, step):
        full = views[self.cfg["field"]]
        view = full[self._slices]
        if self._weights is None:
            collect = None
            if self.phase2 and self._predicted:
                # Copy the values of the slots the last step wanted while
                # counting (module docstring), with room for a fifth more
                # values than they held then.
                last = max(int(self._local[s]) for s in self._predicted)
                self._collect.arm(self._predicted, last + last // 5 + 64)
                collect = self._collect
            kh.histogram(view, self.lo, self.hi, self.cfg["bins"], self._local, collect)
        else:
            w = self._weights.view(views, full.shape)[self._slices]
            kh.weighted_histogram(view, w, self.lo, self.hi, self.cfg["bins"], self._local)
        record[self._start:self._start + self._local.size] = self._local
        if self.phase2:
            self._sub_histograms(view, record)

    def _sub_histograms(self, view, record):
        """This rank's values of each predicted bin (a second pass for a
        bin that outgrew its room: the same bins on every rank, whatever
        each rank's room), and their histogram over ``SUB_BINS`` equal
        parts of the bin, into the reduction (module docstring)."""
        self._mine, self._subs, self._rescanned = {}, {}, False
        if not self._predicted:
            return
        nb = self.cfg["bins"]
        mine = {s: self._collect.values(s) for s in self._predicted}
        short = [s for s, v in mine.items() if v is None or v.size != int(self._local[s])]
        if short:
            self._rescanned = True
            mine.update(zip(short, kq.slot_values(
                view, self.lo, self.hi, nb, short, [int(self._local[s]) for s in short],
                self._rescan)))
        self._mine = mine
        most = max(v.size for v in mine.values())
        if self._parts.shape[1] < most:
            self._parts = np.empty((self._parts.shape[0], most + most // 5 + 64),
                                   dtype=np.int32)
        for r, slot in enumerate(self._predicted):
            if 1 <= slot <= nb:   # a bin (below and above the range have no bounds)
                a = self._sub_start + r * (SUB_BINS + 2)
                v = mine[slot]
                # the part of the bin each value is in, and the parts' counts
                # (the NaN slot, last, is empty: the values are the bin's)
                kh.slots_of(v, self.edges[slot - 1], self.edges[slot], SUB_BINS,
                            self._parts[r, :v.size], self._counts[r])
                record[a:a + SUB_BINS + 2] = self._counts[r, :SUB_BINS + 2]
                self._subs[slot] = (a, r)

    def results(self, record):
        r = record[self._start:self._start + self.cfg["bins"] + 2]
        counts = r[1:-1]
        if self._weights is None:
            out = {self.name: counts.astype(np.int64), f"{self.name}_below": int(r[0]),
                   f"{self.name}_above": int(r[-1])}
        else:
            out = {self.name: counts.copy(), f"{self.name}_below": float(r[0]),
                   f"{self.name}_above": float(r[-1])}
        if self.phase2:
            out[f"{self.name}_quantile"] = self._exact.copy()
        elif self.cfg["quantiles"]:
            out[f"{self.name}_quantile"] = kh.quantiles_from_counts(
                counts, r[0], r[-1], self.edges, self.cfg["quantiles"])
        return out

    def local2(self, views, record, ints, step):
        """The exact quantiles' second pass (module docstring): this rank's
        values of the slots holding them, merged across ranks in one
        reduction.  Every rank computes the same slots and ranks from the
        combined counts, so every rank makes the same collective."""
        nb = self.cfg["bins"]
        r = record[self._start:self._start + nb + 2]   # below, bins, above (global)
        total = int(r.sum())
        self._exact[:] = np.nan
        if total == 0:
            return
        cum = np.cumsum(r)
        ks = [kq.order_index(total, q) for q in self.cfg["quantiles"]]  # 0-based, non-NaN
        # one call, float keys: a searchsorted of a Python int on a float
        # array took 27 us a call here (numpy converts the array)
        where = np.searchsorted(cum, np.array(ks, dtype=np.float64), side="right").tolist()
        want = []   # (quantile index, slot, rank within the slot, the slot's count)
        for i, (k, slot) in enumerate(zip(ks, where)):
            before = int(cum[slot - 1]) if slot else 0
            want.append((i, slot, k - before, int(r[slot])))
        slots = sorted({w[1] for w in want})
        mine = {s: v for s, v in self._mine.items() if s in slots}
        missing = [s for s in slots if s not in mine]
        if missing:   # a slot not predicted: one more pass
            view = views[self.cfg["field"]][self._slices]
            mine.update(zip(missing, kq.slot_values(
                view, self.lo, self.hi, nb, missing, [int(self._local[s]) for s in missing],
                self._rescan)))
        self.passes["second" if missing or self._rescanned else "fused"] += 1
        # Narrow each quantile to its sub-bin where the bin's sub-histogram
        # came with the counts: (values, rank in them, their global count).
        lists = []
        for i, slot, j, c in want:
            if slot not in self._subs:
                lists.append((mine[slot], j, c))
                continue
            a, row = self._subs[slot]
            sub = record[a:a + SUB_BINS + 2]
            cum = np.cumsum(sub)
            t = int(np.searchsorted(cum, float(j), side="right"))
            before = int(cum[t - 1]) if t else 0
            if int(cum[-1]) != c:
                raise RuntimeError(f"{self.where}: the sub-histogram of bin {slot - 1} holds "
                                   f"{int(cum[-1])} values where the bin counted {c}")
            v = mine[slot]
            lists.append((v[self._parts[row, :v.size] == t], j - before, int(sub[t])))
        self._predicted = slots
        need = max(min(j + 1, c - j) for _, j, c in lists)
        cap = 1 << max(need - 1, 0).bit_length()
        plan = self._plans.get(cap)
        if plan is None:
            plan = self._plans[cap] = kq.CandidatePlan(len(want), cap)
        for i, (values, j, c) in enumerate(lists):
            plan.fill(i, values, descending=c - j < j + 1)
        self._group.comm.reduce_record(plan)
        for i, (_, j, c) in enumerate(lists):
            self._exact[i] = plan.value(i, c - 1 - j if plan.descending[i] else j)


def _check(cfg, path):
    _check_range(cfg["range"], f"{path}.range")
    if cfg["quantile_method"] == "exact":
        if not cfg["quantiles"]:
            raise s.ConfigError(f"{path}.quantile_method: exact needs quantiles")
        if cfg["weights"] is not None:
            raise s.ConfigError(f"{path}.quantile_method: exact quantiles are not available "
                                "with weights (a weighted quantile's candidates are not bounded "
                                "by a count); use quantile_method: bins")


def _check_range(rng, path):
    if len(rng) != 2 or not rng[0] < rng[1]:
        raise s.ConfigError(f"{path}: expected [low, high] with low < high, got {rng}")
