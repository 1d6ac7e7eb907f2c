"""The replay host: archived fields fed through the same ``insitu.api``
calls a live model makes.

A live model declares its fields, exposes its arrays and steps; replay does
exactly that, with what the files say: each replayed variable becomes a
declared field (dims, units, long_name from the files), the dimensions'
coordinates and bounds go into the config's ``coords:`` and the time axis
(units, calendar) into its ``time:``, and each record becomes one step,
whose slab every rank has read (while the previous record was stepped
on) into a buffer it exposes as the step begins.  The session, the
analyses, the reduction and the writer are the live path's, unchanged.

Errors are agreed before anyone acts on them: the ranks scan the files
together and rank 0 checks the whole and broadcasts the verdict; a record
that fails to read on any rank is known to every rank within
``AGREE_EVERY`` records, and always before the output is published (one
small ``Allreduce``), so every rank raises the same :class:`ReplayError`,
with one message and one exit status, and the partial output is removed.
The output is written under a hidden temporary name beside the requested
path and renamed when the replay is complete, durably (:func:`publish`:
the closed file and then its directory are synced): the path only ever
holds a whole replay, and an existing file is only replaced by one.
"""
from __future__ import annotations

import copy
import json
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
from .reader import OpenFile, Prefetcher, SlabReader
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
class Own:
    """Replay's own communicator (a duplicate of the caller's: its
    collectives never mix with the session's or the caller's) and the
    watchdog of every wait on it.

    The session's collectives end the job when a rank waits longer than
    ``hang_timeout_seconds`` for ranks that never join (insitu.comm);
    replay's own waits (rank 0 scanning the inputs or publishing the
    output while the others wait, the record checks) keep the same
    promise: a rank stuck in a file system, or one that left the replay,
    ends the job with a message naming the wait, instead of hanging it
    until the batch system's limit.  ``timeout`` is the default until the
    config is read (the first wait is after it), then the config's."""

    def __init__(self, comm, timeout: float) -> None:
        self.comm = comm
        self.timeout = float(timeout)

    def wait(self, request, what: str) -> None:
        """Complete a non-blocking collective without spinning.

        Open MPI's blocking collectives busy-poll: a rank waiting for rank 0
        (while it plans the scan, or publishes the output) or for a rank that
        was descheduled spent its core polling, and on a loaded machine that
        core is the one the awaited rank needs (the replay's collectives at
        2 ranks took 5 ms of rank 1's CPU per replay of the benchmark archive,
        doing nothing).  A few tests first (the ranks usually arrive
        together: the checks every AGREE_EVERY records), then sleeps that
        double from 50 us to 1 ms, until ``timeout`` seconds (0: forever)."""
        for _ in range(64):
            if request.Test():
                return
        pause = 5e-5
        deadline = time.monotonic() + self.timeout if self.timeout else None
        while not request.Test():
            if deadline is not None and time.monotonic() > deadline:
                self._expire(what)
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)

    def _expire(self, what: str) -> None:
        rank, size = self.comm.Get_rank(), self.comm.Get_size()
        log.critical("replay: rank %d of %d waited %g s in %s for ranks that never "
                     "joined: a rank is stuck (a file system that does not answer) or "
                     "left the replay (hang_timeout_seconds; ending the job)",
                     rank, size, self.timeout, what)
        time.sleep(min(2.0, self.timeout))  # let the other waiting ranks say where they are
        self.comm.Abort(EXIT_INTERFACE)

    # the communicator's own calls, as the replay uses them
    def Get_rank(self) -> int:  # noqa: N802 - mpi4py's names
        return self.comm.Get_rank()

    def Get_size(self) -> int:  # noqa: N802
        return self.comm.Get_size()


#: how text crosses ranks: a path that is not valid UTF-8 (os.fsdecode's
#: surrogates) must travel as its own bytes, not crash the encoding
_ENC = {"encoding": "utf-8", "errors": "surrogateescape"}


def _bcast_text(comm: Own, text: Optional[str], root: int = 0,
                what: str = "a broadcast") -> str:
    data = text.encode(**_ENC) if comm.Get_rank() == root else b""
    n = np.array([len(data)], dtype=np.int64)
    comm.wait(comm.comm.Ibcast(n, root=root), f"{what} (its length)")
    buf = np.frombuffer(data, dtype=np.uint8).copy() if comm.Get_rank() == root else \
        np.empty(int(n[0]), dtype=np.uint8)
    comm.wait(comm.comm.Ibcast(buf, root=root), what)
    return buf.tobytes().decode(**_ENC)


def _agree(comm: Own, error: Optional[str], status: int = EXIT_CONFIG,
           what: str = "an error check") -> None:
    """Raise the same ReplayError on every rank if any rank has an error:
    the lowest failing rank's message and status reach every rank."""
    from mpi4py import MPI
    size = comm.Get_size()
    first = np.array([comm.Get_rank() if error is not None else size], dtype=np.int64)
    comm.wait(comm.comm.Iallreduce(MPI.IN_PLACE, first, op=MPI.MIN), what)
    if first[0] < size:
        root = int(first[0])
        code = np.array([status], dtype=np.int64)
        comm.wait(comm.comm.Ibcast(code, root=root), f"{what} (its status)")
        raise ReplayError(int(code[0]), _bcast_text(comm, error, root=root,
                                                    what=f"{what} (its message)"))


def _on_root(comm: Own, fn, what: str) -> str:
    """``fn()`` on rank 0 alone; its text result, or its error, on every rank.

    An InputError is the inputs' fault (exit 2); anything else is a bug,
    logged with its traceback on rank 0 and reported everywhere (exit 1)
    rather than left to hang the other ranks in the broadcast.

    Two broadcasts: the verdict (0, or the exit status) with the text's
    length, then the text (the result, or the message).  Only rank 0 can
    fail here, so no reduction is needed to agree (it was one more
    collective, each of which waits for a descheduled rank on a loaded
    machine)."""
    text, error, status = None, None, EXIT_CONFIG
    root = comm.Get_rank() == 0
    if root:
        try:
            text = fn()
        except InputError as exc:
            error = f"input error: {exc}"
        except Exception as exc:  # noqa: BLE001 - every rank must hear of it
            log.exception("replay: scanning the inputs failed")
            error, status = f"internal error while scanning the inputs: " \
                            f"{type(exc).__name__}: {exc}", 1
    data = (text if error is None else error).encode(**_ENC) if root else b""
    head = np.array([0 if error is None else status, len(data)], dtype=np.int64)
    comm.wait(comm.comm.Ibcast(head, root=0), f"{what} (rank 0's verdict)")
    buf = np.frombuffer(data, dtype=np.uint8).copy() if root else \
        np.empty(int(head[1]), dtype=np.uint8)
    comm.wait(comm.comm.Ibcast(buf, root=0), f"{what} (rank 0's text)")
    if head[0]:
        raise ReplayError(int(head[0]), buf.tobytes().decode(**_ENC))
    return buf.tobytes().decode(**_ENC)


# -- the config ------------------------------------------------------------
def _load_config(config) -> tuple[dict, str, Optional[str]]:
    """The user's config as raw YAML data, where it came from, and its text
    as the user gave it (the file's; a mapping's as YAML), or None."""
    from ..options import ConfigError, yaml_load
    if isinstance(config, Mapping):
        import yaml
        data = copy.deepcopy(dict(config))
        try:
            text = yaml.safe_dump(data, sort_keys=False)
        except yaml.YAMLError:  # values YAML cannot say: the session dumps its own
            text = None
        return data, "", text
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        data = yaml_load(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    except Exception as exc:  # noqa: BLE001 - yaml's own errors
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top of the config")
    return data, path, text


def _record_user_config(session, text: Optional[str], source: str) -> None:
    """Make the output record the config as the user gave it, as a live run
    with a YAML config records its file's text and path
    (``insitu_config``, ``insitu_config_path``), rather than the session's
    YAML dump of the config replay built: that one holds every coordinate
    value and bound of the files (already in the output as coordinate
    variables), and dumping it cost the first step 16 ms of CPU per rank
    for a 180 x 360 grid with bounds (measured in docs/replay.md).  The
    session takes ``_text``/``_source`` as ``insitu.options.load`` sets
    them; without them it dumps its config, as before."""
    if text is not None:
        session.cfg["_text"] = text
    if source:
        session.cfg["_source"] = os.path.abspath(source)


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


def _sync(path: str, directory: bool = False) -> None:
    """``fdatasync`` a file (its data, and its size if that changed; not
    its times), or ``fsync`` a directory (its entries)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        (os.fsync if directory else os.fdatasync)(fd)
    finally:
        os.close(fd)


def publish(partial: str, final: str) -> None:
    """Give the finished output its name, durably (rank 0, after the
    session closed the file).

    The writer's last durable flush (``H5Fflush``: ``MPI_File_sync`` on
    every rank) commits the rows, but HDF5's close then writes the
    superblock once more (seen with strace: 96 bytes at offset 0 after the
    last fsync), and a rename is an entry in the directory, which is only
    on disk once the directory is synced.  So: ``fdatasync`` the closed
    file (only the page the close wrote is dirty, and no journal commit is
    needed for its times), rename it over ``final``, ``fsync`` the
    directory (one journal commit).  A crash at any point leaves either
    the old ``final`` (and a partial file under the hidden name) or the
    whole new one, never a name that points at an incomplete file; without
    the directory sync a crash just after the rename could bring back the
    old file, or no file, after the replay had reported success."""
    try:
        _sync(partial)
    except OSError as exc:
        raise PublishError(f"cannot sync {partial}: {exc.strerror}", renamed=False) from None
    try:
        os.replace(partial, final)
    except OSError as exc:
        raise PublishError(f"cannot rename {partial} to {final}: {exc.strerror}",
                           renamed=False) from None
    try:
        _sync(os.path.dirname(final) or ".", directory=True)
    except OSError as exc:
        raise PublishError(f"{final} is in place, but syncing its directory failed "
                           f"({exc.strerror}): the new file may not survive a crash",
                           renamed=True) from None


class PublishError(Exception):
    """:func:`publish` failed; ``renamed`` says whether the output already
    has its final name (then the partial file is gone, and the message must
    not say the rename failed: the old output has been replaced)."""

    def __init__(self, message: str, renamed: bool) -> None:
        super().__init__(message)
        self.renamed = renamed


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
        A progress bar on rank 0 (when it has a terminal).

    Raises :class:`ReplayError` (the same on every rank) for bad inputs;
    a :class:`~insitu.options.ConfigError` for a bad config.
    """
    from mpi4py import MPI

    from .. import api
    from ..options import ConfigError

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
    from ..options import CONFIG
    # the watchdog's default until the config is read (the first wait is after)
    own = Own(comm.Dup(), CONFIG.fields["hang_timeout_seconds"].default)
    opened: list = []
    try:
        raw, source, text = _load_config(config)
        final, overwrite = _output(own, raw, source, output, overwrite)
        plan = _scan(own, inputs, variables, start, end, int(every), allow_gaps)
        fields = field_names(plan.sets, variables, _dims(plan))
        boxes = _decompose(plan, fields, own.Get_size(), own.Get_rank())
        partial = _temporary(final)
        session = _open_session(api, comm, replay_config(raw, plan, fields), partial, source)
        _record_user_config(session, text, source)
        try:
            opened += [OpenFile(s) for s in plan.sets]
            readers = _declare(api, plan, fields, boxes, opened)
            _replay_records(api, own, plan, readers, progress)
            for f in opened:
                f.close()
            api.finalize()
        except (ReplayError, ConfigError):  # agreed by every rank: clean up together
            _abandon(api, session, partial, own)
            raise
        problem = None
        if own.Get_rank() == 0:
            try:
                publish(partial, final)
            except PublishError as exc:
                problem = f"output error: {exc}"
                if not exc.renamed:
                    try:  # not renamed: leave no partial file
                        os.unlink(partial)
                    except OSError:
                        pass
        _agree(own, problem, EXIT_OUTPUT, "the output's publication (rank 0 renaming it)")
        seconds = time.perf_counter() - t_start
        total = _record_bytes(plan, fields) * len(plan.times)
        log.info("replayed %d record(s) of %d field(s) from %d file(s) into %s in %.2f s "
                 "(%.3g MB/s read)", len(plan.times), len(fields), plan.files_total, final,
                 seconds, total / seconds / 1e6)
        return Summary(final, [f[0] for f in fields], len(plan.times), plan.files_total,
                       seconds, total)
    finally:
        for f in opened:
            f.close()
        own.comm.Free()


def _output(own, raw: dict, source: str, output, overwrite) -> tuple[str, bool]:
    """The output path and overwrite flag (the user's config is checked
    here, before any file is scanned); an existing output without
    overwrite is refused on every rank."""
    from ..options import ConfigError, parse
    try:
        checked = parse(copy.deepcopy(raw))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
    final = os.path.abspath(output or checked["output"]["path"])
    overwrite = checked["output"]["overwrite"] if overwrite is None else overwrite
    own.timeout = checked["hang_timeout_seconds"]  # the watchdog of replay's own waits
    _agree(own, _output_problem(final, overwrite) if own.Get_rank() == 0 else None,
           what="the output check")
    return final, overwrite


def _dims(plan: Plan) -> set:
    return {d for s in plan.sets for v in s.variables.values() for d in v.dims}


def _gather_text(comm: Own, text: str, what: str, root: int = 0) -> Optional[list]:
    """Every rank's text on ``root`` (a list in rank order; None elsewhere),
    as bytes through ``Gatherv``."""
    data = np.frombuffer(text.encode(**_ENC), dtype=np.uint8)
    counts = np.zeros(comm.Get_size(), dtype=np.int64)
    comm.wait(comm.comm.Igather(np.array([data.size], dtype=np.int64), counts, root=root),
              f"{what} (the lengths)")
    if comm.Get_rank() != root:
        comm.wait(comm.comm.Igatherv(data, None, root=root), what)
        return None
    buf = np.empty(int(counts.sum()), dtype=np.uint8)
    comm.wait(comm.comm.Igatherv(data, [buf, counts.astype(np.int32)], root=root), what)
    ends = np.cumsum(counts)
    return [buf[e - n:e].tobytes().decode() for e, n in zip(ends, counts)]


def _scan(own, inputs, variables, start, end, every, allow_gaps) -> Plan:
    """The plan, scanned by every rank together: rank 0 expands the globs,
    each rank opens every ``size``-th file (opening and reading the
    metadata of a file is most of a scan: 12 files took 0.05 to 0.14 s
    on rank 0 alone while the other ranks waited), and rank 0 orders and
    checks the gathered results.  A file's error travels with its result
    and is raised where the serial scan would meet it, so the verdict and
    its message do not depend on the number of ranks."""
    from .fileset import expand, file_from_json, file_to_json, scan_file
    listing = json.loads(_on_root(own, lambda: json.dumps([expand(p) for _, p in inputs]),
                                  "the scan: rank 0 listing the input files"))
    flat = [(path, k == 0) for paths in listing for k, path in enumerate(paths)]
    mine = {}
    for j in range(own.Get_rank(), len(flat), own.Get_size()):
        try:
            mine[j] = {"ok": file_to_json(scan_file(flat[j][0], variables, flat[j][1]))}
        except InputError as exc:
            mine[j] = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported by rank 0, on every rank
            log.exception("replay: scanning %s failed", flat[j][0])
            mine[j] = {"bug": f"{type(exc).__name__}: {exc}"}
    parts = _gather_text(own, json.dumps(mine), "the scan: gathering each rank's files")

    def plan_on_root() -> str:
        results = {int(j): r for p in parts for j, r in json.loads(p).items()}
        order = iter(range(len(flat)))

        def scanned_file(path, full):
            r = results[next(order)]
            if "error" in r:
                raise InputError(r["error"])
            if "bug" in r:
                raise RuntimeError(r["bug"])
            return file_from_json(r["ok"])
        plan = scan(inputs, variables, start, end, every, allow_gaps, files=listing,
                    scanned_file=scanned_file)
        field_names(plan.sets, variables, _dims(plan))
        return plan.to_json()
    return Plan.from_json(_on_root(own, plan_on_root, "the scan: rank 0 checking the inputs"))


def _decompose(plan: Plan, fields, size: int, rank: int) -> dict:
    """This rank's box of each field (insitu.decomposition.fitted_boxes)."""
    boxes = {}
    for name, i, v in fields:
        var = plan.sets[i].variables[v]
        points = int(np.prod(var.shape, dtype=np.int64))
        if points < size:
            raise ReplayError(EXIT_CONFIG, f"usage error: {name} has {points} points per time "
                              f"step ({dict(zip(var.dims, var.shape))}), too few for {size} "
                              f"ranks; run on at most {points}")
        boxes[name] = fitted_boxes(var.shape, size)[rank]
    return boxes


def _open_session(api, comm, cfg: dict, partial: str, source: str):
    from ..options import ConfigError
    from ..writer import OutputError
    try:
        return api.init(comm, cfg, output=partial, overwrite=True, host="replay")
    except OutputError as exc:
        raise ReplayError(EXIT_CONFIG, f"output error: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None


def _declare(api, plan: Plan, fields, boxes: dict, opened: list) -> list:
    """Declare every field with this rank's box and expose its buffer, once
    (the buffer never moves: each record is read into it)."""
    from ..fields import FieldError
    from ..session import StepError
    readers = []
    for name, i, v in fields:
        var = plan.sets[i].variables[v]
        reader = SlabReader(opened[i], var, boxes[name])
        try:
            api.declare_field(name, reader.buffer.dtype, var.shape, *boxes[name])
        except (FieldError, StepError) as exc:
            raise ReplayError(EXIT_INTERFACE, f"model interface error: {exc}") from None
        api.expose(name, reader.buffer)
        readers.append((reader, plan.sets[i].records, name))
    return readers


def _record_bytes(plan: Plan, fields) -> int:
    """Bytes of one record of every field, all ranks together."""
    return sum(int(np.prod(plan.sets[i].variables[v].shape)) *
               np.dtype(plan.sets[i].variables[v].dtype).itemsize for _, i, v in fields)


#: records between two checks that every rank read every slab (and at the last)
AGREE_EVERY = 16

#: read the next record while the current one is stepped on (False: read
#: each record when it is due; for measuring the difference)
READ_AHEAD = True


def _replay_records(api, own, plan: Plan, readers: list, progress: bool) -> None:
    """Each record: every rank exposes the buffers its slabs were read into
    (by the reader thread, while the previous record was stepped on:
    :class:`.reader.Prefetcher`), then one insitu step.

    A read that fails on some rank must stop every rank, with its message,
    and leave no output; it need not stop them at once.  The failing rank
    fills the buffer with NaN (0 for integers) and steps on, keeping its
    first error; every ``AGREE_EVERY`` records and at the last one, one
    small Allreduce tells every rank whether any rank has failed, and all
    stop together.  The records stepped in between only reach the partial
    output, which is then removed.  Checking at every record cost one more
    synchronisation per step, which is what a loaded machine charges most
    for (measured: 14 ms per record at 2 ranks on 2 busy cores)."""
    from ..progress import Progress
    from ..session import StepError
    bar = Progress(len(plan.times), enabled=progress and own.Get_rank() == 0,
                   stream=_terminal())
    nbytes = sum(r.buffer.nbytes for r, _, _ in readers) * own.Get_size()  # about
    nfiles = max(len(s.files) for s in plan.sets)
    last = len(plan.times) - 1
    error = None
    t0 = time.perf_counter()
    ahead = Prefetcher([(r, records) for r, records, _ in readers], READ_AHEAD)
    try:
        for k, t in enumerate(plan.times):
            error = error or ahead.get(k, last)
            for reader, _, name in readers:
                api.expose(name, reader.buffers[k % 2])
            if k % AGREE_EVERY == AGREE_EVERY - 1 or k == last:
                _agree(own, error, what=f"the read check at record {k + 1}")
            try:
                api.step(k + 1, t, results=False)  # packed, as libinsitu's step
            except StepError as exc:
                raise ReplayError(EXIT_INTERFACE, f"model interface error: {exc}") from None
            if bar.enabled:
                rate = nbytes * (k + 1) / max(time.perf_counter() - t0, 1e-9) / 1e6
                bar.update(k + 1, f"file {readers[0][1][k][0] + 1}/{nfiles} {rate:.3g} MB/s")
    finally:
        ahead.close()
    bar.close()


def _abandon(api, session, partial: str, own) -> None:
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
    own.wait(own.comm.Ibarrier(), "closing an abandoned replay")
    if own.Get_rank() == 0:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
