"""The small communicator interface insitu needs, real and fake.

:class:`MPIComm` wraps an mpi4py communicator; :class:`FakeWorld` hosts
``size`` in-process ranks on threads, so unit tests exercise the same session
code without MPI.  The same tests run on both and must agree (see
``tests/test_fake_vs_mpi.py``).

Every data collective goes through numpy buffers (mpi4py's upper-case
methods), never pickled objects, and each one bumps :attr:`collectives` so
benchmarks and tests can count them.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Optional

import numpy as np

from .exits import EXIT_INTERFACE
from .reduction import ReductionPlan


log = logging.getLogger("insitu")

#: how long a collective's wait polls (yielding the core) before it sleeps
SPIN_SECONDS = 0.002
_yield = getattr(os, "sched_yield", lambda: None)


#: the choices of MPIComm's ``record_op`` (and $INSITU_RECORD_OP)
RECORD_OPS = ("auto", "compiled", "python")


def _record_op_choice(value: Optional[str]) -> str:
    """``record_op``, or $INSITU_RECORD_OP, or "auto"; anything else is an
    error naming the variable (a test forcing a path must not silently get
    the other)."""
    where = "record_op"
    if value is None:
        value, where = os.environ.get("INSITU_RECORD_OP") or "auto", "INSITU_RECORD_OP"
    if value not in RECORD_OPS:
        raise ValueError(f"{where}={value!r}: expected one of {', '.join(RECORD_OPS)}")
    return value


class CommError(RuntimeError):
    """A collective could not complete (the fake's equivalent of an abort)."""


class BaseComm:
    rank: int
    size: int

    def __init__(self) -> None:
        self.collectives = 0
        #: which insitu call this rank is in, for the watchdog's message
        self.where = "insitu"
        #: seconds a collective may wait for the other ranks; 0: forever
        self.timeout = 0.0

    # subclasses implement the primitives below --------------------------
    def reduce_record(self, plan: ReductionPlan, what: str = "the step's reduction") -> None:
        """Combine ``plan.record`` across ranks in place (ONE collective).
        ``what`` names it in the watchdog's message: the session's record
        also carries every bound call's handshake (insitu.session)."""
        raise NotImplementedError

    def allgather_int64(self, local: np.ndarray) -> np.ndarray:
        """Gather a small int64 vector from every rank: shape ``(size, n)``."""
        raise NotImplementedError

    def handshake(self, kind: int, arg: int) -> Optional[np.ndarray]:
        """Allgather ``(kind, arg)`` (ONE collective): None when every rank
        sent the same pair, else the ``(size, 2)`` table of what each sent.
        The session's call check before it is bound, and after, on the
        error path only, to name each rank's call once the record's
        handshake slots have disagreed (insitu.session._verdict)."""
        table = self.allgather_int64(np.array([kind, arg], dtype=np.int64))
        return None if (table == table[0]).all() else table

    def allreduce_int64(self, local: np.ndarray, op: str) -> np.ndarray:
        """Element-wise ``op`` ("sum", "max" or "min") of an int64 vector."""
        raise NotImplementedError

    def bcast_bytes(self, data: Optional[bytes], root: int = 0) -> bytes:
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        raise NotImplementedError

    def split(self, color: int) -> "BaseComm":
        """Sub-communicator of the ranks with the same ``color`` (collective)."""
        raise NotImplementedError

    def free(self) -> None:
        pass

    # helpers built on the primitives -------------------------------------
    def bcast_str(self, text: Optional[str], root: int = 0) -> str:
        return self.bcast_bytes(None if text is None else text.encode(), root).decode()


class MPIComm(BaseComm):
    """:class:`BaseComm` over an mpi4py communicator (which it does not own
    unless ``owned``)."""

    def __init__(self, comm, owned: bool = False, timeout: float = 0.0,
                 record_op: Optional[str] = None) -> None:
        super().__init__()
        from mpi4py import MPI
        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._owned = owned
        self._ops: dict[int, tuple] = {}
        #: how the step's record is combined: "compiled", "python" or
        #: "auto" (the compiled operation where it can be made); default
        #: from $INSITU_RECORD_OP (:meth:`_op_for`)
        self.record_op = _record_op_choice(record_op)
        self._compiled_op = None  # made at the first reduction that uses it
        self._compiled_why = ""   # why it could not be made, if it could not
        self.timeout = float(timeout)
        # the handshake's buffers, made once (MPIComm.handshake)
        self._hs_send = np.zeros(2, dtype=np.int64)
        self._hs_recv = np.zeros((self.size, 2), dtype=np.int64)

    def _wait(self, request, what: str) -> None:
        """Complete a non-blocking collective, or end the job if some rank
        has not joined it within :attr:`timeout` seconds.

        A blocking collective that one rank never reaches (it skipped a
        step, called another insitu function, or is stuck in the model)
        waits until the batch system kills the job, with nothing said.
        Polling a non-blocking one against a deadline turns that into a
        message naming the call and the step, and an abort."""
        if not self.timeout:
            request.Wait()
            return
        for _ in range(64):  # the common case: everyone is there already
            if request.Test():
                return
        # Then poll, yielding the core to any other runnable process
        # (oversubscribed ranks, a busy machine), for SPIN_SECONDS: a
        # sleep, however short, costs 60 us or more here (timer slack,
        # and an idle vCPU's wake-up), which a rank a few tens of us late
        # turned into most of a small step's cost (issue 12).  Longer
        # waits (a slow rank, a hang) back off to sleeps of up to 1 ms.
        now = time.monotonic()
        deadline, spin_until = now + self.timeout, now + SPIN_SECONDS
        pause = 2.5e-5
        while not request.Test():
            now = time.monotonic()
            if now < spin_until:
                _yield()
                continue
            if now > deadline:
                self._expire(what)
            pause = min(pause * 2, 1e-3)
            time.sleep(pause)

    def _expire(self, what: str) -> None:
        msg = (f"rank {self.rank} of {self.size} waited {self.timeout:g} s in {self.where} "
               f"({what}) for ranks that never joined: a rank skipped this call, called "
               "another insitu function, stepped to another step, or is stuck or dead "
               "(hang_timeout_seconds; ending the job)")
        log.critical(msg)  # every rank logs CRITICAL (insitu.log)
        time.sleep(min(2.0, self.timeout))  # let the other waiting ranks say where they are
        self.abort(EXIT_INTERFACE)

    @classmethod
    def from_fortran(cls, handle: int) -> "MPIComm":
        """Duplicate the communicator a Fortran host passed as an integer."""
        from mpi4py import MPI
        return cls(MPI.Comm.f2py(handle).Dup(), owned=True)


    def _compiled(self):
        """This communicator's compiled record operation (insitu.mpi_op),
        made once; None where it cannot be made (why: DEBUG, once), which
        :attr:`record_op` "compiled" turns into an error instead."""
        if self._compiled_op is None and not self._compiled_why:
            try:
                from . import mpi_op
                self._compiled_op = mpi_op.create(self._MPI)
            except Exception as exc:  # noqa: BLE001 - any failure: the Python op
                self._compiled_why = f"{type(exc).__name__}: {exc}"
                log.debug("the step's record is combined by a Python callback: the "
                          "compiled MPI operation could not be made (%s)", self._compiled_why)
        if self._compiled_op is None and self.record_op == "compiled":
            raise RuntimeError("record_op='compiled' (INSITU_RECORD_OP): the compiled MPI "
                               f"operation could not be made ({self._compiled_why})")
        return self._compiled_op

    def _op_for(self, plan: ReductionPlan):
        """``(datatype, op, plan, message, buffer attribute)`` for ``plan``,
        made at its first reduction.

        A :class:`ReductionPlan` travels as its
        :attr:`~ReductionPlan.message` (the record's length and slot codes
        before it) and is combined by the compiled operation (insitu.mpi_op:
        MPI calls compiled code, the interpreter is never entered), one per
        communicator for every plan; where that op cannot be made, or
        :attr:`record_op` is "python", by a Python callback around
        ``plan.combine`` over the message's record part.  Both take the
        same message, so a rank that fell back (an MPI or numba problem on
        one node only) still sends what the others expect and computes the
        same bits, instead of a message of another size.  Anything else
        that quacks like a plan (``record``, ``size``, ``combine``: the
        exact quantiles' candidate lists) sends its record with a Python
        callback.  Either way the message is ONE element of a contiguous
        type, so the function always sees whole records."""
        key = id(plan)
        if key not in self._ops:
            MPI = self._MPI
            attr = "message" if getattr(plan, "message", None) is not None else "record"
            buf = getattr(plan, attr)
            op = self._compiled() if attr == "message" and self.record_op != "python" else None
            if op is None:
                combine, frombuffer, f64 = plan.combine, np.frombuffer, np.float64
                head = buf.size - plan.size  # the message's header, if any

                def fn(inbuf, inoutbuf, datatype):
                    combine(frombuffer(inbuf, f64)[head:], frombuffer(inoutbuf, f64)[head:])

                op = MPI.Op.Create(fn, commute=True)
            rtype = MPI.DOUBLE.Create_contiguous(buf.size).Commit()
            # the message, made once: the buffer is the plan's for its life
            self._ops[key] = (rtype, op, plan, [buf, 1, rtype], attr)
        return self._ops[key]

    def reduce_record(self, plan: ReductionPlan, what: str = "the step's reduction") -> None:
        if self.size == 1:
            return
        rtype, op, _, message, attr = self._op_for(plan)
        buf = getattr(plan, attr)
        if message[0] is not buf:  # a plan that made a new record
            message[0] = buf
        self.collectives += 1
        self._wait(self.comm.Iallreduce(self._MPI.IN_PLACE, message, op), what)

    def handshake(self, kind: int, arg: int) -> Optional[np.ndarray]:
        """:meth:`BaseComm.handshake` with buffers made once and the answer
        compared as bytes (it was every due step's first call, right after
        the model's step has swept the caches, where each numpy call on a
        few values cost microseconds: about 80 us there, of which the
        allgather itself 2-30, issue 12; a bound session now checks the
        call in the step's record and makes this one on a mismatch only)."""
        send, recv = self._hs_send, self._hs_recv
        send[0] = kind
        send[1] = arg
        self.collectives += 1
        self._wait(self.comm.Iallgather(send, recv), "an allgather")
        if recv.tobytes() == send.tobytes() * self.size:
            return None
        return recv.copy()

    def allgather_int64(self, local: np.ndarray) -> np.ndarray:
        local = np.ascontiguousarray(local, dtype=np.int64)
        out = np.empty((self.size, local.size), dtype=np.int64)
        self.collectives += 1
        self._wait(self.comm.Iallgather(local, out), "an allgather")
        return out

    def allreduce_int64(self, local: np.ndarray, op: str) -> np.ndarray:
        MPI = self._MPI
        local = np.ascontiguousarray(local, dtype=np.int64)
        out = np.empty_like(local)
        self.collectives += 1
        self._wait(self.comm.Iallreduce(local, out, {"sum": MPI.SUM, "max": MPI.MAX,
                                                     "min": MPI.MIN}[op]),
                   f"an integer {op} reduction")
        return out

    def bcast_bytes(self, data: Optional[bytes], root: int = 0) -> bytes:
        n = np.array([len(data) if self.rank == root else 0], dtype=np.int64)
        self._wait(self.comm.Ibcast(n, root=root), "a broadcast")
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == root \
            else np.empty(int(n[0]), dtype=np.uint8)
        self._wait(self.comm.Ibcast(buf, root=root), "a broadcast")
        self.collectives += 2
        return buf.tobytes()

    def abort(self, code: int = 1) -> None:
        self._MPI.COMM_WORLD.Abort(code)

    def split(self, color: int) -> "MPIComm":
        # MPI has no non-blocking split: a watched barrier first, so a rank
        # that never comes is caught there instead of hanging in Split.
        self.collectives += 1
        self._wait(self.comm.Ibarrier(), "the barrier before a communicator split")
        self.collectives += 1
        return MPIComm(self.comm.Split(int(color), self.rank), owned=True, timeout=self.timeout,
                       record_op=self.record_op)

    def free(self) -> None:
        for rtype, op, _, _, _ in self._ops.values():
            rtype.Free()
            if op is not self._compiled_op:
                op.Free()
        self._ops.clear()
        if self._compiled_op is not None:
            self._compiled_op.Free()
            self._compiled_op = None
        if self._owned and self.comm != self._MPI.COMM_NULL:
            self.comm.Free()
            self._owned = False


class FakeWorld:
    """``size`` fake ranks in one process; run rank code with :meth:`run`.

    Collectives meet at a barrier, and every rank combines the deposited
    buffers in rank order, so results are deterministic.
    """

    def __init__(self, size: int, timeout: float = 60.0) -> None:
        self.size = size
        self._barrier = threading.Barrier(size, timeout=timeout)
        self._slots: list = [None] * size
        #: (rank, code) of every abort: a test can tell an abort from a
        #: barrier that timed out because ranks never met (a hang)
        self.aborted: list = []

    def comm(self, rank: int) -> "FakeComm":
        return FakeComm(self, rank)

    def run(self, fn, *args):
        """Call ``fn(comm, *args)`` on every fake rank; return their results.

        An exception on any rank breaks the barrier (so no rank waits
        forever) and is re-raised here.
        """
        results: list = [None] * self.size
        errors: list = [None] * self.size

        def target(r):
            try:
                results[r] = fn(self.comm(r), *args)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors[r] = exc
                self._barrier.abort()

        threads = [threading.Thread(target=target, args=(r,)) for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Report the root cause, not the ranks that were knocked out of a
        # collective by it.
        secondary = (threading.BrokenBarrierError, CommError)
        first = next((e for e in errors if e is not None and not isinstance(e, secondary)),
                     next((e for e in errors if e is not None), None))
        if isinstance(first, secondary) and self.aborted:
            rank, code = self.aborted[0]
            raise CommError(f"fake rank {rank} aborted with code {code}") from first
        if first is not None:
            raise first
        return results

    def exchange(self, rank: int, value):
        """Deposit ``value``; return every rank's value (one collective)."""
        try:
            self._barrier.wait()
            self._slots[rank] = value
            self._barrier.wait()
            values = list(self._slots)
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise CommError("another fake rank failed during a collective") from None
        return values


class FakeComm(BaseComm):
    def __init__(self, world: FakeWorld, rank: int) -> None:
        super().__init__()
        self.world = world
        self.rank = rank
        self.size = world.size

    def reduce_record(self, plan: ReductionPlan, what: str = "the step's reduction") -> None:
        self.collectives += 1
        records = self.world.exchange(self.rank, plan.record.copy())
        acc = records[0].copy()
        for rec in records[1:]:
            plan.combine(rec, acc)
        plan.record[:] = acc

    def allgather_int64(self, local: np.ndarray) -> np.ndarray:
        self.collectives += 1
        return np.array(self.world.exchange(self.rank, np.asarray(local, np.int64).copy()))

    def allreduce_int64(self, local: np.ndarray, op: str) -> np.ndarray:
        self.collectives += 1
        stack = np.array(self.world.exchange(self.rank, np.asarray(local, np.int64).copy()))
        return {"sum": stack.sum, "max": stack.max, "min": stack.min}[op](axis=0)

    def bcast_bytes(self, data: Optional[bytes], root: int = 0) -> bytes:
        self.collectives += 1
        return self.world.exchange(self.rank, data)[root]

    def abort(self, code: int = 1) -> None:
        self.world.aborted.append((self.rank, code))
        self.world._barrier.abort()
        raise CommError(f"fake rank {self.rank} aborted with code {code}")

    def split(self, color: int) -> "FakeComm":
        self.collectives += 1
        colors = self.world.exchange(self.rank, int(color))
        worlds = None
        if self.rank == 0:
            worlds = {c: FakeWorld(colors.count(c)) for c in set(colors)}
        worlds = self.world.exchange(self.rank, worlds)[0]
        members = [r for r, c in enumerate(colors) if c == color]
        return FakeComm(worlds[int(color)], members.index(self.rank))
