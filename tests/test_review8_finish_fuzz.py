"""Review of fcc2058: ``finish_stats`` (insitu.kernels.finish, through
StatsBatch) against ``Stats._values`` on records no field makes in the
other tests: every slot of every batched analysis set to values at the
edges of IEEE arithmetic (signed zeros, subnormals, NaN and Inf in the
moments, negative M2 from rounding, weight sums of -0.0, NaN, Inf and
subnormal, counts at and below ddof and up to 2**53), in random
combinations.  The pack's (name, value) pairs must be the analyses' own
pairs: same names, same order, same bits, and Python floats and ints of
the same values (a weighted mean or var is a numpy float64 in _values, a
float in the pack: the same number).

Checked to fail with each of these made in a copy of
insitu/kernels/finish.py (PYTHONPATH on the copy): ``wsum <= 0`` written
``wsum < 0`` (weight sums of -0.0), ``var >= 0`` written ``var > 0`` (the
std of a zero variance), ``empty`` made true for a zero weight sum, and
the variance divided by ``n`` whatever ddof.
"""
import math
import struct

import numpy as np
import pytest

from insitu import api
from insitu.analyses.stats import Stats, StatsBatch
from insitu.comm import FakeWorld
from insitu.step_values import Pack

EDGE = [0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308,
        math.inf, -math.inf, math.nan, -math.nan, 0.1, 3.0, 1e-300, -1e-300]
COUNTS = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1e6, 2.0 ** 53]


def _session_analyses():
    """A bound session's batchable stats: ddof 0, 1 and 5, weighted by a
    field and by coslat, with every scalar statistic, and a region."""
    all_stats = ["count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count"]
    cfg = {"output": {"path": "unused.h5"}, "log_level": "WARNING",
           "fields": {"T": {"dims": ["y", "x"]}, "W": {"dims": ["y", "x"]}},
           "coords": {"y": {"start": -60.0, "step": 30.0, "units": "degrees_north",
                            "standard_name": "latitude"}},
           "analyses": [
               {"kind": "stats", "field": "T", "name": "p", "stats": all_stats},
               {"kind": "stats", "field": "T", "name": "s1", "ddof": 1, "stats": all_stats},
               {"kind": "stats", "field": "T", "name": "s5", "ddof": 5,
                "stats": ["std", "var", "count"]},
               {"kind": "stats", "field": "T", "name": "w", "weights": "W", "stats": all_stats},
               {"kind": "stats", "field": "T", "name": "c", "stats": all_stats,
                "weights": {"dim": "y", "values": "coslat"}},
               {"kind": "stats", "field": "T", "name": "r", "region": {"x": [1, 3]},
                "stats": ["mean", "min", "max", "sum", "inf_count"]},
           ]}
    out = {}

    def body(comm):
        api.init(comm, cfg)
        try:
            api.declare_field("T", np.float64, (5, 4), (0, 0), (5, 4))
            api.declare_field("W", np.float64, (5, 4), (0, 0), (5, 4))
            keep = [np.ones((5, 4)), np.ones((5, 4))]
            api.expose("T", keep[0])
            api.expose("W", keep[1])
            s = api.session()
            s.step(1, 1.0)
            out["s"] = s
            analyses = [a for a in s.analyses]
            assert all(a.batchable for a in analyses)
            # every analysis on its own slots (no shared pass), as one batch
            batch = Stats.batch_results(analyses, analyses)
            rng = np.random.default_rng(2026)
            rows = []
            record = s.plan.record
            np.seterr(all="ignore")  # this fake rank's thread only: _values divides by NaN
            for trial in range(3000):
                for a in analyses:
                    v = [rng.choice(COUNTS)] + [rng.choice(EDGE) for _ in range(6)] + \
                        [rng.choice(COUNTS), rng.choice(COUNTS)]
                    record[a._mom:a._mom + 9] = v
                    if a._weights is not None:
                        record[a._wmom:a._wmom + 4] = [rng.choice(EDGE) for _ in range(4)]
                pack = batch(record)
                assert type(pack) is Pack
                got = list(pack.items())
                s.memo.formed.clear()
                want = []
                for a in analyses:
                    want += list(a.results(record).items())
                rows.append((got, want))
            return rows
        finally:
            api.finalize()

    return FakeWorld(1).run(body)[0]


def _bits(v):
    if isinstance(v, float):
        return ("float", struct.pack("<d", v))
    assert type(v) is int, type(v)
    return ("int", v)


def test_finish_stats_is_values_on_edge_records():
    rows = _session_analyses()
    assert len(rows) == 3000
    bad = []
    for got, want in rows:
        assert [k for k, _ in got] == [k for k, _ in want]
        for (k, g), (_, w) in zip(got, want):
            assert type(g) in (float, int), (k, type(g))
            if _bits(g) != _bits(w):
                bad.append((k, g, w))
    assert not bad, bad[:10]
