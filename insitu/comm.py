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


def _make_record_op(MPI) -> tuple:
    """``(op, "")``: a new compiled record operation (insitu.mpi_op), or
    ``(None, why)`` where this process cannot make one (logged at DEBUG)."""
    try:
        from . import mpi_op
        return mpi_op.create(MPI), ""
    except Exception as exc:  # noqa: BLE001 - any failure: the Python op
        why = f"{type(exc).__name__}: {exc}"
        log.debug("the compiled MPI operation of the step's record could not be made (%s)", why)
        return None, why


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
        self._compiled_op = None  # made before the ranks agree on the record's op
        self._compiled_why = ""   # why it could not be made, if it could not
        #: whether every rank combines message plans with the compiled op:
        #: None until the ranks agreed (:meth:`_agree_on_op`), then the same
        #: on every rank for the communicator's life
        self._all_compiled: Optional[bool] = None
        #: the error every rank raises when some rank forced record_op
        #: "compiled" and some rank has not the op (made at the agreement)
        self._refused: Optional[str] = None
        self.timeout = float(timeout)
        # the handshake's buffers, made once (MPIComm.handshake): the call,
        # its argument, and this rank's two flags of the record's op
        self._hs_send = np.zeros(4, dtype=np.int64)
        self._hs_recv = np.zeros((self.size, 4), dtype=np.int64)

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
        """This rank's compiled record operation (insitu.mpi_op), made once;
        None where it cannot be made (why: DEBUG, once, and
        :attr:`_compiled_why`).  Whether the ranks use it is decided by all
        of them together (:meth:`_agree_on_op`)."""
        if self._compiled_op is None and not self._compiled_why:
            self._compiled_op, self._compiled_why = _make_record_op(self._MPI)
        return self._compiled_op

    def _op_flags(self, op=None, made: bool = False) -> tuple:
        """``(lacks, forced)``: 1 when this rank will not use the compiled
        op (record_op "python", or the op could not be made: ``op``, or
        this communicator's, made here if need be), 1 when record_op is
        "compiled"."""
        if self.record_op == "python":
            return 1, 0
        if not made:
            op = self._compiled()
        return int(op is None), int(self.record_op == "compiled")

    def _why_not(self, why: str) -> str:
        return "record_op='python' there (INSITU_RECORD_OP)" if self.record_op == "python" \
            else why

    def _op_verdict(self, first: int, forced: bool, why: str) -> tuple:
        """``(every rank uses the compiled op, the error every rank raises
        or None)`` after an agreement in which ``first`` is the lowest rank
        without the op (:attr:`size` when none) and ``forced`` says that
        some rank has record_op "compiled".  Every rank calls this after the
        same collective with the same ``first`` and ``forced``, so all reach
        the same verdict.  When it is an error, rank ``first`` broadcasts
        its reason ``why`` (two collectives, on this path only), so that
        every rank's error names the cause, not only the rank that had it."""
        if first >= self.size:
            return True, None
        if not forced:
            log.debug("the step's record is combined by a Python callback on every rank: "
                      "rank %d of %d has not the compiled MPI operation", first, self.size)
            return False, None
        cause = self.bcast_str(why if self.rank == first else None, root=first)
        mine = "this rank" if self.record_op == "compiled" else "another rank"
        return False, (f"record_op='compiled' (INSITU_RECORD_OP) on {mine}, but rank {first} "
                       f"of {self.size} has not the compiled MPI operation ({cause}); every "
                       "rank must combine the step's record with the same operation")

    def _agree_on_op(self) -> None:
        """The ranks' agreement on the record's operation, for a
        communicator whose ranks have not agreed in an earlier collective
        (the session's communicator agrees in its first handshake,
        :meth:`handshake`, a group's in the split that made it,
        :meth:`split`): ONE ``Iallreduce`` (MIN) of two integers, the
        lowest rank without the compiled op and minus "record_op is
        compiled", at the first plan that could use the op.

        MPI requires every rank to pass the same operation to a reduction.
        Deciding alone, a rank where the op could not be made (a numba or
        MPI problem on one node) would pass the Python callback while the
        others pass the compiled op: the same message and the same bits
        (c2f5f90), but outside the standard, with nothing to say that every
        MPI will keep combining such a mix.  Agreed, either every rank uses
        the compiled op or every rank the Python one, and with record_op
        "compiled" every rank raises the same error (none is left waiting
        in a reduction the others never join)."""
        first, forced = self._min_flags(*self._op_flags(),
                                        "the ranks' choice of the record's operation")
        self._all_compiled, self._refused = self._op_verdict(
            first, forced, self._why_not(self._compiled_why))

    def _min_flags(self, lacks: int, forced: int, what: str) -> tuple:
        """``(the lowest rank that lacks the op, or size; whether some rank
        forced record_op "compiled")``: ONE watched ``Iallreduce`` (MIN) of
        this rank's two flags (:meth:`_op_flags`)."""
        flags = np.array([self.rank if lacks else self.size, -forced], dtype=np.int64)
        self.collectives += 1
        self._wait(self.comm.Iallreduce(self._MPI.IN_PLACE, flags, self._MPI.MIN), what)
        return int(flags[0]), bool(flags[1] < 0)

    def _settle_from_table(self, table: np.ndarray) -> None:
        """The agreement from a handshake's table (columns 2 and 3: each
        rank's :meth:`_op_flags`), the same table on every rank."""
        lacking = np.flatnonzero(table[:, 2])
        first = int(lacking[0]) if lacking.size else self.size
        self._all_compiled, self._refused = self._op_verdict(
            first, bool(table[:, 3].any()), self._why_not(self._compiled_why))

    def _op_for(self, plan: ReductionPlan):
        """``(datatype, op, plan, message, buffer attribute)`` for ``plan``,
        made at its first reduction.

        A :class:`ReductionPlan` travels as its
        :attr:`~ReductionPlan.message` (the record's length and slot codes
        before it) and is combined by the compiled operation (insitu.mpi_op:
        MPI calls compiled code, the interpreter is never entered), one per
        communicator for every plan, when every rank has it
        (:meth:`_agree_on_op`); else, or when :attr:`record_op` is "python"
        on some rank, every rank uses a Python callback around
        ``plan.combine`` over the message's record part (the same message
        and the same bits).  With record_op "compiled" and a rank without
        the op, every rank raises the same RuntimeError here.  Anything else
        that quacks like a plan (``record``, ``size``, ``combine``: the
        exact quantiles' candidate lists) sends its record with a Python
        callback on every rank, without an agreement.  Either way the
        message is ONE element of a contiguous type, so the function always
        sees whole records."""
        key = id(plan)
        if key not in self._ops:
            MPI = self._MPI
            attr = "message" if getattr(plan, "message", None) is not None else "record"
            buf = getattr(plan, attr)
            op = None
            if attr == "message":
                if self._all_compiled is None:
                    self._agree_on_op()
                if self._refused is not None:
                    raise RuntimeError(self._refused)
                if self._all_compiled:
                    op = self._compiled_op
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
        call in the step's record and makes this one on a mismatch only).

        Each rank also sends its two flags of the record's operation
        (:meth:`_op_flags`), and the first handshake is the ranks'
        agreement on it (:meth:`_agree_on_op`): every collective session
        call starts with a handshake before the session is bound, so the
        session's communicator agrees there, before its first reduction,
        with no collective of its own (the flags are two more integers
        per rank, in every handshake, so that every handshake has the
        same length whatever the call)."""
        send, recv = self._hs_send, self._hs_recv
        agreeing = self._all_compiled is None
        if agreeing:  # the first handshake carries the record op's flags
            send[2], send[3] = self._op_flags()
        send[0] = kind
        send[1] = arg
        self.collectives += 1
        self._wait(self.comm.Iallgather(send, recv), "an allgather")
        if agreeing:
            self._settle_from_table(recv)
        if recv.tobytes() == send.tobytes() * self.size:
            return None
        calls = recv[:, :2]  # the op's flags may differ between ranks; the calls may not
        if (calls == calls[0]).all():
            return None
        return calls.copy()

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
        """The sub-communicator of the ranks with ``color``, with its own
        record operation, on whose use its ranks have agreed already.

        MPI has no non-blocking split: a watched collective first, so a
        rank that never comes is caught there instead of hanging in Split.
        That collective is the sub-communicators' agreement on the record's
        op (:meth:`_agree_on_op`): each rank makes the op its
        sub-communicator will own before it, and the collective (an
        ``Iallreduce`` MIN of the two flags instead of a barrier; it
        synchronises the same) tells every rank whether every rank of this
        communicator made one.  Every member of a sub-communicator is a
        rank of this one, so its members reach the same verdict (a
        conservative one: a rank without the op in another group makes
        every group use the Python op, as it makes this communicator)."""
        op, why = (None, "") if self.record_op == "python" else _make_record_op(self._MPI)
        try:
            first, forced = self._min_flags(*self._op_flags(op, made=True),
                                            "the barrier before a communicator split")
            verdict = self._op_verdict(first, forced, self._why_not(why))
            self.collectives += 1
            sub = MPIComm(self.comm.Split(int(color), self.rank), owned=True,
                          timeout=self.timeout, record_op=self.record_op)
        except BaseException:
            if op is not None:
                op.Free()
            raise
        sub._compiled_op, sub._compiled_why = op, why
        sub._all_compiled, sub._refused = verdict
        return sub

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
