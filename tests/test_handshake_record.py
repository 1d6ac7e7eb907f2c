"""The step check inside the step's record (insitu.session._stamp/_verdict),
on fake ranks (FakeWorld, 2 and 3 ranks).

Once the session is bound, every collective call (step, checkpoint,
finalize) starts with the record's Allreduce, whose handshake slots carry
the call kind and the argument's high and low 32 bits, MIN- and
MAX-combined: a due step makes ONE collective, and ranks in different calls
still meet in one matched Allreduce.  A mismatch costs one more collective
(the allgather handshake, for the message) and runs nothing else of the
call.  tests/mpi/test_handshake_record.py runs the same divergences under
real MPI; tests/test_handshake_record_mpi.py those that end the job.
"""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld
from insitu.session import StepError

N = 4  # points per rank


def _cfg(extra=(), every=1, derived=None):
    return {"analyses": [{"kind": "stats", "field": "T", "every": every,
                          "stats": ["count", "sum", "max"]}, *extra],
            "fields": {"T": {"dims": ["y", "x"]}},
            "derived": derived or {}}


def _open(comm, cfg):
    s = api.init(comm, cfg)
    api.declare_field("T", np.float64, (2 * comm.size, N), (2 * comm.rank, 0), (2, N))
    return s


def _expose(comm, step):
    a = np.arange(2 * N, dtype=np.float64).reshape(2, N) + 10 * comm.rank + step
    api.expose("T", a)
    return a


def _want_sum(size, step):
    return sum(float((np.arange(2 * N) + 10 * r + step).sum()) for r in range(size))


def _diverge(comm, s, mine, others):
    """Rank 0 makes ``mine``, the others ``others`` (callables); return
    (error text, collectives made, rows written before and after)."""
    rows = len(s.writer.rows)
    before = comm.collectives
    call = mine if comm.rank == 0 else others
    with pytest.raises(StepError) as err:
        call()
    return str(err.value), comm.collectives - before, rows, len(s.writer.rows)


STEP_PAIRS = [
    (2, 4),                        # an ordinary skipped output step
    (5, 2 ** 32 + 5),              # equal low halves: only the high half differs
    (2 ** 32 + 5, 2 ** 32 + 6),    # equal high halves: only the low half differs
    (2 ** 53, 2 ** 53 + 1),        # equal as float64: a step kept as one double misses it
    (-7, 7),                       # negative: the high half is -1
    (-(2 ** 63), 2 ** 63 - 1),     # the ends of int64
    (2 ** 62, 2 ** 40 + 12345),
]


@pytest.mark.parametrize("nranks", [2, 3])
@pytest.mark.parametrize("pair", STEP_PAIRS, ids=[f"{a}-{b}" for a, b in STEP_PAIRS])
def test_steps_that_differ_anywhere_raise_on_every_rank_and_write_nothing(nranks, pair):
    a, b = pair

    def body(comm):
        s = _open(comm, _cfg())
        try:
            _expose(comm, 1)
            assert api.step(1, 1.0)["T_count"] == 2 * N * comm.size
            _expose(comm, 2)
            text, made, rows, after = _diverge(comm, s, lambda: api.step(a, 2.0),
                                               lambda: api.step(b, 2.0))
            # the record, then the allgather that names the ranks: nothing written
            assert made == 2 and after == rows == 1 and s.steps_written == 1
            assert s.last_call == (1, 1.0)
            # and the session goes on when they agree again
            _expose(comm, 3)
            before = comm.collectives
            res = api.step(3, 3.0)
            assert comm.collectives - before == 1
            assert res["T_sum"] == _want_sum(comm.size, 3)
            return text
        finally:
            api.finalize()

    texts = FakeWorld(nranks, timeout=20).run(body)
    others = ", ".join(map(str, range(1, nranks)))
    want = (f"ranks disagree on the step number: rank(s) 0 in insitu_step(step {a}); "
            f"rank(s) {others} in insitu_step(step {b}); every rank must call "
            "insitu_step with the same step")
    assert texts == [want] * nranks


@pytest.mark.parametrize("nranks", [2, 3])
def test_one_collective_per_bound_call(nranks):
    """The first step binds (allgather and record); every later due step,
    checkpoint and finalize is the record's Allreduce alone; an idle step
    none; a step with a spell or a derived field compares first (two)."""
    extra = [{"kind": "spell", "field": "T", "threshold": 5.0, "every": 3, "name": "sp"},
             {"kind": "stats", "field": "D", "every": 5, "name": "d", "stats": ["sum"]}]

    def body(comm):
        s = _open(comm, _cfg(extra, every=2, derived={"D": "T - T.mean(y)"}))
        made = {}
        try:
            for step in range(1, 7):
                _expose(comm, step)
                before = comm.collectives
                api.step(step, float(step))
                made[step] = comm.collectives - before
            before = comm.collectives
            api.checkpoint(6)
            made["checkpoint"] = comm.collectives - before
            before = comm.collectives
        finally:
            api.finalize()
        made["finalize"] = comm.collectives - before
        return made

    for made in FakeWorld(nranks, timeout=20).run(body):
        # 1: binds; 2, 4: stats alone; 3: the spell; 5: the derived field
        # (its group's reduction, between the two, is made on the group's
        # own communicator); 6: stats and the spell
        assert made[1] == 2 and made[2] == made[4] == 1, made
        assert made[3] == made[5] == made[6] == 2, made
        assert made["finalize"] == 1, made


@pytest.mark.parametrize("nranks", [2, 3])
def test_different_due_sets_raise_and_a_spell_keeps_its_samples(nranks):
    """Rank 0 at step 2 (stats alone: one Allreduce, local passes first),
    the others at step 3 (a spell, which counts its samples in its local
    pass: the record's Allreduce alone first).  They meet, both raise, and
    the spell has not counted step 3."""
    extra = [{"kind": "spell", "field": "T", "threshold": 5.0, "every": 3, "name": "sp"}]

    def body(comm):
        s = _open(comm, _cfg(extra, every=2))
        spell = next(a for a in s.analyses if a.kind == "spell")
        try:
            _expose(comm, 1)
            api.step(1, 1.0)
            _expose(comm, 2)
            text, made, rows, after = _diverge(comm, s, lambda: api.step(2, 2.0),
                                               lambda: api.step(3, 3.0))
            assert made == 2 and after == rows, (made, rows, after)
            assert spell.samples == 0
            return text
        finally:
            api.finalize()

    texts = FakeWorld(nranks, timeout=20).run(body)
    others = ", ".join(map(str, range(1, nranks)))
    assert texts == [f"ranks disagree on the step number: rank(s) 0 in insitu_step(step 2); "
                     f"rank(s) {others} in insitu_step(step 3); every rank must call "
                     "insitu_step with the same step"] * nranks


@pytest.mark.parametrize("nranks", [2, 3])
def test_a_derived_field_compares_before_its_group_reductions(nranks):
    """Rank 0 at step 2 (stats), the others at step 5, where an analysis
    reads a derived field whose reduction (T.mean(y), over every rank) is a
    collective on the group's communicator: they compare first, so rank 0's
    record never waits for ranks that are in that group's reduction."""
    extra = [{"kind": "stats", "field": "D", "every": 5, "name": "d", "stats": ["sum"]}]

    def body(comm):
        s = _open(comm, _cfg(extra, every=2, derived={"D": "T - T.mean(y)"}))
        try:
            _expose(comm, 1)
            api.step(1, 1.0)
            _expose(comm, 2)
            text, made, rows, after = _diverge(comm, s, lambda: api.step(2, 2.0),
                                               lambda: api.step(5, 5.0))
            assert made == 2 and after == rows
            _expose(comm, 5)
            res = api.step(5, 5.0)
            assert res["d_sum"] == pytest.approx(0.0, abs=1e-9)
            return text
        finally:
            api.finalize()

    texts = FakeWorld(nranks, timeout=10).run(body)
    assert len(set(texts)) == 1 and "disagree on the step number" in texts[0]


@pytest.mark.parametrize("nranks", [2, 3])
def test_a_checkpoint_against_a_step_raises_on_every_rank(nranks):
    def body(comm):
        s = _open(comm, _cfg())
        try:
            _expose(comm, 1)
            api.step(1, 1.0)
            _expose(comm, 4)
            text, made, rows, after = _diverge(comm, s, lambda: api.checkpoint(4),
                                               lambda: api.step(4, 4.0))
            assert made == 2 and after == rows and not s.memory_checkpoints
            _expose(comm, 5)
            assert api.step(5, 5.0)["T_sum"] == _want_sum(comm.size, 5)
            api.checkpoint(5)
            assert list(s.memory_checkpoints) == [5]
            return text
        finally:
            api.finalize()

    texts = FakeWorld(nranks, timeout=20).run(body)
    others = ", ".join(map(str, range(1, nranks)))
    assert texts == [f"ranks are in different insitu calls: rank(s) 0 in "
                     f"insitu_checkpoint(step 4); rank(s) {others} in insitu_step(step 4); "
                     "every rank must make the same collective insitu calls in the same "
                     "order"] * nranks


@pytest.mark.parametrize("nranks", [2, 3])
def test_finalize_against_a_due_step_raises_on_every_rank(nranks):
    """Rank 0 finalizes while the others are at a due step: the finalize's
    record meets the step's, and every rank raises before anything of
    either call runs (rank 0's session is closed, as a failed finalize
    leaves it; the others' stays open and is left: its finalize would wait
    for rank 0 forever)."""
    def body(comm):
        s = _open(comm, _cfg())
        _expose(comm, 1)
        api.step(1, 1.0)
        _expose(comm, 2)
        text, made, rows, after = _diverge(comm, s, api.finalize, lambda: api.step(2, 2.0))
        assert made == 2 and after == rows == 1
        assert s.closed == (comm.rank == 0) and not getattr(s.writer, "closed", False)
        if comm.rank:
            api._set_current(None, comm)
        return text

    texts = FakeWorld(nranks, timeout=20).run(body)
    others = ", ".join(map(str, range(1, nranks)))
    assert texts == [f"ranks are in different insitu calls: rank(s) 0 in insitu_finalize; "
                     f"rank(s) {others} in insitu_step(step 2); every rank must make the "
                     "same collective insitu calls in the same order"] * nranks


def test_a_failed_analysis_under_skip_still_agrees_in_the_same_record():
    """on_error: skip: the failing rank's flags travel in the record that
    carries the step check, one collective, and every rank disables it."""
    cfg = _cfg([{"kind": "fault", "field": "T", "at_step": 2, "ranks": "last"}])
    cfg["on_error"] = "skip"

    def body(comm):
        s = _open(comm, cfg)
        try:
            for step in (1, 2, 3):
                _expose(comm, step)
                res = api.step(step, float(step))
                assert res["T_sum"] == _want_sum(comm.size, step)
            return [e["step"] for e in s.errors], sorted(s.disabled)
        finally:
            api.finalize()

    for errors, disabled in FakeWorld(3, timeout=20).run(body):
        assert errors == [2] and disabled == [1]
