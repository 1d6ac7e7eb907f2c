"""The Python entry points.  The C ABI (via :mod:`insitu.cabi`) and the
Python stand-in models call exactly these functions: one code path.

They hold the one piece of global state insitu has, the current
:class:`~insitu.session.Session`.

Threads: a process has one session, owned by the thread that called
:func:`init`.  Every later call (declare, expose, step, finalize, and
:func:`session`) must come from that thread; a call from another thread
raises :class:`~insitu.session.StateError` naming both threads, before any
MPI call.  The session's collectives must be made in the same order on
every rank, which one thread per rank guarantees and several do not, and
under ``MPI_THREAD_SINGLE`` or ``MPI_THREAD_FUNNELED`` (what a Fortran
``MPI_Init`` gives) MPI may only be called from the main thread at all: so
:func:`init` itself is refused off the main thread below
``MPI_THREAD_SERIALIZED``.  The C ABI goes through these functions, so a
C or Fortran host that calls insitu from an OpenMP or pthread worker gets
``INSITU_ERR_STATE`` with the same message (``insitu_expose`` only records
a pointer in C and is not checked).  Fake ranks (tests) are threads by
design and are exempt: each keeps its own session.
"""
from __future__ import annotations

import os
import threading
from _thread import get_ident as _get_ident
from typing import Optional, Union

import numpy as np

from . import options
from .comm import BaseComm, FakeComm, MPIComm
from .launcher import check_mpi_launch
from .log import setup as _setup_logging
from .session import Session, StateError

#: The process's session.  A real process is one MPI rank with one session.
_session: Optional[Session] = None


class _FakeSessions(threading.local):
    """Fake ranks (tests) are threads of one process: each keeps its own
    session.  The class default lets a thread without one find None with
    no AttributeError (a bare threading.local raises one: 0.3 us a call)."""
    session: Optional[Session] = None


_fake = _FakeSessions()
#: True once any fake rank has opened a session: until then (every real
#: process) :func:`session` skips the thread-local lookup (0.2 us a call)
_fakes_used = False


#: ``(ident, name)`` of the thread that opened ``_session``.
_owner: Optional[tuple] = None


def _thread_label(ident: int, name: str) -> str:
    return f"thread {name!r} (ident {ident})"


def _check_thread(call: Optional[str]) -> None:
    """Refuse a call on the process's session from a thread that does not own it."""
    if _owner is None or threading.get_ident() == _owner[0]:
        return
    me = _thread_label(threading.get_ident(), threading.current_thread().name)
    raise StateError(
        f"{'insitu.' + call if call else 'insitu'} called from {me}, but the "
        f"session was opened by {_thread_label(*_owner)}: every insitu call must come from "
        f"the thread that called init (one session per process; its collectives must be made "
        f"in order by one thread)")


def _current(call: Optional[str] = None) -> Optional[Session]:
    fake = _fake.session
    if fake is not None:
        return fake
    if _session is not None and not _session.closed:
        _check_thread(call)
    return _session


def _set_current(s: Optional[Session], comm) -> None:
    global _session, _owner, _fakes_used
    if isinstance(comm, FakeComm):
        _fakes_used = True
        _fake.session = s
    else:
        _session = s
        _owner = None if s is None else (threading.get_ident(), threading.current_thread().name)


def _check_init_thread(comm) -> None:
    """Below MPI_THREAD_SERIALIZED only the main thread may call MPI: refuse
    init elsewhere, before the communicator is duplicated."""
    if isinstance(comm, FakeComm) or not (isinstance(comm, MPIComm) or hasattr(comm, "Dup")):
        return
    from mpi4py import MPI
    if MPI.Is_initialized() and not MPI.Is_finalized() \
            and MPI.Query_thread() < MPI.THREAD_SERIALIZED and not MPI.Is_thread_main():
        level = {MPI.THREAD_SINGLE: "MPI_THREAD_SINGLE",
                 MPI.THREAD_FUNNELED: "MPI_THREAD_FUNNELED"}.get(MPI.Query_thread(),
                                                              str(MPI.Query_thread()))
        me = threading.current_thread()
        raise StateError(
            f"insitu.init called from {_thread_label(threading.get_ident(), me.name)}, which is "
            f"not MPI's main thread: under {level} only the thread that initialised MPI may "
            f"make MPI calls; call insitu from that thread")


def init(comm=None, config: Union[str, os.PathLike, dict] = None, *,
         output: Optional[str] = None, overwrite: Optional[bool] = None,
         host: str = "python", writer_cls=None, restart=None) -> Session:
    """Open the session (collective).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or BaseComm, optional
        The model's communicator.  An mpi4py communicator is duplicated, so
        insitu's messages never mix with the model's.  Default: COMM_WORLD.
    config : path or dict
        The YAML config (a path) or an already-parsed mapping.
    output, overwrite
        Override ``output.path`` and ``output.overwrite`` (the CLI's flags).
    restart : bool or int, optional
        Go on from a checkpoint in the existing output file (docs/restart.md):
        True takes the latest, an int the latest at or before that model
        step.  Default: ``output.restart`` of the config.
    """
    current = _current("init")
    if current is not None and not current.closed:
        raise StateError("init called while a session is open (double init)")
    if config is None:
        raise options.ConfigError("init needs a config (a YAML path or a mapping)")
    cfg = dict(options.parse(config)) if isinstance(config, dict) else options.load(config)
    if comm is None:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    _check_init_thread(comm)
    check_mpi_launch(comm)  # N singletons would each write the same file: refuse first
    if not isinstance(comm, BaseComm):
        comm = MPIComm(comm.Dup(), owned=True)
    _setup_logging(comm.rank, cfg["log_level"])
    try:
        s = Session(comm, cfg, output=output, overwrite=overwrite, host=host,
                    writer_cls=writer_cls, restart=restart)
    except BaseException:
        comm.free()
        raise
    _set_current(s, comm)
    return s


def session(call: Optional[str] = None) -> Session:
    """The open session; StateError if there is none, or if this thread did
    not open it.

    On the path of every expose and step, so it is written for speed (the
    handoff's budget is 1 us per field): what :func:`_current` and
    :func:`_check_thread` do, with one ``get_ident`` (and one thread-local
    lookup once fake ranks exist)."""
    s = _fake.session if _fakes_used else None
    if s is None:
        s = _session
        if s is None or s.closed:
            raise StateError("no open insitu session: call init first")
        if _owner is not None and _get_ident() != _owner[0]:
            _check_thread(call)  # raises, naming both threads
        return s
    if s.closed:
        raise StateError("no open insitu session: call init first")
    return s


def declare_field(name: str, dtype, global_shape, offset, local_shape,
                  halo_lo=None, halo_hi=None, order="C") -> int:
    """Declare a field (collective); see ``insitu_declare_field`` in insitu.h."""
    return session("declare_field").declare(name, dtype, global_shape, offset, local_shape,
                             halo_lo, halo_hi, order)


def expose(name: str, array: np.ndarray) -> np.ndarray:
    """Hand the field's current local array (halos included) to insitu; no copy."""
    s = session("expose")
    slot = s.slots.get(name)  # Session.expose, one call less on the handoff's path
    if slot is None:
        return s.expose(name, array)  # raises, naming the declared fields
    return slot.bind_array(array, s.comm.rank)


def step(step: int, time: float = 0.0, results: bool = True):
    """Run the analyses due at ``step`` (collective); return their results:
    a dict, or with ``results=False`` a read-only mapping whose dict is made
    only if it is read (what libinsitu's step does, insitu.step_values)."""
    return session("step").step(step, time, results)


def checkpoint(step: int) -> None:
    """Store the analysis state at ``step`` in the output file (collective);
    a restart goes on from it (docs/restart.md)."""
    session("checkpoint").checkpoint(step)


def finalize() -> None:
    """Close the output and free insitu's communicators (collective)."""
    s = session("finalize")
    try:
        s.finalize()
    finally:
        _set_current(None, s.comm)
