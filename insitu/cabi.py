"""The Python half of the C ABI, run inside libinsitu's embedded interpreter.

libinsitu's C wrappers (``fortran_shim/libinsitu.c``) check what they can
in C, then call the ``_insitu_py_*`` functions defined here, which call
:mod:`insitu.api`: the same entry points the Python stand-in models use.

Status codes cross the boundary offset by :data:`OFFSET`.  cffi makes every
export return 0 when the embedded interpreter failed to start, so 0 must
never mean success; the C side maps 0 to ``INSITU_ERR_PYTHON``.

What C keeps so that most calls never reach this module (issue 12):

* the exposed addresses, and which of them moved since Python last looked
  (``insitu_step`` says whether any did, and only then :func:`bind_moved`
  asks which, and each moved field's view comes from its cache,
  :meth:`insitu.fields.FieldSlot.bind_address`: right after the model's
  step even a call into C that finds nothing costs about 9 us);
* the session's cadence (:func:`push_cadence`), so that ``insitu_step``
  returns in C, with no Python and no MPI, when nothing is due.
"""
from __future__ import annotations

import functools
import logging
import traceback

OFFSET = 100
OK, ERR, ERR_STATE = 0, 1, 3
#: INSITU_MAX_FIELDS in insitu.h
FIELDS_MAX = 256

log = logging.getLogger("insitu")

#: libinsitu's cffi module, set by :func:`install`
_ffi = _lib = None
#: what libinsitu holds: the cadence pushed (None: unknown, as libinsitu
#: starts each session) and the session's slots in declaration order
_held = {"cadence": None, "cadence_of": None, "session": None, "slots": []}
_moved = {}  # the arrays _insitu_moved fills, made once


def _wrap(address: int, nbytes: int, dtype):
    """The model's memory at ``address`` as a flat numpy array, no copy."""
    import numpy as np
    return np.frombuffer(_ffi.buffer(_ffi.cast("char *", address), nbytes), dtype=dtype)


def bind_moved(session) -> int:
    """Rebind the fields whose address changed since the last step that
    entered Python (libinsitu keeps the table and says which moved): one
    call into C, then a view from each moved field's cache.  Returns how
    many moved."""
    index, address = _moved["index"], _moved["address"]
    n = _lib._insitu_moved(index, address)
    if not n:
        return 0
    slots = _held["slots"]
    if _held["session"] is not session or len(slots) != len(session.slots):
        slots = _held["slots"] = list(session.slots.values())
        _held["session"] = session
    try:
        for i, a in zip(_ffi.unpack(index, n), _ffi.unpack(address, n)):
            slots[i].bind_address(a, _wrap)
    except BaseException:
        _lib._insitu_forget_moved()  # report every field again next time
        raise
    return n


def push_cadence(session) -> None:
    """Give libinsitu the cadence Python decides by, when it changed (after
    the first step binds the analyses; after on_error: skip disables one),
    so that its insitu_step skips idle steps in C."""
    cadence = session.cadence()
    if cadence is _held["cadence_of"]:  # the common case: one identity test
        return
    table = cadence.c_table()
    if table != _held["cadence"]:
        if table is None:
            _lib._insitu_set_cadence(_ffi.NULL, -1)
        else:
            _lib._insitu_set_cadence(_ffi.new("int64_t[]", list(table)), len(table))
        _held["cadence"] = table
    _held["cadence_of"] = cadence  # the session makes a new one when it changes


def _forget() -> None:
    _held.update(cadence=None, cadence_of=None, session=None, slots=[])


def install(ffi, lib) -> None:
    """Define the embedded exports on ``ffi`` (called by the cffi init code)."""
    global _ffi, _lib
    import mpi4py
    mpi4py.rc.initialize = False  # the host owns MPI
    mpi4py.rc.finalize = False

    from . import api
    from .comm import MPIComm
    from .fields import MAX_NDIM
    from .session import StateError

    _ffi, _lib = ffi, lib
    _moved.update(index=ffi.new("int[]", FIELDS_MAX),
                  address=ffi.new("uintptr_t[]", FIELDS_MAX))

    def guarded(fn):
        name = fn.__name__.replace("_insitu_py_", "insitu_")

        @functools.wraps(fn)
        def wrapper(*args):
            try:
                fn(*args)
                return OFFSET + OK
            except StateError as exc:
                log.error("%s: %s", name, exc)
                lib._insitu_set_error(f"{name}: {exc}".encode())
                return OFFSET + ERR_STATE
            except Exception as exc:  # noqa: BLE001 - every error goes to the caller
                # Logged once, as one line (the caller holds the status and
                # decides); an unexpected exception's traceback goes into
                # insitu_last_error(), never onto stderr.
                msg = f"{name}: {exc}"
                log.error("%s", msg)
                if not isinstance(exc, (ValueError, OSError)):
                    msg += "\n" + "".join(traceback.format_exception(exc))
                lib._insitu_set_error(msg.encode(errors="replace"))
                return OFFSET + ERR
        return wrapper

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_init(fcomm, config_path, restart_step):
        path = ffi.string(config_path).decode()
        comm = MPIComm.from_fortran(int(fcomm))
        _forget()  # libinsitu starts each session with no cadence
        # -2: no restart (insitu_init); -1: the latest checkpoint; else the
        # latest at or before the model's restart step (insitu_init_restart)
        restart = None if restart_step == -2 else True if restart_step == -1 \
            else int(restart_step)
        try:
            api.init(comm, path, host="C/Fortran", restart=restart)
        except BaseException:
            comm.free()
            raise
        lib._insitu_set_rank(comm.rank)

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_declare(name, dtype, ndim, gshape, offset, lshape, hlo, hhi, order):
        nd = int(ndim)
        if not 1 <= nd <= MAX_NDIM:
            raise ValueError(f"field {ffi.string(name).decode()!r}: rank {nd} is not "
                             f"supported (1 to {MAX_NDIM})")
        index = api.declare_field(
            ffi.string(name).decode(), int(dtype), list(gshape[0:nd]), list(offset[0:nd]),
            list(lshape[0:nd]), list(hlo[0:nd]), list(hhi[0:nd]), int(order))
        assert index == lib._insitu_field_count(), "C and Python field tables diverged"

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_step(step, time, moved):
        s = api.session()
        if moved:  # libinsitu saw an address change since Python last looked
            bind_moved(s)
        try:
            # the results stay packed: libinsitu's caller never reads them
            # (insitu.step_values), and the writer keeps them as they are
            s.step(int(step), float(time), results=False)
        finally:
            push_cadence(s)

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_checkpoint(step):
        s = api.session("checkpoint")
        last_step, last_time = ffi.new("int64_t *"), ffi.new("double *")
        if lib._insitu_take_idle(last_step, last_time):
            # steps that returned in C since Python last saw one: the
            # checkpoint records the time of the last step handed over
            s.last_call = (int(last_step[0]), float(last_time[0]))
        api.checkpoint(int(step))

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_finalize():
        s = api.session("finalize")
        last_step, last_time = ffi.new("int64_t *"), ffi.new("double *")
        if lib._insitu_take_idle(last_step, last_time):
            # The model's last steps returned in C: the session's record of
            # the last step handed over (where period windows end) is this.
            s.last_call = (int(last_step[0]), float(last_time[0]))
        _forget()
        api.finalize()
