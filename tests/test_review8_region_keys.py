"""Review of fcc2058 (shared local passes) and c1c9e6d (StepMemo.formed):
what two ``stats`` analyses share at the reduction must be keyed by what
is the same on every rank.

Two regions can cover the same part of one rank's slab and differ on
another's: ``y [0, 4)`` and ``y [0, 11)`` on the rank that holds rows 0-3.
The kernel's local pass may be shared there (the same local values), but
the combined numbers may not: keyed by the local slices, the whole-field
region took the small region's results on that rank (StepMemo.formed,
since c1c9e6d), and since fcc2058 also its slots on the ranks where the
keys coincide (Session._runners), so the ranks disagreed and rank 0 wrote
the small region's numbers under the large region's names.

Checked: every test here fails on 37a2e9a and on 749e0e5 (rank 0's file
and results wrong) and passes on c1c9e6d's parent and with
/tmp/r8/fix_region_keys.patch (the keys name the region's global box).
"""
import struct

import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

NY, NX = 11, 5   # uneven row splits at 2, 3 and 4 ranks

STATS = ["count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count"]


def _cfg(weights=None):
    """``first``: rank 0's rows of a 2-rank split (and of more ranks'
    splits: it covers rank 0's rows there too); ``whole``: every row as a
    region; ``plain``: no region (the reference: its key differs from the
    others' on every rank).  ``sample`` has whole's region and another
    ddof (a follower of whole's local pass with its own ddof)."""
    w = {} if weights is None else {"weights": weights}
    ddof = 1 if weights is None else 0  # weighted var is a population value
    half = int(np.linspace(0, NY, 3).astype(int)[1])
    return {"output": {"path": "unused.h5"}, "log_level": "WARNING",
            "fields": {"T": {"dims": ["y", "x"]}, "W": {"dims": ["y", "x"]},
                       "I": {"dims": ["y", "x"]}},
            "analyses": [
                {"kind": "stats", "field": "T", "name": "first", "stats": STATS,
                 "region": {"y": [0, half]}, **w},
                {"kind": "stats", "field": "T", "name": "whole", "stats": STATS,
                 "region": {"y": [0, NY]}, **w},
                {"kind": "stats", "field": "T", "name": "sample", "stats": STATS, "ddof": ddof,
                 "region": {"y": [0, NY], "x": [0, NX]}, **w},
                {"kind": "stats", "field": "T", "name": "plain", "stats": STATS, "ddof": ddof,
                 **w},
                # an integer field's stats are not batched, but lend what
                # they form (StepMemo.formed) by the same key
                {"kind": "stats", "field": "I", "name": "ifirst", "region": {"y": [0, half]}},
                {"kind": "stats", "field": "I", "name": "iwhole", "region": {"y": [0, NY]}},
                {"kind": "stats", "field": "I", "name": "iplain"},
            ]}


def _field(step):
    rng = np.random.default_rng(step)
    t = rng.normal(280.0, 5.0, (NY, NX))
    t[NY - 1, 0] = np.nan   # on the last rank only
    return t, rng.uniform(0.5, 2.0, (NY, NX))


def _run(size, weights=None):
    def run(comm):
        api.init(comm, _cfg(weights))
        try:
            b = np.linspace(0, NY, comm.size + 1).astype(int)
            lo, hi = b[comm.rank], b[comm.rank + 1]
            api.declare_field("T", np.float64, (NY, NX), (lo, 0), (hi - lo, NX))
            api.declare_field("W", np.float64, (NY, NX), (lo, 0), (hi - lo, NX))
            api.declare_field("I", np.int32, (NY, NX), (lo, 0), (hi - lo, NX))
            out = []
            for step in (1, 2):
                t, w = _field(step)
                keep = [t[lo:hi].copy(), w[lo:hi].copy(),
                        np.arange(NY * NX, dtype=np.int32).reshape(NY, NX)[lo:hi].copy()]
                api.expose("T", keep[0])
                api.expose("W", keep[1])
                api.expose("I", keep[2])
                out.append(dict(api.step(step, float(step))))
            return out
        finally:
            api.finalize()
    return FakeWorld(size).run(run)


def _bits(v):
    return struct.pack("<d", v) if isinstance(v, float) else v


@pytest.mark.parametrize("weights", [None, "W"])
@pytest.mark.parametrize("size", [2, 3, 4])
def test_a_region_is_not_another_one_that_covers_the_same_local_rows(size, weights):
    results = _run(size, weights)
    for step, got in enumerate(results[0], start=1):
        t, w = _field(step)
        whole = {k[6:]: v for k, v in got.items() if k.startswith("whole_")}
        sample = {k[7:]: v for k, v in got.items() if k.startswith("sample_")}
        plain = {k[6:]: v for k, v in got.items() if k.startswith("plain_")}
        assert whole["count"] == NY * NX - 1, (step, whole)
        # the whole field as a region is the whole field without one: the
        # same counts, sums, extremes and NaN count as plain's (ddof 1)
        for k in ("count", "sum", "min", "max", "nan_count", "mean"):
            assert _bits(whole[k]) == _bits(plain[k]) == _bits(sample[k]), (step, k)
        assert _bits(sample["var"]) == _bits(plain["var"]), step
        for k in ("count", "sum", "mean", "min", "max", "std"):
            assert _bits(got[f"iwhole_{k}"]) == _bits(got[f"iplain_{k}"]), (step, k)
        assert got["iwhole_sum"] == float(np.arange(NY * NX).sum())
        fin = t[np.isfinite(t)]
        assert whole["sum"] == pytest.approx(fin.sum(), rel=1e-13)
        if weights is None:
            assert whole["var"] == pytest.approx(np.var(fin), rel=1e-12)
    for other in results[1:]:   # every rank formed the same results
        assert [[(k, _bits(v)) for k, v in d.items()] for d in other] == \
            [[(k, _bits(v)) for k, v in d.items()] for d in results[0]]
