"""The C ABI, called through ctypes from a Python host under mpiexec.

libinsitu is loaded into this (already running) interpreter, so its
embedded side shares the session with the test: this proves what the C
route hands to Python, zero copy included.
"""
import ctypes

import numpy as np
import pytest
import yaml

from insitu import api

OK, ERR, ERR_PYTHON, ERR_STATE, ERR_ARGUMENT = range(5)
REAL32, REAL64, INT32, ORDER_F = 1, 2, 3, 1


def _i64(values):
    return (ctypes.c_int64 * 4)(*values)


def _config(tmp, comm):
    path = tmp / "cabi.yaml"
    if comm.rank == 0:
        path.write_text(yaml.safe_dump({
            "output": {"path": str(tmp / "cabi.h5"), "overwrite": True},
            "fields": {"T": {"dims": ["x", "y"]}},
            "analyses": [{"kind": "stats", "field": "T", "every": 1}]}))
    comm.Barrier()
    return str(path).encode()


def test_c_route_is_zero_copy_fortran_order_and_halo_free(lib, comm, shared_dir):
    nx, ny = 7, 5                                  # this rank's interior, Fortran T(x, y)
    gx, gy = nx * comm.size, ny
    a = np.full((nx + 2, ny + 2), 1e30, order="F")  # garbage in the halo
    a[1:-1, 1:-1] = np.arange(nx * ny).reshape(nx, ny, order="F") + 100.0 * comm.rank
    assert lib.insitu_init(comm.py2f(), _config(shared_dir, comm)) == OK, lib.insitu_last_error()
    rc = lib.insitu_declare_field(b"T", REAL64, 2, _i64([gx, gy, 0]), _i64([nx * comm.rank, 0, 0]),
                                  _i64([nx + 2, ny + 2, 0]), _i64([1, 1, 0]), _i64([1, 1, 0]),
                                  ORDER_F)
    assert rc == OK, lib.insitu_last_error()
    assert lib.insitu_expose(b"T", a.ctypes.data, REAL64, 2, _i64(a.shape)) == OK
    assert lib.insitu_step(1, 60.0) == OK, lib.insitu_last_error()
    view = api.session().slots["T"].view
    # Same memory, first interior point at the same address: no copy.
    assert view.__array_interface__["data"][0] == a[1:, 1:].__array_interface__["data"][0]
    assert np.shares_memory(view, a)
    assert view.shape == (nx, ny) and view.strides == a[1:-1, 1:-1].strides
    np.testing.assert_array_equal(view, a[1:-1, 1:-1])       # halos sliced off
    # A write by the model after expose is what the next step sees.
    a[1:-1, 1:-1] += 1.0
    assert lib.insitu_step(2, 120.0) == OK, lib.insitu_last_error()
    res = api.session().last_results
    whole = np.concatenate([np.arange(nx * ny).reshape(nx, ny, order="F") + 100.0 * r + 1.0
                            for r in range(comm.size)])
    assert res["T_sum"] == pytest.approx(whole.sum(), rel=1e-12)
    assert res["T_max"] == whole.max()
    assert lib.insitu_finalize() == OK, lib.insitu_last_error()
    assert lib.insitu_finalize() == ERR_STATE
    assert b"twice" in lib.insitu_last_error()


def test_c_errors_are_statuses_with_messages(lib, comm, shared_dir):
    assert lib.insitu_step(1, 0.0) == ERR_STATE
    assert b"insitu_init first" in lib.insitu_last_error()
    assert lib.insitu_init(comm.py2f(), str(shared_dir / "missing.yaml").encode()) == ERR
    assert b"missing.yaml" in lib.insitu_last_error()
    cfg = _config(shared_dir, comm)
    assert lib.insitu_init(comm.py2f(), cfg) == OK
    try:
        # the same file, not written again: init makes no collective after
        # reading it, so rank 0 may be here while another rank still reads
        # it (a rewrite then read as empty: the 4-rank suite under load)
        assert lib.insitu_init(comm.py2f(), cfg) == ERR_STATE
        assert b"double init" in lib.insitu_last_error()
        assert lib.insitu_expose(b"nope", ctypes.c_void_p(8), REAL64, 1, _i64([1])) == ERR_ARGUMENT
        assert b"'nope'" in lib.insitu_last_error()
        rc = lib.insitu_declare_field(b"T", 9, 2, _i64([4, 4, 0]), _i64([0, 0, 0]),
                                      _i64([4, 4, 0]), _i64([0, 0, 0]), _i64([0, 0, 0]), 1)
        assert rc == ERR
        msg = lib.insitu_last_error().decode()
        assert "dtype" in msg and "'T'" in msg and f"rank {comm.rank}" in msg
    finally:
        assert lib.insitu_finalize() == OK


def test_expose_refuses_another_type_or_shape_than_declared(lib, comm, shared_dir):
    """Memory of another type or size than the declaration is refused at
    the call, with a message naming the field, both types or shapes and the
    rank; insitu never analyses it (issue 11)."""
    nx, ny = 6, 4
    a = np.zeros((nx + 2, ny + 2), dtype=np.float32, order="F")
    assert lib.insitu_init(comm.py2f(), _config(shared_dir, comm)) == OK, lib.insitu_last_error()
    try:
        rc = lib.insitu_declare_field(b"T", REAL32, 2, _i64([nx * comm.size, ny]),
                                      _i64([nx * comm.rank, 0]), _i64(a.shape), _i64([1, 1]),
                                      _i64([1, 1]), ORDER_F)
        assert rc == OK, lib.insitu_last_error()
        assert lib.insitu_expose(b"T", a.ctypes.data, REAL32, 2, _i64(a.shape)) == OK
        big = np.zeros((nx + 2, ny + 2), order="F")
        for dtype, ndim, shape, want in [
                (REAL64, 2, a.shape, "passed real64 with shape (8, 6)"),
                (INT32, 2, a.shape, "passed int32"),
                (REAL32, 2, (2, 2), "passed real32 with shape (2, 2)"),
                (REAL32, 1, (48,), "passed real32 with shape (48)"),
                (REAL32, 7, (8, 6, 1), "passed real32 with shape rank 7")]:
            rc = lib.insitu_expose(b"T", big.ctypes.data, dtype, ndim, _i64(list(shape)))
            msg = lib.insitu_last_error().decode()
            assert rc == ERR_ARGUMENT, (dtype, shape)
            assert msg.startswith("insitu_expose('T'): declared real32 with local shape (8, 6)")
            assert want in msg and msg.endswith(f"(rank {comm.rank})"), msg
        # The refused calls left the declared array in place.
        assert lib.insitu_step(1, 0.0) == OK, lib.insitu_last_error()
        assert api.session().slots["T"].address == a.ctypes.data
        assert lib.insitu_set_error is not None
        lib.insitu_set_error(b"from a binding")
        assert lib.insitu_last_error().decode() == f"from a binding (rank {comm.rank})"
    finally:
        assert lib.insitu_finalize() == OK


def test_every_error_path_returns_a_status_with_a_message(lib, comm, shared_dir):
    """Each error path of docs/abi.md, on every rank: a nonzero status and a
    message in insitu_last_error() that names what is wrong (issue 11)."""
    r, size = comm.rank, comm.size
    lib.insitu_abi_version.restype = ctypes.c_int
    assert lib.insitu_abi_version() == 3

    def fails(rc, want, *words):
        msg = lib.insitu_last_error().decode()
        assert rc == want, (rc, want, msg)
        assert msg, "a nonzero status with an empty message"
        for w in words:
            assert w in msg, (w, msg)

    fails(lib.insitu_init(comm.py2f(), None), ERR_ARGUMENT, "config_path is NULL")
    assert lib.insitu_init(comm.py2f(), _config(shared_dir, comm)) == OK
    try:
        four, zero = _i64([4]), _i64([0])
        fails(lib.insitu_declare_field(None, REAL64, 1, four, zero, four, zero, zero, 0),
              ERR_ARGUMENT, "name is NULL")
        fails(lib.insitu_declare_field(b"n" * 64, REAL64, 1, four, zero, four, zero, zero, 0),
              ERR_ARGUMENT, "longer than 63")
        fails(lib.insitu_declare_field(b"g", REAL64, 1, None, zero, four, zero, zero, 0),
              ERR_ARGUMENT, "NULL")
        for ndim in (0, 5):
            fails(lib.insitu_declare_field(b"g", REAL64, ndim, four, zero, four, zero, zero, 0),
                  ERR, f"rank {ndim} is not supported")
        off = _i64([4 * r])
        # Ranks that disagree: on the name, the dtype, the global shape.
        if size > 1:
            fails(lib.insitu_declare_field(b"g" if r else b"U", REAL64, 1, _i64([4 * size]),
                                           off, four, zero, zero, 0), ERR, "'", "rank")
            fails(lib.insitu_declare_field(b"g", REAL64 if r else REAL32, 1, _i64([4 * size]),
                                           off, four, zero, zero, 0), ERR, "'g'")
            fails(lib.insitu_declare_field(b"g", REAL64, 1, _i64([4 * size + r]), off, four,
                                           zero, zero, 0), ERR, "'g'", "global shape")
        # A gap: every rank's slab starts one point later than it should.
        fails(lib.insitu_declare_field(b"g", REAL64, 1, _i64([4 * size + 1]), _i64([4 * r + 1]),
                                       four, zero, zero, 0), ERR, "'g'", "tile")
        fails(lib.insitu_expose(None, ctypes.c_void_p(8), REAL64, 1, four), ERR_ARGUMENT,
              "name is NULL")
        fails(lib.insitu_expose(b"g", None, REAL64, 1, four), ERR_ARGUMENT, "NULL")
        fails(lib.insitu_expose(b"g", ctypes.c_void_p(8), REAL64, 1, four), ERR_ARGUMENT,
              "no field of that name")
        fails(lib.insitu_step(1, 0.0), ERR, "fields.T", "declared no field")
    finally:
        assert lib.insitu_finalize() == OK
    fails(lib.insitu_expose(b"T", ctypes.c_void_p(8), REAL64, 1, _i64([4])), ERR_STATE,
          "no open session")


# -- issue 12: idle steps return in C; moved buffers are rebound from a cache ------

def _open_1d(lib, comm, shared_dir, analyses, n=5, name="idle"):
    """A session through the C ABI with a 1-D real64 field T of n points per
    rank (no halos), and the analyses given."""
    path = shared_dir / f"{name}.yaml"
    if comm.rank == 0:
        path.write_text(yaml.safe_dump({
            "output": {"path": str(shared_dir / f"{name}.h5"), "overwrite": True},
            "log_level": "WARNING", "analyses": analyses}))
    comm.Barrier()
    assert lib.insitu_init(comm.py2f(), str(path).encode()) == OK, lib.insitu_last_error()
    rc = lib.insitu_declare_field(b"T", REAL64, 1, _i64([n * comm.size]), _i64([n * comm.rank]),
                                  _i64([n]), _i64([0]), _i64([0]), 0)
    assert rc == OK, lib.insitu_last_error()


def _expose(lib, a):
    rc = lib.insitu_expose(b"T", a.ctypes.data, REAL64, 1, _i64(a.shape))
    assert rc == OK, lib.insitu_last_error()


def _count_entries(monkeypatch):
    """Record each step that enters Python (libinsitu calls the session's
    step, with results=False: insitu.step_values)."""
    from insitu.session import Session
    entered = []
    real = Session.step

    def counting(self, step, time=0.0, results=True):
        entered.append(step)
        return real(self, step, time, results)
    monkeypatch.setattr(Session, "step", counting)
    return entered


def test_idle_steps_return_in_c_without_python_or_mpi(lib, comm, shared_dir, monkeypatch):
    """``every: 3`` and ``every: 4``: only the first step (which binds the
    analyses) and the due steps enter Python; the others return in C with
    no collective, and every due step's results are right."""
    entered = _count_entries(monkeypatch)
    _open_1d(lib, comm, shared_dir, [{"kind": "stats", "field": "T", "every": 3, "name": "a"},
                                     {"kind": "stats", "field": "T", "every": 4, "name": "b"}])
    try:
        a = np.zeros(5)
        _expose(lib, a)
        s = api.session()
        before = None
        for step in range(1, 25):
            a[:] = step * 10.0 + comm.rank
            assert lib.insitu_step(step, float(step)) == OK, lib.insitu_last_error()
            if step == 1:
                before = s.comm.collectives
            elif step % 3 and step % 4:
                assert s.comm.collectives == before, f"step {step} made a collective"
            before = s.comm.collectives
            if step % 3 == 0:
                want = sum(5 * (step * 10.0 + r) for r in range(comm.size))
                assert s.last_results["a_sum"] == want
        assert entered == [1] + [k for k in range(2, 25) if k % 3 == 0 or k % 4 == 0]
    finally:
        assert lib.insitu_finalize() == OK, lib.insitu_last_error()


def test_an_idle_step_from_another_thread_is_still_refused(lib, comm, shared_dir):
    """The C fast path serves only the thread that opened the session; a
    worker's call on an idle step enters Python, which refuses it."""
    import threading
    _open_1d(lib, comm, shared_dir, [{"kind": "stats", "field": "T", "every": 10}], name="thr")
    try:
        _expose(lib, np.ones(5))
        assert lib.insitu_step(1, 1.0) == OK, lib.insitu_last_error()
        out = {}
        t = threading.Thread(target=lambda: out.update(
            rc=lib.insitu_step(2, 2.0), msg=lib.insitu_last_error()), name="insitu-worker")
        t.start()
        t.join(60)
        assert out["rc"] == ERR_STATE, out
        assert b"called from thread 'insitu-worker'" in out["msg"], out
        assert lib.insitu_step(2, 2.0) == OK, lib.insitu_last_error()  # the owner's is idle
    finally:
        assert lib.insitu_finalize() == OK, lib.insitu_last_error()


def test_the_cadence_follows_an_analysis_disabled_by_on_error_skip(lib, comm, shared_dir,
                                                                   monkeypatch):
    """A python analysis (every 2) fails at its first call and is disabled
    on every rank (on_error: skip): from then on, only the stats' steps
    (every 3) enter Python."""
    from pathlib import Path
    user = Path(__file__).resolve().parents[1] / "user_analyses.py"
    entered = _count_entries(monkeypatch)
    path = shared_dir / "skip.yaml"
    if comm.rank == 0:
        path.write_text(yaml.safe_dump({
            "output": {"path": str(shared_dir / "skip.h5"), "overwrite": True},
            "log_level": "WARNING", "on_error": "skip",
            "analyses": [{"kind": "stats", "field": "T", "every": 3},
                         {"kind": "python", "function": f"{user}:calls_sys_exit",
                          "fields": ["T"], "every": 2, "outputs": {"x": {"op": "sum"}}}]}))
    comm.Barrier()
    assert lib.insitu_init(comm.py2f(), str(path).encode()) == OK, lib.insitu_last_error()
    try:
        rc = lib.insitu_declare_field(b"T", REAL64, 1, _i64([5 * comm.size]),
                                      _i64([5 * comm.rank]), _i64([5]), _i64([0]), _i64([0]), 0)
        assert rc == OK, lib.insitu_last_error()
        _expose(lib, np.ones(5))
        for step in range(1, 13):
            assert lib.insitu_step(step, float(step)) == OK, lib.insitu_last_error()
        assert api.session().disabled == {1: 2}
        assert entered == [1, 2, 3, 6, 9, 12]
    finally:
        assert lib.insitu_finalize() == OK, lib.insitu_last_error()


def test_finalize_knows_the_last_step_even_when_it_returned_in_c(lib, comm, shared_dir,
                                                                 monkeypatch):
    """The session's record of the last step handed over (where a period
    window ends) includes the steps that never entered Python."""
    _open_1d(lib, comm, shared_dir, [{"kind": "stats", "field": "T", "every": 4}], name="last")
    seen = {}
    real = api.finalize
    monkeypatch.setattr(api, "finalize", lambda: (seen.update(last=api.session().last_call),
                                                  real())[1])
    _expose(lib, np.ones(5))
    for step in range(1, 8):
        assert lib.insitu_step(step, step * 0.5) == OK, lib.insitu_last_error()
    assert lib.insitu_finalize() == OK, lib.insitu_last_error()
    assert seen["last"] == (7, 3.5)


def test_moved_buffers_are_rebound_from_a_cache_never_stale(lib, comm, shared_dir):
    """Two buffers swapped every step (the heat example): each due step
    analyses the buffer exposed last, both views come from the cache after
    their first use, a refused expose keeps the previous buffer, and a
    model write between steps is what the next step sees."""
    _open_1d(lib, comm, shared_dir, [{"kind": "stats", "field": "T", "every": 1}], name="swap")
    try:
        bufs = [np.full(5, 1.0 + comm.rank), np.full(5, 100.0 + comm.rank), np.full(5, -7.0)]
        total = lambda v: sum(5 * (v + r) for r in range(comm.size))  # noqa: E731
        slot = api.session().slots["T"]
        views = []
        for step in range(1, 7):
            b = bufs[step % 2]
            _expose(lib, b)
            assert lib.insitu_step(step, float(step)) == OK, lib.insitu_last_error()
            assert np.shares_memory(slot.view, b)
            assert api.session().last_results["T_sum"] == total(b[0] - comm.rank)
            views.append(slot.view)
        assert views[2] is views[0] and views[3] is views[1], "not served from the cache"
        assert len(slot._views) == 2
        # A refused expose (wrong dtype) keeps the buffer exposed before.
        assert lib.insitu_expose(b"T", bufs[2].ctypes.data, REAL32, 1, _i64([5])) == ERR_ARGUMENT
        bufs[0][:] = 50.0 + comm.rank   # the model writes into the exposed buffer
        assert lib.insitu_step(7, 7.0) == OK, lib.insitu_last_error()
        assert np.shares_memory(slot.view, bufs[0])
        assert api.session().last_results["T_sum"] == total(50.0)
        # More addresses than the cache keeps: the oldest go, none is stale.
        extra = [np.full(5, float(k)) for k in range(6)]
        for k, e in enumerate(extra):
            _expose(lib, e)
            assert lib.insitu_step(8 + k, 0.0) == OK, lib.insitu_last_error()
            assert np.shares_memory(slot.view, e)
            assert api.session().last_results["T_max"] == float(k)
        assert len(slot._views) == slot.C_VIEWS
    finally:
        assert lib.insitu_finalize() == OK, lib.insitu_last_error()
