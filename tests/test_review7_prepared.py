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
