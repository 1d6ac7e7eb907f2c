"""The step record's compiled MPI operation under real MPI, on every rank
(tests/test_mpi_suite.py runs this at 1-4 ranks with Open MPI,
tests/test_mpich.py at 1 and 2 with MPICH): the same bits as the Python
callback op, whole records of every slot kind with uneven partials (empty
MOMENTS on some ranks, ties, signed zeros split across ranks), on the
world and on group sub-communicators; the answer checked against a fold of
every rank's record (exact where the combine only selects or adds
integers); the fallback and the forced choices; the ranks' agreement on
one op when some rank cannot make the compiled one (mpi_op.create made to
fail there: every rank then uses the Python op, or with "compiled" every
rank raises), on a communicator, in its first handshake and in the split
of a group; and the op freed with the communicator."""
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_mpi_op import mixed_kinds, plan_of, record  # noqa: E402

from insitu import mpi_op  # noqa: E402
from insitu.comm import MPIComm  # noqa: E402
from insitu.groups import ReduceGroup  # noqa: E402


def agree(comm, ok: bool, what: str) -> None:
    """Fail on every rank when the check failed on any (a check failing on
    one rank alone would leave the others in the next test's collectives
    until mpiexec's timeout)."""
    bad = comm.allgather(not ok)
    assert not any(bad), f"{what}: failed on rank(s) {[r for r, b in enumerate(bad) if b]}"


def _reduce_each(c, kinds, recs):
    """``(plan, results)``: every record of ``recs`` (this rank's) reduced
    over the insitu comm ``c``, one at a time, in one plan of ``kinds``."""
    plan = plan_of(kinds)
    out = []
    for r in recs:
        plan.record[:] = r
        c.reduce_record(plan)
        out.append(plan.record.copy())
    return plan, out


def _reduced(comm, kinds, recs, record_op):
    """Every record of ``recs`` (this rank's) reduced over ``comm`` (an
    insitu comm made by ``comm_of``) with ``record_op``; checks which path
    ran."""
    c = MPIComm(comm.Dup(), owned=True, record_op=record_op)
    try:
        plan, out = _reduce_each(c, kinds, recs)
        if c.size > 1:
            _, op, _, msg, attr = c._ops[id(plan)]
            assert (op is c._compiled_op) == (record_op == "compiled")
            assert attr == "message" and msg[0] is plan.message  # either op
        return out
    finally:
        c.free()


@pytest.mark.parametrize("count", [1, 5, 9, 40, 300])
def test_compiled_and_python_ops_give_the_same_bits(comm, count):
    """Both ops in the same MPI (same algorithm, same pairing), many
    records: byte-equal, and every rank holds the same bytes."""
    kinds = mixed_kinds(np.random.default_rng(count), count)
    plan = plan_of(kinds)
    rng = np.random.default_rng(1000 * count + comm.rank)
    recs = [record(plan, rng, comm.rank, comm.size) for _ in range(40 if count < 300 else 8)]
    got = _reduced(comm, kinds, recs, "compiled")
    want = _reduced(comm, kinds, recs, "python")
    agree(comm, all(g.tobytes() == w.tobytes() for g, w in zip(got, want)),
          "compiled against python bits")
    mine = np.concatenate(got).view(np.uint64)
    every = np.empty((comm.size, mine.size), dtype=np.uint64)
    comm.Allgather(mine, every)  # a test's check: small records only
    assert (every == every[0]).all()


def _fold(plan, records):
    acc = records[0].copy()
    for r in records[1:]:
        plan.combine(r, acc)
    return acc


def _matches_fold(plan, got, records) -> bool:
    """Selections (MIN, MAX, ARGMAX) and sums of integers are exact whatever
    MPI's pairing; MOMENTS counts exact, means and M2 close."""
    want = _fold(plan, records)

    def bits(x):  # NaN's sign and payload follow the pairing (NaN + -NaN)
        return np.where(np.isnan(x), np.nan, x).tobytes()

    ok = all(bits(got[idx]) == bits(want[idx])
             for idx in (plan.sum_idx, plan.min_idx, plan.max_idx, plan.arg_idx,
                         plan.arg_idx + 1, plan.mom_idx))
    return ok and all(np.allclose(got[plan.mom_idx + k], want[plan.mom_idx + k],
                                  rtol=1e-12, atol=1e-9, equal_nan=True) for k in (1, 2))


@pytest.mark.parametrize("record_op", ["compiled", "python"])
def test_the_answer_is_the_fold_of_every_ranks_record(comm, record_op):
    kinds = mixed_kinds(np.random.default_rng(77), 60)
    plan = plan_of(kinds)
    for trial in range(10):
        rng = np.random.default_rng(10 * trial + comm.rank)
        r = record(plan, rng, comm.rank, comm.size)
        r[plan.sum_idx] = np.round(r[plan.sum_idx] * 1e-3)  # integers: any order is exact
        everyone = np.empty((comm.size, r.size))
        comm.Allgather(r, everyone)
        (got,) = _reduced(comm, kinds, [r], record_op)
        agree(comm, _matches_fold(plan, got, list(everyone)), f"trial {trial} against the fold")


def test_group_plans_combine_within_their_group(comm):
    """A ReduceGroup (insitu.groups) splits the communicator: its plan is
    reduced over its members only, by the compiled op (the split comm
    inherits record_op), with the Python op's bits."""
    if comm.size < 2:
        pytest.skip("groups need 2 ranks")
    kinds = mixed_kinds(np.random.default_rng(5), 30)
    projected = [((r % 2,), (1,)) for r in range(comm.size)]
    results = {}
    for record_op in ("compiled", "python"):
        top = MPIComm(comm.Dup(), owned=True, record_op=record_op)
        group = ReduceGroup(top, projected, (2,), "test")
        try:
            assert group.comm.record_op == record_op
            group.plan = plan_of(kinds)
            rng = np.random.default_rng(comm.rank)
            r = record(group.plan, rng, comm.rank, comm.size)
            group.plan.record[:] = r
            mine = np.empty((group.comm.size, r.size))
            group.comm.comm.Allgather(r, mine)
            group.reduce()
            got = group.plan.record.copy()
            if group.comm.size > 1:
                op = group.comm._ops[id(group.plan)][1]
                assert (op is group.comm._compiled_op) == (record_op == "compiled")
                ok = _matches_fold(group.plan, got, list(mine))
            else:
                ok = got.tobytes() == r.tobytes()
            agree(comm, ok, f"{record_op}: the group's answer against its fold")
            results[record_op] = got
        finally:
            group.free()
            top.free()
    agree(comm, results["compiled"].tobytes() == results["python"].tobytes(),
          "groups: compiled against python bits")


def test_the_op_is_made_once_per_comm_and_freed_with_it(comm):
    kinds = mixed_kinds(np.random.default_rng(1), 12)
    c = MPIComm(comm.Dup(), owned=True, record_op="compiled")
    plans = [plan_of(kinds), plan_of(kinds[:7])]
    try:
        op = c._compiled()
        for p in plans:
            c.reduce_record(p)
            if c.size > 1:
                assert c._ops[id(p)][1] is op
    finally:
        c.free()
    assert c._compiled_op is None and not c._ops
    # a freed handle is MPI_OP_NULL in mpi4py's object
    from mpi4py import MPI
    assert op == MPI.OP_NULL
    for _ in range(20):  # made and freed again and again: no handle runs out
        c2 = MPIComm(comm.Dup(), owned=True, record_op="compiled")
        c2.reduce_record(plans[0])
        c2.free()


def test_the_python_op_where_the_compiled_one_cannot_be_made(comm, monkeypatch, caplog):
    def refuse(MPI):
        raise mpi_op.Unavailable("no MPI_Op_create here (test)")
    monkeypatch.setattr(mpi_op, "create", refuse)
    kinds = mixed_kinds(np.random.default_rng(2), 9)
    plan = plan_of(kinds)
    caplog.set_level(logging.DEBUG, logger="insitu")
    c = MPIComm(comm.Dup(), owned=True, record_op="auto")
    try:
        entry = c._op_for(plan)
        assert c._compiled_op is None and entry[1] is not None
        assert entry[4] == "message"  # the same message as the compiled op's
        assert "no MPI_Op_create here (test)" in caplog.text
        plan.record[:] = record(plan, np.random.default_rng(comm.rank), comm.rank, comm.size)
        c.reduce_record(plan)
    finally:
        c.free()
    forced = MPIComm(comm.Dup(), owned=True, record_op="compiled")
    try:
        with pytest.raises(RuntimeError, match="no MPI_Op_create here"):
            forced._op_for(plan_of(kinds))
    finally:
        forced.free()


def test_a_plan_without_a_message_takes_the_python_op(comm):
    """The exact quantiles' candidate lists (kernels.quantiles.CandidatePlan)
    quack like a plan but have their own combine: the Python op, also when
    the compiled one is forced for records."""
    from insitu.kernels.quantiles import CandidatePlan
    c = MPIComm(comm.Dup(), owned=True, record_op="compiled")
    try:
        plan = CandidatePlan(1, 4)
        plan.fill(0, np.arange(4.0) + 10 * comm.rank, descending=False)
        c.reduce_record(plan)
        agree(comm, sorted(plan.record.tolist()) == [0.0, 1.0, 2.0, 3.0], "candidate lists")
        if c.size > 1:
            assert c._ops[id(plan)][4] == "record"
    finally:
        c.free()


def test_reduce_local_checks_the_handle(comm):
    """create()'s own check (MPI_Reduce_local, no communication) on this
    MPI: the op it returns is MPI's, commutative, and combines whole
    messages."""
    from mpi4py import MPI
    op = mpi_op.create(MPI)
    try:
        assert op.is_commutative
        plan, a, b, want = mpi_op.self_test_message()
        t = MPI.DOUBLE.Create_contiguous(a.size).Commit()
        op.Reduce_local([a, 1, t], [b, 1, t])
        t.Free()
        agree(comm, b.tobytes() == want.tobytes(), "Reduce_local")
    finally:
        op.Free()


def _refuse_on(monkeypatch, comm, ranks):
    """mpi_op.create fails on ``ranks`` (of ``comm``) only, as on a node
    whose numba cache or libmpi cannot make the compiled op."""
    if comm.rank in ranks:
        def refuse(MPI):
            raise mpi_op.Unavailable(f"simulated on rank {comm.rank}: no compiled op here")
        monkeypatch.setattr(mpi_op, "create", refuse)


def _ops_used(comm, c, plan) -> list:
    """Which op every rank passes for ``plan`` on insitu comm ``c``."""
    if c.size == 1:
        return ["none"] * comm.size
    op = c._ops[id(plan)][1]
    return comm.allgather("compiled" if op is c._compiled_op and op is not None else "python")


def _records(comm, kinds, n=20, seed=500):
    plan = plan_of(kinds)
    rng = np.random.default_rng(seed + comm.rank)
    return [record(plan, rng, comm.rank, comm.size) for _ in range(n)]


def _reduced_by(comm, kinds, recs, record_op, timeout=20.0):
    """``recs`` reduced over a new insitu comm; the ops every rank used."""
    c = MPIComm(comm.Dup(), owned=True, record_op=record_op, timeout=timeout)
    try:
        plan, out = _reduce_each(c, kinds, recs)
        return out, _ops_used(comm, c, plan)
    finally:
        c.free()


@pytest.mark.parametrize("where", ["first", "last", "all but first"])
def test_one_rank_without_the_compiled_op_makes_every_rank_use_python(comm, monkeypatch,
                                                                      where):
    """record_op "auto" and mpi_op.create failing on some ranks only: the
    ranks agree (insitu.comm.MPIComm._agree_on_op), every rank passes the
    Python op to the Allreduce (MPI requires one op on every rank), and the
    bits are an all-compiled run's.  Before the agreement the other ranks
    kept the compiled op (mixed ops, outside the MPI standard)."""
    if comm.size < 2:
        pytest.skip("needs 2 ranks")
    kinds = mixed_kinds(np.random.default_rng(11), 40)
    recs = _records(comm, kinds)
    compiled, used = _reduced_by(comm, kinds, recs, "compiled")
    assert used == ["compiled"] * comm.size
    refusing = {"first": {0}, "last": {comm.size - 1},
                "all but first": set(range(1, comm.size))}[where]
    _refuse_on(monkeypatch, comm, refusing)
    got, used = _reduced_by(comm, kinds, recs, "auto")
    assert used == ["python"] * comm.size
    agree(comm, all(g.tobytes() == w.tobytes() for g, w in zip(got, compiled)),
          "one rank without the op: all-Python bits against all-compiled")


def test_record_op_python_on_one_rank_makes_every_rank_use_python(comm):
    """$INSITU_RECORD_OP can differ between ranks (one node's environment):
    "python" on odd ranks, "auto" on even ones, and every rank uses the
    Python op, with the bits every rank would have alone."""
    if comm.size < 2:
        pytest.skip("needs 2 ranks")
    kinds = mixed_kinds(np.random.default_rng(12), 40)
    recs = _records(comm, kinds)
    pure, _ = _reduced_by(comm, kinds, recs, "python")
    mixed, used = _reduced_by(comm, kinds, recs, "python" if comm.rank % 2 else "auto")
    assert used == ["python"] * comm.size
    agree(comm, all(m.tobytes() == p.tobytes() for m, p in zip(mixed, pure)),
          "mixed choices against all-Python bits")


@pytest.mark.parametrize("where", ["first", "last"])
def test_forced_compiled_op_raises_on_every_rank(comm, monkeypatch, where):
    """record_op "compiled" and one rank without the op: every rank raises
    the same RuntimeError, naming the rank and its reason (broadcast from
    it), at the same reduction, and the communicator stays usable (nothing
    left half-way in a collective).  Before the agreement only that rank
    raised and the others waited in the Allreduce (here: the watchdog's
    abort after 20 s)."""
    bad = 0 if where == "first" else comm.size - 1
    _refuse_on(monkeypatch, comm, {bad})
    kinds = mixed_kinds(np.random.default_rng(13), 9)
    c = MPIComm(comm.Dup(), owned=True, record_op="compiled", timeout=20.0)
    try:
        plan = plan_of(kinds)
        with pytest.raises(RuntimeError) as err:
            if comm.size == 1:  # a 1-rank reduction passes no op to MPI
                c._op_for(plan)
            c.reduce_record(plan)
        text = str(err.value)
        assert f"rank {bad} of {comm.size}" in text, text
        assert f"simulated on rank {bad}: no compiled op here" in text, text
        with pytest.raises(RuntimeError, match="simulated"):  # a second plan: the same
            c._op_for(plan_of(kinds[:3]))
        assert c.handshake(7, 7) is None  # still in step with each other
    finally:
        c.free()
    # "python" on one rank against "compiled" on the others: an error too
    c = MPIComm(comm.Dup(), owned=True, timeout=20.0,
                record_op="python" if comm.rank == bad else "compiled")
    try:
        if comm.size > 1:
            with pytest.raises(RuntimeError, match="record_op='python' there"):
                c.reduce_record(plan_of(kinds))
    finally:
        c.free()


def test_the_first_handshake_is_the_agreement(comm, monkeypatch):
    """A session's communicator agrees in its first handshake (every
    collective call starts with one before the session is bound), so its
    first reduction makes no collective of its own; the handshake still
    says None when the ranks' calls agree and only the op's flags differ,
    and names every rank's call, two columns, when they do not."""
    _refuse_on(monkeypatch, comm, {comm.size - 1} if comm.size > 1 else set())
    c = MPIComm(comm.Dup(), owned=True, timeout=20.0)
    try:
        assert c._all_compiled is None
        assert c.handshake(3, 5) is None
        assert c._all_compiled is (comm.size == 1)
        table = c.handshake(3, comm.rank)
        if comm.size > 1:
            assert table.shape == (comm.size, 2) and table[:, 1].tolist() == list(range(comm.size))
        before = c.collectives
        plan = plan_of(mixed_kinds(np.random.default_rng(3), 12))
        plan.record[:] = record(plan, np.random.default_rng(comm.rank), comm.rank, comm.size)
        c.reduce_record(plan)
        assert c.collectives - before == (1 if comm.size > 1 else 0)
        assert _ops_used(comm, c, plan) == (["python"] * comm.size if comm.size > 1
                                             else ["none"])
    finally:
        c.free()


@pytest.mark.parametrize("record_op", ["auto", "compiled"])
def test_group_communicators_agree_in_their_split(comm, monkeypatch, record_op):
    """A ReduceGroup's sub-communicator (MPIComm.split) makes its own op
    before the split's collective, which carries the agreement: with one
    rank of the parent without the op, every group uses the Python op
    ("auto", the bits of an all-compiled run) or every rank raises at its
    group's first reduction ("compiled"); the split makes no more
    collectives than before (2; the error path 2 more, the reason's
    broadcast), the first reduction none of its own."""
    if comm.size < 2:
        pytest.skip("groups need 2 ranks")
    kinds = mixed_kinds(np.random.default_rng(6), 30)
    # one group of 2 at 2 ranks; {0, 2} and {1, 3} above
    projected = [((0 if comm.size == 2 else r % 2,), (1,)) for r in range(comm.size)]
    kept = (1 if comm.size == 2 else 2,)
    results = {}
    for refusing in (set(), {comm.size - 1}):
        rng = np.random.default_rng(comm.rank)
        with monkeypatch.context() as m:
            _refuse_on(m, comm, refusing)
            top = MPIComm(comm.Dup(), owned=True, record_op=record_op, timeout=20.0)
            before = top.collectives
            group = ReduceGroup(top, projected, kept, "test")
            try:
                # + the broadcast of the reason, on the error path only
                assert top.collectives - before == (4 if refusing and record_op == "compiled"
                                                    else 2)
                assert group.comm._all_compiled is (not refusing)
                group.plan = plan_of(kinds)
                group.plan.record[:] = record(group.plan, rng, comm.rank, comm.size)
                if refusing and record_op == "compiled":
                    with pytest.raises(RuntimeError, match=f"simulated on rank {comm.size - 1}"):
                        if group.comm.size == 1:  # reduces without MPI: the op it would use
                            group.comm._op_for(group.plan)
                        group.reduce()
                    continue
                before = group.comm.collectives
                group.reduce()
                assert group.comm.collectives - before == (group.comm.size > 1)
                used = comm.allgather("single" if group.comm.size == 1 else
                                      "compiled" if group.comm._ops[id(group.plan)][1]
                                      is group.comm._compiled_op else "python")
                want = "python" if refusing else "compiled"
                assert set(used) - {"single"} == {want}, used
                results[bool(refusing)] = group.plan.record.copy()
            finally:
                group.free()
                top.free()
    if record_op == "auto":
        agree(comm, results[True].tobytes() == results[False].tobytes(),
              "groups: Python after the agreement against all-compiled bits")
