"""The Python entry points.  The C ABI (via :mod:`insitu.cabi`) and the
Python stand-in models call exactly these functions: one code path.

They hold the one piece of global state insitu has, the current
:class:`~insitu.session.Session`.
"""
from __future__ import annotations

import os
import threading
from typing import Optional, Union

import numpy as np

from . import options
from .comm import BaseComm, FakeComm, MPIComm
from .log import setup as _setup_logging
from .session import Session, StateError

#: The process's session.  A real process is one MPI rank with one session.
_session: Optional[Session] = None
#: Fake ranks (tests) are threads of one process: each keeps its own session.
_fake = threading.local()


def _current() -> Optional[Session]:
    return getattr(_fake, "session", None) or _session


def _set_current(s: Optional[Session], comm) -> None:
    global _session
    if isinstance(comm, FakeComm):
        _fake.session = s
    else:
        _session = s


def init(comm=None, config: Union[str, os.PathLike, dict] = None, *,
         output: Optional[str] = None, overwrite: Optional[bool] = None,
         host: str = "python", writer_cls=None) -> Session:
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
    """
    current = _current()
    if current is not None and not current.closed:
        raise StateError("init called while a session is open (double init)")
    if config is None:
        raise options.ConfigError("init needs a config (a YAML path or a mapping)")
    cfg = dict(options.parse(config)) if isinstance(config, dict) else options.load(config)
    if comm is None:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    if not isinstance(comm, BaseComm):
        comm = MPIComm(comm.Dup(), owned=True)
    _setup_logging(comm.rank, cfg["log_level"])
    try:
        s = Session(comm, cfg, output=output, overwrite=overwrite, host=host,
                    writer_cls=writer_cls)
    except BaseException:
        comm.free()
        raise
    _set_current(s, comm)
    return s


def session() -> Session:
    """The open session; StateError if there is none."""
    s = _current()
    if s is None or s.closed:
        raise StateError("no open insitu session: call init first")
    return s


def declare_field(name: str, dtype, global_shape, offset, local_shape,
                  halo_lo=None, halo_hi=None, order="C") -> int:
    """Declare a field (collective); see ``insitu_declare_field`` in insitu.h."""
    return session().declare(name, dtype, global_shape, offset, local_shape,
                             halo_lo, halo_hi, order)


def expose(name: str, array: np.ndarray) -> np.ndarray:
    """Hand the field's current local array (halos included) to insitu; no copy."""
    return session().expose(name, array)


def step(step: int, time: float = 0.0) -> dict:
    """Run the analyses due at ``step`` (collective)."""
    return session().step(step, time)


def finalize() -> None:
    """Close the output and free insitu's communicators (collective)."""
    s = session()
    try:
        s.finalize()
    finally:
        _set_current(None, s.comm)
