"""The run config: its schema, loading and defaults.

The config is YAML and declarative: which fields the model exposes (with
their metadata) and which analyses run on them.  Example::

    output:
      path: heat2d.h5
      overwrite: true
    time: {units: "seconds since 2000-01-01", calendar: standard}
    fields:
      T: {units: K, long_name: temperature}
    analyses:
      - {kind: stats, field: T, every: 10}

See ``README.md`` for every key.  Each rank loads and validates the same file
at init, before the first step, so a bad config fails fast on all ranks
together.
"""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import yaml

from . import schema as s
from .schema import ConfigError

__all__ = ["ConfigError", "load", "parse", "CONFIG"]


def _analysis_records():
    from .analyses import REGISTRY
    return {kind: cls.schema for kind, cls in REGISTRY.items()}


class _OrNull(s.Node):
    """``null`` (None), or a value ``node`` accepts: ``flush_seconds: null``
    turns the clock off."""

    def __init__(self, node: s.Node, default=s.REQUIRED, doc=""):
        super().__init__(default, doc)
        self.node = node

    def check(self, value, path):
        return None if value is None else self.node.check(value, path)


class MpiInfo(s.Node):
    """``output.mpi_info``: MPI-IO hints, a mapping of names to strings or
    integers, normalised to strings (an ``MPI_Info`` holds strings only).

    A boolean is refused rather than turned into text: YAML 1.1 reads
    ``yes``, ``on`` and ``true`` alike as true, and a hint that takes
    ``enable``/``disable``/``automatic`` (ROMIO's ``romio_cb_write``) or
    ``true``/``false`` would get a word the user may not have written.
    Floats are refused too (``4e6`` is not a byte count a hint parses).  The
    key and value lengths depend on the MPI library and are checked when
    the file is opened (:func:`insitu.h5io.mpi_info_problem`)."""

    def check(self, value, path):
        if not isinstance(value, dict):
            s._fail(path, f"expected a mapping of MPI-IO hint names to values, got {s._show(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k or any(c.isspace() or c == "=" for c in k):
                s._fail(path, f"expected hint names without spaces, got {s._show(k)}")
            p = f"{path}.{k}"
            if isinstance(v, bool):
                s._fail(p, f"expected a string or an integer, got {v!r}: YAML reads true, yes "
                           f"and on as a boolean; quote the word the hint takes, e.g. "
                           f"\"{str(v).lower()}\" or \"enable\"")
            if isinstance(v, int):
                v = str(v)
            if not isinstance(v, str) or not v.strip():
                s._fail(p, f"expected a string or an integer (MPI-IO hints are text), "
                           f"got {s._show(v)}")
            out[k] = v
        return out


def _check_output(out: dict, path: str) -> None:
    """``flush_every`` is the old name of ``flush_every_steps`` (it flushed
    every N output steps, and buffered the rows in memory until then): read
    as the new key, with a warning from the writer, so a job script written
    for an older insitu keeps running with the meaning it asked for."""
    if out["flush_every"] is not None:
        if out["flush_every_steps"] is not None:
            raise ConfigError(f"{s.join(path, 'flush_every')}: the old name of "
                              "flush_every_steps; give only flush_every_steps")
        out["flush_every_steps"] = out["flush_every"]


FIELD = s.Record({
    "units": s.Str(default="1", doc="CF units of the field"),
    "long_name": s.Str(default=None, doc="CF long_name; defaults to the field name"),
    "dims": s.ListOf(s.Str(), default=None, unique=True,
                     doc="dimension names in the model's index order"),
})

class IrregularSpacing:
    """The ``step`` of an irregular axis: ``0.0 + step * positions`` gives the
    coordinate at (fractional) index positions.

    Every reader of a ``coords:`` entry (the dimension coordinates, regions
    by coordinate value, ``coslat`` weights, coarse cells and their bounds,
    the extent of a reduction) evaluates ``start + step * i``.  An irregular
    axis (pressure levels, Gaussian latitudes, values read from a file by
    ``insitu.replay``) has no single spacing, so its entry gets ``start`` 0
    and this object as its ``step``, and every one of those readers stays
    right unchanged: the product is the value at integer positions, the cell
    edge at half-integer ones (the file's bounds where given, else the
    midpoints), and linear between them, so coarse cells and extents get
    real edges.  :func:`coordinate_at` is the direct way to ask.

    A position past the last cell means the dimension has more points than
    the entry has values: refused with the entry's path, never extrapolated.
    """

    __array_ufunc__ = None  # ndarray * step defers to __rmul__, no object array

    def __init__(self, values, bounds, path: str) -> None:
        v = np.asarray(values, dtype=np.float64)
        self.values, self.path = v, path
        n = v.size
        if bounds is not None:
            b = np.asarray(bounds, dtype=np.float64)
            low_first = n < 2 or v[-1] > v[0]  # which side of a cell faces index 0
            first = b.min(axis=1) if low_first else b.max(axis=1)
            last = b.max(axis=1) if low_first else b.min(axis=1)
            edges = np.concatenate([first[:1], (last[:-1] + first[1:]) / 2, last[-1:]])
        elif n > 1:
            mid = (v[:-1] + v[1:]) / 2
            edges = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
        else:
            edges = np.array([v[0], v[0]])
        self.bounds = None if bounds is None else np.asarray(bounds, dtype=np.float64)
        knots = np.empty(2 * n + 1)
        knots[0::2], knots[1::2] = edges, v
        self._knots = knots  # at positions -0.5, 0, 0.5, ..., n - 0.5

    def __mul__(self, positions):
        x = np.asarray(positions, dtype=np.float64)
        n = self.values.size
        if x.size and (x.max() > n - 0.5 + 1e-9 or x.min() < -0.5 - 1e-9):
            raise ConfigError(f"{self.path}: {n} coordinate value(s), but a dimension of at "
                              f"least {int(np.floor(x.max() + 0.5)) + 1} points uses it")
        out = np.interp(2 * x + 1, np.arange(2 * n + 1), self._knots)
        exact = x == np.round(x)  # integer positions: the values themselves, bit for bit
        out = np.where(exact, self.values[np.clip(np.round(x).astype(np.int64), 0, n - 1)], out)
        return out if x.ndim else np.float64(out)

    __rmul__ = __mul__

    def __eq__(self, other) -> bool:
        return isinstance(other, IrregularSpacing) and np.array_equal(self._knots, other._knots)

    __hash__ = None

    def __repr__(self) -> str:
        return f"IrregularSpacing({self.values.size} values, {self.path})"


def coordinate_at(c: dict, positions) -> np.ndarray:
    """The coordinate of the ``coords:`` entry ``c`` at index ``positions``
    (integers for cell centres, half-integers for cell edges)."""
    return c["start"] + c["step"] * np.asarray(positions, dtype=np.float64)


def _check_coord(c: dict, path: str) -> None:
    """Exactly one of ``start``/``step`` and ``values``; bounds only with
    values, one ``[lower, upper]`` pair per value, holding it.  Normalises an
    irregular entry to ``start: 0.0`` and an :class:`IrregularSpacing` step."""
    if c["values"] is None:
        if c["start"] is None or c["step"] is None:
            raise ConfigError(f"{path}: give 'start' and 'step' (a regular axis) or 'values'")
        if c["step"] == 0:
            raise ConfigError(f"{path}.step: expected a non-zero spacing")
        if c["bounds"] is not None:
            raise ConfigError(f"{path}.bounds: bounds need 'values' (a regular axis has none)")
        return
    if c["step"] is not None or c["start"] not in (None, 0.0):
        raise ConfigError(f"{path}: give either 'start' and 'step' or 'values', not both")
    v = np.asarray(c["values"], dtype=np.float64)
    d = np.diff(v)
    if v.size > 1 and not ((d > 0).all() or (d < 0).all()):
        raise ConfigError(f"{path}.values: expected strictly increasing or decreasing values "
                          "(CF coordinates are monotonic)")
    if c["bounds"] is not None:
        b = c["bounds"]
        if len(b) != v.size or any(len(p) != 2 for p in b):
            raise ConfigError(f"{path}.bounds: expected {v.size} [lower, upper] pairs, one per "
                              f"value")
        b = np.asarray(b, dtype=np.float64)
        outside = np.flatnonzero((v < b.min(axis=1)) | (v > b.max(axis=1)))
        if outside.size:
            i = int(outside[0])
            raise ConfigError(f"{path}.bounds[{i}]: {b[i].tolist()} does not hold the value "
                              f"{v[i]:g}")
    c["start"], c["step"] = 0.0, IrregularSpacing(c["values"], c["bounds"], path)


COORD = s.Record({
    "start": s.Num(default=None, doc="coordinate of index 0 (a regular axis)"),
    "step": s.Num(default=None, doc="spacing (a regular axis)"),
    "values": s.ListOf(s.Num(), default=None, nonempty=True,
                       doc="the coordinate of each index (an irregular axis)"),
    "bounds": s.ListOf(s.ListOf(s.Num()), default=None,
                       doc="[lower, upper] of each cell, with values"),
    "units": s.Str(default="1"),
    "long_name": s.Str(default=None),
    "standard_name": s.Str(default=None),
}, check=_check_coord)

# The config the session records in the file is dumped with yaml.safe_dump:
# an irregular step is said as null (its values are beside it), which
# _check_coord reads back as the same entry.
yaml.SafeDumper.add_representer(IrregularSpacing, lambda d, o: d.represent_none(None))

CONFIG = s.Record({
    "output": s.Record({
        "path": s.Str(default="insitu.h5", doc="HDF5 file to write"),
        "overwrite": s.Bool(default=False, doc="replace an existing file"),
        "flush_seconds": _OrNull(s.Num(minimum=0.0), default=10.0,
                                 doc="flush durably (H5Fflush) at the first output step at "
                                     "least this many seconds (rank 0's clock) after the "
                                     "last flush; 0: every output step; null: never by time"),
        "flush_every_steps": s.Int(default=None, minimum=1,
                                   doc="flush durably every N output steps (as well)"),
        "flush_every": s.Int(default=None, minimum=1,
                             doc="deprecated: the old name of flush_every_steps"),
        "verify": s.Bool(default=False,
                         doc="after each durable flush, re-read what each rank wrote and "
                             "compare it bit for bit (an output error on a mismatch)"),
        "restart": s.Bool(default=False,
                          doc="go on from the latest checkpoint in the existing file "
                              "(docs/restart.md)"),
        "keep_checkpoints": s.Int(default=2, minimum=1,
                                  doc="checkpoints of the analysis state kept in the file"),
        "writer": s.Enum(["inline", "background"], default="inline",
                         doc="inline: the model's thread writes each durable flush; "
                             "background: a writer thread does, and the model goes on "
                             "(needs MPI_THREAD_MULTIPLE; docs/output.md)"),
        "mpi_info": MpiInfo(default=None,
                            doc="MPI-IO hints for the file (striping_factor, cb_nodes, "
                                "romio_cb_write, ...): docs/mpiio.md"),
    }, default=None, check=_check_output),
    "time": s.Record({
        "units": s.Str(default="1", doc="CF units of model time"),
        "calendar": s.Str(default=None, doc="CF calendar, if the model has one"),
    }, default=None),
    "fields": s.MapOf(FIELD, default=None),
    "coords": s.MapOf(COORD, default=None,
                      doc="coordinates of dimensions, by dimension name: regular "
                          "(start, step) or irregular (values, bounds)"),
    "derived": s.MapOf(s.Str(), default=None,
                       doc="name -> pointwise expression over fields, e.g. sqrt(u**2 + v**2)"),
    "analyses": s.ListOf(s.Tagged(_analysis_records), nonempty=True),
    "on_error": s.Enum(["abort", "skip"], default="abort",
                       doc="abort: end the job (MPI_Abort); skip: disable the failing "
                           "analysis on all ranks, record the error, run on"),
    "triggers": s.ListOf(s.Record({
        "name": s.Str(doc="names the snapshot variables <name>_<field>"),
        "when": s.Str(doc="condition on this step's scalar results, e.g. T_max > 320"),
        "fields": s.ListOf(s.Str(), nonempty=True, unique=True,
                           doc="fields to snapshot at full resolution"),
        "max_snapshots": s.Int(default=10, minimum=1,
                               doc="stop snapshotting after this many (disks are finite)"),
    }), default=None),
    "reproducible": s.Bool(default=False,
                           doc="bitwise-reproducible global sums and means for any "
                               "decomposition (one more integer Allreduce per step)"),
    "log_level": s.Enum(["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO"),
    "hang_timeout_seconds": s.Num(default=600.0, minimum=0.0,
                                  doc="end the job when a rank waits this long in an insitu "
                                      "collective for ranks that never join it (0: wait "
                                      "forever)"),
})


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats.

    PyYAML follows YAML 1.1, where ``1e6`` (no dot) is a string; a number
    that silently became a string would fail somewhere far from the config,
    or worse, compare as text.  YAML 1.2's core schema reads it as 1000000.0."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def yaml_load(text: str) -> Any:
    """Load YAML text the way every insitu config is read."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


CALENDARS = ("standard", "gregorian", "proleptic_gregorian", "julian", "noleap", "365_day",
             "all_leap", "366_day", "360_day", "none")


def _check_time(t: dict) -> None:
    """CF time units and calendar, checked with cftime (which xarray will
    use to decode them), so a run never writes a time axis no reader can
    decode."""
    if t["calendar"] is not None and t["calendar"].lower() not in CALENDARS:
        raise ConfigError(f"time.calendar: expected one of {', '.join(CALENDARS)}, "
                          f"got {t['calendar']!r}")
    if " since " in f" {t['units']} ":
        import cftime
        try:
            cftime.num2date(0.0, t["units"], t["calendar"] or "standard")
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"time.units: {t['units']!r} is not a CF time unit "
                              f"(e.g. 'days since 2000-01-01'): {exc}") from None


def parse(data: Any, source: str = "<config>") -> dict:
    """Validate a loaded YAML document; return it normalised with defaults."""
    if data is None:
        raise ConfigError(f"{source}: the config is empty")
    out = CONFIG.check(data, "")
    for key in ("output", "time"):
        if out[key] is None:
            out[key] = CONFIG.fields[key].check({}, key)
    _check_time(out["time"])
    for i, a in enumerate(out["analyses"]):  # calendar windows need a calendar
        key = "by" if a.get("kind") == "climatology" else "calendar_period"
        if a.get(key) and " since " not in f" {out['time']['units']} ":
            raise ConfigError(
                f"analyses[{i}].{key}: time.units {out['time']['units']!r} is not a "
                "CF time unit ('<unit> since <date>', e.g. 'days since 2000-01-01'), so model "
                "time has no calendar")
    if out["fields"] is None:
        out["fields"] = {}
    if out["derived"] is None:
        out["derived"] = {}
    if out["coords"] is None:
        out["coords"] = {}
    from . import derived
    for name, text in out["derived"].items():
        _, _, terms = derived.parse(name, text)  # a bad expression fails here, at init
        if any(t[1] == "climatology" for t in terms) and \
                " since " not in f" {out['time']['units']} ":
            raise ConfigError(f"derived.{name}: climatology() chooses its row by the model "
                              f"time's calendar, and time.units {out['time']['units']!r} is "
                              "not a CF time unit (e.g. 'days since 2000-01-01')")
        inexact = [t for t in terms if t[1] in ("mean", "sum")]
        if out["reproducible"] and inexact:
            f, op, dims = inexact[0]
            raise ConfigError(
                f"derived.{name}: {f}.{op}({', '.join(dims)}) cannot be bitwise reproducible "
                "(it is combined across ranks in floating point, in an order that depends on "
                "the decomposition); use min/max, drop it, or set reproducible: false")
    if out["triggers"] is None:
        out["triggers"] = []
    seen_triggers = set()
    for i, t in enumerate(out["triggers"]):
        if not t["name"].isidentifier():
            raise ConfigError(f"triggers[{i}].name: expected an identifier, got {t['name']!r}")
        if t["name"] in seen_triggers:
            raise ConfigError(f"triggers[{i}].name: duplicate trigger name {t['name']!r}")
        seen_triggers.add(t["name"])
        derived.check_expression(t["when"], f"triggers[{i}].when",
                                 derived.CONDITION_FUNCTIONS, boolean=True)
    from types import SimpleNamespace

    from .analyses import REGISTRY
    names = {}
    for i, a in enumerate(out["analyses"]):
        key = (a["kind"], a.get("name") or REGISTRY[a["kind"]].default_name(SimpleNamespace(cfg=a)))
        if key in names:
            raise ConfigError(f"analyses[{i}].name: duplicate {key[0]} analysis name {key[1]!r} "
                              f"(also analyses[{names[key]}]); give one a 'name'")
        names[key] = i
    return out


def load(path: str | os.PathLike) -> dict:
    """Read and validate the YAML config at ``path``."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    try:
        data = yaml_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        cfg = parse(data, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    cfg["_source"] = path
    cfg["_text"] = text
    return cfg
