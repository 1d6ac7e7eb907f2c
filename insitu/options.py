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

import yaml

from . import schema as s
from .schema import ConfigError

__all__ = ["ConfigError", "load", "parse", "CONFIG"]


def _analysis_records():
    from .analyses import REGISTRY
    return {kind: cls.schema for kind, cls in REGISTRY.items()}


FIELD = s.Record({
    "units": s.Str(default="1", doc="CF units of the field"),
    "long_name": s.Str(default=None, doc="CF long_name; defaults to the field name"),
    "dims": s.ListOf(s.Str(), default=None, unique=True,
                     doc="dimension names in the model's index order"),
})

CONFIG = s.Record({
    "output": s.Record({
        "path": s.Str(default="insitu.h5", doc="HDF5 file to write"),
        "overwrite": s.Bool(default=False, doc="replace an existing file"),
        "flush_every": s.Int(default=1, minimum=1,
                             doc="flush the file every N output steps"),
        "verify": s.Bool(default=False,
                         doc="after each flush, re-read what each rank wrote and compare it "
                             "bit for bit (an output error on a mismatch)"),
    }, default=None),
    "time": s.Record({
        "units": s.Str(default="1", doc="CF units of model time"),
        "calendar": s.Str(default=None, doc="CF calendar, if the model has one"),
    }, default=None),
    "fields": s.MapOf(FIELD, default=None),
    "coords": s.MapOf(s.Record({
        "start": s.Num(doc="coordinate of index 0"),
        "step": s.Num(doc="spacing"),
        "units": s.Str(default="1"),
        "long_name": s.Str(default=None),
        "standard_name": s.Str(default=None),
    }), default=None, doc="regular coordinates of dimensions, by dimension name"),
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
    if out["fields"] is None:
        out["fields"] = {}
    if out["derived"] is None:
        out["derived"] = {}
    if out["coords"] is None:
        out["coords"] = {}
    for d, c in out["coords"].items():
        if c["step"] == 0:
            raise ConfigError(f"coords.{d}.step: expected a non-zero spacing")
    from . import derived
    for name, text in out["derived"].items():
        _, _, terms = derived.parse(name, text)  # a bad expression fails here, at init
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
