"""Review 7 (16977c5's promise, 236b71c's exceedance): on the Python route
a model that exposes a new array and drops the old one must get the old
one freed at once, before the next due step: no analysis may keep a view
of it (16977c5 made FieldSlot empty the prepared moments calls for this).
Every analysis kind that prepares a layout per view is checked, with a
weakref and gc, on a Fortran-order halo field.
"""
import gc
import weakref

import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

KINDS = {
    "stats": {"kind": "stats", "field": "T", "stats": ["mean"], "name": "s"},
    "region-stats": {"kind": "stats", "field": "T", "stats": ["mean"], "name": "r",
                     "region": {"y": [1, 4]}},
    "extremes": {"kind": "stats", "field": "T", "stats": ["argmax", "argmin"], "name": "x"},
    "weighted-stats": {"kind": "stats", "field": "T", "weights": "area", "stats": ["mean"],
                       "name": "w"},
    "exceedance": {"kind": "exceedance", "field": "T", "threshold": 0.5, "op": "gt",
                   "name": "e"},
    "weighted-exceedance": {"kind": "exceedance", "field": "T", "threshold": 0.5, "op": "gt",
                            "name": "we", "weights": "area"},
    "histogram": {"kind": "histogram", "field": "T", "bins": 4, "range": [0, 1], "name": "h"},
    "weighted-histogram": {"kind": "histogram", "field": "T", "bins": 4, "range": [0, 1],
                           "name": "wh", "weights": "area"},
    "reduce": {"kind": "reduce", "field": "T", "over": ["x"], "op": "mean"},
}


def _body(comm, kind):
    api.init(comm, {"fields": {"T": {"units": "K", "dims": ["y", "x"]},
                               "area": {"dims": ["y", "x"]}},
                    "analyses": [KINDS[kind]], "output": {"overwrite": True}})
    try:
        for name in ("T", "area"):
            api.declare_field(name, np.float64, (6, 8), (0, 0), (8, 10), (1, 1), (1, 1), "F")
        api.expose("area", np.asfortranarray(np.ones((8, 10))))
        rng = np.random.default_rng(3)
        a = np.asfortranarray(rng.random((8, 10)))
        api.expose("T", a)
        first = api.step(1, 0.0)
        dropped = weakref.ref(a)
        del a
        b = np.asfortranarray(rng.random((8, 10)))
        api.expose("T", b)
        gc.collect()
        freed = dropped() is None
        second = api.step(2, 0.0)   # and the new array is what the next step reads
        return freed, first, second, b[1:-1, 1:-1].copy()
    finally:
        api.finalize()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_dropped_array_is_freed_before_the_next_due_step(tmp_path, monkeypatch, kind):
    """Fails at HEAD for exceedance and weighted-exceedance: the analysis's
    own kernels.weighted.Prepared holds the old view (its ``source`` and
    padded slab) until its next due step; passes with the patch in
    engineer V's report (the Prepared kept in StepMemo.prepared)."""
    monkeypatch.chdir(tmp_path)
    (freed, first, second, b), = FakeWorld(1).run(_body, kind)
    assert freed, f"{kind}: the dropped array is still alive after a new expose"
    assert first.keys() == second.keys() and first
    if kind == "exceedance":
        assert second["e_count"] == int((b > 0.5).sum())
