"""The whole session on the in-process fake communicator, 1 to 4 ranks.

tests/mpi/test_mpi_session.py runs the same scenarios under real MPI; both
compare with numpy on the full field, so they must agree with each other.
"""
import numpy as np
import pytest

from insitu import api
from insitu.comm import CommError, FakeWorld
from insitu.fields import FieldError

from scenarios import CASES, check_against_numpy, config, run_case


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_stats_equal_numpy_on_fake_ranks(case, nranks):
    world = FakeWorld(nranks)
    outs = world.run(run_case, case)
    for out in outs:  # every rank gets the same numbers, bit for bit
        for step, res in out["results"].items():
            ref = outs[0]["results"][step]
            assert res.keys() == ref.keys()
            assert np.array_equal([res[k] for k in ref], [ref[k] for k in ref], equal_nan=True)
    check_against_numpy(case, outs[0]["results"])


def test_one_collective_per_step_however_many_analyses():
    """The first step makes the step check (an allgather: the session binds
    there) and the record; every later due step the record alone, whose
    handshake slots are the step check (insitu.session._stamp)."""
    for copies in (1, 10, 50):
        outs = FakeWorld(3).run(run_case, "c2d-uneven", 4, None, copies)
        assert outs[0]["collectives_per_step"] == (2 + 1 + 1 + 1) / 4, copies


def test_bad_declaration_on_one_rank_raises_on_all_ranks():
    def body(comm):
        api.init(comm, config())
        try:
            halo = 9 if comm.rank == 2 else 1  # rank 2 leaves no interior
            api.declare_field("f", np.float64, (12,), (4 * comm.rank,), (6,), (halo,), (1,))
        except FieldError as exc:
            return str(exc)
        finally:
            api.finalize()
        return None

    messages = FakeWorld(3).run(body)
    assert "rank 2" in messages[2] and "no interior" in messages[2]
    for m in messages[:2]:
        assert m is not None and "failed on rank(s) [2]" in m


def test_overlapping_slabs_are_refused():
    def body(comm):
        api.init(comm, config())
        try:
            api.declare_field("f", np.float64, (10,), (0 if comm.rank == 0 else 4,), (6,))
        finally:
            api.finalize()

    with pytest.raises(FieldError, match="overlap"):
        FakeWorld(2).run(body)


def test_ranks_disagreeing_on_step_are_caught():
    def body(comm):
        api.init(comm, config())
        try:
            api.declare_field("f", np.float64, (8,), (4 * comm.rank,), (4,))
            api.expose("f", np.zeros(4))
            api.step(1 + comm.rank, 0.0)
        finally:
            api.finalize()

    with pytest.raises(Exception, match="disagree on the step"):
        FakeWorld(2).run(body)


def _faulty(policy, ranks):
    cfg = config()
    cfg["on_error"] = policy
    cfg["analyses"].append({"kind": "fault", "field": "f", "at_step": 2, "ranks": ranks})
    return cfg


def _drive(comm, cfg, steps=3):
    s = api.init(comm, cfg)
    try:
        api.declare_field("f", np.float64, (8,), (8 // comm.size * comm.rank,),
                          (8 // comm.size,))
        out = []
        for step in range(1, steps + 1):
            api.expose("f", np.arange(8 // comm.size, dtype=np.float64) + step)
            out.append(api.step(step, 0.0))
        return out, s.errors, s.writer
    finally:
        api.finalize()


@pytest.mark.parametrize("ranks", ["first", "last", "random", "all", "1"])
def test_abort_policy_aborts_and_never_hangs(ranks):
    """The failing rank calls abort with status 3; a barrier that timed out
    (ranks that never met, a hang) would raise another CommError, which no
    longer passes."""
    import time
    world = FakeWorld(4, timeout=20)
    t0 = time.monotonic()
    with pytest.raises(CommError, match="aborted with code 3"):
        world.run(_drive, _faulty("abort", ranks))
    assert world.aborted and {code for _, code in world.aborted} == {3}
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("ranks", ["first", "last", "random", "all"])
def test_skip_policy_disables_on_all_ranks_and_records(ranks):
    outs = FakeWorld(4, timeout=20).run(_drive, _faulty("skip", ranks))
    for results, errors, writer in outs:
        assert len(errors) == 1 and errors[0]["step"] == 2
        assert "InjectedFault: injected fault" in errors[0]["error"]
        assert "Traceback" in errors[0]["traceback"]
        assert [len(r) for r in results] == [len(results[0])] * 3  # stats kept running
        assert writer.attrs["insitu_errors"] == errors
    if ranks == "all":
        assert outs[0][1][0]["ranks_failed"] == 4 and outs[0][1][0]["first_rank"] == 0
    if ranks == "last":
        assert outs[0][1][0]["first_rank"] == 3
