"""Review of this session's speed work under real MPI and parallel HDF5
(run on every rank by tests/test_mpi_suite.py at 1-4 ranks):

* the handshake's buffers made once (MPIComm.handshake): steps of very
  different sizes and signs, and ranks in different calls, give the same
  clear error on every rank (never a hang), and a later agreeing call works;
* the compiled combine's total order for signed zeros through Open MPI's
  own pairing, with -0.0 on one rank only, uneven splits;
* replicated scalars kept as Python numbers by the writer (h5io): an
  int64 beyond 2**53 (argmax's missing index), NaN, -0.0 and the count's
  int64 dtype come back from the file bit for bit;
* statistics lent between analyses (StepMemo.formed) equal in the file.
"""
import h5py
import numpy as np
import pytest

from insitu import api
from insitu.analyses.stats import NO_INDEX
from insitu.session import StepError


def _split(n, size, rank):
    """An uneven split: rank r gets r + 1 parts of n (the last the rest)."""
    w = np.arange(1, size + 1, dtype=float)
    cuts = np.floor(np.cumsum(w) / w.sum() * n).astype(int)
    lo = 0 if rank == 0 else int(cuts[rank - 1])
    return lo, int(cuts[rank]) - lo


@pytest.mark.parametrize("arg", [[3, 2 ** 40 + 1], [-7, 7], [0, 2 ** 62], [5, 5]])
def test_handshake_tables_agree_on_every_rank(comm, icomm, arg):
    mine = arg[comm.rank % 2]
    got = icomm.handshake(1, mine)
    want = np.array([[1, arg[r % 2]] for r in range(comm.size)], dtype=np.int64)
    if (want == want[0]).all():
        assert got is None
    else:
        assert got.dtype == np.int64 and got.tolist() == want.tolist()
    # the buffers are reused: the next call tells nothing of this one
    assert icomm.handshake(2, 9) is None
    again = icomm.handshake(1, mine)
    assert (again is None) == (got is None)


def test_ranks_stepping_apart_get_one_clear_error_everywhere(comm, icomm, shared_dir):
    if comm.size == 1:
        pytest.skip("needs two ranks")
    api.init(icomm, {"analyses": [{"kind": "stats", "field": "T"}]},
             output=str(shared_dir / "apart.h5"))
    try:
        lo, n = _split(10, comm.size, comm.rank)
        api.declare_field("T", np.float64, (10,), (lo,), (n,))
        api.expose("T", np.arange(lo, lo + n, dtype=np.float64))
        assert api.step(1, 1.0)
        big = 2 ** 40 + 12345  # a longer step number on the last rank
        step = big if comm.rank == comm.size - 1 else 2
        with pytest.raises(StepError, match="disagree on the step number") as err:
            api.step(step, 2.0)
        assert str(big) in str(err.value) and "2" in str(err.value)
        # every rank says the same
        texts = comm.allgather(str(err.value))
        assert len(set(texts)) == 1
        # and the session goes on when they agree again
        res = api.step(3, 3.0)
        assert res["T_max"] == 9.0
    finally:
        api.finalize()


def test_signed_zeros_and_exact_ints_through_mpi_and_the_file(comm, icomm, shared_dir):
    N = 29
    path = shared_dir / "zeros.h5"
    analyses = [{"kind": "stats", "field": "Z", "name": "z",
                 "stats": ["count", "min", "max", "sum", "mean", "argmax", "argmin"]},
                {"kind": "stats", "field": "Z", "name": "p", "stats": ["min", "max", "std"]},
                {"kind": "stats", "field": "Z", "name": "q", "stats": ["std", "min", "max"]}]
    lo, n = _split(N, comm.size, comm.rank)
    api.init(icomm, {"analyses": analyses, "fields": {"Z": {"dims": ["x"]}}}, output=str(path))
    # step 1: +0.0 everywhere but one -0.0 on the last rank's last point;
    # step 2: every value NaN (no finite value: missing index, NaN stats);
    # step 3: -0.0 on rank 0's first point only
    frames = {1: np.zeros(N), 2: np.full(N, np.nan), 3: np.zeros(N)}
    frames[1][N - 1] = -0.0
    frames[3][0] = -0.0
    try:
        api.declare_field("Z", np.float64, (N,), (lo,), (n,))
        res = {}
        for step, f in frames.items():
            api.expose("Z", f[lo:lo + n].copy())
            res[step] = api.step(step, float(step))
    finally:
        api.finalize()
    for step in (1, 3):
        r = res[step]
        assert np.signbit(r["z_min"]) and not np.signbit(r["z_max"]), (step, r)
        assert r["p_min"] == r["z_min"] and np.signbit(r["p_min"])
        assert r["q_std"] == r["p_std"] == 0.0
        assert r["z_count"] == N
    r = res[2]
    assert r["z_count"] == 0 and np.isnan(r["z_min"]) and np.isnan(r["p_std"])
    assert r["z_argmax"] == NO_INDEX and r["z_argmin"] == NO_INDEX
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(path, "r") as h:
            assert h["z_count"].dtype == np.int64 and h["z_argmax"].dtype == np.int64
            assert h["z_min"].dtype == np.float64
            assert h["z_count"][:].tolist() == [N, 0, N]
            # beyond 2**53: the exact int64, not a double's rounding
            assert int(h["z_argmax"][1]) == NO_INDEX and int(h["z_argmin"][1]) == NO_INDEX
            zmin = h["z_min"][:]
            assert np.signbit(zmin[0]) and np.isnan(zmin[1]) and np.signbit(zmin[2])
            zmax = h["z_max"][:]
            assert not np.signbit(zmax[0]) and not np.signbit(zmax[2])
            assert h["z_argmin"][0] == 0 and h["z_argmax"][0] == 0
            assert np.array_equal(h["p_std"][:], h["q_std"][:], equal_nan=True)
