"""Time aggregation: mean, min, max or variance of another analysis's results
over windows of N of its outputs or of a model-time period.

::

    - {kind: window, source: T_mean_over_x, steps: 10, ops: [mean, max]}
    - {kind: window, source: T, period: 86400, ops: [mean, var]}

``source`` is the ``name`` of another analysis (its default name, e.g.
``T`` for stats of T).  Each of its variables ``v`` gets ``<v>_<name>_<op>``
along the window's own time axis ``time_<name>``, with ``time_<name>_bounds``
holding each window's start and end.

The window rule (README, "Time windows"): windows are left-closed,
right-open intervals aligned to zero, so that ``steps: N`` and
``period: N * every * dt`` put the same outputs together.

- ``period: P``: window k is the model time ``[kP, (k+1)P)``; its bounds are
  those two times.
- ``steps: N``: window k is the model steps ``[kL, (k+1)L)``, where
  ``L = N * every`` of the source, so a whole window holds N outputs; its
  bounds are the times the model handed over at steps ``kL`` and ``(k+1)L``.
- ``calendar_period: day | month | season | year``: the periods of the
  config's CF time units and calendar (:mod:`insitu.calendar`), bounded by
  their start and end.

A window is written when the model reaches its end: at the source's first
output at or past it (or, for a period, at finalize when the last step
handed over is past it).  A window that the run did not cover from its
start (the run began inside it, as a model counting from step 1 does for
the window that starts at 0) or to its end (the run stopped inside it) is
partial and is not written; finalize logs what was dropped.  Writing a
partial mean beside whole ones, with nothing in the file to tell them
apart, would be a silent wrong answer.  ``complete_only: false`` writes
them too, and ``<name>_samples`` (the outputs in each window) tells them
apart.

The variance is a running Chan merge per element with the mean kept as a
double-double (:func:`insitu.reduction.chan_merge`, the cross-rank merge of
``stats``), so a slowly varying series at a large offset -- a global mean of
288 K that moves by millikelvins -- keeps its variance to ~1e-15 relative,
where a plain Welford update loses ``ulp(mean) / spread``.  NaNs are skipped
per element.  Distributed results (reductions, coarse fields) are aggregated
piece by piece on the ranks that own them and written the same way.
"""
from __future__ import annotations

import logging
from collections import namedtuple

import numpy as np

from .. import schema as s
from ..calendar import ADJECTIVE, PERIODS, PLURAL, CalendarPeriods, tolerance
from ..reduction import chan_merge
from .base import Analysis, AnalysisError, Axis, Piece, Variable

OPS = ("mean", "min", "max", "var")
#: each op's CF cell_methods word
CF_OPS = {"mean": "mean", "min": "minimum", "max": "maximum", "var": "variance"}
log = logging.getLogger("insitu")

#: a row a follower (window, climatology) writes along its own axis
Row = namedtuple("Row", "values bounds time")


class _Acc:
    """Running per-element count, mean (+ its low part), M2, min, max (NaN
    skipped)."""

    def __init__(self, shape):
        self.n = np.zeros(shape)
        self.mean = np.zeros(shape)
        self.mean_lo = np.zeros(shape)
        self.m2 = np.zeros(shape)
        self.lo = np.full(shape, np.inf)
        self.hi = np.full(shape, -np.inf)

    def add(self, x):
        x = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(x)
        xv = np.where(ok, x, 0.0)
        # Merge the one-value partial (1, x, 0, 0); a non-finite x is empty.
        self.n, self.mean, self.m2, self.mean_lo = chan_merge(
            self.n, self.mean, self.m2, self.mean_lo, ok.astype(np.float64), xv, 0.0, 0.0)
        self.lo = np.where(ok, np.minimum(self.lo, xv), self.lo)
        self.hi = np.where(ok, np.maximum(self.hi, xv), self.hi)

    #: the order of the partials in a checkpoint's array (insitu.state)
    PARTS = ("n", "mean", "mean_lo", "m2", "lo", "hi")

    def stacked(self) -> np.ndarray:
        """The partials as one ``(6, *shape)`` array, for a checkpoint."""
        return np.stack([np.asarray(getattr(self, p), dtype=np.float64) for p in self.PARTS])

    @classmethod
    def from_stacked(cls, a) -> "_Acc":
        a = np.asarray(a, dtype=np.float64)
        acc = cls(a.shape[1:])
        for i, p in enumerate(cls.PARTS):
            setattr(acc, p, a[i].copy())
        return acc

    def value(self, op, ddof=0):
        empty = self.n <= (ddof if op == "var" else 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = {"mean": self.mean, "min": self.lo, "max": self.hi,
                 "var": self.m2 / (self.n - ddof)}[op]
        return np.where(empty, np.nan, v)


class _Pending:
    """A restored distributed partial not read yet: which hyperslab this
    rank owns is known only when the source hands it its piece, and a
    restart at another rank count owns other pieces than the run that
    saved it (insitu.state)."""

    def __init__(self, source) -> None:
        self.source = source   # (6, *global shape): an h5py dataset or an array

    def read(self, start, shape) -> _Acc:
        sel = (slice(None),) + tuple(slice(o, o + n) for o, n in zip(start, shape))
        return _Acc.from_stacked(self.source[sel])


def _key(k):
    """A window key back from JSON: calendar keys are tuples."""
    return tuple(k) if isinstance(k, list) else k


class StepClock:
    """``steps: N``: window k is the model steps ``[kL, (k+1)L)``,
    ``L = N * every`` of the source; bounded by the times the model handed
    over at its two ends (the first output in it, and the output that
    ends it)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def key(self, step, time):
        return step // self.length

    def start(self, key, time):
        return time  # the output at kL (the window is only written whole)

    def end(self, key, time):
        return time  # the output at (k+1)L, the first past the window

    def covers(self, key, first_step, first_time):
        return first_step <= key * self.length

    def ended(self, key, step, time):
        return step >= (key + 1) * self.length


class PeriodClock:
    """``period: P``: window k is the model time ``[kP, (k+1)P)``."""

    def __init__(self, period: float) -> None:
        self.period = period

    def key(self, step, time):
        return period_index(time, self.period)

    def start(self, key, time):
        return key * self.period

    def end(self, key, time):
        return (key + 1) * self.period

    def covers(self, key, first_step, first_time):
        return period_index(first_time, self.period) < key or \
            first_time <= key * self.period + tolerance(first_time)

    def ended(self, key, step, time):
        return period_index(time, self.period) > key


class CalendarClock:
    """``calendar_period``: days, months, seasons or years of the model's
    CF calendar (:mod:`insitu.calendar`)."""

    def __init__(self, periods: CalendarPeriods) -> None:
        self.periods = periods

    def key(self, step, time):
        return self.periods.key(time)

    def start(self, key, time):
        return self.periods.bounds(key)[0]

    def end(self, key, time):
        return self.periods.bounds(key)[1]

    def covers(self, key, first_step, first_time):
        return first_time <= self.periods.bounds(key)[0] + tolerance(first_time)

    def ended(self, key, step, time):
        return self.periods.key(time) > key


def window_keys(per_window: str) -> dict:
    """The schema keys that choose windows by the window rule (module
    docstring), shared by ``window`` and ``pointwise``; ``per_window``
    says what ``steps`` counts."""
    return {
        "steps": s.Int(default=None, minimum=1, doc=f"{per_window} per window"),
        "period": s.Num(default=None, minimum=0.0, open_range=False,
                        doc="window length in model time"),
        "calendar_period": s.Enum(PERIODS, default=None,
                                  doc="days, months, seasons (DJF...) or years of the "
                                      "config's time.units and calendar"),
        "complete_only": s.Bool(default=True,
                                doc="drop the windows the run did not cover whole; false "
                                    "writes them too, with their sample count"),
        "ops": s.ListOf(s.Enum(OPS), default=["mean"], nonempty=True, unique=True),
        "ddof": s.Int(default=0, minimum=0,
                      doc="delta degrees of freedom of var: 0 population, 1 sample"),
    }


class Window(Analysis):
    kind = "window"
    #: bound after its source and fed its results (the session's followers)
    follows_source = True
    schema = s.Record({
        "source": s.Str(doc="the name of the analysis to aggregate"),
        "name": s.Name(default=None),
        **window_keys("outputs of the source"),
    }, check=lambda cfg, path: _check(cfg, path))

    def __init__(self, index, cfg, rank=0, size=1):
        super().__init__(index, {**cfg, "every": 1}, rank, size)  # the schema checked steps/period

    def default_name(self):
        c = self.cfg
        if c.get("calendar_period"):
            return ADJECTIVE[c["calendar_period"]]
        return f"w{c['steps']}" if c.get("steps") else f"p{c['period']:g}"

    @property
    def fields(self):
        return ()

    def due(self, step):
        return False  # it has no local phase; it follows its source's results

    def bind_window(self, source, source_vars, time_cfg=None):
        """Bind to the source's variables; ``time_cfg`` is the config's
        ``time:`` (units and calendar), which calendar periods need."""
        self.source = source
        c = self.cfg
        if c["calendar_period"] is not None:
            t = time_cfg or {}
            try:
                self.clock = CalendarClock(CalendarPeriods(
                    c["calendar_period"], t.get("units") or "1", t.get("calendar")))
            except ValueError as exc:
                raise AnalysisError(f"{self.where}.calendar_period: {exc}") from None
            what = f"{PLURAL[c['calendar_period']]}"
        elif c["period"] is not None:
            self.clock = PeriodClock(c["period"])
            what = f"periods of {c['period']:g}"
        else:
            self.clock = StepClock(c["steps"] * source.every)
            what = f"windows of {c['steps']} outputs"
        self.axis = Axis(f"time_{self.name}", f"step_{self.name}",
                         long_name=f"end of the {self.name} window", bounds=True)
        ax = self.axis.name
        out = self._variables(source, source_vars,
                              lambda op, of: f"{op} over {what} of {of}",
                              lambda op: f"{ax}: {CF_OPS[op]}",
                              f"outputs of {source.name} in each {self.name} window")
        self._reset()
        self.dropped = []
        return out

    def _variables(self, source, source_vars, long_name, cell_method, samples_long_name):
        """The follower's outputs: ``<v>_<name>_<op>`` for each variable
        ``v`` of the source along ``time``, then ``<name>_samples``.
        ``long_name(op, of)`` and ``cell_method(op)`` say what each is."""
        self._vars = [v for v in source_vars if v.axis == "time"]
        if not self._vars:
            raise AnalysisError(f"{self.where}.source: {source.where} writes no variables")
        ax, ddof = self.axis.name, int(self.cfg["ddof"])
        # The source's scalar coordinates (a reduction's <dim>_extent, which
        # its cell_methods name) hold along any axis; others (argmax's
        # coordinates along time) do not.
        scalar = {c.name for c in getattr(source, "coords", []) if c.dims == ()}
        out = []
        for v in self._vars:
            keep = " ".join(c for c in v.attrs.get("coordinates", "").split() if c in scalar)
            for op in self.cfg["ops"]:
                attrs = {**{k: val for k, val in v.attrs.items() if k != "coordinates"},
                         **({"coordinates": keep} if keep else {}),
                         "long_name": long_name(op, v.attrs.get("long_name", v.name)),
                         "insitu_analysis": self.kind}
                attrs["cell_methods"] = (attrs.get("cell_methods", "") + " "
                                         + cell_method(op)).strip()
                if op == "var":
                    if attrs.get("units", "1") != "1":
                        attrs["units"] = f"({attrs['units']})2"
                    attrs["insitu_ddof"] = ddof
                out.append(Variable(f"{v.name}_{self.name}_{op}", np.dtype(np.float64), attrs,
                                    dims=v.dims, shape=v.shape, distributed=v.distributed,
                                    axis=ax))
        out.append(Variable(self.samples_name, np.dtype(np.int32), {
            "long_name": samples_long_name, "units": "1", "insitu_analysis": self.kind},
            axis=ax))
        return out

    def _accumulate(self, acc: dict, values) -> None:
        """Add one output of the source to ``acc``: per variable an
        :class:`_Acc`, or ``(start, _Acc)`` of this rank's piece of a
        distributed one (None where it owns none)."""
        for v in self._vars:
            x = values.get(v.name)
            if v.distributed:
                if x is None:
                    if isinstance(acc.get(v.name), _Pending):
                        acc[v.name] = None  # this rank owns no piece of it
                    acc.setdefault(v.name, None)
                    continue
                cur = acc.get(v.name)
                if cur is None or isinstance(cur, _Pending):
                    acc[v.name] = (x.start, cur.read(x.start, x.values.shape)
                                   if isinstance(cur, _Pending) else _Acc(x.values.shape))
                acc[v.name][1].add(x.values)
            else:
                if v.name not in acc:
                    acc[v.name] = _Acc(np.shape(x))
                acc[v.name].add(x)

    def _results(self, acc: dict, count: int) -> dict:
        """The values of ``acc`` to write as one row."""
        values = {self.samples_name: np.int32(count)}
        ddof = self.cfg["ddof"]
        for v in self._vars:
            a = acc.get(v.name)
            for op in self.cfg["ops"]:
                out = f"{v.name}_{self.name}_{op}"
                if v.distributed:
                    # (a restored partial no output after the restart
                    # told this rank the piece of: it writes none)
                    values[out] = None if a is None or isinstance(a, _Pending) \
                        else Piece(a[0], a[1].value(op, ddof))
                else:
                    values[out] = np.nan if a is None else a.value(op, ddof)
        return values

    # -- checkpoints (insitu.state) -------------------------------------------
    def _acc_state(self, acc: dict, prefix: str, arrays: dict) -> list:
        """Put ``acc``'s partials into ``arrays`` (name -> StateArray) and
        return the names of the variables it holds partials of.  A
        distributed partial is this rank's piece of a global array."""
        from ..state import StateArray
        has = []
        for v in self._vars:
            if v.name not in acc:
                continue
            has.append(v.name)
            a = acc[v.name]
            shape = (6, *v.shape)
            if v.distributed:
                if isinstance(a, _Pending):
                    arrays[prefix + v.name] = StateArray(shape, None, True, copy_from=a.source)
                else:
                    arrays[prefix + v.name] = StateArray(
                        shape, None if a is None else ((0, *a[0]), a[1].stacked()), True)
            else:
                arrays[prefix + v.name] = StateArray(a.stacked().shape, a.stacked())
        return has

    def _resolve_pending(self, acc: dict, values) -> None:
        """Read this rank's hyperslab of each restored distributed partial
        of ``acc``, now that the source's results say which piece it owns
        (the same piece at every output), before the window may close."""
        for v in self._vars:
            cur = acc.get(v.name)
            if isinstance(cur, _Pending):
                x = values.get(v.name)
                acc[v.name] = None if x is None else (x.start, cur.read(x.start, x.values.shape))

    def _acc_restore(self, has: list, prefix: str, arrays) -> dict:
        acc = {}
        by_name = {v.name: v for v in self._vars}
        for name in has:
            if name not in by_name:
                continue
            if by_name[name].distributed:
                acc[name] = _Pending(arrays[prefix + name])
            else:
                acc[name] = _Acc.from_stacked(arrays[prefix + name])
        return acc

    def state(self):
        """The open window (its key, start, whether the run covered its
        start, the outputs in it) and its partials; the run's first step;
        the partial windows dropped so far (logged at finalize)."""
        arrays = {}
        meta = {"window": self.window, "start": self.start, "whole": self.whole,
                "count": self.count, "first": getattr(self, "first", None),
                "dropped": self.dropped, "has": self._acc_state(self.acc, "", arrays)}
        return meta, arrays

    def restore(self, meta, arrays) -> None:
        self._reset()
        self.window = _key(meta["window"])
        self.start, self.whole, self.count = meta["start"], meta["whole"], meta["count"]
        if meta["first"] is not None:
            self.first = tuple(meta["first"])
        self.dropped = [tuple(d) for d in meta["dropped"]]
        self.acc = self._acc_restore(meta["has"], "", arrays)
        self._pending = True

    @property
    def samples_name(self) -> str:
        return f"{self.name}_samples"

    def _reset(self):
        self.acc = {}
        self.count = 0
        self.window = None      # the open window's key
        self.start = None       # its start time (bounds[0])
        self.whole = False      # the run covered its start

    def run_began(self, step: int, time: float) -> None:
        """The model's first step handed over: windows that started before
        it are partial."""
        self.first = (int(step), float(time))

    def _open(self, k, step: int, time: float) -> None:
        self._reset()
        self.window = k
        first_step, first_time = getattr(self, "first", (step, time))
        self.start = self.clock.start(k, time)
        self.whole = self.clock.covers(k, first_step, first_time)

    def bind(self, ctx):
        return []  # bound by the session through bind_window, after its source

    def local(self, views, record, step):
        pass

    def results(self, record):
        return {}

    def _emit(self, end_time):
        return Row(self._results(self.acc, self.count), (self.start, end_time), end_time)

    def _close(self, end_time, whole_end: bool):
        """The open window ends: its values and bounds, or None when it was
        not covered whole and ``complete_only`` drops it."""
        done = None
        if self.count and ((self.whole and whole_end) or not self.cfg["complete_only"]):
            done = self._emit(end_time)
        elif self.count:
            why = ("began before the run's first step" if not self.whole
                   else "the run ended inside it")
            self.dropped.append((self.start, self.count, why))
        self._reset()
        return done

    def follow(self, step, time, values):
        """Add the source's results of this step; return (values, bounds)
        of a window that has just ended, or None."""
        k = self.clock.key(step, time)
        done = None
        if getattr(self, "_pending", False):  # the first output after a restart
            self._resolve_pending(self.acc, values)
            self._pending = False
        if self.window is not None and k != self.window:
            if k < self.window:
                raise AnalysisError(
                    f"{self.where}: model time went back to {time:g} (step {step}) inside "
                    f"the window that began at {self.start:g}")
            done = self._close(self.clock.end(self.window, time), True)
        if self.window is None:
            self._open(k, step, time)
        self._accumulate(self.acc, values)
        self.count += 1
        return done

    def finish(self, step, time):
        """At finalize, with the last step the model handed over: a window
        whose end the model reached is written; one still open is partial
        (written only under ``complete_only: false``, with its nominal end).
        Returns the rows to write (0 or 1); logs the partial windows
        dropped over the run."""
        done = None
        if self.window is not None and self.count:
            reached = self.clock.ended(self.window, step, time)
            if reached or not isinstance(self.clock, StepClock):
                end = self.clock.end(self.window, time)
                done = self._close(end, reached)
            else:
                self.dropped.append((self.start, self.count, "the run ended inside it"))
                self._reset()
        for start, n, why in self.dropped:
            log.info("%s: a partial window from time %g (%d output(s) of %s) was not "
                     "written: %s", self.where, start, n, self.source.name, why)
        self.dropped = []
        return [] if done is None else [done]


def period_index(time: float, period: float) -> int:
    """``floor(time / period)``, with a time within 1e-9 (relative) of a
    boundary counted as on it, so that ``step * dt`` rounding a hair below
    ``k * period`` (``30 * 0.1 = 3.0000000000000004``, but ``3 * 0.7 / 0.7``
    may not be 3) does not move an output into the previous window."""
    q = time / period
    k = round(q)
    if abs(q - k) <= 1e-9 * max(1.0, abs(q)):
        return int(k)
    return int(np.floor(q))


def _check(cfg, path):
    """At config time, so a window without a length fails with the config's
    other errors instead of as a TypeError in naming it."""
    given = [k for k in ("steps", "period", "calendar_period") if cfg[k] is not None]
    if len(given) != 1:
        raise s.ConfigError(f"{path}: give exactly one of steps, period or calendar_period"
                            + (f" (got {', '.join(given)})" if given else ""))
    if cfg["period"] is not None and cfg["period"] <= 0:
        raise s.ConfigError(f"{path}.period: expected a positive length, got {cfg['period']}")
    if cfg["steps"] is not None and not cfg["complete_only"]:
        raise s.ConfigError(
            f"{path}.complete_only: false needs period or calendar_period: a steps window's "
            "bounds are the times of the steps at its ends, which a partial one lacks")
