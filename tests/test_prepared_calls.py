"""Kernel calls made ready once per view (``kernels.moments.prepare``,
``StepMemo.prepared``), issue 12: a due step right after the model's step
paid about 30 us for the moments wrapper's checks, its C-order view and
numba's typing of the arguments; a ``stats`` analysis now makes its call
ready once per view object and only calls it after that.

What must hold: the prepared call gives the bits of the dispatcher's call;
a view that changed (a new Python array, another C buffer) is never read
through a call made for another; and a call made ready never keeps an array
the model dropped alive.
"""
import gc
import weakref

import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld
from insitu.kernels import moments as km
from insitu.step_memo import PREPARED_MAX, StepMemo


def _views():
    """(name, view): every dtype, both orders, halo views, 1-D to 4-D."""
    rng = np.random.default_rng(12)
    out = []
    for dtype in (np.float64, np.float32, np.int32, np.int64):
        base = rng.normal(280.0, 5.0, (12, 9)) if np.dtype(dtype).kind == "f" \
            else rng.integers(-50, 50, (12, 9))
        for order in "CF":
            a = np.array(base, dtype=dtype, order=order)
            if a.dtype.kind == "f":
                a[3, 4] = np.nan
                a[0, 0] = -0.0
            name = f"{np.dtype(dtype).name}-{order}"
            out += [(f"{name}-whole", a), (f"{name}-halo", a[1:-1, 1:-1]),
                    (f"{name}-column", a[:, 3])]
    f4 = rng.normal(size=(3, 4, 5, 6))
    f4[0, 1, 2, 3] = np.inf
    out += [("4d", f4), ("4d-halo", f4[:, 1:, :, 1:-1]), ("1d", np.arange(7.0)),
            ("3d-F", np.asfortranarray(rng.normal(size=(4, 5, 6)))[1:-1, :, 1:-1])]
    return out


VIEWS = _views()


@pytest.mark.parametrize("name,view", VIEWS, ids=[n for n, _ in VIEWS])
def test_a_prepared_call_gives_the_dispatchers_bits(name, view):
    out = np.full(len(km.FIELDS), 12345.0)
    fn, args = km.prepare(view, out)
    assert args[-1] is out
    fn(*args)
    # the same arguments through numba's dispatcher (which types them)
    want = np.full(len(km.FIELDS), -1.0)
    dispatcher = km._moments4 if view.ndim == 4 else km._moments3
    dispatcher(*args[:-1], want)
    assert out.tobytes() == want.tobytes()
    # and what numpy says of the finite values
    finite = view[np.isfinite(view)] if view.dtype.kind == "f" else view.ravel()
    assert out[0] == finite.size
    assert out[4] == finite.min() and out[5] == finite.max()
    assert np.isclose(out[1], finite.sum(dtype=np.float64), rtol=1e-12)


def test_the_prepared_call_is_the_compiled_entry_not_the_dispatcher():
    """What saves numba's typing at every due step: ``fn`` is the entry
    point compiled for these argument types.  Anything numba cannot type
    falls back to the dispatcher (which then raises as it always did)."""
    fn, _ = km.prepare(np.zeros((6, 5), order="F")[1:-1, 1:-1])
    assert fn is not km._moments3 and callable(fn)
    assert km.entry(km._moments3, (object(),)) is km._moments3


def _session(cfg, fn, size=1):
    """Run ``fn(comm, rank)`` on ``size`` fake ranks, inside an insitu session."""
    def rank(comm):
        api.init(comm, cfg)
        try:
            return fn(comm, comm.rank)
        finally:
            api.finalize()
    return FakeWorld(size).run(rank)


CFG = {"output": {"path": "unused.h5"}, "log_level": "WARNING",
       "fields": {"T": {"dims": ["x", "y"]}},
       "analyses": [{"kind": "stats", "field": "T", "every": 1, "name": "all"},
                    {"kind": "stats", "field": "T", "every": 2, "name": "box",
                     "region": {"x": [4, 9], "y": [2, 4]}}]}


def test_the_same_array_reuses_its_call_a_new_one_is_made_ready_again(monkeypatch):
    made = []
    real = km.prepare
    monkeypatch.setattr(km, "prepare", lambda v, out=None: (made.append(v), real(v, out))[1])

    def run(comm, r):
        api.declare_field("T", np.float64, (12, 4), (6 * r, 0), (8, 6), (1, 1), (1, 1), "F")
        a = np.zeros((8, 6), order="F")
        got = []
        for step in range(1, 7):
            if step == 4:
                a = np.zeros((8, 6), order="F")  # the model makes a new array
            a[:] = step * 10.0 + np.arange(48).reshape(8, 6, order="F") + r
            api.expose("T", a)
            res = api.step(step, float(step))
            got.append((res["all_sum"], res.get("box_sum")))
        return got

    got = _session(CFG, run, size=2)
    # made ready on each of the 2 ranks: "all" at step 1, "box" at step 2
    # (its first due step), both again at step 4 (the new array), then
    # never again
    assert len(made) == 2 * 4, [v.shape for v in made]
    for out in got:
        for step, (total, box) in enumerate(out, start=1):
            whole = np.concatenate([step * 10.0 + np.arange(48).reshape(8, 6, order="F")[1:-1, 1:-1]
                                    + r for r in (0, 1)], axis=0)
            assert total == whole.sum()
            if step % 2 == 0:
                assert box == whole[4:9, 2:4].sum()  # across both ranks' slabs
            else:
                assert box is None


def test_a_dropped_array_is_not_kept_alive_by_a_prepared_call():
    """The slot keeps only the array exposed last (insitu.fields.FieldSlot);
    a prepared call holds views of its array, so a new array empties them."""
    def run(comm, r):
        api.declare_field("T", np.float64, (6, 4), (0, 0), (8, 6), (1, 1), (1, 1), "F")
        a = np.ones((8, 6), order="F")
        api.expose("T", a)
        api.step(1, 1.0)
        assert api.session().memo.prepared, "nothing was made ready"
        gone = weakref.ref(a)
        b = np.full((8, 6), 2.0, order="F")
        api.expose("T", b)
        del a
        gc.collect()
        alive = gone() is not None
        res = api.step(2, 2.0)
        return alive, res["all_sum"]

    (alive, total), = _session(dict(CFG, analyses=CFG["analyses"][:1]), run)
    assert not alive, "a prepared call kept the dropped array alive"
    assert total == 2.0 * 24


def test_the_prepared_calls_are_bounded():
    memo = StepMemo()
    views = [np.zeros(3) for _ in range(PREPARED_MAX + 5)]
    for i, v in enumerate(views):
        memo.ready((0, id(v)), v, None, ())
        assert len(memo.prepared) <= PREPARED_MAX
    assert (0, id(views[-1])) in memo.prepared
