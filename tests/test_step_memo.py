"""One kernel pass shared by the analyses that ask the same question of a
field (insitu.step_memo), and never by two that do not.

Each analysis's results are checked against numpy on the whole field, at
1 to 3 fake ranks with an uneven split: analyses that share a pass (the
same field, region and weights) and analyses that must not (another
region, other weights, another field, regions cut differently by the
ranks) each get their own right answer.  The pass counts show the sharing.
"""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

NX, NY = 13, 9
#: an uneven split of x over up to 3 ranks: (offset, size)
SPLITS = {1: [(0, 13)], 2: [(0, 6), (6, 7)], 3: [(0, 3), (3, 7), (10, 3)]}


def _field(step, dtype=np.float64):
    x = np.arange(NX)[:, None]
    y = np.arange(NY)[None, :]
    f = 280.0 + 5.0 * np.sin(0.7 * x + 0.3 * y + step) + 0.01 * x * y
    return (f if np.dtype(dtype).kind == "f" else np.round(100.0 * f)).astype(dtype)


def _other(step):
    return _field(step) ** 2 / 300.0


def _weights(step):
    """Cell weights, other values at each step (and a new array: the
    weighted stats must not keep a view of the last step's)."""
    y = np.arange(NY)[None, :]
    x = np.arange(NX)[:, None]
    return np.broadcast_to(1.0 + 0.1 * y + 0.05 * step * x, (NX, NY)).copy()


ANALYSES = [
    # three analyses of T over the whole field: one pass
    {"kind": "stats", "field": "T", "name": "a"},
    {"kind": "stats", "field": "T", "name": "b", "stats": ["mean", "max", "argmax"]},
    {"kind": "stats", "field": "T", "name": "c", "stats": ["min", "std", "argmin"]},
    # a region: another pass, another answer (cut differently on each rank)
    {"kind": "stats", "field": "T", "name": "r1", "region": {"x": [2, 9], "y": [1, 5]}},
    {"kind": "stats", "field": "T", "name": "r1b", "region": {"x": [2, 9], "y": [1, 5]},
     "stats": ["mean", "argmin"]},
    {"kind": "stats", "field": "T", "name": "r2", "region": {"x": [5, 13], "y": [1, 5]}},
    # weights: the weighted pass is keyed by the weights too
    {"kind": "stats", "field": "T", "name": "w1", "weights": "area", "stats": ["mean", "var"]},
    {"kind": "stats", "field": "T", "name": "w2", "weights": {"dim": "y", "values":
                                                             [float(v) for v in range(1, NY + 1)]},
     "stats": ["mean", "var"]},
    # another field
    {"kind": "stats", "field": "U", "name": "u"},
]


def _body(comm):
    rank = comm.rank
    off, n = SPLITS[comm.size][rank]
    api.init(comm, {"output": {"path": "unused.h5"}, "analyses": ANALYSES,
                    "fields": {"T": {"dims": ["x", "y"]}, "U": {"dims": ["x", "y"]},
                               "area": {"dims": ["x", "y"]}}})
    try:
        # T with halos of 1 (a strided view), U and area without
        api.declare_field("T", np.float64, (NX, NY), (off, 0), (n + 2, NY + 2), (1, 1), (1, 1))
        api.declare_field("U", np.float64, (NX, NY), (off, 0), (n, NY))
        api.declare_field("area", np.float64, (NX, NY), (off, 0), (n, NY))
        out = {}
        for step in (1, 2):
            t = np.full((n + 2, NY + 2), np.nan)
            t[1:-1, 1:-1] = _field(step)[off:off + n]
            api.expose("T", t)
            api.expose("U", _other(step)[off:off + n].copy())
            api.expose("area", _weights(step)[off:off + n].copy())
            out[step] = api.step(step, float(step))
        memo = api.session().memo
        return out, memo.hits, memo.misses
    finally:
        api.finalize()


def _weighted(x, w):
    m = np.sum(w * x) / np.sum(w)
    return m, np.sum(w * (x - m) ** 2) / np.sum(w)


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_shared_passes_give_each_analysis_its_own_answer(nranks):
    outs = FakeWorld(nranks).run(_body)
    for res, hits, misses in outs:
        for step, r in res.items():
            f = _field(step)
            for name in ("a", "b", "c"):
                for stat, ref in (("mean", f.mean()), ("max", f.max()), ("min", f.min()),
                                  ("std", f.std())):
                    if f"{name}_{stat}" in r:
                        assert r[f"{name}_{stat}"] == pytest.approx(ref, rel=1e-13), (name, stat)
            assert r["b_argmax"] == int(np.argmax(f))
            assert r["c_argmin"] == int(np.argmin(f))
            r1 = f[2:9, 1:5]
            r2 = f[5:13, 1:5]
            assert r["r1_count"] == r1.size and r["r2_count"] == r2.size
            assert r["r1_mean"] == pytest.approx(r1.mean(), rel=1e-13)
            assert r["r1b_mean"] == r["r1_mean"]
            assert r["r1_max"] == r1.max() and r["r2_max"] == r2.max()
            assert r["r2_mean"] == pytest.approx(r2.mean(), rel=1e-13)
            # the region's argmin is the global index of the region's minimum
            i, j = np.unravel_index(np.argmin(r1), r1.shape)
            assert r["r1b_argmin"] == np.ravel_multi_index((i + 2, j + 1), f.shape)
            m1, v1 = _weighted(f, _weights(step))
            m2, v2 = _weighted(f, np.broadcast_to(np.arange(1, NY + 1.0)[None, :], f.shape))
            assert r["w1_mean"] == pytest.approx(m1, rel=1e-13)
            assert r["w1_var"] == pytest.approx(v1, rel=1e-11)
            assert r["w2_mean"] == pytest.approx(m2, rel=1e-13)
            assert r["w2_var"] == pytest.approx(v2, rel=1e-11)
            assert r["w1_mean"] != r["w2_mean"]
            u = _other(step)
            assert r["u_mean"] == pytest.approx(u.mean(), rel=1e-13)
            assert r["u_max"] == u.max()
        # per step: moments of T (whole, r1, r2), of U, and of T under the
        # 2 weights; extremes of T (whole, r1): 8 passes.  Shared: moments
        # of T by 8 more analyses, r1's by 1 more; 2 extremes by 0 more.
        assert misses == 2 * 8, misses
        assert hits == 2 * (3 + 1 + 1 + 1 - 1 + 1), hits


def test_ten_stats_of_one_field_make_one_pass():
    def body(comm):
        api.init(comm, {"output": {"path": "unused.h5"},
                        "analyses": [{"kind": "stats", "field": "T", "name": f"T{i}"}
                                     for i in range(10)]})
        try:
            api.declare_field("T", np.float64, (8,), (4 * comm.rank,), (4,))
            for step in (1, 2, 3):
                api.expose("T", np.arange(4.0) + 4 * comm.rank + step)
                res = api.step(step, 0.0)
            memo = api.session().memo
            runners = api.session()._due_at(3)[6]
            return res, memo.misses, memo.hits, [(a.name, len(f)) for a, f in runners]
        finally:
            api.finalize()

    for res, misses, hits, runners in FakeWorld(2).run(body):
        # one kernel pass per step, run by T0's local pass, which the nine
        # others share (Session._runners): they do not even look it up
        assert (misses, hits) == (3, 0)
        assert runners == [("T0", 9)]
        means = {res[f"T{i}_mean"] for i in range(10)}
        assert means == {np.arange(3.0, 11.0).mean()}


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_statistics_formed_once_are_lent_only_to_analyses_with_the_same_numbers(dtype):
    """Stats with the same pass and options form their statistics once and
    each writes them under its own names; another ddof, region or weights,
    or argmax among the statistics, forms its own.  Float fields' stats
    form theirs in a batch, one row per analysis with its own ddof
    (StatsBatch), lending nothing; an integer field's (exact sums, formed
    in Python) lend through StepMemo.formed.  Fails when the key leaves out
    ddof (the sample variance would be lent the population one)."""
    analyses = [{"kind": "stats", "field": "T", "name": "p", "stats": ["mean", "var", "std"]},
                {"kind": "stats", "field": "T", "name": "q", "stats": ["var", "count"]},
                {"kind": "stats", "field": "T", "name": "s", "stats": ["var", "std"],
                 "ddof": 1},
                {"kind": "stats", "field": "T", "name": "r", "stats": ["var"],
                 "region": {"x": [2, 9]}},
                {"kind": "stats", "field": "T", "name": "a", "stats": ["var", "argmax"]}]

    def body(comm):
        off, n = SPLITS[comm.size][comm.rank]
        api.init(comm, {"output": {"path": "unused.h5"}, "analyses": analyses,
                        "fields": {"T": {"dims": ["x", "y"]}}})
        try:
            api.declare_field("T", dtype, (NX, NY), (off, 0), (n, NY))
            out = {}
            for step in (1, 2):
                api.expose("T", _field(step, dtype)[off:off + n].copy())
                out[step] = api.step(step, float(step))
                formed = len(api.session().memo.formed)
            return out, formed
        finally:
            api.finalize()

    for res, formed in FakeWorld(2).run(body):
        # integer: p (lent to q), s, r; a forms its own, unkept
        assert formed == (3 if dtype is np.int64 else 0)
        for step, r in res.items():
            f = _field(step, dtype)
            assert r["p_var"] == r["q_var"] == r["a_var"]
            assert r["p_var"] == pytest.approx(f.var(), rel=1e-12)
            assert r["q_count"] == f.size
            assert r["s_var"] == pytest.approx(f.var(ddof=1), rel=1e-12)
            assert r["s_std"] == pytest.approx(f.std(ddof=1), rel=1e-12)
            assert r["r_var"] == pytest.approx(f[2:9].var(), rel=1e-12)
            assert r["a_argmax"] == int(np.argmax(f))
