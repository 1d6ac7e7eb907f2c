"""The Python half of the C ABI, run inside libinsitu's embedded interpreter.

libinsitu's C wrappers (``fortran_shim/libinsitu.c``) check what they can
in C, then call the ``_insitu_py_*`` functions defined here, which call
:mod:`insitu.api`: the same entry points the Python stand-in models use.

Status codes cross the boundary offset by :data:`OFFSET`.  cffi makes every
export return 0 when the embedded interpreter failed to start, so 0 must
never mean success; the C side maps 0 to ``INSITU_ERR_PYTHON``.
"""
from __future__ import annotations

import functools
import logging
import traceback

OFFSET = 100
OK, ERR, ERR_STATE = 0, 1, 3

log = logging.getLogger("insitu")


def install(ffi, lib) -> None:
    """Define the embedded exports on ``ffi`` (called by the cffi init code)."""
    import mpi4py
    mpi4py.rc.initialize = False  # the host owns MPI
    mpi4py.rc.finalize = False
    import numpy as np

    from . import api
    from .comm import MPIComm
    from .fields import MAX_NDIM
    from .session import StateError

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
    def _insitu_py_init(fcomm, config_path):
        path = ffi.string(config_path).decode()
        comm = MPIComm.from_fortran(int(fcomm))
        try:
            api.init(comm, path, host="C/Fortran")
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

    def bind_pointers(session):
        # The C side stored each exposed address; rebind only what moved.
        for slot in session.slots.values():
            address = int(lib._insitu_field_address(slot.index))
            if address != slot.address:
                if address == 0:
                    slot.view, slot.address = None, 0
                    continue
                nbytes = slot.spec.nbytes
                flat = np.frombuffer(ffi.buffer(ffi.cast("char *", address), nbytes),
                                     dtype=slot.spec.dtype)
                slot.bind(address, flat)

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_step(step, time):
        s = api.session()
        bind_pointers(s)
        s.step(int(step), float(time))

    @ffi.def_extern(error=OFFSET + ERR)
    @guarded
    def _insitu_py_finalize():
        api.finalize()
