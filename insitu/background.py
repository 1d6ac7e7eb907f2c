"""The background writer (``output.writer: background``): the durable
flush on a thread of its own, so that the model does not wait for HDF5.

The inline writer (:class:`insitu.h5io.H5Writer`) keeps an output step's
rows in memory and, at each durable flush, grows the datasets, writes the
rows, agrees on the committed counts and calls ``H5Fflush`` (an fsync on
every rank) on the model's thread: that is where the model waits.  Here the
model's thread only hands each flush's batch (the very rows the inline
writer keeps, no copy) to a writer thread and goes on.  The file holds the
same values as the inline writer's.

Rules that keep this from hanging or corrupting the file:

* **Every HDF5 call on the file is made on the writer thread**, on every
  rank, in the same order (the order the model's thread hands jobs over,
  which is the program's order, the same on every rank): the file's
  creation (:meth:`define`), every flush, checkpoint, attribute and the
  close.  Debian's HDF5 is not built thread-safe, and parallel HDF5's
  metadata calls are collective.  A read the session makes on the main
  thread (a restart's checkpoint, ``writer.file[...]``) is run on the
  writer thread too, through :class:`_Remote`, and waits for it.
* **The file's collectives run on a duplicate of the session's
  communicator**, made at init on the main thread: two threads must never
  make collectives on one communicator at once.  The model's thread goes
  on with the step's handshake and ``Allreduce`` on the session's.  That
  needs ``MPI_THREAD_MULTIPLE``, checked at init on every rank
  (:func:`check_thread_level`).
* **At most** :data:`DEPTH` **flushes wait** while one is written: a rank
  whose queue is full waits at the end of the output step that hands over
  the next one, so memory stays bounded (about ``DEPTH + 2`` batches of
  rows per rank: one being written, ``DEPTH`` queued, one filling).
* ``flush()`` (a checkpoint's, before ``insitu.state.collect``) and
  ``close()`` wait until every batch handed over is committed: a
  checkpoint's row counts are committed rows, and it is written after them.
* **A failure on the writer thread** (a full disk, any exception) is kept;
  the thread discards the jobs after it, so the model's thread never waits
  for it, and the model's thread raises it as an
  :class:`insitu.layout.OutputError` at its next output step (before the
  step's collective, in :meth:`flush_clock`), while it waits for the
  queue, at a checkpoint or at finalize.  A command-line host then ends
  the job with ``MPI_Abort`` (exit status 5), as it does for the inline
  writer's output errors; other ranks' writer threads, waiting in a
  collective of that flush for the failed one, end with it.  If the
  model's thread has not taken the failure up within
  :data:`GRACE_SECONDS`, the writer thread ends the job itself, with the
  same message and status: the model's thread can be held in a step's
  collective by another rank whose queue is full behind a flush that waits
  for this rank's dead writer thread, and waiting there would hang.  The
  file keeps every step up to the last flush that completed.
* A wait for the writer thread longer than ``hang_timeout_seconds`` ends
  the job, as the session's own collectives do.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
import traceback
from typing import Callable, Optional

from .h5io import H5Writer
from .layout import OutputError, attr_value

log = logging.getLogger("insitu")

#: flushes that may wait while one is being written; a rank with this many
#: queued waits at the next hand-over (docs/output.md: memory)
DEPTH = 1

#: seconds a failure on the writer thread waits for the model's thread to
#: report it (at its next output step) before the writer thread ends the
#: job itself: the model's thread may be held in a step's collective by a
#: rank whose own queue is full behind a flush that waits for this rank's
#: dead writer (module docstring)
GRACE_SECONDS = 5.0

#: MPI's thread levels by value (mpi4py's MPI.THREAD_*; the standard fixes
#: their order, not their values)
_LEVELS = ("MPI_THREAD_SINGLE", "MPI_THREAD_FUNNELED", "MPI_THREAD_SERIALIZED",
           "MPI_THREAD_MULTIPLE")


def thread_level_problem(provided: int, multiple: int, names=None) -> Optional[str]:
    """Why a run whose MPI gives thread level ``provided`` (the lowest of
    any rank) cannot use the background writer, or None (pure: the levels
    come from mpi4py)."""
    if provided >= multiple:
        return None
    name = (names or {}).get(provided, f"level {provided}")
    return (f"output.writer: background needs MPI_THREAD_MULTIPLE (its thread makes the "
            f"file's MPI-IO calls while the model's thread makes insitu's collectives), but "
            f"MPI was initialised with {name}: a Fortran or C host must call "
            "MPI_Init_thread(MPI_THREAD_MULTIPLE, provided) instead of MPI_Init (and check "
            "that provided is MPI_THREAD_MULTIPLE); a Python host must not set "
            "mpi4py.rc.thread_level below 'multiple'; or use output.writer: inline")


def check_thread_level(comm) -> None:
    """Refuse the background writer, on every rank alike, unless every rank
    has ``MPI_THREAD_MULTIPLE`` (collective: one small reduction at init;
    an error found on one rank alone would leave the others waiting)."""
    import numpy as np
    from mpi4py import MPI
    from .options import ConfigError
    lowest = int(comm.allreduce_int64(np.array([MPI.Query_thread()], dtype=np.int64),
                                      "min")[0])
    names = {getattr(MPI, n[4:]): n for n in _LEVELS}
    problem = thread_level_problem(lowest, MPI.THREAD_MULTIPLE, names)
    if problem:
        raise ConfigError(problem)


class _Done:
    """The result of a job the model's thread waits for."""

    __slots__ = ("event", "value", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value = None
        self.error: Optional[BaseException] = None


class WriterThread:
    """One thread that runs jobs in the order they are handed over, from a
    queue of at most :data:`DEPTH` waiting jobs.

    After a job raises, :attr:`failure` holds the exception and every later
    job is discarded (a waiting caller gets the failure), so the model's
    thread never waits for a dead writer."""

    def __init__(self, timeout: float = 0.0, on_stuck: Optional[Callable[[str], None]] = None,
                 depth: int = DEPTH,
                 on_unreported: Optional[Callable[[OutputError], None]] = None) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self.failure: Optional[BaseException] = None
        self.failed_at = None      # what the failed job was (for the message)
        self.timeout = float(timeout)
        self._on_stuck = on_stuck
        self._on_unreported = on_unreported
        self._reported = threading.Event()  # the model's thread took the failure up
        #: what the file keeps, for the failure's message
        self.kept: Callable[[], str] = lambda: "the file keeps the steps of its last flush"
        self.thread = threading.Thread(target=self._run, name="insitu-writer", daemon=True)
        self.thread.start()

    def on_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, what, done = job
            if self.failure is not None:
                if done is not None:
                    done.error = self.failure
                    done.event.set()
                continue
            try:
                value = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - kept for the model's thread
                if done is not None:
                    done.error = exc  # first: the caller raises it as it is
                self.failure, self.failed_at = exc, what
                if not isinstance(exc, OutputError):  # a bug: where
                    log.error("background writer: %s failed:\n%s", what,
                              "".join(traceback.format_exception(exc)))
                if done is not None:
                    self._reported.set()  # the caller waits for it
                    done.event.set()
                elif (not self._reported.wait(GRACE_SECONDS)
                      and self._on_unreported is not None):
                    self._on_unreported(self.error())
                continue
            if done is not None:
                done.value = value
                done.event.set()

    def _wait(self, ready: Callable[[float], bool], what: str) -> None:
        """Wait until ``ready(pause)`` says so, at most :attr:`timeout`
        seconds (0: forever), then end the job through ``on_stuck``."""
        deadline = time.monotonic() + self.timeout if self.timeout else math.inf
        while not ready(0.05):
            self.check()  # a failure while waiting: say it now
            if time.monotonic() > deadline and self._on_stuck is not None:
                self._on_stuck(what)

    def _put(self, job, what: str) -> None:
        def ready(pause):
            try:
                self._jobs.put(job, timeout=pause)
                return True
            except queue.Full:
                return False
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._wait(ready, f"a free place in the queue for {what}")

    def submit(self, fn, *args, what: str = "a job") -> None:
        """Run ``fn(*args)`` on the thread after every job handed over
        before; do not wait for it (only for a place in the queue)."""
        self.check()
        self._put((fn, args, what, None), what)

    def call(self, fn, *args, what: str = "a job"):
        """Run ``fn(*args)`` on the thread after every job handed over
        before, and return its value or raise its exception."""
        if self.on_thread():
            return fn(*args)
        self.check()
        done = _Done()
        self._put((fn, args, what, done), what)
        self._wait(lambda pause: done.event.wait(pause) or done.error is not None, what)
        if done.error is not None:
            if done.error is self.failure and self.failed_at != what:
                self.check()  # an earlier job failed: say that one
            self._reported.set()
            raise done.error
        return done.value

    def check(self) -> None:
        """Raise the failure of an earlier job, if one failed."""
        if self.failure is not None:
            self._reported.set()
            raise self.error()

    def error(self) -> OutputError:
        exc = self.failure
        if isinstance(exc, OutputError):  # it says what the file keeps
            return OutputError(f"{exc} (output.writer: background; {self.failed_at} failed on "
                               "the writer thread)")
        return OutputError(f"the background writer failed in {self.failed_at}: "
                           f"{type(exc).__name__}: {exc}; {self.kept()}")

    def stop(self) -> None:
        """End the thread once the jobs handed over are done (they are, if
        the last one was :meth:`call`\\ ed)."""
        if self.thread.is_alive():
            self._put(None, "the end")
            self.thread.join()


class _Remote:
    """An h5py object of the file, used from the model's thread: each
    access runs on the writer thread (after the jobs handed over before it)
    and objects it returns are wrapped again, so no HDF5 call is made on
    two threads.  Enough for what the session reads (a restart's
    checkpoint: ``file[group][name]``, ``shape``, slices)."""

    __slots__ = ("_obj", "_io")

    def __init__(self, obj, io: WriterThread) -> None:
        self._obj, self._io = obj, io

    def _wrap(self, v):
        import h5py
        return _Remote(v, self._io) if isinstance(v, (h5py.Group, h5py.Dataset)) else v

    def _run(self, fn):
        return self._wrap(self._io.call(fn, what="a read of the file"))

    def __getitem__(self, key):
        return self._run(lambda: self._obj[key])

    def __contains__(self, key) -> bool:
        return self._run(lambda: key in self._obj)

    def __getattr__(self, name):
        return self._run(lambda: getattr(self._obj, name))

    def __len__(self) -> int:
        return self._run(lambda: len(self._obj))

    def __iter__(self):
        return iter(self._run(lambda: list(self._obj)))


class BackgroundWriter(H5Writer):
    """:class:`insitu.h5io.H5Writer` with its I/O on a writer thread
    (module docstring).  The model's thread keeps the rows (:meth:`append`,
    inherited) and decides when to flush (:meth:`end_step`, on values every
    rank agrees on, as inline); the writer thread commits each batch."""

    def __init__(self, comm, path, overwrite, time_attrs, options=None, restart=None) -> None:
        check_thread_level(comm)
        self._io = None
        self._defined = False
        # A restart's cut (rank 0, serial h5py, on another file, before the
        # parallel open) runs here, before the writer thread exists.
        super().__init__(comm, path, overwrite, time_attrs, options, restart)
        from .comm import MPIComm
        self.fcomm = MPIComm(comm.comm.Dup(), owned=True, timeout=comm.timeout)
        self._io = WriterThread(comm.timeout, self._stuck, on_unreported=self._unreported)
        self._io.kept = lambda: (f"steps up to {self.safe_step} are in the file"
                                 if self.safe_step is not None
                                 else "no step had been committed yet")
        if comm.rank == 0:
            log.info("output.writer: background (durable flushes on a writer thread, at "
                     "most %d waiting)", DEPTH)

    def _stuck(self, what: str) -> None:
        log.critical("rank %d waited %g s for the background writer (%s): it is stuck in "
                     "a collective of the file or in the file system (hang_timeout_seconds; "
                     "ending the job)", self.comm.rank, self.comm.timeout, what)
        from .exits import EXIT_OUTPUT
        self.comm.abort(EXIT_OUTPUT)

    def _unreported(self, error: OutputError) -> None:
        log.critical("output error, aborting the job: %s (the model's thread did not reach "
                     "insitu within %g s to report it)", error, GRACE_SECONDS)
        from .exits import EXIT_OUTPUT
        self.comm.abort(EXIT_OUTPUT)

    # The file: the h5py object on the writer thread, a _Remote elsewhere.
    @property
    def file(self):
        f = self.__dict__.get("_file")
        if f is None or self._io is None or self._io.on_thread():
            return f
        return _Remote(f, self._io)

    @file.setter
    def file(self, value) -> None:
        self.__dict__["_file"] = value

    # -- on the model's thread ---------------------------------------------------
    def define(self, variables, coords, file_attrs, fill, axes=()) -> None:
        """Create the file on the writer thread, and wait for it (an error
        in the config's layout is raised here, as inline)."""
        self._io.call(H5Writer.define, self, variables, coords, file_attrs, fill, axes,
                      what="the file's creation")
        self._defined = True

    def flush_clock(self, rank: int) -> float:
        """As inline; first, a failure of the writer thread is raised here,
        at the next output step, before the step's collective."""
        self._io.check()
        return super().flush_clock(rank)

    def end_step(self, agreed_seconds: float) -> None:
        self._io.check()
        if not self._defined:
            return
        if self._flush_due(agreed_seconds):
            self._hand_over()

    def _hand_over(self) -> None:
        batch = self._take()
        self._io.submit(self._commit, batch, what=f"the flush of step {batch.step}")
        self._since = self.clock()

    def flush(self) -> None:
        """Hand over the rows kept so far and wait until they, and every
        batch before them, are committed (a checkpoint's first act)."""
        if not self._defined:
            return
        batch = self._take()
        self._io.call(self._commit, batch, what=f"the flush of step {batch.step}")
        self._since = self.clock()

    def set_attrs(self, attrs) -> None:
        """Kept for the next flush, which the step ends with (the writer
        thread sets them first)."""
        if not self._defined:
            return
        self._attrs.update({k: attr_value(v) for k, v in attrs.items()})
        self._must_flush = True

    def write_checkpoint(self, step, meta, arrays, keep) -> None:
        """On the writer thread, after every batch handed over (the caller
        flushed first), and waited for."""
        self._io.call(H5Writer.write_checkpoint, self, step, meta, arrays, keep,
                      what=f"the checkpoint of step {step}")

    def close(self) -> None:
        """Commit what is left, close the file, end the thread and free the
        file's communicator (collective)."""
        if self._io is None:
            return
        try:
            if self._defined:
                batch = self._take()
                self._io.call(self._close, batch, what=f"the last flush (step {batch.step})")
        finally:
            if self._io.failure is None:
                self._io.stop()
                self.fcomm.free()

    def _close(self, batch) -> None:
        f = self.__dict__.get("_file")
        if f is not None and f.id.valid:
            if getattr(self, "axes", None):
                self._commit(batch)
            f.close()
        self.file = None
