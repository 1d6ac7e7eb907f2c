"""The replay host: archived fields fed through the same ``insitu.api``
calls a live model makes.

A live model declares its fields, exposes its arrays and steps; replay does
exactly that, with what the files say: each replayed variable becomes a
declared field (dims, units, long_name from the files), the dimensions'
coordinates and bounds go into the config's ``coords:`` and the time axis
(units, calendar) into its ``time:``, and each record becomes one step,
whose slab every rank has just read into the buffer it exposed.  The
session, the analyses, the reduction and the writer are the live path's,
unchanged.

Errors are agreed before anyone acts on them: the file sets are scanned on
rank 0 and the verdict is broadcast; a record that fails to read on any
rank is known to every rank before the step (one small ``Allreduce`` per
record), so every rank raises the same :class:`ReplayError`, with one
message and one exit status, and the partial output is removed.  The output
is written under a hidden temporary name beside the requested path and
renamed when the replay is complete: the path only ever holds a whole
replay, and an existing file is only replaced by one.
"""
from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ..decomposition import fitted_boxes
from ..exits import EXIT_CONFIG, EXIT_INTERFACE, EXIT_OUTPUT
from .fileset import Plan, compact_coord, scan
from .naming import field_names, split_input
from .reader import OpenFile, SlabReader
from .sources import InputError

log = logging.getLogger("insitu")


class ReplayError(Exception):
    """A replay that cannot go on, known to every rank alike: one message,
    one exit status (:mod:`insitu.exits`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Summary:
    """What a replay did (the same on every rank)."""
    output: str
    fields: list
    steps: int
    files: int
    seconds: float
    bytes_read: int     # by every rank together


# -- collectives on the host's own communicator (buffer interface) ---------
def _bcast_text(comm, text: Optional[str], root: int = 0) -> str:
    data = text.encode() if comm.Get_rank() == root else b""
    n = np.array([len(data)], dtype=np.int64)
    comm.Bcast(n, root=root)
    buf = np.frombuffer(data, dtype=np.uint8).copy() if comm.Get_rank() == root else \
        np.empty(int(n[0]), dtype=np.uint8)
    comm.Bcast(buf, root=root)
    return buf.tobytes().decode()


def _agree(comm, error: Optional[str], status: int = EXIT_CONFIG) -> None:
    """Raise the same ReplayError on every rank if any rank has an error:
    the lowest failing rank's message and status reach every rank."""
    from mpi4py import MPI
    size = comm.Get_size()
    first = np.array([comm.Get_rank() if error is not None else size], dtype=np.int64)
    comm.Allreduce(MPI.IN_PLACE, first, op=MPI.MIN)
    if first[0] < size:
        root = int(first[0])
        code = np.array([status], dtype=np.int64)
        comm.Bcast(code, root=root)
        raise ReplayError(int(code[0]), _bcast_text(comm, error, root=root))


def _on_root(comm, fn) -> str:
    """``fn()`` on rank 0 alone; its text result, or its error, on every rank.

    An InputError is the inputs' fault (exit 2); anything else is a bug,
    logged with its traceback on rank 0 and reported everywhere (exit 1)
    rather than left to hang the other ranks in the broadcast."""
    text, error, status = None, None, EXIT_CONFIG
    if comm.Get_rank() == 0:
        try:
            text = fn()
        except InputError as exc:
            error = f"input error: {exc}"
        except Exception as exc:  # noqa: BLE001 - every rank must hear of it
            log.exception("replay: scanning the inputs failed")
            error, status = f"internal error while scanning the inputs: " \
                            f"{type(exc).__name__}: {exc}", 1
    _agree(comm, error, status)
    return _bcast_text(comm, text)


# -- the config ------------------------------------------------------------
def _load_config(config) -> tuple[dict, str]:
    """The user's config as raw YAML data, and where it came from."""
    from ..options import ConfigError, yaml_load
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config)), ""
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml_load(fh.read())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    except Exception as exc:  # noqa: BLE001 - yaml's own errors
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top of the config")
    return data, path


def replay_config(raw: dict, plan: Plan, fields) -> dict:
    """The user's config with what the files say: the time axis, one
    ``fields:`` entry per replayed field (dims, units, long_name; the
    user's units and long_name win, the dims are the file's), and the
    coordinates of every dimension that has them (the file's replace the
    user's for the same dimension)."""
    cfg = copy.deepcopy(raw)
    given_time = cfg.get("time")
    cfg["time"] = {"units": plan.time_units, "calendar": plan.calendar}
    if given_time and given_time != cfg["time"]:
        log.info("replay: the time axis comes from the files (%s, %s); the config's time: is "
                 "not used", plan.time_units, plan.calendar)
    user_fields = dict(cfg.get("fields") or {})
    out_fields = {}
    for name, i, v in fields:
        var = plan.sets[i].variables[v]
        entry = {"units": var.units, "long_name": var.long_name, "dims": list(var.dims)}
        user = dict(user_fields.pop(name, None) or {})
        if "dims" in user and list(user["dims"]) != list(var.dims):
            from ..options import ConfigError
            raise ConfigError(f"fields.{name}.dims: the files give {var.dims}, the config "
                              f"{user['dims']}")
        entry.update({k: val for k, val in user.items() if k != "dims"})
        out_fields[name] = entry
    out_fields.update(user_fields)  # names that are no replayed field: the session says so
    cfg["fields"] = out_fields
    coords = dict(cfg.get("coords") or {})
    coords.update({d: compact_coord(c) for d, c in plan.coords.items()})
    cfg["coords"] = coords
    return cfg


# -- the replay ------------------------------------------------------------
def _inputs(inputs) -> list[tuple[Optional[str], str]]:
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        return [(str(k), os.fspath(v)) for k, v in inputs.items()]
    return [split_input(os.fspath(i)) for i in inputs]


def _terminal():
    """The stream the progress bar goes to: stderr if it is a terminal, else
    stdout if that is (mpiexec gives ranks a terminal on stdout only)."""
    import sys
    for stream in (sys.stderr, sys.stdout):
        if getattr(stream, "isatty", lambda: False)():
            return stream
    return sys.stderr


def _temporary(path: str) -> str:
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{name}.replay-partial")


def _output_problem(path: str, overwrite: bool) -> Optional[str]:
    if os.path.isdir(path):
        return f"config error: output path {path!r} is a directory"
    if os.path.exists(path) and not overwrite:
        return (f"config error: output file {path!r} exists; set output.overwrite: true (or "
                "pass --overwrite) to replace it")
    return None


def run(inputs: Union[str, Sequence[str], Mapping[str, str]],
        variables: Union[str, Sequence[str]],
        config, comm=None, *, output: Optional[str] = None, start: Optional[str] = None,
        end: Optional[str] = None, every: int = 1, allow_gaps: bool = False,
        overwrite: Optional[bool] = None, progress: bool = False) -> Summary:
    """Replay archived files through the config's analyses (collective).

    Parameters
    ----------
    inputs : glob, list of globs, or mapping
        One file set per entry; ``"NAME=GLOB"`` (or a mapping NAME -> GLOB)
        names the set's field.  See :mod:`insitu.replay.naming`.
    variables : str or list of str
        The variables to replay from every set.
    config : path or mapping
        The analyses config, as for a live model.
    comm : mpi4py communicator, optional (default COMM_WORLD)
    output, overwrite
        The output file (default: the config's ``output.path``) and whether
        an existing one may be replaced.
    start, end, every
        Replay the records from ``start`` to ``end`` (dates, in the files'
        calendar; ``end`` inclusive of what it names) and only every
        ``every``-th of them.  Steps are numbered 1, 2, ... over the
        records replayed.
    allow_gaps : bool
        Replay a series with holes in time instead of refusing it.
    progress : bool
        A progress bar on rank 0 (when stderr is a terminal).

    Raises :class:`ReplayError` (the same on every rank) for bad inputs;
    a :class:`~insitu.options.ConfigError` for a bad config.
    """
    from mpi4py import MPI

    from .. import api
    from ..fields import FieldError
    from ..options import ConfigError, parse
    from ..progress import Progress
    from ..session import StepError

    variables = [variables] if isinstance(variables, str) else list(variables)
    inputs = _inputs(inputs)
    if not inputs:
        raise ReplayError(EXIT_CONFIG, "usage error: give at least one --input")
    if not variables or len(set(variables)) != len(variables):
        raise ReplayError(EXIT_CONFIG, "usage error: give each --variable once, at least one")
    if int(every) < 1:
        raise ReplayError(EXIT_CONFIG, f"usage error: --every must be >= 1, got {every}")
    t_start = time.perf_counter()
    comm = MPI.COMM_WORLD if comm is None else comm
    own = comm.Dup()
    rank, size = own.Get_rank(), own.Get_size()
    files_open: list = []
    try:
        raw, source = _load_config(config)
        try:
            checked = parse(copy.deepcopy(raw))  # the user's config, before any scan
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
        final = os.path.abspath(output or checked["output"]["path"])
        overwrite = checked["output"]["overwrite"] if overwrite is None else overwrite
        _agree(own, _output_problem(final, overwrite) if rank == 0 else None)

        def scan_all():
            plan = scan(inputs, variables, start, end, int(every), allow_gaps)
            dims = {d for s in plan.sets for v in s.variables.values() for d in v.dims}
            field_names(plan.sets, variables, dims)  # refuse bad names here, on rank 0
            return plan.to_json()

        plan = Plan.from_json(_on_root(own, scan_all))
        dims = {d for s in plan.sets for v in s.variables.values() for d in v.dims}
        fields = field_names(plan.sets, variables, dims)
        cfg = replay_config(raw, plan, fields)
        boxes = {}
        for name, i, v in fields:
            var = plan.sets[i].variables[v]
            points = int(np.prod(var.shape, dtype=np.int64))
            if points < size:
                raise ReplayError(EXIT_CONFIG, f"usage error: {name} has {points} points per "
                                  f"time step ({dict(zip(var.dims, var.shape))}), too few for "
                                  f"{size} ranks; run on at most {points}")
            boxes[name] = fitted_boxes(var.shape, size)[rank]
        from ..writer import OutputError
        partial = _temporary(final)
        try:
            session = api.init(comm, cfg, output=partial, overwrite=True, host="replay")
        except OutputError as exc:
            raise ReplayError(EXIT_CONFIG, f"output error: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
        try:
            opened = [OpenFile(s) for s in plan.sets]
            files_open += opened
            readers = []
            for name, i, v in fields:
                var = plan.sets[i].variables[v]
                reader = SlabReader(opened[i], var, boxes[name])
                try:
                    api.declare_field(name, reader.buffer.dtype, var.shape, boxes[name][0],
                                      boxes[name][1])
                except (FieldError, StepError) as exc:
                    raise ReplayError(EXIT_INTERFACE, f"model interface error: {exc}") from None
                api.expose(name, reader.buffer)
                readers.append((reader, plan.sets[i].records))
            step_bytes = sum(int(np.prod(plan.sets[i].variables[v].shape)) *
                             np.dtype(plan.sets[i].variables[v].dtype).itemsize
                             for _, i, v in fields)
            bar = Progress(len(plan.times), enabled=progress and rank == 0,
                           stream=_terminal())
            t_loop = time.perf_counter()
            nfiles = max(len(s.files) for s in plan.sets)
            for k, t in enumerate(plan.times):
                error = None
                try:
                    for reader, records in readers:
                        reader.read(*records[k])
                except InputError as exc:
                    error = f"input error: {exc}"
                _agree(own, error)
                try:
                    api.step(k + 1, t)
                except StepError as exc:
                    raise ReplayError(EXIT_INTERFACE, f"model interface error: {exc}") from None
                if bar.enabled:
                    elapsed = max(time.perf_counter() - t_loop, 1e-9)
                    bar.update(k + 1, f"file {readers[0][1][k][0] + 1}/{nfiles} "
                                      f"{step_bytes * (k + 1) / elapsed / 1e6:.3g} MB/s")
            bar.close()
            for f in opened:
                f.close()
            api.finalize()
        except (ReplayError, ConfigError):  # agreed by every rank: clean up together
            _abandon(api, session, partial, rank, own)
            raise
        problem = None
        if rank == 0:
            try:
                os.replace(partial, final)
            except OSError as exc:
                problem = f"output error: cannot rename {partial} to {final}: {exc.strerror}"
        _agree(own, problem, EXIT_OUTPUT)
        seconds = time.perf_counter() - t_start
        total = step_bytes * len(plan.times)
        log.info("replayed %d record(s) of %d field(s) from %d file(s) into %s in %.2f s "
                 "(%.3g MB/s read)", len(plan.times), len(fields), plan.files_total, final,
                 seconds, total / seconds / 1e6)
        return Summary(final, [f[0] for f in fields], len(plan.times), plan.files_total,
                       seconds, total)
    finally:
        for f in files_open:
            f.close()
        own.Free()


def _abandon(api, session, partial: str, rank: int, own) -> None:
    """After an error every rank agreed on: close the session without the
    noise of a half-run (its own warnings would repeat the one message),
    and remove the partial output."""
    if not session.closed:
        logger = logging.getLogger("insitu")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            api.finalize()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        finally:
            logger.setLevel(level)
    own.Barrier()
    if rank == 0:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
