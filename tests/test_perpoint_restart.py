"""Checkpoints and restarts of the per-point kinds (spell, pointwise) with
fake ranks (insitu/state.py): each rank's slab of the state is a piece of
a global array, so a restart at another rank count reads back its own slab;
the rows after the restart equal an uninterrupted run's.  The helpers are
tests/test_restart.py's (an in-memory checkpoint, the file it stands for)."""
import json

import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

import perpoint_cases as pc
from test_restart import RestartWriter, as_file, rows_of

ANALYSES = [{"kind": "spell", "field": "T", "threshold": 0.3, "write_every": 10, "name": "sp"},
            {"kind": "pointwise", "field": "T", "ops": ["mean", "min", "max", "var"],
             "name": "pw"},
            {"kind": "pointwise", "field": "T", "ops": ["mean", "var"], "every": 2,
             "calendar_period": "month", "name": "mon"}]
LAST = 75
AXES = ("time_sp", "time_pw", "time_mon")


def drive(comm, first, last, ck=None, restart=None, order="C"):
    off, shp = pc.box(comm.size, comm.rank)
    w = RestartWriter
    if restart is not None:
        w = type("W", (RestartWriter,), {"checkpoint": {**restart[0], "group": "g"},
                                         "file": {"g": restart[1]}})
    s = api.init(comm, {"fields": {"T": {"dims": ["lat", "lon"]}},
                        "time": {"units": pc.UNITS, "calendar": pc.CAL},
                        "analyses": json.loads(json.dumps(ANALYSES))}, writer_cls=w)
    try:
        api.declare_field("T", np.float64, pc.SHAPE, off, shp, order=order)
        sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
        for step in range(first, last + 1):
            api.expose("T", np.array(pc.field(step)[sl], order=order))
            api.step(step, float(step))
            if step == ck:
                api.checkpoint(step)
        saved = s.memory_checkpoints.get(ck)
    finally:
        api.finalize()
    return s.writer, saved


@pytest.mark.parametrize("before,after,ck", [(1, 1, 37), (2, 3, 40), (3, 2, 59), (4, 1, 31)])
def test_per_point_state_survives_a_restart_at_any_rank_count(before, after, ck):
    ref = [r[0] for r in FakeWorld(2).run(lambda c: drive(c, 0, LAST))]
    first = FakeWorld(before).run(lambda c: drive(c, 0, LAST - 10, ck=ck, order="F"))
    saved = as_file([r[1] for r in first])
    json.dumps(saved[0])
    again = [r[0] for r in FakeWorld(after).run(lambda c: drive(c, ck + 1, LAST,
                                                                restart=saved))]
    for axis in AXES:
        want = rows_of(ref, axis)
        got = [r for r in rows_of([r[0] for r in first], axis) if r["step"] <= ck] + \
            rows_of(again, axis)
        assert [(r["step"], r["time"]) for r in got] == \
            [(r["step"], r["time"]) for r in want], axis
        for g, w in zip(got, want):
            assert g.keys() == w.keys()
            for k in w:
                if k in ("step", "time", "bounds"):
                    assert g[k] == w[k], (axis, k)
                else:
                    np.testing.assert_allclose(g[k], w[k], rtol=1e-12, atol=0, equal_nan=True,
                                               err_msg=f"{axis} {k}")
