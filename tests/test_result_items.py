"""Stats.result_items, what Session.step hands to ``values.update``, gives
the pairs of :meth:`Stats.results`, in the same order, for every kind of
stats analysis: ones that share their numbers (StepMemo.formed), argmax and
argmin, regions, weights, ddof, an integer field and reproducible sums.
The step's values must be, key for key and in order, the analyses'
``results`` one after the other (as before result_items, issue 12)."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

NX, NY = 11, 7
SPLITS = {1: [(0, 11)], 2: [(0, 4), (4, 7)], 3: [(0, 2), (2, 6), (8, 3)]}

ANALYSES = [
    {"kind": "stats", "field": "T", "name": "a"},
    {"kind": "stats", "field": "T", "name": "a2"},  # the same numbers as a
    {"kind": "stats", "field": "T", "name": "b", "stats": ["mean", "max", "argmax"]},
    {"kind": "stats", "field": "T", "name": "c", "stats": ["argmin", "var", "count"],
     "ddof": 1},
    {"kind": "stats", "field": "T", "name": "r", "region": {"x": [2, 9], "y": [1, 5]},
     "stats": ["sum", "mean", "min"]},
    {"kind": "stats", "field": "T", "name": "w", "weights": "area",
     "stats": ["std", "mean", "var"]},
    {"kind": "stats", "field": "N", "name": "n"},  # an integer field
    {"kind": "stats", "field": "N", "name": "n2", "stats": ["sum", "mean"]},
]


def _body(comm, reproducible):
    off, n = SPLITS[comm.size][comm.rank]
    api.init(comm, {"output": {"path": "unused.h5"}, "analyses": ANALYSES,
                    "reproducible": reproducible,
                    "fields": {"T": {"dims": ["x", "y"]}, "N": {"dims": ["x", "y"]},
                               "area": {"dims": ["x", "y"]}}})
    try:
        api.declare_field("T", np.float64, (NX, NY), (off, 0), (n + 2, NY + 2), (1, 1), (1, 1))
        api.declare_field("N", np.int32, (NX, NY), (off, 0), (n, NY))
        api.declare_field("area", np.float64, (NX, NY), (off, 0), (n, NY))
        rng = np.random.default_rng(7)
        checked = 0
        for step in (1, 2, 3):
            t = np.full((n + 2, NY + 2), np.nan)
            t[1:-1, 1:-1] = rng.normal(280.0, 5.0, (NX, NY))[off:off + n]
            if step == 2:
                t[1, 1] = np.nan  # a NaN on every rank's slab
            api.expose("T", t)
            api.expose("N", rng.integers(-1000, 1000, (NX, NY)).astype(np.int32)[off:off + n])
            api.expose("area", rng.uniform(0.5, 2.0, (NX, NY))[off:off + n])
            values = api.step(step, float(step))
            s = api.session()
            record = s.plan.record
            expected = []
            for a in s.analyses:
                ref = list(a.results(record).items())
                got = list(dict(a.result_items(record)).items())
                assert [k for k, _ in got] == [k for k, _ in ref], a.name
                np.testing.assert_array_equal([v for _, v in got], [v for _, v in ref])
                assert [type(v) for _, v in got] == [type(v) for _, v in ref], a.name
                expected += ref
            assert list(values) == [k for k, _ in expected]
            np.testing.assert_array_equal(list(values.values()), [v for _, v in expected])
            checked += 1
        return checked
    finally:
        api.finalize()


@pytest.mark.parametrize("reproducible", [False, True])
@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_result_items_are_the_results_in_order(nranks, reproducible, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert FakeWorld(nranks).run(_body, reproducible) == [3] * nranks
