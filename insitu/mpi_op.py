"""The step record's combine as an MPI operation whose function is compiled.

Every due step makes one collective: an ``Iallreduce`` of the step's record
(:class:`insitu.reduction.ReductionPlan`) with a user-defined operation.
mpi4py's ``MPI.Op.Create`` takes a Python callable, so MPI then calls into
the interpreter for every combine: two ``np.frombuffer`` and a numba
dispatch, which right after a model step (cold caches) cost tens of
microseconds more than the combine itself (a 40-slot record: 64 us against
39 us for ``MPI.SUM`` on the same buffer, issue 12).  Here the function
MPI calls is a numba ``cfunc`` with C's ``MPI_User_function`` signature,
``void (void *in, void *inout, int *len, MPI_Datatype *type)``, that runs
the same compiled :func:`insitu.reduction._combine` (the same operations in
the same order, hence the same bits), and the ``MPI_Op`` is made from its
address by ``MPI_Op_create`` through ctypes, so the combine never enters
Python.

How the function learns the record's layout.  A user function receives
only the two buffers, an element count and the datatype.  It cannot be
compiled per plan (start-up would grow with every configuration, and a
cfunc cached on disk cannot capture a per-process address either), so the
layout travels **in the message**: :attr:`ReductionPlan.message` is
``[n, codes..., record...]``, one float64 buffer owned by the plan, where
``n`` is the record's length, the codes are the plan's slot codes packed as
``int8`` into ``ceil(n / 8)`` doubles, and :attr:`ReductionPlan.record` is
a view of the rest (so every index the analyses use is unchanged).  The
header is the same on every rank (the plans are), MPI copies it like the
record, and the function only reads it.  That costs ``8 + n`` bytes more
per message (48 bytes for a 40-slot record), and nothing per plan.  The
alternative, the codes cached on the datatype with ``MPI_Type_set_attr``,
needs ``MPI_Type_get_attr`` called from the compiled function, i.e. an
MPI symbol's address and a keyval baked into code that is cached on disk
across processes, and a per-MPI handle type (a pointer in Open MPI, an int
in MPICH): more that could go wrong on one MPI and not on the other.

The function trusts that it is called with the message's own datatype (a
contiguous type of the whole message, one element per record): it is made
only by :func:`create` for :class:`insitu.comm.MPIComm`, which uses it with
nothing else.  If the two headers it is handed differ (ranks with different
plans, which an MPI library need not report when the sizes match), it
writes NaN over the record instead of combining slots of different kinds,
so the error shows instead of passing as numbers.

:func:`create` checks the new operation once with ``MPI_Reduce_local`` on
a record of every slot kind against the combine's answer, bit for bit,
before anyone uses it (a wrong handle type or library shows there); if the operation cannot be made or
fails that check, :class:`insitu.comm.MPIComm` keeps the Python callback
(and logs why at DEBUG).
"""
from __future__ import annotations

import ctypes

import numba
import numpy as np
from numba import carray, types

from . import kernels  # noqa: F401 - numba's first load without scipy's BLAS check
from .reduction import _combine

#: ``void (*)(void *in, void *inout, int *len, MPI_Datatype *type)``; the
#: datatype is a pointer to a handle whose size depends on the MPI, and it
#: is not read, so ``void *`` serves both
SIGNATURE = types.void(types.voidptr, types.voidptr, types.CPointer(types.intc), types.voidptr)


@numba.cfunc(SIGNATURE, cache=True)
def user_function(inp, inout, length, datatype):  # pragma: no cover - compiled
    """``inout <- merge(in, inout)`` for ``*length`` messages
    ``[n, codes, record]`` (:mod:`insitu.mpi_op`'s docstring)."""
    count = length[0]
    if count <= 0:
        return
    n = np.int64(carray(inp, 1, np.float64)[0])
    if np.int64(carray(inout, 1, np.float64)[0]) != n:
        return  # different sizes: not ours to read past; MPI's type check
    head = 1 + (n + 7) // 8
    width = head + n
    a_all = carray(inp, count * width, np.float64)
    b_all = carray(inout, count * width, np.float64)
    for k in range(count):
        a = a_all[k * width:(k + 1) * width]
        b = b_all[k * width:(k + 1) * width]
        ha = a[:head].view(np.int64)
        hb = b[:head].view(np.int64)
        same = True
        for j in range(head):
            if ha[j] != hb[j]:
                same = False
        if same:
            _combine(a[head:], b[head:], a.view(np.int8)[8:8 + n])
        else:
            for j in range(head, width):
                b[j] = np.nan


class Unavailable(RuntimeError):
    """The compiled operation cannot be made with this MPI (the reason)."""


def _op_create(MPI):
    """``MPI_Op_create`` of the library mpi4py uses, with its handle type.

    ``ctypes.CDLL`` of mpi4py's own extension module finds the symbol in
    the libmpi it was linked against (a handle's lookup covers the
    object's dependencies), which is the one the host's MPI runs in, also
    when the host is a Fortran program that loaded libinsitu.  An
    ``MPI_Op`` is a pointer in Open MPI and an ``int`` in the MPICH family:
    ``MPI._sizeof(MPI.Op)`` says which (unsigned, as mpi4py's
    ``fromhandle`` takes it)."""
    try:
        lib = ctypes.CDLL(MPI.__file__)
        fn = lib.MPI_Op_create
    except (OSError, AttributeError) as exc:
        raise Unavailable(f"MPI_Op_create not found through {MPI.__file__}: {exc}") from None
    size = MPI._sizeof(MPI.Op)
    handle_t = {8: ctypes.c_uint64, 4: ctypes.c_uint32}.get(size)
    if handle_t is None:
        raise Unavailable(f"an MPI_Op handle of {size} bytes")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(handle_t)]
    fn.restype = ctypes.c_int
    return fn, handle_t


def self_test_message() -> tuple:
    """Two messages with every slot kind and the cases that decide bits
    (signed zeros, NaN, an empty MOMENTS side, an ARGMAX tie), their plan,
    and what the combine makes of them (:data:`SELF_TEST_ANSWER`):
    :func:`create`'s check, and the tests'."""
    from .reduction import ARGMAX, MAX, MIN, MOMENTS, SUM, ReductionPlan
    plan = ReductionPlan()
    for kind in (SUM, MIN, MAX, MOMENTS, ARGMAX, MIN, MAX, MOMENTS, ARGMAX, SUM):
        plan.reserve(kind)
    plan.freeze()
    a, b = plan.message.copy(), plan.message.copy()
    h = plan.message.size - plan.size
    a[h:] = [0.1, -0.0, np.nan, 3.0, 1e8 + 0.5, 2.5, 1e-9, 7.0, 4.0,
             np.nan, 0.0, 0.0, np.nan, 0.0, 0.0, 3.0, 1.0, -2.5]
    b[h:] = [0.2, 0.0, 1.0, 5.0, 1e8 - 0.25, 0.75, -3e-9, 7.0, 2.0,
             0.0, -0.0, 2.0, 1.5, 0.5, 0.0, 3.0, 0.0, np.inf]
    want = b.copy()
    want[h:] = [float.fromhex(x) for x in SELF_TEST_ANSWER]
    return plan, a, b, want


#: ``_combine`` of :func:`self_test_message`'s pair, bit for bit (the min
#: of -0.0 and +0.0 is -0.0, the max +0.0; NaN is ignored; the empty
#: MOMENTS side is the identity; the ARGMAX tie goes to the lower index),
#: as constants, so that :func:`create` does not load ``_combine``'s
#: Python dispatcher (milliseconds at the first due step) to check the
#: compiled function; tests/test_mpi_op.py checks them against ``_combine``
SELF_TEST_ANSWER = (
    "0x1.3333333333334p-2", "-0x0.0p+0", "0x1.0000000000000p+0", "0x1.0000000000000p+3",
    "0x1.7d78400200000p+26", "0x1.1380000c14606p+2", "-0x1.9c511d87483bep-30",
    "0x1.c000000000000p+2", "0x1.0000000000000p+1", "0x0.0p+0", "0x0.0p+0",
    "0x1.0000000000000p+1", "0x1.8000000000000p+0", "0x1.0000000000000p-1", "0x0.0p+0",
    "0x1.8000000000000p+1", "0x0.0p+0", "inf")


def create(MPI):
    """A new ``MPI.Op`` (commutative) whose function is :func:`user_function`,
    checked once by ``MPI_Reduce_local`` on :func:`self_test_message`: raises
    :class:`Unavailable` naming the reason when it cannot be made or gives
    other bits.  The caller frees it (``op.Free()``)."""
    fn, handle_t = _op_create(MPI)
    handle = handle_t()
    rc = fn(ctypes.c_void_p(user_function.address), 1, ctypes.byref(handle))
    if rc != 0:
        raise Unavailable(f"MPI_Op_create returned {rc}")
    op = MPI.Op.fromhandle(handle.value)
    try:
        plan, a, b, want = self_test_message()
        rtype = MPI.DOUBLE.Create_contiguous(a.size).Commit()
        try:
            op.Reduce_local([a, 1, rtype], [b, 1, rtype])
        finally:
            rtype.Free()
        if b.tobytes() != want.tobytes():
            raise Unavailable("the compiled operation's self-test gave other bits than "
                              "the combine's (SELF_TEST_ANSWER)")
    except BaseException as exc:
        op.Free()
        if isinstance(exc, Unavailable):
            raise
        raise Unavailable(f"the compiled operation's self-test failed: {exc!r}") from exc
    return op
