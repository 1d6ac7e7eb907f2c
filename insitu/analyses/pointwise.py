"""Per-point time statistics: the running mean, min, max and variance of a
field at every grid point, over the whole run or over windows.

::

    - {kind: pointwise, field: T, ops: [mean, max]}                  # the whole run
    - {kind: pointwise, field: T, ops: [mean, var], calendar_period: month}
    - {kind: pointwise, field: T, period: 86400.0, every: 6}

This is the climatological map that users otherwise store every field to
compute (``ds.T.mean("time")``, ``ds.T.resample(time="MS").mean()``): each
rank keeps running sums for its own points and writes its hyperslab of
``<name>_<op>`` (the field's dims, float64) along ``time_<name>``, with
bounds, once per window -- or once, at the end, over the whole run -- and
``<name>_count`` (int32, the finite samples at each point) and
``<name>_samples`` (the samples in the window).  No collective: the state
never leaves the rank that owns the point.

Samples are the analysis's due steps (``every``).  Windows follow the
window rule of ``kind: window`` (:mod:`.window`, the same clocks):
``steps: N`` (N samples), ``period: P`` (model time ``[kP, (k+1)P)``) or
``calendar_period: day | month | season | year`` (the config's CF time
units and calendar); a window the run did not cover whole is dropped unless
``complete_only: false``.  With none of them the window is the whole run,
bounded by its first and last sample.

NaN (and +-Inf) are skipped point by point, as xarray's ``skipna=True``
skips NaN (on a field whose infinities are masked: insitu's reductions skip
non-finite values alike); a point with no finite sample in a window is NaN
there.  ``var`` has ``ddof`` (0 population, 1 sample, as ``stats``) and is
NaN where a point has ``ddof`` or fewer samples.  With ``var`` the state is
Welford's running mean and sum of squared deviations, so that a field at a
large offset keeps its variance (:mod:`insitu.kernels.perpoint`); without
it, a plain sum.

A sample is added once the model time of its step is known (in the
companion's ``follow``, :mod:`.perpoint`), from the view the due step's
local phase kept.
"""
from __future__ import annotations

import logging

import numpy as np

from .. import schema as s
from ..calendar import ADJECTIVE, PLURAL, CalendarPeriods, tolerance
from ..kernels import perpoint as kp
from .base import AnalysisError, Piece, Variable, common_keys
from .perpoint import PerPoint
from .window import CF_OPS, CalendarClock, PeriodClock, Row, StepClock, window_keys

log = logging.getLogger("insitu")


class Pointwise(PerPoint):
    kind = "pointwise"
    schema = s.Record({
        **common_keys(),
        **window_keys("samples"),
    }, check=lambda cfg, path: _check(cfg, path))

    def default_name(self):
        c = self.cfg
        if c.get("calendar_period"):
            return f"{c['field']}_{ADJECTIVE[c['calendar_period']]}"
        if c.get("period"):
            return f"{c['field']}_p{c['period']:g}"
        if c.get("steps"):
            return f"{c['field']}_w{c['steps']}"
        return f"{c['field']}_pointwise"

    def bind(self, ctx):
        self.spec = ctx.specs[self.cfg["field"]]
        self.meta = ctx.meta(self.spec.name)
        ops = self.cfg["ops"]
        self._var = "var" in ops
        self._minmax = "min" in ops or "max" in ops
        self._state = None
        self._view = None
        self._reset()
        self.dropped = []
        return []

    def output_variables(self, axis, time_cfg):
        c = self.cfg
        if c["calendar_period"] is not None:
            try:
                self.clock = CalendarClock(CalendarPeriods(
                    c["calendar_period"], time_cfg.get("units") or "1",
                    time_cfg.get("calendar")))
            except ValueError as exc:
                raise AnalysisError(f"{self.where}.calendar_period: {exc}") from None
            what = PLURAL[c["calendar_period"]]
        elif c["period"] is not None:
            self.clock = PeriodClock(c["period"])
            what = f"periods of {c['period']:g}"
        elif c["steps"] is not None:
            self.clock = StepClock(c["steps"] * self.every)
            what = f"windows of {c['steps']} samples"
        else:
            self.clock = None
            what = "the run"
        spec = self.spec
        label = self.meta.get("long_name") or spec.name
        units = self.meta.get("units", "1")
        out = []
        for op in c["ops"]:
            attrs = {"long_name": f"{op} over {what} of {label} at each point",
                     "units": units, "cell_methods": f"{axis.name}: {CF_OPS[op]}",
                     "insitu_analysis": self.kind, "insitu_field": spec.name,
                     "insitu_sample_every_steps": int(self.every),
                     "comment": "NaN and +-Inf skipped point by point; NaN where a point "
                                "has no finite sample"}
            if op == "var":
                attrs["units"] = f"({units})2" if units != "1" else "1"
                attrs["insitu_ddof"] = int(c["ddof"])
            out.append(Variable(f"{self.name}_{op}", np.dtype(np.float64), attrs,
                                dims=spec.dims, shape=spec.global_shape, distributed=True,
                                axis=axis.name))
        out.append(Variable(f"{self.name}_count", np.dtype(np.int32), {
            "long_name": f"finite samples of {label} at each point", "units": "1",
            "insitu_analysis": self.kind}, dims=spec.dims, shape=spec.global_shape,
            distributed=True, axis=axis.name))
        out.append(Variable(f"{self.name}_samples", np.dtype(np.int32), {
            "long_name": f"samples of {spec.name} in each {self.name} window", "units": "1",
            "insitu_analysis": self.kind}, axis=axis.name))
        return out

    # -- state ------------------------------------------------------------------
    def _reset(self):
        self.count = 0          # samples in the open window
        self.window = None      # the open window's key
        self.start = None       # its start time (bounds[0])
        self.whole = False      # the run covered its start
        self.last_time = None
        self._end = None

    def _alloc(self, v):
        """The running sums, allocated at the first sample in the view's
        memory order (a restart's restored values copied in)."""
        order = self._order = kp.memory_order(v)
        self.n, self._n4 = kp.state_like(v, np.int32, 0, order)
        self.s1, self._s1 = kp.state_like(v, np.float64, 0.0, order)
        unused = np.zeros((1, 1, 1, 1))
        self.s2, self._s2 = kp.state_like(v, np.float64, 0.0, order) \
            if self._var else (None, unused)
        self.lo, self._lo = kp.state_like(v, np.float64, np.inf, order) \
            if self._minmax else (None, unused)
        self.hi, self._hi = kp.state_like(v, np.float64, -np.inf, order) \
            if self._minmax else (None, unused)
        self._state = True
        self._take_restored(self._named())

    def _named(self) -> dict:
        out = {"n": self.n, "s1": self.s1}
        if self._var:
            out["s2"] = self.s2
        if self._minmax:
            out.update(lo=self.lo, hi=self.hi)
        return out

    def _clear(self, v):
        """Zero the running sums for a new window."""
        if self._state is None:
            self._alloc(v)
            return
        for a, fill in ((self._n4, 0), (self._s1, 0.0)):
            a[...] = fill
        if self._var:
            self._s2[...] = 0.0
        if self._minmax:
            self._lo[...] = np.inf
            self._hi[...] = -np.inf

    # checkpoints (insitu.state)
    def state_arrays(self):
        if self._state is None:
            r = getattr(self, "_restored", None) or {}
            shape = self.spec.shape
            fills = {"n": 0.0, "s1": 0.0, "s2": 0.0, "lo": np.inf, "hi": -np.inf}
            names = ["n", "s1"] + (["s2"] if self._var else []) + \
                (["lo", "hi"] if self._minmax else [])
            return {k: r.get(k, np.full(shape, fills[k])) for k in names}
        return self._named()

    def state_meta(self):
        return {"window": self.window, "start": self.start, "whole": self.whole,
                "count": self.count, "last_time": self.last_time, "end": self._end,
                "dropped": self.dropped}

    def restore_meta(self, meta):
        from .window import _key
        self.window = _key(meta["window"])
        self.start, self.whole, self.count = meta["start"], meta["whole"], meta["count"]
        self.last_time, self._end = meta["last_time"], meta["end"]
        self.dropped = [tuple(d) for d in meta["dropped"]]
        if self.window is None:
            self._restored = None   # no window open: the arrays are a closed one's

    def _ensure_state(self, v=None):
        """State for a window restored open: allocated at its first sample
        (or in C order at finalize, if the restarted run had none)."""
        if self._state is None:
            self._alloc(v if v is not None else np.zeros(self.spec.shape))

    def local(self, views, record, step):
        # Added in after() with the step's model time (module docstring):
        # the view stays valid until the step returns.
        self._view = views[self.cfg["field"]]

    def after(self, step, time):
        v, self._view = self._view, None
        if self.window is not None:
            self._ensure_state(v)   # a window restored open by a restart
        done = None
        if self.clock is None:
            if self.window is None:
                self._open(0, step, time, v)
        else:
            if self.window is not None and self._end is not None and \
                    self.start <= time + tolerance(time) < self._end:
                k = self.window   # inside the open window: no calendar arithmetic (cftime)
            else:
                k = self.clock.key(step, time)
            if self.window is not None and k != self.window:
                if k < self.window:
                    raise AnalysisError(
                        f"{self.where}: model time went back to {time:g} (step {step}) inside "
                        f"the window that began at {self.start:g}")
                done = self._close(self.clock.end(self.window, time), True)
            if self.window is None:
                self._open(k, step, time, v)
        kp.moments_update(kp.kernel_view(v, self._order), self._n4, self._s1, self._s2,
                          self._lo, self._hi, self._var, self._minmax, self.count)
        self.count += 1
        self.last_time = time
        return done

    def _open(self, k, step, time, v):
        self._clear(v)
        self.count = 0
        self.window = k
        if self.clock is None:
            self.start, self.whole = time, True
        else:
            first_step, first_time = getattr(self, "first", (step, time))
            self.start = self.clock.start(k, time)
            self.whole = self.clock.covers(k, first_step, first_time)
            # the end of a period in model time (a steps window's is a step)
            self._end = None if isinstance(self.clock, StepClock) else self.clock.end(k, time)

    def _values(self):
        """Each op's values, NaN where a point had no finite sample (and var
        where it had ``ddof`` or fewer), in one pass per op."""
        n, ddof = self.n, self.cfg["ddof"]
        valid = None
        out = {}
        for op in self.cfg["ops"]:
            if op == "mean" and not self._var:
                # one pass into new memory: a point without a finite sample
                # has s1 = 0 and n = 0, and 0 / 0 is the NaN it must show
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[op] = np.divide(self.s1, n)
                continue
            v = np.full(n.shape, np.nan)
            if valid is None and op != "var":
                valid = n > 0
            if op == "mean":      # Welford's running mean
                np.copyto(v, self.s1, where=valid)
            elif op == "var":
                np.divide(self.s2, n - ddof, out=v, where=n > ddof)
            else:
                np.copyto(v, self.lo if op == "min" else self.hi, where=valid)
            out[op] = v
        return out

    def _emit(self, end_time):
        start = self.spec.offset
        values = {f"{self.name}_{op}": Piece(start, v) for op, v in self._values().items()}
        values[f"{self.name}_count"] = Piece(start, self.n.copy())
        values[f"{self.name}_samples"] = np.int32(self.count)
        return Row(values, (self.start, end_time), end_time)

    def _close(self, end_time, whole_end):
        done = None
        if self.count and ((self.whole and whole_end) or not self.cfg["complete_only"]):
            done = self._emit(end_time)
        elif self.count:
            why = ("began before the run's first step" if not self.whole
                   else "the run ended inside it")
            self.dropped.append((self.start, self.count, why))
        self.window = None
        self.count = 0
        return done

    def finish(self, step, time):
        """At finalize: the whole-run window, or the open window (written if
        the model reached its end, or under ``complete_only: false``)."""
        done = None
        if self.window is not None and self.count:
            self._ensure_state()
            if self.clock is None:
                done = self._close(self.last_time, True)
            else:
                reached = self.clock.ended(self.window, step, time)
                if reached or not isinstance(self.clock, StepClock):
                    done = self._close(self.clock.end(self.window, time), reached)
                else:
                    self.dropped.append((self.start, self.count, "the run ended inside it"))
                    self.window = None
        for start, n, why in self.dropped:
            log.info("%s: a partial window from time %g (%d sample(s)) was not written: %s",
                     self.where, start, n, why)
        self.dropped = []
        return [] if done is None else [done]


def _check(cfg, path):
    given = [k for k in ("steps", "period", "calendar_period") if cfg[k] is not None]
    if len(given) > 1:
        raise s.ConfigError(f"{path}: give at most one of steps, period or calendar_period "
                            f"(got {', '.join(given)}); none: the whole run")
    if cfg["period"] is not None and cfg["period"] <= 0:
        raise s.ConfigError(f"{path}.period: expected a positive length, got {cfg['period']}")
    if cfg["steps"] is not None and not cfg["complete_only"]:
        raise s.ConfigError(
            f"{path}.complete_only: false needs period or calendar_period: a steps window's "
            "bounds are the times of the samples at its ends, which a partial one lacks")
