"""The Python entry points.  The C ABI (via :mod:`insitu.cabi`) and the
Python stand-in models call exactly these functions: one code path.

They hold the one piece of global state insitu has, the current
:class:`~insitu.session.Session`.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from . import options
from .comm import BaseComm, MPIComm
from .log import setup as _setup_logging
from .session import Session, StateError

_session: Optional[Session] = None


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
    global _session
    if _session is not None and not _session.closed:
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
        _session = Session(comm, cfg, output=output, overwrite=overwrite, host=host,
                           writer_cls=writer_cls)
    except BaseException:
        comm.free()
        raise
    return _session


def session() -> Session:
    """The open session; StateError if there is none."""
    if _session is None or _session.closed:
        raise StateError("no open insitu session: call init first")
    return _session


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
    global _session
    s = session()
    try:
        s.finalize()
    finally:
        _session = None
