"""Review 7 (16977c5): the moments call made ready once per view object
(kernels.moments.prepare, StepMemo.prepared by (analysis, id(view))).

A prepared call must always read the memory the field exposes at this
step: on the C route (FieldSlot.bind_address, views kept by address,
at most C_VIEWS) when the model cycles through more buffers than that,
rewrites a buffer at an address seen before, or when PREPARED_MAX
evicts; on the Python route with ping-pong arrays, read-only arrays and
a region; and the entries stay bounded.
"""
import ctypes

import numpy as np
import pytest

from insitu import api, step_memo
from insitu.comm import FakeWorld

G = (6, 7)


def _cfg(region=False):
    a = [{"kind": "stats", "field": "f", "name": "a", "stats": ["sum", "count", "max"]}]
    if region:
        a.append({"kind": "stats", "field": "f", "name": "r", "stats": ["sum", "count"],
                  "region": {"x": [1, 3]}})
    return {"fields": {"f": {"units": "K", "dims": ["x", "y"]}}, "analyses": a,
            "output": {"overwrite": True}}


def _wrap(address, nbytes, dtype):
    return np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype=dtype)


def _c_route(comm, nbuf):
    """The C route's binding (FieldSlot.bind_address, as cabi.bind_moved
    does it) over nbuf Fortran-order buffers with a halo of 1."""
    s = api.init(comm, _cfg(region=True))
    try:
        api.declare_field("f", np.float64, G, (0, 0), (G[0] + 2, G[1] + 2), (1, 1), (1, 1), "F")
        slot = s.slots["f"]
        bufs = [np.asfortranarray(np.full((G[0] + 2, G[1] + 2), np.nan)) for _ in range(nbuf)]
        bad, sizes = [], []
        for step in range(1, 6 * nbuf + 1):
            b = bufs[(step * 5) % nbuf]          # an order that revisits evicted addresses
            b[1:-1, 1:-1] = np.arange(G[0] * G[1]).reshape(G, order="F") * step + step
            slot.bind_address(b.ctypes.data, _wrap)
            res = api.step(step, float(step))
            inner = b[1:-1, 1:-1]
            want = (inner.sum(), inner.size, inner.max(), inner[1:3].sum())
            got = (res["a_sum"], res["a_count"], res["a_max"], res["r_sum"])
            if got != want:
                bad.append((step, got, want))
            sizes.append(len(s.memo.prepared))
        return bad, max(sizes)
    finally:
        api.finalize()


@pytest.mark.parametrize("nbuf", [1, 2, 5, 9])
@pytest.mark.parametrize("prepared_max", [None, 3])
def test_c_route_buffers_cycled_and_rewritten(monkeypatch, tmp_path, nbuf, prepared_max):
    monkeypatch.chdir(tmp_path)
    if prepared_max:
        monkeypatch.setattr(step_memo, "PREPARED_MAX", prepared_max)
    (bad, most), = FakeWorld(1).run(_c_route, nbuf)
    assert bad == []
    assert most <= step_memo.PREPARED_MAX


def _python_route(comm, readonly):
    n = [3, 2, 1][comm.rank] if comm.size == 3 else G[0] // comm.size
    off = [0, 3, 5][comm.rank] if comm.size == 3 else n * comm.rank
    s = api.init(comm, _cfg(region=True))
    try:
        api.declare_field("f", np.float64, G, (off, 0), (n, G[1]))
        pair = [np.empty((n, G[1])), np.empty((n, G[1]))]
        out = []
        for step in range(1, 9):
            a = pair[step % 2]
            a.flags.writeable = True
            a[...] = (np.arange(G[0] * G[1]).reshape(G)[off:off + n] + 1.0) * step
            if readonly and step % 3:
                a.flags.writeable = False
            api.expose("f", a)
            out.append(api.step(step, float(step)))
        return out, len(s.memo.prepared)
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 2, 3])
@pytest.mark.parametrize("readonly", [False, True])
def test_python_route_ping_pong_readonly_and_region(tmp_path, monkeypatch, nranks, readonly):
    monkeypatch.chdir(tmp_path)
    outs = FakeWorld(nranks, timeout=30).run(_python_route, readonly)
    full = np.arange(G[0] * G[1]).reshape(G) + 1.0
    for out, n in outs:
        assert n <= 2
        for step, res in enumerate(out, 1):
            f = full * step
            assert (res["a_sum"], res["a_count"], res["a_max"]) == (f.sum(), f.size, f.max())
            assert (res["r_sum"], res["r_count"]) == (f[1:3].sum(), f[1:3].size)


def _ping_pong(comm, nsteps):
    s = api.init(comm, {"fields": {"f": {"units": "K", "dims": ["x", "y"]}},
                        "analyses": [{"kind": "stats", "field": "f", "every": 4, "name": "a",
                                      "stats": ["sum"]}],
                        "output": {"overwrite": True}})
    try:
        api.declare_field("f", np.float64, G, (0, 0), (G[0] + 2, G[1] + 2), (1, 1), (1, 1), "F")
        bufs = [np.asfortranarray(np.zeros((G[0] + 2, G[1] + 2))) for _ in range(2)]
        for step in range(1, nsteps + 1):
            b = bufs[step % 2]             # the heat stand-in's two buffers (models/heat2d.py)
            b[1:-1, 1:-1] = step
            api.expose("f", b)
            res = api.step(step, float(step))
            if step % 4 == 0:
                assert res["a_sum"] == step * G[0] * G[1]
        return None
    finally:
        api.finalize()


@pytest.mark.xfail(strict=True, reason=(
    "review 7, performance only: FieldSlot.bind_array empties every prepared call "
    "whenever a Python model binds another array, so a model swapping two buffers "
    "(insitu.run's heat2d, the replay host's buffers[k % 2]) makes its calls ready again "
    "at every due step and never gains what 16977c5 saves; keeping the views of the last "
    "two arrays per slot (as the C route keeps C_VIEWS by address) would fix it, at the "
    "cost of keeping a dropped buffer alive until two others were bound"))
def test_a_python_model_swapping_two_buffers_prepares_each_view_once(monkeypatch, tmp_path):
    from insitu.kernels import moments as km
    monkeypatch.chdir(tmp_path)
    made = []
    real = km.prepare

    def counting(view, out=None):
        made.append(view.shape)
        return real(view, out)

    monkeypatch.setattr(km, "prepare", counting)
    FakeWorld(1).run(_ping_pong, 40)
    assert len(made) <= 2, f"{len(made)} prepares over 10 due steps"
