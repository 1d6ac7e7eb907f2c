"""The step check inside the step's record (insitu.session._stamp and
_verdict) under real MPI and parallel HDF5, run on every rank by
tests/test_mpi_suite.py at 1-4 ranks (the divergences need two).

Ranks in different bound calls meet in the record's Allreduce (a due
step's one collective; a checkpoint's or a compare-first step's record
alone), every rank raises the same StepError naming each rank's call,
nothing of the call is written, and the session goes on when the ranks
agree again.  The divergences that end the job (finalize against a step, a
rank that never comes) are in tests/test_handshake_record_mpi.py.
"""
import h5py
import numpy as np
import pytest

from insitu import api
from insitu.session import StepError

N = 5


def _open(comm, icomm, path, extra=(), derived=None):
    s = api.init(icomm, {"analyses": [{"kind": "stats", "field": "T", "every": 2,
                                       "stats": ["count", "sum"]}, *extra],
                         "fields": {"T": {"dims": ["y", "x"]}}, "derived": derived or {}},
                 output=str(path))
    # uneven: rank r holds r + 1 rows
    rows = [r + 1 for r in range(comm.size)]
    lo = sum(rows[:comm.rank])
    api.declare_field("T", np.float64, (sum(rows), N), (lo, 0), (rows[comm.rank], N))
    return s, (lo, rows[comm.rank])


def _expose(box, step):
    lo, n = box
    api.expose("T", np.arange(lo * N, (lo + n) * N, dtype=np.float64).reshape(n, N) + step)


def _want(comm, step):
    total = sum(r + 1 for r in range(comm.size)) * N
    return float(np.arange(total, dtype=np.float64).sum() + total * step)


def _diverge(comm, mine, others):
    with pytest.raises(StepError) as err:
        (mine if comm.rank == 0 else others)()
    text = str(err.value)
    assert len(set(comm.allgather(text))) == 1, text  # every rank says the same
    return text


@pytest.mark.parametrize("pair", [(2, 4), (6, 2 ** 32 + 6), (2 ** 32 + 2, 2 ** 32 + 4),
                                  (2 ** 53, 2 ** 53 + 2), (-4, 4)])
def test_steps_that_differ_in_either_half_raise_everywhere(comm, icomm, shared_dir, pair):
    if comm.size == 1:
        pytest.skip("needs two ranks")
    path = shared_dir / "steps.h5"
    s, box = _open(comm, icomm, path)
    try:
        _expose(box, 2)
        assert api.step(2, 2.0)["T_sum"] == _want(comm, 2)
        before = icomm.collectives
        text = _diverge(comm, lambda: api.step(pair[0], 3.0), lambda: api.step(pair[1], 3.0))
        assert icomm.collectives - before == 2  # the record, then the allgather that names
        assert f"rank(s) 0 in insitu_step(step {pair[0]})" in text
        assert f"in insitu_step(step {pair[1]})" in text and "disagree on the step" in text
        _expose(box, 8)
        before = icomm.collectives
        assert api.step(8, 8.0)["T_sum"] == _want(comm, 8)
        assert icomm.collectives - before == 1
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(path, "r") as f:
            assert f["step"][:].tolist() == [2, 8]  # nothing of the failed call


def test_different_due_sets_and_a_spell_that_keeps_its_samples(comm, icomm, shared_dir):
    """Rank 0 at step 2 (stats: local passes, then the record), the others
    at step 3 (a spell, which counts in its local pass: the record alone
    first)."""
    if comm.size == 1:
        pytest.skip("needs two ranks")
    s, box = _open(comm, icomm, shared_dir / "due.h5",
                   [{"kind": "spell", "field": "T", "threshold": 3.0, "every": 3, "name": "sp"}])
    spell = next(a for a in s.analyses if a.kind == "spell")
    try:
        _expose(box, 1)
        api.step(1, 1.0)
        _expose(box, 2)
        text = _diverge(comm, lambda: api.step(2, 2.0), lambda: api.step(3, 3.0))
        assert "rank(s) 0 in insitu_step(step 2)" in text
        assert spell.samples == 0
        for step in (2, 3):
            _expose(box, step)
            api.step(step, float(step))
        assert spell.samples == 1
    finally:
        api.finalize()


def test_a_derived_field_compares_before_its_group_reduction(comm, icomm, shared_dir):
    """The others at step 5, where an analysis reads T - T.mean(y), whose
    reduction is a collective of every rank on the group's communicator:
    they compare first, so rank 0 (step 2) is never left in the record's
    Allreduce while they wait in the group's."""
    if comm.size == 1:
        pytest.skip("needs two ranks")
    extra = [{"kind": "stats", "field": "D", "every": 5, "name": "d", "stats": ["sum"]}]
    s, box = _open(comm, icomm, shared_dir / "derived.h5", extra, {"D": "T - T.mean(y)"})
    try:
        _expose(box, 1)
        api.step(1, 1.0)
        _expose(box, 2)
        _diverge(comm, lambda: api.step(2, 2.0), lambda: api.step(5, 5.0))
        _expose(box, 5)
        assert api.step(5, 5.0)["d_sum"] == pytest.approx(0.0, abs=1e-9)
    finally:
        api.finalize()


def test_a_checkpoint_against_a_step_raises_everywhere_and_writes_none(comm, icomm,
                                                                        shared_dir):
    if comm.size == 1:
        pytest.skip("needs two ranks")
    path = shared_dir / "ck.h5"
    s, box = _open(comm, icomm, path)
    try:
        _expose(box, 2)
        api.step(2, 2.0)
        _expose(box, 4)
        text = _diverge(comm, lambda: api.step(4, 4.0), lambda: api.checkpoint(4))
        others = ", ".join(map(str, range(1, comm.size)))
        assert text.startswith(f"ranks are in different insitu calls: rank(s) 0 in "
                               f"insitu_step(step 4); rank(s) {others} in "
                               "insitu_checkpoint(step 4)"), text
        assert api.step(4, 4.0)["T_sum"] == _want(comm, 4)
        api.checkpoint(4)
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(path, "r") as f:
            assert f["step"][:].tolist() == [2, 4]
            assert list(f["_insitu_state"]) == ["4"]
