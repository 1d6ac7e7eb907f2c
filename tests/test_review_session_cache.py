"""Review of the due step's caches (session._due_at, the shared views dict,
StepMemo.formed): at every step of a run whose analyses have different
periods, one of which fails on one rank and is disabled, each analysis due
is written with numpy's answer on the whole field and no other analysis is,
at 1-4 fake ranks with uneven splits.

A wrong cache key shows as a missing or extra variable at some step (the
pattern of due periods), as a lent statistic under another analysis's
options (ddof, region, integer field), or as an analysis still run after it
was disabled."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

N = 23
#: uneven splits of N points over 1-4 ranks: (offset, size)
SPLITS = {1: [(0, 23)], 2: [(0, 9), (9, 14)], 3: [(0, 1), (1, 15), (16, 7)],
          4: [(0, 5), (5, 2), (7, 13), (20, 3)]}
STEPS = range(1, 13)

ANALYSES = [
    {"kind": "stats", "field": "T", "name": "a", "stats": ["count", "mean", "var", "min", "max"]},
    # the same numbers as a (lent by a when both are due), every 2nd step
    {"kind": "stats", "field": "T", "name": "b", "every": 2, "stats": ["var", "std", "sum"]},
    # another ddof: its own numbers
    {"kind": "stats", "field": "T", "name": "c", "every": 3, "stats": ["var", "std"], "ddof": 1},
    # a region
    {"kind": "stats", "field": "T", "name": "r", "every": 2, "stats": ["mean", "var", "count"],
     "region": {"x": [4, 17]}},
    # the integer field, twice with the same options
    {"kind": "stats", "field": "I", "name": "i", "stats": ["sum", "mean", "max"]},
    {"kind": "stats", "field": "I", "name": "j", "every": 4, "stats": ["sum", "mean", "min"]},
    # fails on the last rank at step 5 and is disabled everywhere
    {"kind": "fault", "field": "T", "name": "boom", "at_step": 5, "ranks": "last"},
    {"kind": "stats", "field": "T", "name": "f", "every": 6, "stats": ["max", "nan_count"]},
]
EVERY = {a["name"]: a.get("every", 1) for a in ANALYSES}


def _t(step):
    x = np.arange(N, dtype=np.float64)
    t = 1e6 + np.sin(0.9 * x + step) * (1.0 + step) + 1e-3 * x * step
    t[(step * 7) % N] = np.nan  # a NaN that moves across ranks
    return t


def _i(step):
    x = np.arange(N, dtype=np.int64)
    return (x * x * (step + 1) - 37 * step + (2 ** 40) * (x % 3)).astype(np.int64)


def _body(comm):
    off, n = SPLITS[comm.size][comm.rank]
    api.init(comm, {"output": {"path": "unused.h5"}, "analyses": ANALYSES, "on_error": "skip",
                    "fields": {"T": {"dims": ["x"]}, "I": {"dims": ["x"]}}})
    try:
        api.declare_field("T", np.float64, (N,), (off,), (n,))
        api.declare_field("I", np.int64, (N,), (off,), (n,))
        out = {}
        for step in STEPS:
            api.expose("T", _t(step)[off:off + n].copy())
            api.expose("I", _i(step)[off:off + n].copy())
            out[step] = dict(api.step(step, float(step)))
        return out
    finally:
        api.finalize()


def _expected(step):
    t = _t(step)
    ft = t[np.isfinite(t)]
    reg = t[4:17]
    reg = reg[np.isfinite(reg)]
    i = _i(step)
    want = {
        "a": {"count": ft.size, "mean": ft.mean(), "var": ft.var(), "min": ft.min(),
              "max": ft.max()},
        "b": {"var": ft.var(), "std": ft.std(), "sum": ft.sum()},
        "c": {"var": ft.var(ddof=1), "std": ft.std(ddof=1)},
        "r": {"mean": reg.mean(), "var": reg.var(), "count": reg.size},
        "i": {"sum": float(int(i.sum())), "mean": int(i.sum()) / i.size, "max": float(i.max())},
        "j": {"sum": float(int(i.sum())), "mean": int(i.sum()) / i.size, "min": float(i.min())},
        "f": {"max": ft.max(), "nan_count": int(np.isnan(t).sum())},
    }
    return want


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_due_analyses_and_lent_statistics_match_numpy_at_every_step(nranks):
    outs = FakeWorld(nranks, timeout=30).run(_body)
    for out in outs:
        assert out == outs[0] or nranks > 1  # rank 0 writes; every rank has the results
        for step in STEPS:
            got = out[step]
            want = _expected(step)
            for name, stats in want.items():
                due = step % EVERY[name] == 0
                names = {f"{name}_{k}" for k in stats}
                if not due:
                    assert not names & set(got), (step, name)
                    continue
                for k, ref in stats.items():
                    v = got[f"{name}_{k}"]
                    if k in ("count", "nan_count", "min", "max") or name in "ij" and k == "sum":
                        assert v == ref, (step, name, k, v, ref)
                    else:
                        assert v == pytest.approx(ref, rel=1e-12, abs=1e-9), (step, name, k)
            # the fault ran (nothing written) before step 5 and is disabled after
            assert not any(k.startswith("boom") for k in got)
        ddof1 = [out[s]["c_var"] for s in STEPS if s % 3 == 0]
        pop = [out[s]["a_var"] for s in STEPS if s % 3 == 0]
        assert all(x != y for x, y in zip(ddof1, pop))


def test_disabled_analysis_is_not_run_after_its_failure():
    """The fault is disabled on every rank at step 5, and the due cache
    (keyed by the count of disabled analyses) must not bring it back."""
    def body(comm):
        _body(comm)
        return None

    calls = []
    from insitu.analyses import fault as fmod
    orig = fmod.Fault.local

    def spy(self, views, record, step):
        calls.append((self.rank, step))
        return orig(self, views, record, step)

    fmod.Fault.local = spy
    try:
        FakeWorld(3, timeout=30).run(body)
    finally:
        fmod.Fault.local = orig
    assert sorted({s for _, s in calls}) == [1, 2, 3, 4, 5]
