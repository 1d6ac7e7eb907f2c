"""Checkpoints and restarts with fake ranks (insitu/state.py): the state of
windows (by steps, calendar months, over a distributed zonal mean),
climatologies and triggers survives a checkpoint and a restart at another
rank count, and the rows written after it equal an uninterrupted run's; the
config comparison names what changed.  The real-MPI path (the file cut and
reopened, SIGKILL, insitu.run) is tests/test_restart_mpi.py."""
import json

import numpy as np
import pytest

from insitu import api, state
from insitu.comm import FakeWorld
from insitu.writer import MemoryWriter

UNITS = "days since 2000-01-01"
SHAPE = (7, 5)
DT = 5.0
LAST = 70
CFG = {"fields": {"T": {"dims": ["y", "x"], "units": "K"}},
       "time": {"units": UNITS, "calendar": "noleap"},
       "analyses": [{"kind": "stats", "field": "T", "stats": ["mean", "max"]},
                    {"kind": "reduce", "field": "T", "over": ["x"], "op": "mean",
                     "name": "Tzon"},
                    {"kind": "window", "source": "T", "steps": 3, "ops": ["mean", "var"]},
                    {"kind": "window", "source": "T", "calendar_period": "month",
                     "ops": ["mean", "max"]},
                    {"kind": "window", "source": "Tzon", "steps": 4, "ops": ["mean", "var"],
                     "name": "wz"},
                    {"kind": "climatology", "source": "T", "by": "season"}],
       "triggers": [{"name": "hot", "when": "T_max > 289", "fields": ["T"],
                     "max_snapshots": 2}]}


def field(step):
    j, i = np.indices(SHAPE, dtype=np.float64)
    return 280.0 + 10.0 * np.sin(0.05 * step + 0.3 * i) + 0.5 * j + 1e-3 * step


class RestartWriter(MemoryWriter):
    """The in-memory writer, holding the checkpoint a restart reads (the
    role of the output file's ``/_insitu_state/<step>``)."""
    checkpoint = None
    file = None

    def __init__(self, *args, restart=None, **kwargs):
        super().__init__(*args, **kwargs)


def drive(comm, first, last, ck=None, restart=None, ck_first=False):
    rows = np.array_split(np.arange(SHAPE[0]), comm.size)[comm.rank]   # uneven at 3
    w = RestartWriter
    if restart is not None:
        w = type("W", (RestartWriter,), {"checkpoint": {**restart[0], "group": "g"},
                                         "file": {"g": restart[1]}})
    s = api.init(comm, json.loads(json.dumps(CFG)), writer_cls=w)
    try:
        api.declare_field("T", np.float64, SHAPE, (int(rows[0]), 0), (len(rows), SHAPE[1]))
        if ck_first:  # before any step: the restored state, still unread, saved again
            api.checkpoint(ck)
        for step in range(first, last + 1):
            api.expose("T", np.ascontiguousarray(field(step)[rows]))
            api.step(step, step * DT)
            if step == ck:
                api.checkpoint(step)
        saved = s.memory_checkpoints.get(ck)
        before = {a: list(r) for a, r in s.writer.axes.items()}
        fired = [t["fired"] for t in s.triggers]
    finally:
        api.finalize()
    return s.writer, saved, before, fired


def as_file(per_rank):
    """What the parallel file holds: rank 0's replicated arrays, and every
    rank's piece written into each global array (or rank 0's copy of a
    restored one no rank has been handed a piece of yet)."""
    meta, arrays = per_rank[0]
    out = {"replicated": arrays["replicated"].value}
    for name, a in arrays.items():
        if a.distributed:
            g = np.full(a.shape, np.nan)
            for off, src in a.copy_from or ():
                src = np.asarray(src[...])
                g[off:off + len(src)] = src
            for _, arrs in per_rank:
                for start, values in arrs[name].value:
                    g[tuple(slice(o, o + n) for o, n in zip(start, values.shape))] = values
            out[name] = g
    return meta, out


def rows_of(writers, axis):
    """Each row of ``axis`` with the distributed pieces put together."""
    out = []
    for i, (step, time, bounds, values) in enumerate(writers[0].axes[axis]):
        row = {"step": step, "time": time, "bounds": bounds}
        for k, v in values.items():
            if hasattr(v, "start") or v is None:
                pieces = [w.axes[axis][i][3][k] for w in writers]
                pieces = [p for p in pieces if p is not None]
                shape = tuple(o + n for o, n in zip(pieces[0].start, pieces[0].values.shape))
                g = np.full(writers[0].variables[k].shape, np.nan)
                for p in pieces:
                    g[tuple(slice(o, o + n) for o, n in zip(p.start, p.values.shape))] = p.values
                row[k] = g
            else:
                row[k] = np.asarray(v)
        out.append(row)
    return out


AXES = ("time_w3", "time_monthly", "time_wz", "time_clim_season", "time_hot")


@pytest.mark.parametrize("before,after,ck", [(1, 1, 37), (2, 3, 37), (3, 2, 37), (2, 3, 39)])
def test_restart_at_any_rank_count_equals_the_uninterrupted_run(before, after, ck):
    """ck 39: the first output after the restart closes the restored wz
    window, before any rank was handed its piece of it."""
    ref = FakeWorld(2).run(lambda c: drive(c, 0, LAST))
    ref_w = [r[0] for r in ref]
    first = FakeWorld(before).run(lambda c: drive(c, 0, LAST - 20, ck=ck))
    saved = as_file([r[1] for r in first])
    json.dumps(saved[0])   # the metadata is JSON, as the file stores it
    again = FakeWorld(after).run(lambda c: drive(c, ck + 1, LAST, restart=saved))
    again_w = [r[0] for r in again]
    for axis in AXES:
        want = rows_of(ref_w, axis)
        got_before = [r for r in rows_of([r[0] for r in first], axis)
                      if r["step"] <= ck]
        got = got_before + rows_of(again_w, axis)
        assert [r["step"] for r in got] == [r["step"] for r in want], axis
        for g, w in zip(got, want):
            assert g.keys() == w.keys()
            for k in w:
                if k in ("step", "time", "bounds"):
                    assert g[k] == w[k], (axis, k)
                else:
                    np.testing.assert_allclose(g[k], w[k], rtol=1e-12, atol=0,
                                               err_msg=f"{axis} {k}")
    assert again[0][3] == ref[0][3]   # the trigger's snapshots used
    assert len(again_w[0].axes["time_hot"]) + \
        sum(1 for r in first[0][0].axes["time_hot"] if r[0] <= ck) == 2


def test_checkpoint_metadata_names_its_rows_and_config():
    out = FakeWorld(2).run(lambda c: drive(c, 0, 20, ck=12))
    meta, arrays = out[0][1]
    assert meta["step"] == 12 and meta["time"] == 60.0 and meta["format"] == state.FORMAT
    assert set(meta["analyses"]) == {"window w3", "window monthly", "window wz",
                                     "climatology clim_season"}
    assert meta["triggers"] == {"hot": 2}
    # distributed partials are pieces of global arrays; the rest one vector
    assert [a.distributed for n, a in sorted(arrays.items())] == [True, False]


def test_config_changes_name_what_changed():
    from insitu.options import parse
    old = state.comparable_config(parse(json.loads(json.dumps(CFG))))
    new = json.loads(json.dumps(CFG))
    new["analyses"][2]["steps"] = 4
    new["log_level"] = "DEBUG"                          # ignored
    new["output"] = {"path": "x.h5", "restart": True}   # ignored
    new["analyses"].append({"kind": "stats", "field": "T", "name": "extra"})  # allowed
    changes = state.config_changes(old, state.comparable_config(parse(new)))
    assert changes == ["analyses[2].steps was 3, now 4"]
    new = json.loads(json.dumps(CFG))
    del new["analyses"][5]
    new["triggers"][0]["max_snapshots"] = 5
    changes = state.config_changes(old, state.comparable_config(parse(new)))
    assert changes == ["triggers[0].max_snapshots was 2, now 5",
                       "analyses[5] (climatology clim_season) was removed"]


def test_a_checkpoint_right_after_a_restart_saves_the_restored_state():
    """Checkpointed again before any step (no rank has been handed its piece
    of the distributed partials yet, so rank 0 copies them whole), then
    restarted once more at another rank count: still the uninterrupted run."""
    ck = 37
    ref = [r[0] for r in FakeWorld(2).run(lambda c: drive(c, 0, LAST))]
    first = FakeWorld(2).run(lambda c: drive(c, 0, LAST - 20, ck=ck))
    saved = as_file([r[1] for r in first])
    again = FakeWorld(3).run(lambda c: drive(c, ck + 1, ck, ck=ck, restart=saved,
                                             ck_first=True))
    saved2 = as_file([r[1] for r in again])
    assert saved2[0]["analyses"] == saved[0]["analyses"]
    for k in saved[1]:
        np.testing.assert_array_equal(saved2[1][k], saved[1][k])
    last = [r[0] for r in FakeWorld(1).run(lambda c: drive(c, ck + 1, LAST, restart=saved2))]
    for axis in ("time_wz", "time_w3"):
        want = [r for r in rows_of(ref, axis) if r["step"] > ck]
        got = rows_of(last, axis)
        assert [r["step"] for r in got] == [r["step"] for r in want]
        for g, w in zip(got, want):
            for k in w:
                if k not in ("step", "time", "bounds"):
                    np.testing.assert_allclose(g[k], w[k], rtol=1e-12, atol=0)
