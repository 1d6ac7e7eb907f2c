"""The session: the one piece of state insitu keeps between calls.

A session lives from ``init`` to ``finalize``.  It owns a duplicated
communicator, the validated config, the declared fields and their current
views, the analyses with their batched reduction plan, and the output
writer.  The C ABI (``insitu.cabi``) and the Python stand-in models both
drive it through :mod:`insitu.api`, so both routes run this code.
"""
from __future__ import annotations

import atexit
import datetime as _dt
import itertools
import logging
import math
import platform
import struct
import sys
import traceback
import zlib
from typing import Optional

import numpy as np
import yaml

from . import __version__, analyses as _analyses, derived as derived_mod
from .analyses.base import (AnalysisError, Axis, BindContext, Coord, IntRecord, Piece,
                             Variable)
from .groups import ReduceGroup, project
from .cadence import Cadence
from .comm import BaseComm, MPIComm
from .decomposition import tiling_problems
from .exits import EXIT_ANALYSIS
from .fields import DTYPE_CODES, MAX_NDIM, FieldError, FieldSlot, make_spec
from .reduction import MAX, MIN, SUM, ReductionPlan
from .schema import ConfigError
from .step_cost import StepCost
from .step_memo import StepMemo
from .step_values import Pack, StepValues
from .writer import H5Writer, MemoryWriter

log = logging.getLogger("insitu")


def _unique(coords):
    """Coordinates by name; two analyses may share one (the same bins, say)."""
    out = {}
    for c in coords:
        if c.name in out and not np.array_equal(out[c.name].values, c.values):
            raise FieldError(f"coordinate {c.name!r} is defined twice with different values; "
                             "give the analyses distinct names")
        out.setdefault(c.name, c)
    return list(out.values())


class _Where:
    def __init__(self, where: str) -> None:
        self.where = where


class _StepWhere:
    """``insitu_step(step N)`` for the watchdog's message (``comm.where``),
    formatted only when a message is made: a due step sets the step, not
    a new string (issue 12)."""

    __slots__ = ("step",)

    def __init__(self) -> None:
        self.step = None

    def __str__(self) -> str:
        return f"insitu_step(step {self.step})"


#: Session._step_plan's answer for a step where nothing is due
_IDLE = object()


_DECLARE, _STEP, _FINALIZE, _CHECKPOINT = 1, 2, 3, 4
#: the largest lcm of the analyses' periods for which Session._due_at keeps
#: its answers by step % lcm (at most this many entries)
_DUE_LCM_MAX = 4096
#: the record's seven step-check slots as packed by Session._stamp
_STAMP = struct.Struct("=7d")


def _runners(due) -> tuple:
    """``(analysis, followers)`` for each due analysis whose local pass runs
    at this step, in the order of ``due``: an analysis with the same
    ``local_key`` as an earlier one (insitu.analyses.stats: the same
    moments of the same views) is its follower, whose results are formed
    from the runner's slots (``batch_results``'s sources, ``borrow``), and
    which fails with it.  Ten ``stats`` of T under ten names run one local
    pass, not one each (issue 12)."""
    out, lead = [], {}
    for a in due:
        key = getattr(a, "local_key", None)
        if key is not None:
            first = lead.get(key)
            if first is not None:
                first[1].append(a)
                continue
        runner = (a, [])
        out.append(runner)
        if key is not None:
            lead[key] = runner
    return tuple((a, tuple(f)) for a, f in out)


def _producers(due, runners=()) -> tuple:
    """What :meth:`Session.step` hands to ``values.update`` after the
    reduction, in the order of ``due``: for each run of consecutive
    analyses of one class that are ``batchable``, one producer of all
    their results made by the class (``batch_results``, e.g.
    :class:`insitu.analyses.stats.StatsBatch`: one compiled call for a
    run of ``stats``, not a dict and a zip each, issue 12), reading each
    follower's results from its runner's slots (:func:`_runners`); else
    each analysis's result pairs where it gives them without a dict of its
    own (``result_items``), else its ``results``.  The pairs and their
    order are the same either way."""
    source = {f: a for a, followers in runners for f in followers}
    out = []
    for cls, run in itertools.groupby(
            due, key=lambda a: type(a) if getattr(a, "batchable", False) else None):
        if cls is not None:
            run = list(run)
            out.append(cls.batch_results(run, [source.get(a, a) for a in run]))
        else:
            out.extend(getattr(a, "result_items", None) or a.results for a in run)
    return tuple(out)


def _numpy_number(v):
    """``v`` as a numpy scalar where it is a Python float or an int that
    int64 holds (a trigger's condition, :meth:`Session._check_triggers`),
    else ``v``."""
    t = type(v)
    if t is float:
        return np.float64(v)
    if t is int and -2 ** 63 <= v < 2 ** 63:
        return np.int64(v)
    return v


def _describe(kind: int, arg: int) -> str:
    if kind == _STEP:
        return f"insitu_step(step {arg})"
    if kind == _DECLARE:
        return "insitu_declare_field"
    if kind == _CHECKPOINT:
        return f"insitu_checkpoint(step {arg})"
    return "insitu_finalize" if kind == _FINALIZE else f"an unknown call {kind}"


def _ranks(ranks: list) -> str:
    return ", ".join(map(str, ranks[:8])) + (f" and {len(ranks) - 8} more" if len(ranks) > 8 else "")


class StateError(RuntimeError):
    """A call came out of order (step before init, declare after the first step...)."""


class StepError(RuntimeError):
    """Ranks disagree about a step, or a step cannot run."""


#: CF axis attributes that a coordinate's standard_name implies (CF 4.1-4.3),
#: so readers find X, Y and Z without guessing from names
_CF_AXIS = {"latitude": {"axis": "Y"}, "longitude": {"axis": "X"},
            "grid_latitude": {"axis": "Y"}, "grid_longitude": {"axis": "X"},
            "projection_y_coordinate": {"axis": "Y"}, "projection_x_coordinate": {"axis": "X"},
            "air_pressure": {"axis": "Z", "positive": "down"},
            "height": {"axis": "Z", "positive": "up"}, "depth": {"axis": "Z", "positive": "down"},
            "altitude": {"axis": "Z", "positive": "up"}}

def _pure_local_types() -> tuple:
    """The analyses whose ``local`` leaves no lasting state: it fills the
    step's record (or a group's), or keeps this step's view or scratch that
    the next step's ``local`` overwrites, and only ``results``, ``local2``,
    ``follow`` or ``after`` (which run once the ranks agree) change what the
    analysis holds.  A bound step whose due analyses are all of these runs
    their local passes before the ranks' calls are compared, in the step's
    one Allreduce: a mismatch found then leaves every analysis as it was.
    Any other kind compares first, in an Allreduce of its own: spell counts
    its samples in ``local``, a user's Python analysis may keep anything,
    and a kind added later is assumed to keep state until it is listed
    here.  Exact types: a subclass may add state."""
    from .analyses import (Climatology, Coarsen, Exceedance, Fault, Histogram, Pointwise,
                           Probe, Reduce, Stats, Window)
    from .analyses.perpoint import Output
    return (Stats, Histogram, Reduce, Coarsen, Probe, Window, Climatology, Fault, Exceedance,
            Pointwise, Output)


class Session:
    def __init__(self, comm: BaseComm, cfg: dict, output: Optional[str] = None,
                 overwrite: Optional[bool] = None, host: str = "python",
                 writer_cls=None, restart=None) -> None:
        self.comm = comm
        self._where_step = _StepWhere()  # comm.where at a bound due step
        self.cfg = cfg
        self.host = host
        comm.timeout = cfg["hang_timeout_seconds"]  # the watchdog of insitu's collectives
        self.analyses = _analyses.build(cfg["analyses"], comm.rank, comm.size)
        self.on_error = cfg["on_error"]
        self.disabled: dict[int, int] = {}   # analysis index -> step it was disabled at
        self.errors: list[dict] = []
        self.slots: dict[str, FieldSlot] = {}
        self.decomposition: dict[str, dict] = {}
        self.plan = ReductionPlan()
        self.bound = False
        self.closed = False
        self.derived: dict = {}
        self.windows: list = []
        self.last_call = None  # (step, time) of the last insitu_step handed over
        self.triggers: list = []
        self.steps_written = 0
        self._last_values: dict = {}  # last_results
        self.started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        #: kernel results shared within a step (insitu.step_memo)
        self.memo = StepMemo()
        #: each due step's wall and CPU seconds, when INSITU_STEP_COST asks
        self.step_cost = StepCost.from_environment()
        out = cfg["output"]
        path = output or out["path"]
        overwrite = out["overwrite"] if overwrite is None else overwrite
        time_attrs = {k: v for k, v in cfg["time"].items() if v is not None}
        if writer_cls is None:
            writer_cls = H5Writer if isinstance(comm, MPIComm) else MemoryWriter
        # A restart (output.restart, --restart, insitu_init's flag): True
        # for the latest checkpoint, or the model's restart step, which
        # takes the latest checkpoint at or before it (insitu.state).
        if restart is None and out.get("restart"):
            restart = True
        self.restart = restart
        if restart is not None and restart is not False:
            self.writer = writer_cls(comm, path, overwrite, time_attrs, out, restart={
                "step": None if restart is True else int(restart), "config": cfg})
        else:
            self.writer = writer_cls(comm, path, overwrite, time_attrs, out)
        #: checkpoints taken with a writer that has no file (fake ranks' tests)
        self.memory_checkpoints: dict = {}
        log.info("session open: %d rank(s), output %s",
                 comm.size, getattr(self.writer, "path", "<memory>"))
        if isinstance(comm, MPIComm):
            atexit.register(self._warn_unfinished)

    def _warn_unfinished(self) -> None:
        """At exit, say so if the model never called finalize: the file then
        holds every step up to the last durable flush (``output.flush_seconds``,
        ``flush_every_steps``) but no ``insitu_finished`` attribute.  (A C or
        Fortran host's embedded Python never exits; libinsitu's own exit
        hook says the same there.)"""
        if not self.closed:
            sys.stderr.write(
                f"insitu[{self.comm.rank}] WARNING: the process is exiting without "
                f"insitu finalize; {getattr(self.writer, 'path', 'the output')} keeps the "
                "output steps up to its last durable flush, not marked finished "
                "(python -m insitu.inspect shows what it holds)\n")

    # -- declaration -------------------------------------------------------
    def declare(self, name, dtype, global_shape, offset, local_shape,
                halo_lo=None, halo_hi=None, order="C") -> int:
        """Declare a field (collective).  Returns its index.

        Each rank checks its own declaration, then ONE allgather shares every
        rank's box so each rank can check, identically, that the names and
        global shapes agree and that the interiors tile the global grid.
        A mistake on one rank therefore raises on all ranks, never hangs.
        """
        if self.closed:
            raise StateError("declare_field after finalize")
        if self.bound:
            raise StateError(f"field {name!r} declared after the first step; "
                             "declare every field before calling step")
        rank = self.comm.rank
        # The names are compared below, with a message of their own.
        self._agree(_DECLARE, 0, f"insitu_declare_field({name!r})")
        meta = self.cfg["fields"].get(name, {}) if isinstance(name, str) else {}
        error = None
        try:
            if name in self.slots:
                raise FieldError(f"field {name!r} on rank {rank}: declared twice")
            spec = make_spec(name, dtype, global_shape, offset, local_shape,
                             halo_lo, halo_hi, order, meta.get("dims"), rank=rank)
        except FieldError as exc:  # a FieldConfigError too: fields.<name>.dims
            error, spec = exc, None
        # One row per rank: failed, ndim, global shape, offset, interior
        # shape (MAX_NDIM entries each), then a hash of the name and dtype.
        G, O, S, H = 2, 2 + MAX_NDIM, 2 + 2 * MAX_NDIM, 2 + 3 * MAX_NDIM
        vec = np.zeros(H + 1, dtype=np.int64)
        vec[0] = 1 if error else 0
        if spec is not None:
            vec[1] = spec.ndim
            vec[G:G + spec.ndim] = spec.global_shape
            vec[O:O + spec.ndim] = spec.offset
            vec[S:S + spec.ndim] = spec.shape
            vec[H] = zlib.crc32(name.encode()) ^ (DTYPE_CODES[spec.dtype] << 32)
        table = self.comm.allgather_int64(vec)
        failed = np.flatnonzero(table[:, 0])
        if error is not None:
            raise error
        if failed.size:
            raise FieldError(f"field {name!r}: the declaration failed on rank(s) "
                             f"{failed.tolist()} (see their messages)")
        if np.any(table[:, H] != table[0, H]) or np.any(table[:, 1] != table[0, 1]):
            bad = np.flatnonzero((table[:, H] != table[0, H]) | (table[:, 1] != table[0, 1]))
            raise FieldError(f"field {name!r}: ranks {bad.tolist()} declared a different "
                             "name, dtype or rank than rank 0 at the same call; declare the "
                             "same fields in the same order on every rank")
        nd = spec.ndim
        if np.any(table[:, G:G + nd] != table[0, G:G + nd]):
            shapes = {r: tuple(table[r, G:G + nd]) for r in range(len(table))}
            raise FieldError(f"field {name!r}: ranks disagree on the global shape: {shapes}")
        boxes = [(tuple(table[r, O:O + nd]), tuple(table[r, S:S + nd]))
                 for r in range(len(table))]
        problems = tiling_problems(spec.global_shape, boxes)
        if problems:
            raise FieldError(f"field {name!r}: the ranks' interiors do not tile the global "
                             f"shape {spec.global_shape}: " + "; ".join(problems[:5]))
        slot = FieldSlot(spec, len(self.slots), forget=self.memo.prepared)
        self.slots[name] = slot
        self.decomposition[name] = {
            "global_shape": list(spec.global_shape), "dims": list(spec.dims),
            "dtype": str(spec.dtype), "order": spec.order,
            "offsets": [list(map(int, b[0])) for b in boxes],
            "shapes": [list(map(int, b[1])) for b in boxes],
        }
        log.debug("declared %s %s global %s", name, spec.dtype, spec.global_shape)
        return slot.index

    def _agree(self, kind: int, arg: int, where: str) -> None:
        """The handshake every collective insitu call starts with, the same
        collective on every rank.

        MPI matches collectives by order alone, so ranks in different insitu
        calls (one declares while another steps, one finalizes while
        another is at step 3) would otherwise pair unrelated collectives and
        fail somewhere else, or hang.  Starting every call with the same
        handshake means a mismatch always meets a handshake, and every rank
        learns what every other rank was doing: each raises the same
        :class:`StepError` naming the ranks and their calls.  A rank that
        never arrives is left to the watchdog (``hang_timeout_seconds``).

        Before the session is bound the handshake is one small allgather of
        (call, argument).  Once bound, it is the record's Allreduce
        (:meth:`_agree_in_record`), which a due step folds into its own
        reduction (:meth:`step`): then every bound call starts with an
        Allreduce of the same length and op, whichever call it is, and
        binding happens inside a matched call, so every rank switches at
        the same call."""
        comm = self.comm
        comm.where = where
        if comm.size == 1:
            return
        if self.bound:
            self._agree_in_record(kind, arg)
            return
        table = comm.handshake(kind, arg)
        if table is not None:
            self._disagree(table)

    def _agree_in_record(self, kind: int, arg: int) -> None:
        """A bound call's handshake on its own: the record's Allreduce with
        identities in every analysis's slots and the call in its handshake
        slots (a checkpoint, finalize, or a step that must compare before
        its local passes, :meth:`_due_at`).  A rank at a due step meets it
        with its step's reduction, of the same length and op."""
        record = self._stamp(kind, arg, -math.inf)
        self.comm.reduce_record(self.plan, "the call's handshake")
        self._verdict(record, kind, arg)

    def _stamp(self, kind: int, arg: int, clock: float) -> np.ndarray:
        """The record reset to identities, with rank 0's flush clock and this
        rank's call in its last seven slots: the call kind and the
        argument's high and low 32 bits, once to be MIN-combined and once
        MAX-combined.  Each half is an integer below 2**32 in magnitude,
        exact in float64 (a step as a double would be exact only to 2**53),
        and two calls that differ differ in some half, whose MIN then
        differs from its MAX.  Returns the record.

        Two copies at C level into a memoryview of the record (the
        identities' bytes, then the seven values packed by ``struct``), not
        numpy's ``copyto`` and a slice assignment from a tuple: right after
        the model's step (cold caches) numpy's machinery for those two
        costs about 15 us, the two copies a few (issue 12)."""
        plan = self.plan
        at = self._stamp_at
        if at is None or at[0] is not plan.record:
            record = plan.record  # the plan's for its life (a new plan: a new record)
            at = self._stamp_at = (record, memoryview(record).cast("B"),
                                   plan.identity.tobytes(), self._call.start * 8)
        mem = at[1]
        mem[:] = at[2]
        hi, lo = arg >> 32, arg & 0xFFFFFFFF
        _STAMP.pack_into(mem, at[3], clock, kind, hi, lo, kind, hi, lo)
        return at[0]

    def _verdict(self, record, kind: int, arg: int) -> float:
        """After the record's Allreduce: rank 0's flush clock when every
        rank made the same call (every rank sees the same MIN and MAX of
        each handshake slot, so all reach the same verdict).  When they
        did not, every rank makes today's allgather handshake, an extra
        collective on the error path only, so that the error names each
        rank and its call, and raises it."""
        v = record[self._call].tolist()
        if v[1] != v[4] or v[2] != v[5] or v[3] != v[6]:
            self._disagree(self.comm.handshake(kind, arg))
        return v[0]

    def _disagree(self, table) -> None:
        """Raise the StepError that names every rank's call in ``table``
        (the handshake's allgather, the same on every rank)."""
        if table is None:  # the record said they differ, the allgather that they agree
            raise StepError("ranks disagree on the call in the step's record but not in the "
                            "allgather that followed it; every rank must make the same "
                            "collective insitu calls in the same order")
        calls = {}
        for r, (k, a) in enumerate(table):
            calls.setdefault(_describe(int(k), int(a)), []).append(r)
        said = "; ".join(f"rank(s) {_ranks(rs)} in {c}" for c, rs in calls.items())
        if all(k == _STEP for k in table[:, 0]):
            raise StepError(f"ranks disagree on the step number: {said}; every rank must call "
                            "insitu_step with the same step")
        raise StepError(f"ranks are in different insitu calls: {said}; every rank must make "
                        "the same collective insitu calls in the same order")

    def expose(self, name: str, array: np.ndarray) -> np.ndarray:
        """The Python route: view a model's numpy array (local, no copy)."""
        slot = self.slots.get(name)
        if slot is None:
            slot = self._slot(name)  # raises, naming the declared fields
        return slot.bind_array(array, self.comm.rank)

    def _slot(self, name: str) -> FieldSlot:
        if name not in self.slots:
            raise FieldError(f"field {name!r} on rank {self.comm.rank}: not declared "
                             f"(declared: {', '.join(self.slots) or 'none'})")
        return self.slots[name]

    # -- stepping ----------------------------------------------------------
    def _bind(self) -> None:
        """At the first step: resolve analyses against the declared fields,
        build the batched reduction plans and define the output variables."""
        variables, coords = [], []
        self._slots_of = {}
        self._group_slots = {}
        self._err_count, self._err_rank = {}, {}
        specs = {n: s.spec for n, s in self.slots.items()}
        for n in self.cfg["fields"]:
            if n not in specs and n not in self.cfg["derived"]:
                raise FieldError(f"fields.{n}: the model declared no field of this name "
                                 f"(declared: {', '.join(specs) or 'none'}); a typo?")
        self.derived = {}
        self.pre_groups = {}
        self.groups = {}
        self._pre_done = (None, set())
        # How many rounds of reductions a field needs before it can be
        # evaluated: 0 for a declared field, 1 for u - u.mean(x), 2 for
        # a - a.mean(y) where a itself holds a reduction.  A term's partials
        # are taken on its field's values, so they can only be computed once
        # every lower round is combined across ranks.
        depth = {n: 0 for n in specs}
        for name, text in self.cfg["derived"].items():
            if name in specs:
                raise FieldError(f"derived.{name}: a declared field has this name already")
            tree, inputs, terms = derived_mod.parse(name, text)
            d = derived_mod.DerivedField(name, text, tree, inputs, specs, terms,
                                         lambda f, kept, where: self._group(
                                             f, kept, where, pre=True, specs=specs,
                                             level=depth.get(f, 0)))
            depth[name] = max([depth.get(i, 0) for i in inputs] +
                              [depth.get(t.field, 0) + 1 for t in d.terms])
            self.derived[name] = d
            specs[name] = d.spec
            first = self.decomposition[inputs[0]]
            self.decomposition[name] = {**first, "dtype": "float64", "derived": text}
        self.ints = IntRecord()
        ctx = BindContext(specs, self.cfg["fields"], self.plan, self.decomposition,
                          self._group, self.ints, self.cfg["reproducible"], self.cfg["coords"],
                          self.memo)
        by_name = {}
        for a in self.analyses:
            a.check_fields(specs)
            start = self.plan.size
            before = {k: g.plan.size for k, g in self.groups.items()}
            produced = a.bind(ctx)
            by_name.setdefault(a.name, (a, produced))
            variables += produced
            coords += a.coords
            self._slots_of[a.index] = slice(start, self.plan.size)
            self._group_slots[a.index] = [
                (g, slice(before.get(k, 0), g.plan.size)) for k, g in self.groups.items()
                if g.plan.size > before.get(k, 0)]
        # How many ranks failed each analysis, and the first of them: part
        # of the same record, so agreeing on a failure costs no collective.
        # The counts side by side, so that a step tells that nothing failed
        # from one slice of the record (_failed).
        first_err = self.plan.size
        for a in self.analyses:
            self._err_count[a.index] = self.plan.reserve(SUM)
        self._err_counts = slice(first_err, self.plan.size)
        for a in self.analyses:
            self._err_rank[a.index] = self.plan.reserve(MIN)
        axes = []
        self.windows = []
        for a in self.analyses:
            if not getattr(a, "follows_source", False):
                continue
            src = by_name.get(a.cfg["source"])
            if src is None or getattr(src[0], "follows_source", False):
                names = sorted(n for n, (b, _) in by_name.items()
                               if not getattr(b, "follows_source", False))
                raise AnalysisError(f"analyses[{a.index}].source: no analysis named "
                                    f"{a.cfg['source']!r} (names: {', '.join(names)})")
            variables += a.bind_window(src[0], src[1], self.cfg["time"])
            axes.append(a.axis)
            self.windows.append(a)
        self.triggers = []
        scalars = {v.name for v in variables if not v.shape and v.axis == "time"}
        for i, t in enumerate(self.cfg["triggers"]):
            tree, names = derived_mod.check_expression(
                t["when"], f"triggers[{i}].when", derived_mod.CONDITION_FUNCTIONS, boolean=True)
            unknown = [n for n in names if n not in scalars]
            if unknown:
                raise AnalysisError(f"triggers[{i}].when: {', '.join(map(repr, unknown))} is not "
                                    f"a scalar result (scalar results: "
                                    f"{', '.join(sorted(scalars)) or 'none'})")
            axis = Axis(f"time_{t['name']}", f"step_{t['name']}",
                        long_name=f"model time of the {t['name']} snapshots")
            axes.append(axis)
            for f in t["fields"]:
                if f not in specs:
                    raise AnalysisError(f"triggers[{i}].fields: {f!r} is not a declared or "
                                        f"derived field (fields: {', '.join(specs)})")
                sp = specs[f]
                meta = self.cfg["fields"].get(f, {})
                variables.append(Variable(
                    f"{t['name']}_{f}", sp.dtype,
                    {"long_name": f"snapshot of {meta.get('long_name') or f} when {t['when']}",
                     "units": meta.get("units", "1"), "insitu_trigger": t["when"]},
                    dims=sp.dims, shape=sp.global_shape, distributed=True, axis=axis.name))
            self.triggers.append({"cfg": t, "axis": axis.name, "names": names,
                                  "code": compile(tree, f"<trigger {t['name']}>", "eval"),
                                  "fired": 0})
        self.trigger_events = []
        # rank 0's clock, for the writer's flush decision (insitu.h5io),
        # then the call's handshake (_stamp): the kind, the argument's high
        # and low halves, MIN-combined, then the same MAX-combined
        self._flush_clock = self.plan.reserve(MAX)
        self.plan.reserve_many(MIN, 3)
        self.plan.reserve_many(MAX, 3)
        self._call = slice(self._flush_clock, self._flush_clock + 7)
        self.plan.freeze()
        for g in (*self.groups.values(), *self.pre_groups.values()):
            g.plan.freeze()
        # Decided here, not at every due step: the fields each analysis
        # reads (a property that builds its tuple at every call)
        self._fields_of = {a.index: tuple(a.fields) for a in self.analyses}
        self._analysis_groups = {a.index: [g for g, _ in self._group_slots[a.index]]
                                 for a in self.analyses}
        self._due_sets = {}
        # The analyses whose local pass may run before the ranks' calls
        # are compared (_PURE_LOCAL): the others make a due step compare
        # first, in an Allreduce of its own
        pure = _pure_local_types()
        self._compare_first = {
            a.index for a in self.analyses
            if type(a) not in pure or any(f in self.derived for f in self._fields_of[a.index])}
        # Analyses that decide by step % every alone (Analysis.due): which of
        # them are due depends only on which of these periods divide the step
        base_due = _analyses.base.Analysis.due
        self._periods = (tuple(sorted({a.every for a in self.analyses}))
                         if all(type(a).due is base_due for a in self.analyses) else None)
        # ... and so only on step % lcm(periods): one int to look up per due
        # step instead of a tuple of tests (_step_plan), when the lcm is small
        lcm = math.lcm(*self._periods) if self._periods else 0
        self._due_lcm = lcm if 0 < lcm <= _DUE_LCM_MAX else 0
        self._due_for = 0  # the count of disabled analyses _by_residue is for
        self._by_residue = {}  # _step_plan's answers by step % lcm
        seen = {}
        for v in variables:
            if v.name in seen or v.name in ("time", "step"):
                raise FieldError(f"output variable {v.name!r} would be written twice; "
                                 "give the analyses distinct 'name's")
            seen[v.name] = v
        cadences = {a.every for a in self.analyses}
        fill = len(cadences) > 1 or self.on_error == "skip"
        coords += self._dimension_coords(specs)
        self.writer.define(variables, _unique(coords), self.provenance(), fill=fill, axes=axes)
        self.bound = True

    def _group(self, field: str, kept: tuple, where: str = "", pre: bool = False,
               specs=None, level: int = 0) -> ReduceGroup:
        """The reduction group of this rank for ``field`` reduced onto ``kept``
        dims (collective the first time a decomposition structure is seen).

        ``pre`` groups serve reductions inside derived fields, which must be
        combined before the analyses run; the others after.  Pre groups are
        also keyed by ``level`` (the round of the pre-phase that combines
        them), so one round's reduction never re-combines another's slots."""
        if specs is not None and field in specs:
            spec = specs[field]
        else:
            spec = self.derived[field].spec if field in self.derived else self.slots[field].spec
        axes = [spec.dims.index(d) for d in kept]
        d = self.decomposition[field]
        projected = project(list(zip(map(tuple, d["offsets"]), map(tuple, d["shapes"]))), axes)
        table = self.pre_groups if pre else self.groups
        key = (level, tuple(projected)) if pre else tuple(projected)
        if key not in table:
            kept_shape = tuple(spec.global_shape[a] for a in axes)
            table[key] = ReduceGroup(self.comm, projected, kept_shape, where, level)
        return table[key]

    def _dimension_coords(self, specs) -> list:
        """Coordinate variables for the dims the config's ``coords:`` describes."""
        sizes = {}
        for spec in specs.values():
            for d, n in zip(spec.dims, spec.global_shape):
                if d in sizes and sizes[d] != n:
                    continue  # the writer reports the clash, if any variable uses both
                sizes[d] = n
        out = []
        for d, c in self.cfg["coords"].items():
            if d not in sizes:
                raise FieldError(f"coords.{d}: no declared field has a dimension {d!r}")
            attrs = {"units": c["units"], "long_name": c["long_name"] or d}
            if c["standard_name"]:
                attrs["standard_name"] = c["standard_name"]
                attrs.update(_CF_AXIS.get(c["standard_name"], {}))
            if c.get("bounds") is not None:  # given with irregular values (a file's, in replay)
                b = np.asarray(c["bounds"], dtype=np.float64)
                if b.shape == (sizes[d], 2):
                    attrs["bounds"] = f"{d}_bounds"
                    out.append(Coord(f"{d}_bounds", b, {}, dims=(d, "nv")))
            out.append(Coord(d, c["start"] + c["step"] * np.arange(sizes[d]), attrs))
        return out

    def _pre_reduce(self, fields, step: int) -> None:
        """Combine the reductions inside the derived ``fields`` (and the
        derived fields they read) at ``step`` (collective: every rank passes
        the same fields).

        Terms are combined in rounds by level: ``b = a - a.mean(y)`` with
        ``a = u - u.mean(x)`` needs ``u.mean(x)`` combined across ranks
        before ``a``'s values, and so ``a.mean(y)``'s partials, exist.
        Fields whose terms were already combined at this step are skipped,
        so a trigger that snapshots a derived field costs nothing extra when
        an analysis already read it, and is right when none did."""
        done_step, done = self._pre_done
        if done_step != step:
            done = set()
        needed, stack = [], list(fields)
        while stack:
            f = stack.pop()
            if f in self.derived and f not in needed and f not in done:
                needed.append(f)
                stack += self.derived[f].inputs
        self._pre_done = (step, done | set(needed))
        terms = [t for f in sorted(needed) for t in self.derived[f].terms]
        for level in sorted({t.group.level for t in terms}):
            round_terms = [t for t in terms if t.group.level == level]
            groups = {id(t.group): t.group for t in round_terms}
            for g in groups.values():
                g.plan.reset()
            try:
                for t in round_terms:
                    t.local(self._view(t.field, step))
            except Exception as exc:  # noqa: BLE001 - cannot be agreed on: abort
                self._abort(exc, _Where("a reduction in a derived field"), step)
            for key in sorted(self.pre_groups, key=str):
                if id(self.pre_groups[key]) in groups:
                    self.pre_groups[key].reduce()

    # The cadence, and the count of disabled analyses it was built for.
    _cadence = Cadence(None)
    _stamp_at = None  # (record, its bytes, the identities' bytes, the check's offset)
    _due_lcm = 0
    _cadence_for = -1

    def cadence(self) -> Cadence:
        """Which steps have something due (insitu/cadence.py): unknown until
        the first step binds the analyses; rebuilt when on_error: skip
        disables one."""
        if self._cadence_for != len(self.disabled) and self.bound:
            self._cadence = Cadence.of(self.analyses, self.disabled)
            self._cadence_for = len(self.disabled)
        return self._cadence

    def _step_plan(self, step: int):
        """What a bound session does at ``step``: :data:`_IDLE` when the
        cadence says nothing is due (no collective), else
        :meth:`_due_at`.  Kept by ``step % lcm`` of the periods when every
        analysis is due by ``step % every`` alone and the lcm is small
        (and made again when on_error: skip disables an analysis)."""
        if self._due_lcm and self._due_for != len(self.disabled):
            # on_error: skip disabled one: the plans kept are stale (the
            # disabled analysis would run again: tests/test_review7_due_plan.py)
            self._by_residue.clear()
            self._due_for = len(self.disabled)
        todo = _IDLE if not self.cadence().due(step) else self._due_at(step)
        if self._due_lcm:
            self._by_residue[step % self._due_lcm] = todo
        return todo

    def _due_at(self, step: int) -> tuple:
        """``(due, indices, phase2, groups, first, producers, runners)`` at ``step``:
        the enabled analyses due, their indices, those of them with a second
        phase, the reduction groups they use (by id), whether the ranks'
        calls must be compared before the local passes (:meth:`step`), and
        what forms each one's results for ``values.update`` (:func:`_producers`),
        and the analyses whose local passes run, each with the analyses that
        share it (:func:`_runners`).  Decided
        once per pattern of due periods (and count of disabled analyses),
        not by asking every analysis at every due step, when every analysis
        is due by ``step % every`` alone."""
        periods = self._periods
        if periods is None:
            key = None
        else:
            key = (len(self.disabled), *[step % p == 0 for p in periods])
            hit = self._due_sets.get(key)
            if hit is not None:
                return hit
        due = [a for a in self.analyses if a.due(step) and a.index not in self.disabled]
        runners = _runners(due)
        out = (due, frozenset(a.index for a in due), [a for a in due if a.phase2],
               {id(g): g for a in due for g in self._analysis_groups[a.index]},
               any(a.index in self._compare_first for a in due),
               _producers(due, runners), runners)
        if key is not None:
            self._due_sets[key] = out
        return out

    @property
    def last_results(self) -> dict:
        """The results of the last due step that wrote a row (made into a
        dict at the first read, insitu.step_values)."""
        v = self._last_values
        return v.as_dict() if type(v) is StepValues else v

    def step(self, step: int, time: float, results: bool = True):
        """Run the analyses due at ``step`` (collective); return their
        results, a dict (``results``), or else as a read-only mapping whose
        dict is made only if it is read (:class:`insitu.step_values.StepValues`:
        libinsitu's route, whose caller never reads them, issue 12).

        Phases: every due analysis reduces its local views into its slots of
        the step's record; ONE reduction combines the record across ranks,
        including each analysis's failure flags; then results are formed and
        written.  With ``on_error: abort`` a local failure ends the job at
        once.  With ``on_error: skip`` the failing rank puts identities in
        the analysis's slots and raises its flag, so after the reduction all
        ranks agree the analysis failed, drop its results and disable it,
        and no rank is left waiting in a collective.
        """
        if self.closed:
            raise StateError("step after finalize")
        step = int(step)
        # A step where nothing is due is no collective: every rank skips the
        # same steps (insitu/cadence.py), and libinsitu skips them in C.
        # What a bound session does at a step is kept by step % lcm of the
        # periods (_step_plan): one int looked up, not the cadence's tests.
        if self.bound:
            lcm = self._due_lcm
            todo = self._by_residue.get(step % lcm) \
                if lcm and self._due_for == len(self.disabled) else None
            if todo is None:
                todo = self._step_plan(step)
            if todo is _IDLE:
                self.last_call = (step, float(time))  # what finalize's windows read
                return {}
        # Every rank, every due step: ranks on different steps (one skipped
        # a call, or its loop ran longer) are caught, together, at the next
        # due step (or at finalize), instead of meeting in mismatched
        # collectives.  Before binding, by the allgather handshake first;
        # once bound, by the handshake slots of the step's own record, its
        # one collective, compared after the reduction (_verdict): the
        # local passes that ran before it leave no lasting state, and a
        # mismatch then runs nothing else of the call.  A step whose due
        # analyses cannot run before the comparison (_PURE_LOCAL, derived
        # fields) compares first, in an Allreduce of the record alone.
        cost = None if self.step_cost is None else self.step_cost.start()
        time = float(time)
        comm = self.comm
        if not self.bound:
            self._agree(_STEP, step, f"insitu_step(step {step})")
            self._ensure_bound(began=(step, time))
            agreed = True
            todo = self._due_at(step)
        else:
            where = self._where_step  # formatted only if the watchdog speaks
            where.step = step
            comm.where = where
            agreed = comm.size == 1
        due, due_idx, phase2_due, groups, first, producers, runners = todo
        if not agreed and (first or not due):
            self._agree_in_record(_STEP, step)
        last_call, self.last_call = self.last_call, (step, time)
        if not due:
            return {}
        if self.derived:
            self._pre_reduce([f for a in due for f in self._fields_of[a.index]], step)
        record = self._stamp(_STEP, step, self.writer.flush_clock(comm.rank))
        for g in groups.values():
            g.plan.reset()
        failures = {}
        self.memo.clear()  # this step's views: no result of the last step's
        views_of = {}  # analyses that read the same fields share one dict of views
        fields_of = self._fields_of
        for a, followers in runners:
            try:
                fields = fields_of[a.index]
                views = views_of.get(fields)
                if views is None:
                    views = views_of[fields] = {f: self._view(f, step) for f in fields}
                a.local(views, record, step)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - the policy decides;
                # sys.exit() in a user analysis is that analysis failing,
                # not a request to end the model
                if self.on_error == "abort":
                    self._abort(exc, a, step)
                for b in (a, *followers):  # a follower would have failed alike
                    failures[b.index] = exc
                    sl = self._slots_of[b.index]
                    record[sl] = self.plan.identity[sl]
                    for g, gsl in self._group_slots[b.index]:
                        g.plan.record[gsl] = g.plan.identity[gsl]
                    record[self._err_count[b.index]] = 1
                    record[self._err_rank[b.index]] = self.comm.rank
        comm.reduce_record(self.plan)
        try:
            flush_clock = self._verdict(record, _STEP, step)  # rank 0's, now on every rank
        except StepError:
            self.last_call = last_call  # this call did not happen
            raise
        # Second phase (reproducible sums): exact integer words, one Allreduce.
        # A failure here cannot be agreed on without another collective, so
        # it always aborts; phase 1 ran the same views without failing.
        failed = any(record[self._err_counts].tolist())
        phase2 = [a for a in phase2_due if record[self._err_count[a.index]] == 0] \
            if phase2_due else ()
        if phase2:
            ints = self.ints.array
            ints[:] = 0
            for a in phase2:
                try:
                    a.local2({f: self._view(f, step) for f in self._fields_of[a.index]},
                             record, ints, step)
                except Exception as exc:  # noqa: BLE001
                    self._abort(exc, a, step)
            ints[:] = self.comm.allreduce_int64(ints, "sum")
        # Every rank is in exactly one group of each structure, and all ranks
        # agree which analyses are due, so these sub-communicator reductions
        # are matched on every rank.
        if groups:
            for key in sorted(self.groups, key=str):
                g = self.groups[key]
                if id(g) in groups:
                    g.reduce()
        if not failed:  # the common case: one test for every analysis
            # Parts in the analyses' order: packs of batched analyses (kept
            # by the writer as arrays) and dicts of the others' values
            # (insitu.step_values); the dict of it all is made when read.
            parts, plain = [], None
            for produce in producers:
                got = produce(record)
                if type(got) is Pack:
                    parts.append(got)
                    plain = None
                else:
                    if plain is None:
                        plain = {}
                        parts.append(plain)
                    plain.update(got)
            values = StepValues(parts)
            produced = None
        else:
            values = {}
            produced = set()
            for a, followers in runners:  # followers form their results alone here
                for b in followers:
                    b.borrow(a, record)
            for a in due:
                if record[self._err_count[a.index]] > 0:
                    self._skip(a, step, failures.get(a.index))
                else:
                    values.update(a.results(record))
                    produced.add(a.index)
        self.writer.append(step, time, values)
        self.steps_written += 1
        self._last_values = values
        if produced is None:
            produced = due_idx
        for w in self.windows:
            if w.source.index in produced:
                done = w.follow(step, time, self.last_results)
                if done is not None:
                    self.writer.append(step, done[1][1], done[0], axis=w.axis.name,
                                       bounds=done[1])
        if self.triggers:
            self._check_triggers(step, time, self.last_results)
        self.writer.end_step(flush_clock)
        if cost is not None:
            self.step_cost.stop(cost)
        return self.last_results if results else values

    # -- checkpoints and restarts (insitu.state, docs/restart.md) -----------
    def _restore(self) -> None:
        """After the first bind of a restart: the analyses, triggers and
        counters take the checkpoint's state (the writer already opened the
        file cut to its rows)."""
        ck = getattr(self.writer, "checkpoint", None)
        if ck:
            from . import state as state_mod
            state_mod.apply(self, ck, self.writer.file[ck["group"]])
            log.info("restarted from the checkpoint of step %s (%d output step(s) before it)",
                     ck["step"], self.steps_written)

    def checkpoint(self, step: int) -> None:
        """Store the analysis state at ``step`` in the output file
        (collective): the rows handed over so far are flushed and
        committed, then :func:`insitu.state.collect`'s state is written
        under ``/_insitu_state/<step>`` and all but the newest
        ``output.keep_checkpoints`` are dropped."""
        import json
        from . import state as state_mod
        if self.closed:
            raise StateError("checkpoint after finalize")
        step = int(step)
        self._agree(_CHECKPOINT, step, f"insitu_checkpoint(step {step})")
        self._ensure_bound()
        if hasattr(self.writer, "flush"):  # the in-memory writer has no file to flush
            self.writer.flush()
        meta, arrays = state_mod.collect(self, step)
        # One rank's metadata, so every rank writes the same attribute
        # (an HDF5 attribute write is collective and must agree).
        text = json.dumps(meta, default=lambda v: v.item() if hasattr(v, "item") else str(v))
        meta = json.loads(self.comm.bcast_str(text if self.comm.rank == 0 else None))
        if hasattr(self.writer, "write_checkpoint"):
            self.writer.write_checkpoint(step, meta, arrays,
                                         int(self.cfg["output"].get("keep_checkpoints", 2)))
        else:
            self.memory_checkpoints[step] = (meta, arrays)
        log.info("checkpoint at step %d: %d analysis state(s), rows %s", step,
                 len(meta["analyses"]), meta["rows"])

    def _check_triggers(self, step: int, time: float, values: dict) -> None:
        """Evaluate each trigger on this step's results (the same on every
        rank); when one fires, every rank writes its slab of the chosen
        fields, collectively, and the reason goes into the file."""
        for t in self.triggers:
            cfg = t["cfg"]
            if t["fired"] >= cfg["max_snapshots"] or not all(n in values for n in t["names"]):
                continue
            # numpy scalars, so that the condition computes as numpy does
            # (x / 0.0 is inf or nan under the errstate below, not a
            # ZeroDivisionError out of the step, on every rank): a weighted
            # mean or var was a numpy float64 before fcc2058 formed it as a
            # float, and a std, count or sum was a Python number
            env = {n: _numpy_number(values[n]) for n in t["names"]}
            with np.errstate(all="ignore"):
                fired = bool(eval(t["code"], {"__builtins__": {},  # noqa: S307
                                               **derived_mod.CONDITION_FUNCTIONS}, env))
            if not fired:
                continue
            # Every rank agrees the trigger fired, so this pre-phase is
            # matched: a derived field that no due analysis read still has
            # its reductions combined at this step, never stale ones.
            self._pre_reduce(cfg["fields"], step)
            pieces = {}
            for f in cfg["fields"]:
                view = self._view(f, step)
                spec = self.derived[f].spec if f in self.derived else self.slots[f].spec
                pieces[f"{cfg['name']}_{f}"] = Piece(spec.offset, view)
            self.writer.append(step, time, pieces, axis=t["axis"])
            t["fired"] += 1
            self.trigger_events.append({
                "trigger": cfg["name"], "step": step, "time": time, "when": cfg["when"],
                "values": {n: float(v) for n, v in env.items()}, "snapshot": t["fired"]})
            self.writer.set_attrs({"insitu_triggers": self.trigger_events})
            log.info("step %d: trigger %s fired (%s with %s); snapshot %d of at most %d",
                     step, cfg["name"], cfg["when"],
                     ", ".join(f"{n}={float(v):.6g}" for n, v in env.items()),
                     t["fired"], cfg["max_snapshots"])

    def _ensure_bound(self, began=None) -> None:
        """Bind the analyses at the first step or checkpoint, then restore
        a restart's state.  ``began``, the ``(step, time)`` of the run's
        first step, tells windows that began before the run that they are
        partial (before the restore, which overrides it for windows a
        checkpoint holds)."""
        if self.bound:
            return
        try:
            self._bind()
        except (FieldError, AnalysisError) as exc:
            # Found from the config and the declarations, which every rank
            # shares: the same error on every rank, before the output file
            # exists.  It is a config error.
            raise ConfigError(f"the config does not fit the declared fields: {exc}") from None
        if began is not None:
            for w in self.windows:
                w.run_began(*began)
        self._restore()

    def _view(self, name: str, step: int):
        if name in self.derived:
            # the model time too: a climatology() term picks its row by it
            time = self.last_call[1] if self.last_call is not None else None
            return self.derived[name].view(lambda n: self._view(n, step), step, time,
                                           self.cfg.get("time"))
        slot = self.slots[name]
        if slot.view is None:
            raise FieldError(f"field {name!r} on rank {self.comm.rank}: declared but never "
                             f"exposed before step {step}")
        return slot.view

    def _abort(self, exc: BaseException, analysis, step: int) -> None:
        """``on_error: abort``: say what failed where, then end the whole job.

        One rank's exception must never leave the others waiting in the
        step's collective, so this does not return.
        """
        log.critical("rank %d, step %d, %s failed: %s: %s (on_error: abort, ending the job)\n%s",
                     self.comm.rank, step, analysis.where, type(exc).__name__, exc,
                     "".join(traceback.format_exception(exc)))
        for h in log.handlers:
            h.flush()
        self.comm.abort(EXIT_ANALYSIS)
        raise exc  # only reached with a fake communicator

    def _skip(self, analysis, step: int, exc: Optional[BaseException]) -> None:
        """``on_error: skip``: every rank disables ``analysis`` and records why.

        The report (message and traceback) comes from the lowest failing
        rank, broadcast so that every rank writes the same attribute.
        """
        first = int(self.plan.record[self._err_rank[analysis.index]])
        nfailed = int(self.plan.record[self._err_count[analysis.index]])
        text = None
        if self.comm.rank == first:
            text = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc))
        text = self.comm.bcast_str(text, root=first)
        self.disabled[analysis.index] = step
        report = {"step": step, "analysis": analysis.where, "first_rank": first,
                  "ranks_failed": nfailed, "error": text.splitlines()[0], "traceback": text}
        self.errors.append(report)
        self.writer.set_attrs({"insitu_errors": self.errors})
        log.error("step %d: %s failed on %d rank(s), first rank %d: %s; disabled on all "
                  "ranks (on_error: skip)", step, analysis.where, nfailed, first,
                  report["error"])

    # -- end -------------------------------------------------------------
    def provenance(self) -> dict:
        import h5py
        import mpi4py
        import numba
        versions = {"insitu": __version__, "python": platform.python_version(),
                    "numpy": np.__version__, "numba": numba.__version__,
                    "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
                    "mpi4py": mpi4py.__version__}
        if isinstance(self.comm, MPIComm):
            versions["mpi"] = self.comm._MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()
        cfg_text = self.cfg.get("_text") or yaml.safe_dump(
            {k: v for k, v in self.cfg.items() if not k.startswith("_")}, sort_keys=False)
        command = " ".join(sys.argv) if sys.argv and sys.argv[0] else self.host
        out = {
            "Conventions": "CF-1.11",
            "history": f"{self.started} insitu {__version__}: {command}",
            "title": "insitu summaries",
            "source": f"insitu {__version__} in-situ analysis ({self.host} host)",
            "insitu_config": cfg_text,
            "insitu_config_path": self.cfg.get("_source", ""),
            "insitu_ranks": int(self.comm.size),
            "insitu_decomposition": self.decomposition,
            "insitu_versions": versions,
            "insitu_host": self.host,
            "insitu_started": self.started,
            "insitu_command": command,
        }
        if self.cfg["reproducible"]:
            out["insitu_reproducible"] = self._reproducible_outputs()
        return out

    def _reproducible_outputs(self) -> str:
        """What ``reproducible: true`` makes bitwise identical for any
        decomposition, said in the file so a reader need not know the rules;
        each analysis names its own (today: the sums and unweighted means of
        ``stats``)."""
        names = [n for a in self.analyses for n in a.reproducible_outputs()]
        return ("bitwise identical for any decomposition: " + (", ".join(names) or "none") +
                "; every other output (std, var, weighted means, reductions over dims, "
                "histogram quantiles, windows) agrees to rounding only")

    def finalize(self) -> None:
        """Close the output and free communicators (collective)."""
        if self.closed:
            raise StateError("finalize called twice")
        try:
            # The file's close is a collective HDF5 call that cannot be
            # watched; the watched handshake first catches a rank that never
            # finalizes (or is still stepping) instead of hanging in it.
            self._agree(_FINALIZE, 0, "insitu_finalize")
            if not self.bound and self.analyses:
                # A run that never stepped still leaves a readable file.
                try:
                    self._bind()
                    self._restore()
                except (FieldError, AnalysisError) as exc:
                    log.warning("no step was taken and %s", exc)
            if self.last_call is not None:
                for w in self.windows:  # windows the model reached the end of; climatologies
                    for row in w.finish(*self.last_call):
                        self.writer.append(self.last_call[0], row.time, row.values,
                                           axis=w.axis.name, bounds=row.bounds)
            self.writer.set_attrs({
                "insitu_finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "insitu_steps_written": int(self.steps_written)})
            self.writer.close()
            if self.step_cost is not None:
                self.step_cost.write(self.comm.rank)
        finally:
            self.closed = True
            atexit.unregister(self._warn_unfinished)
            for g in (*getattr(self, "groups", {}).values(),
                      *getattr(self, "pre_groups", {}).values()):
                g.free()
            self.comm.free()
        log.info("session closed: %d output step(s) written", self.steps_written)
