"""The handoff's caches and the cadence that lets idle steps skip everything
(issue 12).

A cached view must never outlive or misdescribe the model's buffer: every
change of address, shape, strides or dtype is either refused or rebuilt.
The C route's cache (views by address) is driven here with real memory
through the same ``wrap`` libinsitu's Python side uses; the whole C route,
under MPI, is in tests/mpi/test_cabi.py.
"""
import ctypes
import random
import warnings

import numpy as np
import pytest

from insitu import api
from insitu.cadence import C_MAX, Cadence, reduced
from insitu.comm import FakeWorld
from insitu.fields import FieldError, FieldSlot, make_spec


def spec(order="C", dtype=np.float64):
    return make_spec("T", dtype, (8, 6), (0, 0), (10, 8), (1, 1), (1, 1), order)


# -- the Python route --------------------------------------------------------------

@pytest.mark.parametrize("order", ["C", "F"])
def test_the_same_array_is_served_from_the_cache_a_new_one_is_rebuilt(order):
    slot = FieldSlot(spec(order), 0)
    a, b = np.zeros((10, 8), order=order), np.ones((10, 8), order=order)
    va = slot.bind_array(a)
    assert slot.bind_array(a) is va
    vb = slot.bind_array(b)
    assert vb is not va and np.shares_memory(vb, b) and not np.shares_memory(vb, a)
    assert vb.shape == (8, 6) and (vb == 1.0).all()
    assert vb.strides == b[1:-1, 1:-1].strides
    assert slot.bind_array(a) is not va and np.shares_memory(slot.view, a)


def test_a_shape_changed_in_place_is_refused_not_served():
    slot = FieldSlot(spec(), 0)
    a = np.zeros((10, 8))
    slot.bind_array(a)
    a.shape = (8, 10)  # same object, same memory, another shape
    with pytest.raises(FieldError, match=r"exposed shape \(8, 10\)"):
        slot.bind_array(a)
    a.shape = (10, 8)
    assert np.shares_memory(slot.bind_array(a), a)


def test_a_dtype_changed_in_place_is_refused_not_served():
    slot = FieldSlot(spec(), 0)
    a = np.zeros((10, 8))
    slot.bind_array(a)
    a.dtype = np.int64  # same shape and strides: only the dtype tells
    with pytest.raises(FieldError, match="exposed dtype int64 but declared float64"):
        slot.bind_array(a)


def test_strides_changed_in_place_are_refused_not_served():
    slot = FieldSlot(spec(), 0)
    a = np.zeros((10, 8))
    slot.bind_array(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2.4 deprecates it
        a.strides = (8, 80)  # now Fortran-ordered over the same memory
    with pytest.raises(FieldError, match="not C-contiguous"):
        slot.bind_array(a)


def test_numpy_will_not_move_an_array_insitu_views():
    """The one in-place way a numpy array's data can move, ``resize``,
    is refused while insitu's view refers to the array."""
    slot = FieldSlot(spec(), 0)
    a = np.zeros((10, 8))
    slot.bind_array(a)
    with pytest.raises(ValueError, match="cannot resize"):
        a.resize((20, 8))


def test_refused_arrays_leave_the_previous_view():
    slot = FieldSlot(spec(), 0)
    a = np.zeros((10, 8))
    v = slot.bind_array(a)
    for bad in (np.zeros((10, 8), dtype=np.float32), np.zeros((10, 9)),
                np.zeros((10, 8), order="F"), [[0.0]]):
        with pytest.raises(FieldError):
            slot.bind_array(bad)
    assert slot.view is v and slot.bind_array(a) is v


# -- the C route: views by address ---------------------------------------------------

def wrap_counting(calls):
    """libinsitu's wrap (insitu/cabi.py), over ctypes instead of cffi."""
    def wrap(address, nbytes, dtype):
        calls.append(address)
        return np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype=dtype)
    return wrap


@pytest.mark.parametrize("order", ["C", "F"])
def test_swapped_buffers_are_viewed_from_the_cache(order):
    slot, calls = FieldSlot(spec(order), 0), []
    wrap = wrap_counting(calls)
    a = np.full((10, 8), 1.0, order=order)
    b = np.full((10, 8), 2.0, order=order)
    a[1:-1, 1:-1] = np.arange(48).reshape(8, 6)
    views = [slot.bind_address(x.ctypes.data, wrap) for x in (a, b, a, b, a)]
    assert calls == [a.ctypes.data, b.ctypes.data], "a kept view was rebuilt"
    assert views[0] is views[2] is views[4] and views[1] is views[3]
    np.testing.assert_array_equal(views[0], a[1:-1, 1:-1])
    assert views[0].strides == a[1:-1, 1:-1].strides
    assert (views[1] == 2.0).all()
    a[3, 4] = -1.0  # the model writes; the kept view reads its memory
    assert slot.bind_address(a.ctypes.data, wrap)[2, 3] == -1.0


def test_the_c_cache_is_bounded_and_never_serves_another_address():
    slot, calls = FieldSlot(spec(), 0), []
    wrap = wrap_counting(calls)
    bufs = [np.full((10, 8), float(k)) for k in range(slot.C_VIEWS + 2)]
    for k, b in enumerate(bufs):
        v = slot.bind_address(b.ctypes.data, wrap)
        assert np.shares_memory(v, b) and (v == k).all()
    assert len(slot._views) == slot.C_VIEWS
    assert bufs[0].ctypes.data not in slot._views  # the oldest went
    v = slot.bind_address(bufs[0].ctypes.data, wrap)  # rebuilt, right memory
    assert (v == 0.0).all() and calls.count(bufs[0].ctypes.data) == 2
    assert slot.bind_address(0, wrap) is None and slot.view is None


def test_the_python_route_after_the_c_route_checks_in_full():
    slot = FieldSlot(spec(), 0)
    a = np.zeros((10, 8))
    slot.bind_address(a.ctypes.data, wrap_counting([]))
    with pytest.raises(FieldError):
        slot.bind_array(np.zeros((10, 8), dtype=np.float32))
    assert np.shares_memory(slot.bind_array(a), a)


# -- the cadence ---------------------------------------------------------------------

def test_reduced_periods_drop_multiples():
    assert reduced([10, 5, 20, 3, 6, 7, 5]) == (3, 5, 7)
    assert reduced([]) == ()
    with pytest.raises(ValueError):
        reduced([0])


def test_cadence_agrees_with_every_analysis_rule():
    rng = random.Random(12)
    for _ in range(200):
        periods = [rng.randint(1, 40) for _ in range(rng.randint(0, 5))]
        c = Cadence(periods)
        for step in range(-50, 400):
            assert c.due(step) == any(step % p == 0 for p in periods), (periods, step)


def test_cadence_unknown_or_too_large_for_c_enters_python():
    assert Cadence(None).due(7) and Cadence(None).c_table() is None
    primes = [p for p in range(2, 1000) if all(p % q for q in range(2, p))][:C_MAX + 1]
    assert Cadence(primes[:C_MAX]).c_table() == tuple(primes[:C_MAX])
    assert Cadence(primes).c_table() is None


class _A:
    from insitu.analyses.base import Analysis as _Base
    due = _Base.due

    def __init__(self, index, every, kind="stats"):
        self.index, self.every, self.kind = index, every, kind
        self.follows_source = kind in ("window", "climatology")  # as those classes say


class _Odd(_A):
    def due(self, step):
        return step % 2 == 1


def test_cadence_of_analyses_skips_windows_and_disabled_and_gives_up_on_others():
    analyses = [_A(0, 4), _A(1, 6), _A(2, 1, kind="window")]
    assert Cadence.of(analyses, {}).periods == (4, 6)
    assert Cadence.of(analyses, {0: 8}).periods == (6,)
    assert Cadence.of(analyses, {0: 8, 1: 8}).periods == ()
    assert not Cadence.of(analyses + [_Odd(3, 1)], {}).known


# -- a session's idle steps: no collective, the same on both routes ----------------

CFG = {"output": {"path": "unused.h5"}, "log_level": "WARNING",
       "analyses": [{"kind": "stats", "field": "T", "every": 5}]}


def test_idle_steps_make_no_collective_and_due_steps_are_right():
    world = FakeWorld(2)

    def rank(comm):
        r = comm.rank
        s = api.init(comm, CFG)
        api.declare_field("T", np.float64, (8,), (4 * r,), (4,))
        a = np.zeros(4)
        out = []
        for step in range(1, 22):
            a[:] = step + r
            api.expose("T", a)
            before = comm.collectives
            res = api.step(step, float(step))
            made = comm.collectives - before
            if step > 1 and step % 5:
                assert res == {} and made == 0, (step, made)
            elif step % 5 == 0:
                out.append(res["T_sum"])
        assert s.last_call == (21, 21.0)  # finalize's windows end at the last step
        api.finalize()
        return out

    results = world.run(rank)
    for out in results:
        assert out == [4 * (2 * s + 1) for s in (5, 10, 15, 20)]


def test_the_first_step_always_meets_the_others_even_when_not_due():
    """The first step binds the analyses (collective): it makes the
    handshake whether or not it is due, so a rank that skips it is caught."""
    world = FakeWorld(2)

    def rank(comm):
        r = comm.rank
        api.init(comm, CFG)
        api.declare_field("T", np.float64, (8,), (4 * r,), (4,))
        api.expose("T", np.zeros(4))
        before = comm.collectives
        api.step(1, 1.0)
        assert comm.collectives > before
        api.finalize()

    world.run(rank)
