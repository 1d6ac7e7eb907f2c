"""Review of the step check folded into the step's record (commit 16b4e9f,
insitu.session._stamp/_verdict), under real MPI and parallel HDF5, for the
divergences tests/mpi/test_handshake_record.py does not take: run on every
rank by tests/test_mpi_suite.py at 1-4 ranks (the divergences need two).

What each test holds the session to: ranks at different due steps meet in
the record's Allreduce, every rank raises the same StepError, and the
mismatched call leaves nothing behind: no row in the file (with the
background writer too), no analysis disabled by a failure that happened at
the mismatched step, no sample counted by a kind whose local pass runs
before the comparison (the file of a run that diverged once is the file of
a run that never did, dataset by dataset, bit for bit), and a restarted run
goes on the same way.
"""
import h5py
import numpy as np
import pytest

from insitu import api
from insitu.session import StepError

N = 6


def _rows(comm):
    return [r + 1 for r in range(comm.size)]   # uneven: rank r holds r + 1 rows


def _declare(comm):
    rows = _rows(comm)
    lo = sum(rows[:comm.rank])
    api.declare_field("T", np.float64, (sum(rows), N), (lo, 0), (rows[comm.rank], N))
    return lo, rows[comm.rank]


def _expose(box, step):
    lo, n = box
    a = np.arange(lo * N, (lo + n) * N, dtype=np.float64).reshape(n, N)
    api.expose("T", np.sin(a * 0.37 + step) * 10.0 + 280.0 + step)


def _diverge(comm, mine, others):
    """Rank 0 makes ``mine``, the others ``others``: the same StepError on
    every rank."""
    with pytest.raises(StepError) as err:
        (mine if comm.rank == 0 else others)()
    text = str(err.value)
    assert len(set(comm.allgather(text))) == 1, text
    return text


def _run(icomm, path, cfg, box_of, steps, diverge_at=None, restart=None):
    """Open a session, step through ``steps`` (``diverge_at``: before that
    step, rank 0 calls it while the others call the next one, and both
    raise), finalize."""
    comm = icomm.comm
    s = api.init(icomm, cfg, output=str(path), restart=restart)
    box = box_of(comm)
    try:
        for step in steps:
            if step == diverge_at:
                nxt = steps[steps.index(step) + 1]
                _expose(box, step)
                _diverge(comm, lambda: api.step(step, float(step)),
                         lambda: api.step(nxt, float(nxt)))
            _expose(box, step)
            api.step(step, float(step))
    finally:
        api.finalize()
    return s


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
        out["@insitu_errors"] = f.attrs.get("insitu_errors", "")
    return out


def _same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.shape == y.shape, k
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.uint64 if x.itemsize == 8 else np.uint32),
                                  y.view(np.uint64 if y.itemsize == 8 else np.uint32)), k
        else:
            assert np.array_equal(x, y), k


def _need_two(comm):
    if comm.size == 1:
        pytest.skip("needs two ranks")


def _cfg(extra=(), **top):
    return {"analyses": [{"kind": "stats", "field": "T", "every": 2}, *extra],
            "fields": {"T": {"dims": ["y", "x"]}}, **top}


def test_the_background_writer_writes_no_row_of_a_mismatched_step(comm, icomm, shared_dir):
    """output.writer: background: the writer thread gets the rows of
    agreed steps only, and the file is that of a run that never diverged."""
    _need_two(comm)
    cfg = _cfg(output={"writer": "background"})
    _run(icomm, shared_dir / "bg.h5", cfg, _declare, [2, 4, 6, 8], diverge_at=4)
    from insitu.comm import MPIComm
    clean = MPIComm(comm.Dup(), owned=True)
    try:
        _run(clean, shared_dir / "bg_clean.h5", cfg, _declare, [2, 4, 6, 8])
    finally:
        clean.free()
    comm.Barrier()
    if comm.rank == 0:
        got = _datasets(shared_dir / "bg.h5")
        assert got["step"].tolist() == [2, 4, 6, 8]
        _same(got, _datasets(shared_dir / "bg_clean.h5"))


def test_a_failure_on_one_rank_at_a_mismatched_step_disables_nothing(comm, icomm,
                                                                     shared_dir):
    """on_error: skip, a fault on rank 0 at step 4 while the others are at
    step 6: the mismatch wins, nothing is disabled and no error is
    recorded; when the ranks then agree on step 4 the fault disables the
    analysis on every rank, once."""
    _need_two(comm)
    cfg = _cfg([{"kind": "fault", "field": "T", "at_step": 4, "ranks": "first", "every": 2,
                 "name": "boom"}], on_error="skip")
    s = api.init(icomm, cfg, output=str(shared_dir / "skip.h5"))
    box = _declare(comm)
    fault = next(a for a in s.analyses if a.kind == "fault")
    try:
        _expose(box, 2)
        api.step(2, 2.0)
        _expose(box, 4)
        text = _diverge(comm, lambda: api.step(4, 4.0), lambda: api.step(6, 6.0))
        assert "rank(s) 0 in insitu_step(step 4)" in text
        assert s.disabled == {} and s.errors == []
        api.step(4, 4.0)
        assert list(s.disabled) == [fault.index] and len(s.errors) == 1
        assert s.errors[0]["step"] == 4 and s.errors[0]["first_rank"] == 0
        _expose(box, 6)
        assert "T_mean" in api.step(6, 6.0)
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(shared_dir / "skip.h5", "r") as f:
            assert f["step"][:].tolist() == [2, 4, 6]


#: every kind the session lets run its local pass before the comparison
#: (session._pure_local_types), with the state they keep across steps:
#: a window and a pointwise mean over pairs of outputs, exact quantiles
#: (a second phase and a group), reductions over a dim (a group), and
#: reproducible sums (a second Allreduce)
ALL_PURE = [
    {"kind": "histogram", "field": "T", "every": 2, "bins": 8, "range": [265, 295],
     "quantiles": [0.25, 0.5, 0.9], "quantile_method": "exact"},
    {"kind": "histogram", "field": "T", "every": 2, "bins": 5, "range": [270, 290],
     "name": "hb", "quantiles": [0.5]},
    {"kind": "reduce", "field": "T", "over": ["x"], "op": "mean", "every": 2},
    {"kind": "reduce", "field": "T", "over": ["y"], "op": "max", "every": 2, "name": "ry"},
    {"kind": "coarsen", "field": "T", "factors": {"y": 1, "x": 3}, "every": 2},
    {"kind": "probe", "field": "T", "points": [[0, 0], [1, 5]], "every": 2},
    {"kind": "exceedance", "field": "T", "threshold": 281.0, "every": 2},
    {"kind": "window", "source": "T", "steps": 2, "ops": ["mean", "max"]},
    {"kind": "pointwise", "field": "T", "ops": ["mean", "var", "max"], "steps": 2,
     "every": 2},
]


def test_a_mismatch_leaves_every_pure_kind_as_a_run_that_never_diverged(comm, icomm,
                                                                        shared_dir):
    """Every pure kind, due at the mismatched step, runs its local pass
    before the comparison: the run that diverged at step 4 writes, bit for
    bit, the file of the run that did not."""
    _need_two(comm)
    cfg = _cfg(ALL_PURE, reproducible=True)
    s = _run(icomm, shared_dir / "pure.h5", cfg, _declare, [2, 4, 6, 8, 10], diverge_at=4)
    assert all(type(a).__name__ != "Python" for a in s.analyses)
    assert not s._compare_first, "these kinds are all meant to run before the comparison"
    from insitu.comm import MPIComm
    clean = MPIComm(comm.Dup(), owned=True)
    try:
        _run(clean, shared_dir / "pure_clean.h5", cfg, _declare, [2, 4, 6, 8, 10])
    finally:
        clean.free()
    comm.Barrier()
    if comm.rank == 0:
        got = _datasets(shared_dir / "pure.h5")
        assert got["step"].tolist() == [2, 4, 6, 8, 10]
        _same(got, _datasets(shared_dir / "pure_clean.h5"))


def test_every_rank_at_its_own_step_is_named_rank_by_rank(comm, icomm, shared_dir):
    """Rank r at step 2 * (r + 2): at 3 and 4 ranks, no two ranks agree,
    the MIN and MAX of the record's slots differ, and the error names
    every rank's step."""
    _need_two(comm)
    s = api.init(icomm, _cfg(), output=str(shared_dir / "each.h5"))
    box = _declare(comm)
    try:
        _expose(box, 2)
        api.step(2, 2.0)
        mine = 2 * (comm.rank + 2)
        with pytest.raises(StepError) as err:
            api.step(mine, float(mine))
        text = str(err.value)
        assert len(set(comm.allgather(text))) == 1
        for r in range(comm.size):
            assert f"rank(s) {r} in insitu_step(step {2 * (r + 2)})" in text, text
        _expose(box, 4)
        api.step(4, 4.0)
    finally:
        api.finalize()
    assert s.steps_written == 2


def test_a_restarted_run_catches_a_mismatch_and_writes_no_row_of_it(comm, icomm,
                                                                   shared_dir):
    """A checkpoint at step 4, a restart from it: the first step after the
    restart binds by the allgather, the next ones check in the record; a
    mismatch at step 8 writes nothing, and the file is that of an
    uninterrupted run."""
    _need_two(comm)
    from insitu.comm import MPIComm
    cfg = _cfg([{"kind": "window", "source": "T", "steps": 2, "ops": ["mean"]}])
    path = shared_dir / "re.h5"
    api.init(icomm, cfg, output=str(path))
    box = _declare(comm)
    try:
        for step in (2, 4):
            _expose(box, step)
            api.step(step, float(step))
        api.checkpoint(4)
        _expose(box, 6)
        api.step(6, 6.0)   # a row the restart drops
    finally:
        api.finalize()
    again = MPIComm(comm.Dup(), owned=True)
    try:
        _run(again, path, cfg, _declare, [6, 8, 10, 12], diverge_at=8, restart=True)
    finally:
        again.free()
    clean = MPIComm(comm.Dup(), owned=True)
    try:
        _run(clean, shared_dir / "re_clean.h5", cfg, _declare, [2, 4, 6, 8, 10, 12])
    finally:
        clean.free()
    comm.Barrier()
    if comm.rank == 0:
        got = _datasets(path)
        want = _datasets(shared_dir / "re_clean.h5")
        assert got["step"].tolist() == [2, 4, 6, 8, 10, 12]
        for k in want:
            if not k.startswith("_insitu_state"):
                np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_the_c_route_catches_each_divergence_and_writes_none_of_them(lib, comm, shared_dir):
    """libinsitu's C ABI (ctypes, as a C host): steps that differ only in
    the high 32 bits, a checkpoint against a step, a negative step against
    a positive one.  Every rank gets the same nonzero status and message,
    and the file holds the agreed steps only."""
    import ctypes

    import yaml
    _need_two(comm)
    i64 = lambda v: (ctypes.c_int64 * 4)(*v)  # noqa: E731
    lib.insitu_checkpoint.argtypes = [ctypes.c_int64]
    path = shared_dir / "c.h5"
    cfgp = shared_dir / "c.yaml"
    if comm.rank == 0:
        cfgp.write_text(yaml.safe_dump({
            "output": {"path": str(path), "overwrite": True},
            "fields": {"T": {"dims": ["x", "y"]}},
            "analyses": [{"kind": "stats", "field": "T", "every": 2,
                          "stats": ["count", "sum"]}]}))
    comm.Barrier()
    nx, ny = comm.rank + 1, 4   # uneven
    lo = sum(r + 1 for r in range(comm.rank))
    gx = sum(r + 1 for r in range(comm.size))
    a = np.asfortranarray(np.arange(nx * ny, dtype=np.float64).reshape(nx, ny) + 10 * lo)
    assert lib.insitu_init(comm.py2f(), str(cfgp).encode()) == 0, lib.insitu_last_error()
    assert lib.insitu_declare_field(b"T", 2, 2, i64([gx, ny, 0]), i64([lo, 0, 0]),
                                    i64([nx, ny, 0]), i64([0, 0, 0]), i64([0, 0, 0]),
                                    1) == 0, lib.insitu_last_error()
    assert lib.insitu_expose(b"T", a.ctypes.data, 2, 2, i64([nx, ny])) == 0

    def both(mine, others):
        rc = (mine if comm.rank == 0 else others)()
        msg = lib.insitu_last_error().decode()
        assert rc != 0, msg
        # "insitu_step: ..." or "insitu_checkpoint: ...": the call that failed, then the
        # same StepError on every rank
        said = msg.split(": ", 1)[1].splitlines()[0]   # then a traceback
        assert len(set(comm.allgather(said))) == 1, msg
        return said

    try:
        for s in range(1, 4):
            assert lib.insitu_step(s, float(s)) == 0, lib.insitu_last_error()
        msg = both(lambda: lib.insitu_step(4, 4.0), lambda: lib.insitu_step(2**32 + 4, 4.0))
        assert "rank(s) 0 in insitu_step(step 4)" in msg and str(2**32 + 4) in msg, msg
        for s in (4, 5):
            assert lib.insitu_step(s, float(s)) == 0, lib.insitu_last_error()
        msg = both(lambda: lib.insitu_checkpoint(6), lambda: lib.insitu_step(6, 6.0))
        assert "rank(s) 0 in insitu_checkpoint(step 6)" in msg, msg
        for s in (6, 7):
            assert lib.insitu_step(s, float(s)) == 0, lib.insitu_last_error()
        msg = both(lambda: lib.insitu_step(-8, 8.0), lambda: lib.insitu_step(8, 8.0))
        assert "rank(s) 0 in insitu_step(step -8)" in msg, msg
        assert lib.insitu_step(8, 8.0) == 0, lib.insitu_last_error()
    finally:
        assert lib.insitu_finalize() == 0, lib.insitu_last_error()
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(path, "r") as f:
            assert f["step"][:].tolist() == [2, 4, 6, 8]
            assert f["T_count"][:].tolist() == [gx * ny] * 4
