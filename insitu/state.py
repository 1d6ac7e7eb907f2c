"""Checkpoints of the analysis state, and restarts from them (docs/restart.md).

A checkpoint (``insitu.checkpoint(step)``, collective) stores, inside the
output file under ``/_insitu_state/<step>`` (a group xarray ignores), all
that insitu keeps in memory between steps:

* each stateful analysis's :meth:`state` (windows and calendar windows:
  their open window and running Chan-merge partials; climatologies: every
  slot's partials), as JSON metadata plus arrays;
* the triggers' counts (``max_snapshots`` used) and events, the
  ``on_error: skip`` record, the number of output steps written;
* the rows of every growing axis (the writer flushes first, so these are
  committed rows);
* the config (normalised) and its hash, so a restart with a changed config
  is refused naming what changed.

**Decomposition-free.**  What every rank holds alike (the partials of a
window over a global mean) is concatenated into one float64 vector that
rank 0 writes.  What is distributed (a window over a zonal mean, where each
rank owns a piece) is stored as a *global* array, each rank writing its own
hyperslab: no rank gathers anything, and a restart at any rank count reads
back the hyperslab of the piece it is handed.

**Restart.**  Rank 0 alone, with serial h5py and before the parallel open,
writes a new file holding every object of the old one with each growing
axis cut to the checkpoint's rows (and the checkpoints after it dropped),
fsyncs it and renames it over the old one (:func:`cut_to_checkpoint`).
Nothing is resized down: shrinking a chunked dataset that holds data hangs
ranks at close under parallel HDF5 1.10.8 (docs/mpich.md), and a rename is
atomic, so a crash mid-restart leaves the old file whole.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .schema import ConfigError

log = logging.getLogger("insitu")

#: the group holding one subgroup per checkpoint, named by its step
GROUP = "_insitu_state"
#: the format of a checkpoint's metadata (bumped when it changes)
FORMAT = 1
#: stack the distributed arrays of one trailing shape into one dataset
#: (:func:`collect`); False gives each its own (scripts/bench/checkpoint.py
#: times both)
PACK = True
#: config keys that do not change results: a restart may change them freely
IGNORED_KEYS = ("log_level", "hang_timeout_seconds", "output")


class RestartError(ConfigError):
    """A restart cannot go on: no checkpoint, a corrupt one, or a changed
    config.  A ConfigError, so a command-line host says it in one line and
    exits with the config status: every rank raises the same message."""


@dataclass
class StateArray:
    """One array of a checkpoint.

    ``value`` is the whole array, the same on every rank (rank 0 writes it,
    into the replicated vector); or, when ``distributed``, this rank's piece
    ``(start, values)`` of a global array of ``shape`` (None where the rank
    owns none), written as its hyperslab.  ``copy_from`` (rank 0 only) is a
    dataset of a previous checkpoint still unread (a restored piece no rank
    has been handed yet), copied whole.

    :func:`collect` stacks the distributed arrays of one trailing shape into
    one dataset: then ``value`` is the list of this rank's ``(start,
    values)`` pieces and ``copy_from`` a list of ``(first row, source)``."""
    shape: tuple
    value: Any = None
    distributed: bool = False
    copy_from: Any = None


# -- the config ---------------------------------------------------------------
def comparable_config(cfg: dict) -> dict:
    """The config as a restart compares it: normalised, private keys and
    the keys that do not change results dropped."""
    return json.loads(json.dumps({k: v for k, v in cfg.items()
                                  if not k.startswith("_") and k not in IGNORED_KEYS},
                                 sort_keys=True, default=str))


def config_hash(cfg: dict) -> str:
    text = json.dumps(comparable_config(cfg), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _analysis_keys(entries: list) -> list[str]:
    """Each analysis's :func:`analysis_key`, its default name included
    (``w3`` for a window of 3 steps), as the built analyses say it."""
    from . import analyses
    try:
        return [analysis_key(a) for a in analyses.build(entries, 0, 1)
                if getattr(a, "index", 0) >= 0]
    except Exception:  # noqa: BLE001 - a config that no longer builds: by kind and name
        return [f"{a.get('kind')} {a.get('name')}" for a in entries]


def config_changes(old: dict, new: dict) -> list[str]:
    """What differs between the checkpoint's config ``old`` and ``new``
    (both :func:`comparable_config`), one short phrase each.  New analyses
    are allowed (they start empty); a removed or changed one is not."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key == "analyses":
            continue
        if old.get(key) != new.get(key):
            out.append(_first_difference(key, old.get(key), new.get(key)))
    olds = {k: (i, a) for i, (k, a) in
            enumerate(zip(_analysis_keys(old.get("analyses", [])), old.get("analyses", [])))}
    news = {k: (i, a) for i, (k, a) in
            enumerate(zip(_analysis_keys(new.get("analyses", [])), new.get("analyses", [])))}
    new_list = new.get("analyses", [])
    for k, (i, a) in olds.items():
        if k not in news:
            # a changed length renames a window (w3 -> w4): say the change
            same = i < len(new_list) and new_list[i].get("kind") == a.get("kind")
            out.append(_first_difference(f"analyses[{i}]", a, new_list[i]) if same
                       else f"analyses[{i}] ({k}) was removed")
        elif news[k][1] != a:
            out.append(_first_difference(f"analyses[{news[k][0]}]", a, news[k][1]))
    return out


def _first_difference(path: str, a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(f"{path}.{k}", a.get(k), b.get(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(f"{path}[{i}]", x, y)
    return f"{path} was {json.dumps(a)}, now {json.dumps(b)}"


# -- reading a file's checkpoints ------------------------------------------------
def read_meta(g) -> dict:
    """A checkpoint group's metadata: the JSON bytes of its ``meta``
    dataset."""
    return json.loads(bytes(np.asarray(g["meta"][()], dtype=np.uint8)).decode())


def replace_durably(tmp: str, path: str) -> None:
    """Put the finished file ``tmp`` in place of ``path`` so that a crash
    leaves either the old file or the new one whole: sync the new file,
    rename it over the old one, and sync the directory so the rename itself
    survives a power loss."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def list_checkpoints(f) -> list[dict]:
    """The checkpoints held in an open h5py file ``f`` (any driver), oldest
    first: ``{"step", "time", "rows", "complete"}``.  A checkpoint whose
    metadata is missing or unreadable is listed with ``complete: False``.

    ``insitu.inspect`` can print these and, from the file's
    ``insitu_finished`` attribute, whether the run finished."""
    if GROUP not in f:
        return []
    out = []
    for name in f[GROUP]:
        g = f[GROUP][name]
        item = {"step": int(name) if name.lstrip("-").isdigit() else name, "time": None,
                "rows": {}, "complete": False}
        try:
            meta = read_meta(g)
            item.update(time=meta["time"], rows=meta["rows"],
                        complete=bool(g.attrs.get("complete", 0)))
        except Exception:  # noqa: BLE001 - listed as incomplete
            pass
        out.append(item)
    return sorted(out, key=lambda c: c["step"] if isinstance(c["step"], int) else -1)


def describe_checkpoints(f) -> str:
    """A few lines for ``insitu.inspect``: the checkpoints and whether the
    run finished."""
    cks = list_checkpoints(f)
    finished = f.attrs.get("insitu_finished")
    lines = [f"run finished: {'yes, ' + str(finished) if finished is not None else 'no'}"]
    if not cks:
        lines.append("checkpoints: none")
    for c in cks:
        rows = ", ".join(f"{k} {v}" for k, v in c["rows"].items())
        lines.append(f"checkpoint step {c['step']}: time {c['time']}, rows {rows}"
                     + ("" if c["complete"] else " (INCOMPLETE: not usable)"))
    return "\n".join(lines)


def choose(f, path: str, step: Optional[int]) -> tuple[str, dict]:
    """The latest complete checkpoint at or before ``step`` (any if None):
    its group name and metadata.  A missing or corrupt one is a
    :class:`RestartError`, never a silent fresh start."""
    cks = list_checkpoints(f)
    if not cks:
        raise RestartError(f"restart: {path} holds no checkpoint (no /{GROUP}); "
                           "the run that wrote it never called insitu checkpoint")
    usable = [c for c in cks if isinstance(c["step"], int) and (step is None or c["step"] <= step)]
    if not usable:
        raise RestartError(f"restart: {path} holds no checkpoint at or before step {step} "
                           f"(checkpoints: {', '.join(str(c['step']) for c in cks)})")
    c = usable[-1]
    if not c["complete"]:
        raise RestartError(f"restart: the checkpoint of step {c['step']} in {path} is corrupt "
                           "or incomplete (the run died while writing it); restart from an "
                           "earlier model restart file")
    g = f[GROUP][str(c["step"])]
    meta = read_meta(g)
    if meta.get("format") != FORMAT:
        raise RestartError(f"restart: the checkpoint of step {c['step']} in {path} has format "
                           f"{meta.get('format')}; this insitu reads format {FORMAT}")
    try:
        for name in meta["datasets"]:
            g[name].shape  # noqa: B018 - present and readable
    except KeyError as exc:
        raise RestartError(f"restart: the checkpoint of step {c['step']} in {path} is corrupt: "
                           f"{exc}") from None
    return str(c["step"]), meta


# -- cutting the file ---------------------------------------------------------------
_REF_ATTRS = ("DIMENSION_LIST", "REFERENCE_LIST")
#: attributes of a run's end, or of what happened after the checkpoint: the
#: restarted run writes its own
_DROPPED_ATTRS = ("insitu_finished", "insitu_steps_written", "insitu_triggers", "insitu_errors")
_BLOCK = 32 << 20


def cut_to_checkpoint(path: str, step: Optional[int], new_config: dict) -> dict:
    """Rank 0 alone, serial h5py, before the parallel open: check the
    checkpoint, then replace ``path`` atomically by a copy with every
    growing axis cut to the checkpoint's rows.  Returns the checkpoint's
    metadata (with ``"group"``, its path in the file)."""
    import h5py
    if not os.path.exists(path):
        raise RestartError(f"restart: the output file {path} does not exist")
    try:
        src = h5py.File(path, "r")
    except OSError as exc:
        raise RestartError(f"restart: cannot open {path}: {exc}") from None
    with src:
        name, meta = choose(src, path, step)
        changes = config_changes(meta["config"], comparable_config(new_config))
        if changes:
            raise RestartError(f"restart from step {name} of {path}: the config changed: "
                               + "; ".join(changes))
        axis_rows = meta["rows"]
        tmp = f"{path}.restart-{os.getpid()}.tmp"
        try:
            with h5py.File(tmp, "w", libver="earliest") as dst:
                _copy_tree(src, dst, axis_rows, keep=lambda s: s.isdigit() and int(s) <= int(name))
                _copy_attrs(src, dst, skip=_DROPPED_ATTRS)
                _copy_ref_attrs(src, dst)
                counts = dst.get("insitu/committed_rows")
                if counts is not None:
                    axes = counts.attrs["axes"].split()
                    counts[...] = [axis_rows.get(a, 0) for a in axes]
            replace_durably(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    meta["group"] = f"{GROUP}/{name}"
    log.info("restart: %s cut to the checkpoint of step %s (rows %s)", path, name,
             ", ".join(f"{k} {v}" for k, v in axis_rows.items()))
    return meta


def _axis_of(ds, f) -> Optional[str]:
    """The growing axis a dataset lies along: the name of the scale its
    first dimension is attached to (itself for an axis's scale)."""
    if ds.maxshape and ds.maxshape[0] is None:
        if ds.attrs.get("CLASS") == b"DIMENSION_SCALE":
            return ds.name.lstrip("/")
        dl = ds.attrs.get("DIMENSION_LIST")
        if dl is not None and len(dl) and len(dl[0]):
            return f[dl[0][0]].name.lstrip("/")
    return None


def _copy_tree(src, dst, rows: dict, keep) -> None:
    import h5py
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            if obj.name == f"/{GROUP}":
                g = dst.create_group(name)
                _copy_attrs(obj, g)
                for ck in obj:
                    if keep(ck):
                        src.copy(obj[ck], g, name=ck)  # no references inside a checkpoint
                continue
            g = dst.create_group(name)
            _copy_attrs(obj, g)
            _copy_tree(obj, g, rows, keep)
            continue
        axis = _axis_of(obj, src.file)
        shape = obj.shape
        if axis is not None:
            if axis not in rows:
                raise RestartError(f"restart: {obj.name} lies along {axis!r}, which the "
                                   "checkpoint does not know")
            shape = (min(int(rows[axis]), obj.shape[0]), *obj.shape[1:])
        dcpl = obj.id.get_create_plist()
        # Early allocation, as parallel HDF5 creates datasets: with the
        # serial default (incremental) a rank's independent write into a
        # new chunk would allocate it alone, a metadata change the other
        # ranks never make, and the next H5Fflush hangs.
        new = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        new.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        kw = dict(shape=shape, dtype=obj.dtype, maxshape=obj.maxshape, chunks=obj.chunks,
                  dcpl=new)
        if obj.chunks is not None or obj.fillvalue is not None:
            kw["fillvalue"] = obj.fillvalue
        if obj.chunks is not None:
            kw["fill_time"] = {h5py.h5d.FILL_TIME_ALLOC: "alloc",
                               h5py.h5d.FILL_TIME_NEVER: "never",
                               h5py.h5d.FILL_TIME_IFSET: "ifset"}[dcpl.get_fill_time()]
        d = dst.create_dataset(name, **kw)
        if shape and shape[0]:
            step = max(1, _BLOCK // max(1, int(np.prod(shape[1:], dtype=np.int64))
                                        * obj.dtype.itemsize))
            for i in range(0, shape[0], step):
                d[i:i + step] = obj[i:min(i + step, shape[0])]
        elif not shape:
            d[()] = obj[()]
        _copy_attrs(obj, d)


def _copy_attrs(src, dst, skip=()) -> None:
    """Every attribute but the dimension-scale references, with its exact
    HDF5 type (netCDF readers check CLASS's string type)."""
    from h5py import h5a
    for name in src.attrs:
        if name in _REF_ATTRS or name in skip:
            continue
        aid = src.attrs.get_id(name)
        tid, sid = aid.get_type(), aid.get_space()
        buf = np.empty(aid.shape, dtype=aid.dtype)
        aid.read(buf, mtype=aid.get_type() if aid.dtype.kind != "O" else None)
        out = h5a.create(dst.id, name.encode(), tid, sid)
        out.write(buf, mtype=tid if aid.dtype.kind != "O" else None)


def _copy_ref_attrs(src, dst) -> None:
    """The dimension-scale references of every object, translated by name
    to the new file's objects (an object reference is only valid in its
    own file)."""
    import h5py

    def visit(name, obj):
        for attr in _REF_ATTRS:
            if attr not in obj.attrs:
                continue
            target = dst[name]
            value = obj.attrs[attr]
            dtype = obj.attrs.get_id(attr).dtype
            if attr == "DIMENSION_LIST":
                refs = np.empty(len(value), dtype=object)
                for i, lst in enumerate(value):
                    refs[i] = np.array([dst[src[r].name].ref for r in lst], dtype=h5py.ref_dtype)
                target.attrs.create(attr, refs, dtype=h5py.vlen_dtype(h5py.ref_dtype))
            else:
                new = np.empty(value.shape, dtype=dtype)
                for i, row in enumerate(value):
                    new[i] = (dst[src[row[0]].name].ref, row[1])
                target.attrs.create(attr, new, dtype=dtype)
    src.visititems(visit)


# -- the session's state -----------------------------------------------------------
def analysis_key(a) -> str:
    """How a checkpoint names an analysis: its kind and name, which a
    config may keep while adding analyses before it (its index moves)."""
    return f"{a.kind} {a.name}"


def _stateful(session) -> list:
    out = []
    for a in session.analyses:
        # bound followers: windows, climatologies, and the per-point kinds'
        # companions (spell, pointwise: insitu/analyses/perpoint.py)
        if hasattr(a, "state") and hasattr(a, "source"):
            out.append(a)
    return out


def collect(session, step: int) -> tuple[dict, dict]:
    """The session's state at ``step``: JSON metadata (the same on every
    rank) and the arrays (name -> :class:`StateArray`), the replicated
    ones packed into one vector ``replicated``."""
    arrays: dict = {}
    layout: dict = {}
    flat: list = []
    offset = 0
    # Distributed arrays of one trailing shape share one dataset, stacked
    # along its first axis (48 windows over a zonal mean: one dataset, not
    # 48 collective creations, each with its collective fill)
    packs: dict = {}
    for a in _stateful(session):
        meta, arrs = a.state()
        lay = {}
        for name, sa in arrs.items():
            if sa.distributed:
                trail = tuple(sa.shape[1:])
                key = trail if PACK else len(packs)
                if key not in packs:
                    packs[key] = (f"d{len(packs)}", StateArray((0, *trail), [], True, []))
                dname, pack = packs[key]
                off, n = pack.shape[0], int(sa.shape[0])
                pack.shape = (off + n, *trail)
                if sa.value is not None:
                    start, values = sa.value
                    pack.value.append(((off + start[0], *start[1:]), values))
                if sa.copy_from is not None:
                    pack.copy_from.append((off, sa.copy_from))
                lay[name] = ["d", dname, off, n]
            else:
                v = np.asarray(sa.value, dtype=np.float64)
                lay[name] = ["r", offset, list(v.shape)]
                flat.append(v.ravel())
                offset += v.size
        layout[analysis_key(a)] = {"meta": meta, "arrays": lay}
    arrays.update(packs.values())
    arrays["replicated"] = StateArray((offset,), np.concatenate(flat) if flat else
                                      np.zeros(0))
    last = session.last_call
    writer = session.writer
    meta = {
        "format": FORMAT, "step": int(step),
        "time": float(last[1]) if last is not None and last[0] == step else None,
        "rows": {k: int(v) for k, v in getattr(writer, "written", {}).items()},
        "config": comparable_config(session.cfg), "config_hash": config_hash(session.cfg),
        "ranks": int(session.comm.size),
        "analyses": layout,
        "triggers": {t["cfg"]["name"]: int(t["fired"]) for t in session.triggers},
        "trigger_events": list(getattr(session, "trigger_events", [])),
        "errors": list(session.errors),
        "disabled": [[analysis_key(a), int(session.disabled[a.index])]
                     for a in session.analyses if a.index in session.disabled],
        "steps_written": int(session.steps_written),
        "datasets": sorted(arrays),
    }
    return meta, arrays


class _Rows:
    """Rows ``off:off + n`` of a stacked dataset, sliced lazily (an
    analysis reads only the hyperslab of its own piece)."""

    def __init__(self, ds, off: int, n: int) -> None:
        self.ds, self.off, self.n = ds, int(off), int(n)

    @property
    def shape(self) -> tuple:
        return (self.n, *self.ds.shape[1:])

    def __getitem__(self, sel):
        if sel is Ellipsis:
            sel = (slice(None),)
        sel = sel if isinstance(sel, tuple) else (sel,)
        first = sel[0]
        if not isinstance(first, slice):
            raise IndexError("a checkpoint's stacked rows are read by slices")
        start, stop, step = first.indices(self.n)
        return self.ds[(slice(self.off + start, self.off + stop, step), *sel[1:])]


def apply(session, meta: dict, group) -> None:
    """Restore the session's state from a checkpoint's ``meta`` and its
    arrays in ``group`` (an h5py group of the open output file, read by
    every rank independently, or a mapping of arrays).  Analyses the
    checkpoint does not know are new: they start empty."""
    replicated = np.asarray(group["replicated"][...], dtype=np.float64)
    by_key = {analysis_key(a): a for a in _stateful(session)}
    for key, entry in meta["analyses"].items():
        a = by_key.get(key)
        if a is None:
            raise RestartError(f"restart: the checkpoint holds the state of {key!r}, which "
                               "the config no longer has")
        arrays = {}
        for name, where in entry["arrays"].items():
            if where[0] == "r":
                off, shape = where[1], tuple(where[2])
                n = int(np.prod(shape, dtype=np.int64))
                arrays[name] = replicated[off:off + n].reshape(shape)
            else:
                arrays[name] = _Rows(group[where[1]], where[2], where[3])
        a.restore(entry["meta"], arrays)
    for t in session.triggers:
        t["fired"] = int(meta["triggers"].get(t["cfg"]["name"], 0))
    session.trigger_events = list(meta["trigger_events"])
    session.errors = list(meta["errors"])
    keys = {analysis_key(a): a for a in session.analyses}
    session.disabled = {keys[k].index: s for k, s in meta["disabled"] if k in keys}
    session.steps_written = int(meta["steps_written"])
    attrs = {}
    if session.trigger_events:
        attrs["insitu_triggers"] = session.trigger_events
    if session.errors:
        attrs["insitu_errors"] = session.errors
    if attrs:
        session.writer.set_attrs(attrs)
