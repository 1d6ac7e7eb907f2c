"""Host conditions under real MPI, at 1-4 ranks (tests/test_mpi_suite.py):
a sub-communicator with idle ranks outside it, and insitu calls from a
thread other than the one that opened the session (refused, insitu/api.py),
through the Python API and through the C ABI.

The suite runs with mpi4py's default MPI_THREAD_MULTIPLE; FUNNELED and
SINGLE hosts are in tests/test_host_conditions.py.
"""
import ctypes
import threading

import numpy as np
import pytest

from insitu import api
from insitu.session import StateError

SHAPE = (23, 19)  # (y, x)
STEPS = 3


def field(j, i, step):
    """Integer-valued float64, a function of the global index and the step."""
    return ((7 * j + 13 * i + 5 * step) % 1000 - 300).astype(np.float64)


def whole(step):
    j, i = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    return field(j, i, step)


def block(n, p, c):
    """(start, size) of block c of p; the first n % p blocks get one more."""
    return c * (n // p) + min(c, n % p), n // p + (1 if c < n % p else 0)


def cfg(path):
    return {"output": {"path": str(path), "overwrite": True},
            "fields": {"f": {"dims": ["y", "x"]}},
            "analyses": [{"kind": "stats", "field": "f",
                          "stats": ["count", "sum", "mean", "min", "max", "std"]},
                         {"kind": "reduce", "field": "f", "over": ["x"], "op": "sum"}],
            "log_level": "WARNING"}


def numpy_stats(a):
    return {"f_count": a.size, "f_sum": a.sum(), "f_mean": a.mean(), "f_min": a.min(),
            "f_max": a.max(), "f_std": a.std()}


class Model:
    """Rows of f split over ``comm`` (1-D along y), with a garbage halo."""

    def __init__(self, comm):
        self.y0, self.ny = block(SHAPE[0], comm.Get_size(), comm.Get_rank())
        self.a = np.full((self.ny + 2, SHAPE[1] + 2), 1e30)
        j, i = np.meshgrid(np.arange(self.y0, self.y0 + self.ny), np.arange(SHAPE[1]),
                           indexing="ij")
        self.j, self.i = j, i

    def declare(self):
        api.declare_field("f", np.float64, SHAPE, (self.y0, 0), self.a.shape, [1, 1], [1, 1])

    def fill(self, step):
        self.a[1:-1, 1:-1] = field(self.j, self.i, step)
        api.expose("f", self.a)


def check_file(path, nranks):
    import h5py
    with h5py.File(path, "r") as h5:
        assert h5.attrs["insitu_ranks"] == nranks
        assert list(h5["step"][...]) == list(range(1, STEPS + 1))
        for n in range(STEPS):
            f = whole(n + 1)
            for k, v in numpy_stats(f).items():
                assert h5[k][n] == pytest.approx(v, rel=1e-12), (k, n)
            np.testing.assert_array_equal(h5["f_sum_over_x"][n], f.sum(axis=1))


def in_thread(fn, name="insitu-worker"):
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            out["error"] = exc

    t = threading.Thread(target=target, name=name)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the call from the worker thread hung"
    return out


# -- a sub-communicator smaller than WORLD -------------------------------------

@pytest.mark.parametrize("idle", ["last", "first"])
def test_subcommunicator_with_idle_ranks_matches_numpy(comm, shared_dir, idle):
    """Ranks outside the model's communicator never call insitu and run
    collectives of their own meanwhile; at 1 rank nobody is idle.  With the
    first rank idle, insitu's rank 0 is WORLD rank 1."""
    size = comm.size
    idle_rank = -1 if size == 1 else (size - 1 if idle == "last" else 0)
    active = comm.rank != idle_rank
    nactive = size - (0 if idle_rank < 0 else 1)
    sub = comm.Split(0 if active else 1, comm.rank)
    out = shared_dir / f"sub_{idle}.h5"
    if active:
        assert sub.size == nactive
        m = Model(sub)
        api.init(sub, cfg(out), host="python:subcomm")
        m.declare()
        for step in range(1, STEPS + 1):
            m.fill(step)
            res = api.step(step, float(step))
            want = numpy_stats(whole(step))
            for k, v in want.items():
                assert res[k] == pytest.approx(v, rel=1e-12), (k, step)
        api.finalize()
    else:
        total = 0
        for k in range(1, 51):  # the idle rank's own work, on its own communicator
            total += sub.allreduce(k)
        assert total == 50 * 51 // 2
    sub.Free()
    comm.Barrier()
    if comm.rank == (1 if idle_rank == 0 else 0):
        check_file(out, nactive)
    comm.Barrier()


# -- threads ---------------------------------------------------------------------

def test_calls_from_another_thread_are_refused_and_the_run_goes_on(comm, shared_dir):
    out = shared_dir / "thread.h5"
    m = Model(comm)
    api.init(comm, cfg(out), host="python:threads")
    m.declare()
    for step in range(1, STEPS + 1):
        m.fill(step)
        if step == 2:
            for name, call in [("step", lambda: api.step(step, 2.0)),
                               ("expose", lambda: api.expose("f", m.a)),
                               ("declare_field", m.declare),
                               ("", api.session),
                               ("finalize", api.finalize)]:
                r = in_thread(call)
                assert isinstance(r.get("error"), StateError), (name, r)
                msg = str(r["error"])
                label = f"insitu.{name}" if name else "insitu"  # api.session() names no call
                assert msg.startswith(f"{label} called from thread 'insitu-worker'"), msg
                assert "opened by thread 'MainThread'" in msg, msg
        api.step(step, float(step))
    api.finalize()
    comm.Barrier()
    if comm.rank == 0:
        check_file(out, comm.size)
    comm.Barrier()


def test_a_session_belongs_to_the_thread_that_opened_it(comm, shared_dir):
    """Under MPI_THREAD_MULTIPLE (mpi4py's default) a worker thread may run
    the whole session; the main thread is then the one refused."""
    from mpi4py import MPI
    if MPI.Query_thread() < MPI.THREAD_SERIALIZED:
        pytest.skip("MPI below THREAD_SERIALIZED: init off the main thread is refused")
    out = shared_dir / "worker.h5"
    m = Model(comm)
    opened, tried = threading.Event(), threading.Event()
    seen = {}

    def worker():
        api.init(comm, cfg(out), host="python:worker")
        m.declare()
        opened.set()
        assert tried.wait(60)
        for step in range(1, STEPS + 1):
            m.fill(step)
            api.step(step, float(step))
        api.finalize()

    t = threading.Thread(target=lambda: seen.setdefault("r", in_thread(worker, "model")))
    t.start()
    assert opened.wait(60)
    with pytest.raises(StateError, match="insitu.step called from thread 'MainThread'.*"
                                         "opened by thread 'model'"):
        api.step(1, 1.0)
    tried.set()
    t.join(120)
    assert "error" not in seen["r"], seen["r"]
    with pytest.raises(StateError, match="no open insitu session"):  # the worker closed it
        api.step(STEPS + 1)
    comm.Barrier()
    if comm.rank == 0:
        check_file(out, comm.size)
    comm.Barrier()


ERR_STATE, REAL64, ORDER_C = 3, 2, 0


def i64(v):
    return (ctypes.c_int64 * 3)(*v, *[0] * (3 - len(v)))


def c_open(lib, comm, shared_dir, name):
    """insitu_init and insitu_declare_field of f through the C ABI."""
    path = shared_dir / f"{name}.yaml"
    if comm.rank == 0:
        import yaml
        path.write_text(yaml.safe_dump(cfg(shared_dir / f"{name}.h5")))
    comm.Barrier()
    m = Model(comm)
    assert lib.insitu_init(comm.py2f(), str(path).encode()) == 0, lib.insitu_last_error()
    assert lib.insitu_declare_field(b"f", REAL64, 2, i64(SHAPE), i64([m.y0, 0]), i64(m.a.shape),
                                    i64([1, 1]), i64([1, 1]), ORDER_C) == 0, \
        lib.insitu_last_error()
    return m


def c_fill(lib, m, step):
    m.a[1:-1, 1:-1] = field(m.j, m.i, step)
    assert lib.insitu_expose(b"f", m.a.ctypes.data, REAL64, 2, i64(m.a.shape)) == 0


def test_c_abi_call_from_another_thread_is_refused(lib, comm, shared_dir):
    """A C or Fortran host calling insitu_step from a worker thread (an
    OpenMP region, a pthread) gets INSITU_ERR_STATE and a message naming
    the thread; the owner's next step is unharmed."""
    m = c_open(lib, comm, shared_dir, "cthread")
    for step in range(1, STEPS + 1):
        c_fill(lib, m, step)
        if step == 2:
            r = in_thread(lambda: (lib.insitu_step(step, 2.0), lib.insitu_last_error()))
            rc, msg = r["value"]
            assert rc == ERR_STATE, (rc, msg)
            assert msg.startswith(b"insitu_step: insitu called from thread 'insitu-worker'"), msg
        assert lib.insitu_step(step, float(step)) == 0, lib.insitu_last_error()
    assert lib.insitu_finalize() == 0, lib.insitu_last_error()
    comm.Barrier()
    if comm.rank == 0:
        check_file(shared_dir / "cthread.h5", comm.size)
    comm.Barrier()


def test_c_abi_refused_finalize_from_another_thread_leaves_the_session_open(lib, comm,
                                                                            shared_dir):
    m = c_open(lib, comm, shared_dir, "cfinal")
    c_fill(lib, m, 1)
    assert lib.insitu_step(1, 1.0) == 0, lib.insitu_last_error()
    rc, msg = in_thread(lambda: (lib.insitu_finalize(), lib.insitu_last_error()))["value"]
    assert rc == ERR_STATE, (rc, msg)
    assert b"insitu.finalize called from thread 'insitu-worker'" in msg, msg
    # Every rank sees the same statuses below, so no collective is split.
    m.a[1:-1, 1:-1] = field(m.j, m.i, 2)
    rc = lib.insitu_expose(b"f", m.a.ctypes.data, REAL64, 2, i64(m.a.shape))
    if rc == 0:
        rc = lib.insitu_step(2, 2.0)
    msg = lib.insitu_last_error()
    if rc == 0:
        assert lib.insitu_finalize() == 0, lib.insitu_last_error()
    else:
        api.finalize()  # close the Python session the C side forgot, for the next tests
    assert rc == 0, msg
