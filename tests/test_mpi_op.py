"""The step record's compiled MPI operation (insitu.mpi_op), without MPI:
its function called through ctypes exactly as MPI calls it, against
:func:`insitu.reduction._combine` called from Python (what the Python
callback op runs), bit for bit; the message layout it reads
(:attr:`ReductionPlan.message`); what it does with headers that differ; and
MPIComm's ``record_op`` choice.  tests/mpi/test_mpi_op_ranks.py and
tests/test_mpi_op_mpi.py run it under real MPI."""
import ctypes

import numpy as np
import pytest

from insitu import mpi_op
from insitu import reduction as rd
from insitu.comm import FakeWorld, _record_op_choice
from insitu.reduction import ARGMAX, MAX, MIN, MOMENTS, SUM, ReductionPlan

KINDS = (SUM, MIN, MAX, MOMENTS, ARGMAX)

#: MPI's view of the function: void (*)(void *, void *, int *, MPI_Datatype *)
_PROTO = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                          ctypes.c_void_p)


def call(a: np.ndarray, b: np.ndarray, count: int = 1) -> None:
    """``b <- op(a, b)`` through the compiled function's C address."""
    fn = _PROTO(mpi_op.user_function.address)
    fn(a.ctypes.data, b.ctypes.data, ctypes.byref(ctypes.c_int(count)), None)


def mixed_kinds(rng, count: int) -> list:
    """``count`` values of random kinds (every kind at least once when
    ``count >= 5``), in the order analyses would reserve them."""
    kinds = list(KINDS) + [KINDS[i] for i in rng.integers(0, 5, max(count - 5, 0))]
    rng.shuffle(kinds)
    return kinds[:count]


def plan_of(kinds) -> ReductionPlan:
    plan = ReductionPlan()
    for k in kinds:
        plan.reserve(k)
    plan.freeze()
    return plan


def mixed_plan(rng, count: int) -> ReductionPlan:
    return plan_of(mixed_kinds(rng, count))


def record(plan: ReductionPlan, rng, rank: int = 0, nranks: int = 1) -> np.ndarray:
    """A rank's partial record: the cases that decide bits.  SUM: normal
    values, NaN, +-Inf, signed zeros; MIN/MAX: the same, with -0.0/+0.0 on
    different ranks; MOMENTS: ordinary, at a large offset, one value, and
    empty partials (a rank that held none of a region); ARGMAX: ties in the
    value (the lower index must win), and empty pairs."""
    r = plan.identity.copy()
    for idx in (plan.sum_idx, plan.min_idx, plan.max_idx):
        for i in idx:
            u = rng.random()
            r[i] = (np.nan if u < 0.1 else rng.choice([np.inf, -np.inf]) if u < 0.15
                    else (-0.0 if (rank + i) % 2 else 0.0) if u < 0.4
                    else rng.normal() * 10.0 ** rng.integers(-3, 9))
    for i in plan.mom_idx:
        u = rng.random()
        n = float(rng.integers(1, 10**6))
        c = [0.0, 1e12, -3e8, 288.0][rng.integers(4)]
        if u < 0.25 or (rank == nranks - 1 and u < 0.5):
            r[i:i + 4] = (0.0, np.nan, 0.0, 0.0)          # empty
        elif u < 0.35:
            r[i:i + 4] = (1.0, c + rng.normal(), 0.0, 0.0)
        else:
            r[i:i + 4] = (n, c + rng.normal(), abs(rng.normal()) * n,
                          rng.normal() * 1e-17 * max(1.0, abs(c)))
    for i in plan.arg_idx:
        if rng.random() < 0.2:
            r[i:i + 2] = (-np.inf, np.inf)
        else:
            r[i] = float(rng.integers(3))                  # ties across ranks
            r[i + 1] = float(rng.integers(10**6) * nranks + rank)
    return r


def message(plan: ReductionPlan, rec: np.ndarray) -> np.ndarray:
    m = plan.message.copy()
    m[m.size - plan.size:] = rec
    return m


def test_the_message_is_the_length_the_codes_and_the_record():
    """``[n, codes packed as int8, record]``, the record a view of it (what
    analyses index), identities in place, and plan.code unchanged."""
    for n_values in (0, 1, 7, 8, 9, 40):
        plan = ReductionPlan()
        for i in range(n_values):
            plan.reserve(KINDS[i % 5])
        plan.freeze()
        n = plan.size
        head = rd.header_words(n)
        assert head == 1 + (n + 7) // 8
        assert plan.message.size == head + n and plan.message[0] == n
        assert plan.record.base is plan.message
        if n:
            assert plan.record.ctypes.data == plan.message.ctypes.data + 8 * head
        assert plan.message.view(np.int8)[8:8 + n].tobytes() == plan.code.tobytes()
        assert plan.record.tobytes() == plan.identity.tobytes()
        plan.record[:] = 5.0
        assert plan.reset() is plan.record
        assert plan.record.tobytes() == plan.identity.tobytes()


@pytest.mark.parametrize("count", [1, 5, 9, 40, 300])
def test_the_compiled_function_gives_the_python_combines_bits(count):
    """What MPI calls (the cfunc, through its address) against what the
    Python callback op calls (_combine on the record), on pairs of records
    of every kind, both orders; 9 and 300 values leave a partial codes
    word (a header off by one word reads codes as values)."""
    rng = np.random.default_rng(count)
    for _ in range(60 if count < 300 else 10):
        plan = mixed_plan(rng, count)
        ra, rb = record(plan, rng, 0, 2), record(plan, rng, 1, 2)
        for x, y in ((ra, rb), (rb, ra)):
            a, b = message(plan, x), message(plan, y)
            want = y.copy()
            rd._combine(x.copy(), want, plan.code)
            call(a, b)
            assert b[b.size - plan.size:].tobytes() == want.tobytes()
            assert a.tobytes() == message(plan, x).tobytes()      # in is only read
            assert b[:b.size - plan.size].tobytes() == plan.message[:b.size - plan.size].tobytes()


def test_several_messages_in_one_call():
    """MPI may hand the function ``len > 1`` elements of the type: each is
    a whole message, combined on its own."""
    rng = np.random.default_rng(3)
    plan = mixed_plan(rng, 12)
    recs = [(record(plan, rng, 0, 2), record(plan, rng, 1, 2)) for _ in range(3)]
    a = np.concatenate([message(plan, x) for x, _ in recs])
    b = np.concatenate([message(plan, y) for _, y in recs])
    call(a, b, count=3)
    w = plan.message.size
    for k, (x, y) in enumerate(recs):
        want = y.copy()
        rd._combine(x.copy(), want, plan.code)
        assert b[k * w + w - plan.size:(k + 1) * w].tobytes() == want.tobytes(), k
    call(a, b, count=0)  # nothing to do, nothing read


def test_headers_that_differ_give_nan_not_numbers():
    """Plans with the same length but other slot kinds (ranks that built
    different plans): the record becomes NaN instead of MIN slots combined
    as SUMs; other lengths: nothing is read past the header, inout stays."""
    p1, p2 = ReductionPlan(), ReductionPlan()
    for k in (SUM, MIN, MAX):
        p1.reserve(k)
    for k in (MIN, SUM, MAX):
        p2.reserve(k)
    p1.freeze()
    p2.freeze()
    a, b = message(p1, [1.0, 2.0, 3.0]), message(p2, [4.0, 5.0, 6.0])
    call(a, b)
    assert np.isnan(b[b.size - 3:]).all()
    p3 = ReductionPlan()
    p3.reserve(MOMENTS)
    p3.freeze()
    a, b = message(p1, [1.0, 2.0, 3.0]), message(p3, [1.0, 2.0, 0.0, 0.0])
    before = b.copy()
    call(a, b)
    assert b.tobytes() == before.tobytes()


def test_the_self_test_message_decides_bits():
    """create()'s check: its constant answer is _combine's on the pair, the
    compiled function gives it, and an operation that is not the combine
    (MPI.SUM's addition, nothing done, the codes read one slot late) does
    not: the pair holds every kind, signed zeros, NaN, an empty MOMENTS
    side and an ARGMAX tie."""
    plan, a, b, want = mpi_op.self_test_message()
    h = a.size - plan.size
    ref = b.copy()
    rd._combine(a[h:], ref[h:], plan.code)
    assert ref.tobytes() == want.tobytes()
    got = b.copy()
    call(a, got)
    assert got.tobytes() == want.tobytes()
    assert {*plan.code.tolist()} == {-1, 0, 1, 2, 3, 4}
    added = b.copy()
    added[h:] += a[h:]
    late = b.copy()
    rd._combine(a[h:], late[h:], np.roll(plan.code, 1))
    for wrong in (added, b, late):
        assert wrong.tobytes() != want.tobytes()


def test_the_fake_ranks_combine_as_before():
    """FakeComm.reduce_record still folds plan.combine in rank order over
    the record (the message's header is not its business)."""
    kinds = mixed_kinds(np.random.default_rng(9), 20)
    plan0 = plan_of(kinds)
    recs = [record(plan0, np.random.default_rng(r), r, 3) for r in range(3)]
    want = recs[0].copy()
    for r in recs[1:]:
        plan0.combine(r, want)

    def body(comm):
        plan = plan_of(kinds)
        plan.record[:] = recs[comm.rank]
        comm.reduce_record(plan)
        return plan.record.copy(), plan.message.tobytes()

    for rec, msg in FakeWorld(3).run(body):
        assert rec.tobytes() == want.tobytes()
        assert msg == message(plan0, want).tobytes()


def test_record_op_choice(monkeypatch):
    monkeypatch.delenv("INSITU_RECORD_OP", raising=False)
    assert _record_op_choice(None) == "auto"
    assert _record_op_choice("python") == "python"
    monkeypatch.setenv("INSITU_RECORD_OP", "compiled")
    assert _record_op_choice(None) == "compiled"
    assert _record_op_choice("auto") == "auto"  # the argument first
    monkeypatch.setenv("INSITU_RECORD_OP", "fast")
    with pytest.raises(ValueError, match="INSITU_RECORD_OP='fast'"):
        _record_op_choice(None)
    with pytest.raises(ValueError, match="record_op='c'"):
        _record_op_choice("c")


def test_op_create_not_found_is_unavailable():
    """Without MPI_Op_create in reach (an mpi4py that loads its MPI some
    other way), create() raises Unavailable naming it, which MPIComm turns
    into the Python op (tests/mpi/test_mpi_op_ranks.py)."""
    class NoMPI:
        __file__ = "/nonexistent/libnothing.so"
    with pytest.raises(mpi_op.Unavailable, match="MPI_Op_create not found"):
        mpi_op.create(NoMPI)
