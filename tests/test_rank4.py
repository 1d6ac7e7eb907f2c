"""Fields of rank 4 (x, y, level, member, say), the ABI's largest: every
analysis kind on fake ranks and under real MPI, against numpy (issue 11)."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

SHAPE = (6, 4, 7, 3)          # dims (a, b, c, d); c is split across ranks, unevenly
FULL = np.sin(np.arange(np.prod(SHAPE), dtype=np.float64)).reshape(SHAPE) * 10.0 + 280.0
FULL[0, 1, 2, 0] = np.nan
CONFIG = {"fields": {"q": {"dims": ["a", "b", "c", "d"]}},
          "derived": {"qa": "q - q.mean(c)"},
          "analyses": [{"kind": "stats", "field": "q"},
                       {"kind": "reduce", "field": "q", "over": ["a", "c"]},
                       {"kind": "reduce", "field": "q", "over": ["d"], "op": "max"},
                       {"kind": "histogram", "field": "q", "bins": 8, "range": [270, 290]},
                       {"kind": "coarsen", "field": "q", "factors": {"a": 2, "b": 2}},
                       {"kind": "probe", "field": "q", "points": [[1, 2, 3, 1], [5, 3, 6, 2]]},
                       {"kind": "stats", "field": "qa", "stats": ["min", "max"]}]}


def body(comm, order):
    rows = np.array_split(np.arange(SHAPE[2]), comm.size)[comm.rank]
    interior = FULL[:, :, rows[0]:rows[-1] + 1, :]
    local = np.full(tuple(n + 2 for n in interior.shape), -1e30, order=order)
    local[1:-1, 1:-1, 1:-1, 1:-1] = interior
    api.init(comm, CONFIG)
    try:
        api.declare_field("q", np.float64, SHAPE, (0, 0, int(rows[0]), 0), local.shape,
                          (1,) * 4, (1,) * 4, order)
        api.expose("q", local)
        return api.step(1, 0.0)
    finally:
        api.finalize()


def assemble(outs, name, shape):
    got = np.full(shape, np.nan)
    for o in outs:
        p = o[name]
        if p is not None:
            got[tuple(slice(s, s + n) for s, n in zip(p.start, p.values.shape))] = p.values
    return got


@pytest.mark.parametrize("nranks", [1, 3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_rank_4_fields_equal_numpy(nranks, order):
    outs = FakeWorld(nranks).run(body, order)
    r = outs[0]
    ok = np.isfinite(FULL)
    fin = FULL[ok]
    assert r["q_count"] == fin.size and r["q_nan_count"] == 1
    assert r["q_sum"] == pytest.approx(fin.sum(), rel=1e-13)
    assert r["q_std"] == pytest.approx(fin.std(), rel=1e-12)
    assert r["q_min"] == fin.min() and r["q_max"] == fin.max()
    np.testing.assert_array_equal(r["q_hist"], np.histogram(fin, 8, (270, 290))[0])
    np.testing.assert_array_equal(r["q_probe"], [FULL[1, 2, 3, 1], FULL[5, 3, 6, 2]])
    zero = np.where(ok, FULL, 0.0)
    np.testing.assert_allclose(assemble(outs, "q_mean_over_a_c", (4, 3)),
                               zero.sum(axis=(0, 2)) / ok.sum(axis=(0, 2)), rtol=1e-13)
    np.testing.assert_array_equal(assemble(outs, "q_max_over_d", (6, 4, 7)),
                                  np.where(ok, FULL, -np.inf).max(axis=3))
    with np.errstate(invalid="ignore"):
        blocks = np.nanmean(FULL.reshape(3, 2, 2, 2, 7, 3), axis=(1, 3))
    np.testing.assert_allclose(assemble(outs, "q_coarse", (3, 2, 7, 3)), blocks, rtol=1e-13)
    qa = FULL - np.nanmean(FULL, axis=2, keepdims=True)
    assert r["qa_min"] == pytest.approx(np.nanmin(qa), rel=1e-12)
    assert r["qa_max"] == pytest.approx(np.nanmax(qa), rel=1e-12)
