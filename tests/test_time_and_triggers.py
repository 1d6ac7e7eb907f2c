"""User analyses, time windows and triggers, on fake ranks, against numpy."""
from pathlib import Path

import numpy as np
import pytest

from insitu import api
from insitu.analyses import AnalysisError
from insitu.comm import FakeWorld
from insitu.decomposition import cartesian_box, process_grid

HERE = Path(__file__).resolve().parent
SHAPE = (12, 10)
STEPS = 7


def field(step):
    j, i = np.indices(SHAPE, dtype=np.float64)
    return 285.0 + 2.0 * step + np.sin(0.5 * i + 0.3 * j) * 4.0


def drive(comm, analyses, triggers=(), on_error="abort", steps=STEPS, output=None, first=1,
          dt=1.0):
    grid = process_grid(comm.size, 2)
    off, shp = cartesian_box(SHAPE, grid, np.unravel_index(comm.rank, grid))
    sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
    s = api.init(comm, {"fields": {"T": {"dims": ["y", "x"], "units": "K"}},
                        "analyses": analyses, "triggers": list(triggers),
                        "on_error": on_error, "output": {"overwrite": True}},
                 output=output)
    try:
        api.declare_field("T", np.float64, SHAPE, off, shp)
        for step in range(first, steps + 1):
            api.expose("T", np.ascontiguousarray(field(step)[sl]))
            api.step(step, step * dt)
        return s.writer, s.trigger_events, s.errors
    finally:
        api.finalize()


def assemble(pieces, shape):
    full = np.full(shape, np.nan)
    for p in pieces:
        if p is not None:
            full[tuple(slice(a, a + n) for a, n in zip(p.start, p.values.shape))] = p.values
    return full


# -- user analyses ------------------------------------------------------------

USER = {"kind": "python", "function": f"{HERE / 'user_analyses.py'}:hot_cells",
        "fields": ["T"], "name": "u",
        "outputs": {"hot": {"op": "sum"}, "tmax": {"op": "max", "units": "K"},
                    "rows": {"op": "sum", "shape": [SHAPE[0]]}, "ranks": {"op": "sum"}}}


@pytest.mark.parametrize("nranks", [1, 3, 4])
def test_user_analysis_is_reduced_like_builtins(nranks):
    writer = FakeWorld(nranks).run(drive, [USER])[0][0]
    for step, _, values in writer.rows:
        f = field(step)
        assert values["u_hot"] == (f > 290.0).sum()
        assert values["u_tmax"] == f.max()
        np.testing.assert_array_equal(values["u_rows"], (f > 290.0).sum(axis=1))
        assert values["u_ranks"] == 1.0
    assert writer.variables["u_rows"].dims == ("y",)  # the field's dim of that size


def test_user_analysis_sees_only_its_region():
    cfg = {**USER, "region": {"y": [2, 5], "x": [0, 4]}}
    writer = FakeWorld(4).run(drive, [cfg])[0][0]
    for step, _, values in writer.rows:
        f = field(step)[2:5, 0:4]
        assert values["u_hot"] == (f > 290.0).sum() and values["u_tmax"] == f.max()


@pytest.mark.parametrize("fn,message", [
    ("wrong_shape", "returned outputs ['x'], the config declares"),
    ("not_a_dict", "returned float, expected a dict"),
    ("writes_model_memory", "read-only"),
    ("calls_sys_exit", "SystemExit: 3"),  # the analysis failed; the model runs on
])
def test_user_analysis_mistakes_are_reported_and_skipped(fn, message):
    cfg = {**USER, "function": f"{HERE / 'user_analyses.py'}:{fn}",
           "outputs": {"y" if fn == "wrong_shape" else "x": {"op": "sum"}}}
    if fn == "wrong_shape":
        cfg["outputs"] = {"x": {"op": "sum"}, "y": {"op": "sum"}}
    out = FakeWorld(2).run(drive, [cfg], (), "skip", 2)
    errors = out[0][2]
    assert len(errors) == 1 and message in errors[0]["traceback"]


@pytest.mark.parametrize("target,message", [
    ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
    (f"{HERE / 'user_analyses.py'}:missing", "has no callable 'missing'"),
    ("/nowhere/x.py:f", "does not exist"),
])
def test_user_analysis_that_cannot_load_fails_at_init(target, message):
    with pytest.raises(AnalysisError, match=message):
        FakeWorld(1).run(drive, [{**USER, "function": target}])


# -- windows ------------------------------------------------------------------

def test_window_of_scalars_by_steps():
    """Windows are [kL, (k+1)L) in steps (README, "Time windows"): from step
    0, [0, 3) and [3, 6) are whole and written when the model reaches their
    ends (steps 3 and 6); [6, 9) is cut off by the end of the run."""
    analyses = [{"kind": "stats", "field": "T", "stats": ["mean", "max"]},
                {"kind": "window", "source": "T", "steps": 3, "ops": ["mean", "max", "var"]}]
    writer = FakeWorld(3).run(lambda c: drive(c, analyses, first=0))[0][0]
    wins = writer.axes["time_w3"]
    assert [w[0] for w in wins] == [3, 6]            # written when each window ends
    means = {s: field(s).mean() for s in range(0, STEPS + 1)}
    for k, (step, time, bounds, values) in enumerate(wins):
        chunk = np.array([means[s] for s in range(3 * k, 3 * k + 3)])
        assert bounds == (3.0 * k, 3.0 * k + 3.0) and time == bounds[1]
        assert values["T_mean_w3_mean"] == pytest.approx(chunk.mean(), rel=1e-13)
        assert values["T_mean_w3_max"] == chunk.max()
        assert values["T_mean_w3_var"] == pytest.approx(chunk.var(), rel=1e-9)


def test_window_that_began_before_the_run_is_not_written(caplog):
    """A model counting from step 1 never hands over step 0: the window
    [0, 3) holds two outputs, not three, and a partial mean beside whole
    ones would be a silent wrong answer.  It is dropped and logged."""
    analyses = [{"kind": "stats", "field": "T", "stats": ["mean"]},
                {"kind": "window", "source": "T", "steps": 3}]
    with caplog.at_level("INFO", logger="insitu"):
        writer = FakeWorld(1).run(lambda c: drive(c, analyses, first=1))[0][0]
    wins = writer.axes["time_w3"]
    assert [(w[0], w[2]) for w in wins] == [(6, (3.0, 6.0))]
    chunk = [field(s).mean() for s in (3, 4, 5)]
    assert wins[0][3]["T_mean_w3_mean"] == pytest.approx(np.mean(chunk), rel=1e-13)
    text = caplog.text
    assert "partial window from time 1 (2 output(s) of T) was not written: began before" in text
    assert "partial window from time 6 (2 output(s) of T) was not written: the run ended" in text


@pytest.mark.parametrize("every,n,dt,first", [(1, 3, 1.0, 0), (2, 2, 0.1, 0), (2, 3, 0.1, 1),
                                              (3, 2, 0.7, 1), (1, 5, 0.3, 2)])
def test_window_by_steps_and_by_period_group_the_same_outputs(every, n, dt, first):
    """``steps: N`` and ``period: N * every * dt`` put the same outputs
    together, with the same bounds, even where ``step * dt`` rounds a hair
    below a window's start (issue 10)."""
    src = {"kind": "stats", "field": "T", "stats": ["mean", "min"], "every": every}
    by_steps = {"kind": "window", "source": "T", "steps": n, "ops": ["mean", "min"],
                "name": "w"}
    by_period = {**by_steps, "steps": None, "period": n * every * dt}
    del by_period["steps"]
    ws = FakeWorld(2).run(lambda c: drive(c, [src, by_steps], steps=40, first=first, dt=dt))[0][0]
    wp = FakeWorld(2).run(lambda c: drive(c, [src, by_period], steps=40, first=first, dt=dt))[0][0]
    a, b = ws.axes["time_w"], wp.axes["time_w"]
    assert len(a) >= 3
    assert [w[0] for w in a] == [w[0] for w in b]  # written at the same steps
    for x, y in zip(a, b):
        np.testing.assert_allclose(x[2], y[2], rtol=1e-12)  # bounds
        assert x[3] == y[3]                                  # bitwise the same values
    # and both equal numpy on the outputs in [kL, (k+1)L)
    L = n * every
    for step, _, bounds, values in a:
        k = step // L - 1
        outs = [s for s in range(max(first, 0), 41) if s % every == 0 and k * L <= s < (k + 1) * L]
        assert len(outs) == n
        assert values["T_min_w_min"] == min(field(s).min() for s in outs)
        assert values["T_mean_w_mean"] == pytest.approx(np.mean([field(s).mean() for s in outs]),
                                                        rel=1e-13)


def test_window_by_period_that_ends_at_the_last_step_is_written():
    """The model reached the window's end at its last step, though no
    output of the source followed it: the window is whole and written at
    finalize."""
    analyses = [{"kind": "stats", "field": "T", "stats": ["mean"], "every": 2},
                {"kind": "window", "source": "T", "period": 3.0}]
    # outputs at 0, 2, 4, 6; windows [0, 3): 0, 2; [3, 6): 4; the run ends
    # at step 7, past 6, so [3, 6) is whole; [6, 9) is not.
    writer = FakeWorld(1).run(lambda c: drive(c, analyses, first=0))[0][0]
    wins = writer.axes["time_p3"]
    assert [(w[0], w[2]) for w in wins] == [(4, (0.0, 3.0)), (6, (3.0, 6.0))]
    assert wins[1][3]["T_mean_p3_mean"] == field(4).mean()


def test_window_of_distributed_profile_by_period():
    analyses = [{"kind": "reduce", "field": "T", "over": ["x"]},
                {"kind": "window", "source": "T_mean_over_x", "period": 2.5, "ops": ["mean"]}]
    outs = FakeWorld(4).run(drive, analyses)
    wins = [w[0].axes["time_p2.5"] for w in outs]
    # windows [0, 2.5): steps 1, 2 (partial: the run began at 1, not dropped
    # ... the run began inside it), [2.5, 5): 3, 4; [5, 7.5): 5, 6, 7, cut off
    assert [w[2] for w in wins[0]] == [(2.5, 5.0)]
    prof = {s: field(s).mean(axis=1) for s in range(1, STEPS + 1)}
    got = assemble([w[0][3]["T_mean_over_x_p2.5_mean"] for w in wins], (SHAPE[0],))
    np.testing.assert_allclose(got, np.mean([prof[s] for s in (3, 4)], axis=0), rtol=1e-13)


def test_user_function_without_a_colon_is_a_config_error():
    from insitu.options import ConfigError
    with pytest.raises(ConfigError, match=r"analyses\[0\].function: expected 'module:function'"):
        FakeWorld(1).run(drive, [{**USER, "function": "nocolon"}])


def test_window_of_unknown_source_is_refused():
    from insitu.options import ConfigError
    with pytest.raises(ConfigError, match="no analysis named 'nope'"):
        FakeWorld(1).run(drive, [{"kind": "stats", "field": "T"},
                                 {"kind": "window", "source": "nope", "steps": 2}])


# -- triggers -----------------------------------------------------------------

TRIG = {"name": "hot", "when": "T_max > 297 and T_nan_count == 0", "fields": ["T"],
        "max_snapshots": 2}


@pytest.mark.parametrize("nranks", [1, 2, 4])
def test_trigger_snapshots_full_field_and_records_why(nranks):
    outs = FakeWorld(nranks).run(drive, [{"kind": "stats", "field": "T"}], [TRIG])
    maxes = {s: field(s).max() for s in range(1, STEPS + 1)}
    firing = [s for s in range(1, STEPS + 1) if maxes[s] > 297][:2]
    assert firing, "the test field must cross the threshold"
    events = outs[0][1]
    assert [e["step"] for e in events] == firing
    assert events[0]["values"]["T_max"] == maxes[firing[0]] and events[0]["when"] == TRIG["when"]
    for k, step in enumerate(firing):
        snap = assemble([o[0].axes["time_hot"][k][3]["hot_T"] for o in outs], SHAPE)
        np.testing.assert_array_equal(snap, field(step))


def test_trigger_on_unknown_result_is_refused():
    from insitu.options import ConfigError
    with pytest.raises(ConfigError, match="'T_median' is not a scalar result"):
        FakeWorld(1).run(drive, [{"kind": "stats", "field": "T"}],
                         [{**TRIG, "when": "T_median > 3"}])


@pytest.mark.parametrize("nranks", [1, 3])
def test_trigger_snapshot_of_a_derived_reduction_not_read_that_step(nranks):
    """A snapshot of T - T.mean(x) holds the value at the step that fired,
    even when no analysis due at that step read the derived field (issue
    10, item 5): its reduction must be combined then, not taken stale."""
    maxes = [field(s).max() for s in range(1, STEPS + 1)]
    threshold = float(0.5 * (maxes[-2] + maxes[-1]))  # fires at the last step only
    trig = {"name": "warm", "when": f"T_max > {threshold!r}", "fields": ["Ta"],
            "max_snapshots": 1}

    def body(comm):
        grid = process_grid(comm.size, 2)
        off, shp = cartesian_box(SHAPE, grid, np.unravel_index(comm.rank, grid))
        sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
        s = api.init(comm, {"fields": {"T": {"dims": ["y", "x"], "units": "K"}},
                            "derived": {"Ta": "T - T.mean(x)"},
                            "analyses": [{"kind": "stats", "field": "T", "stats": ["max"]},
                                         {"kind": "stats", "field": "Ta", "every": 5}],
                            "triggers": [trig]})
        try:
            api.declare_field("T", np.float64, SHAPE, off, shp)
            for step in range(1, STEPS + 1):
                api.expose("T", np.ascontiguousarray(field(step)[sl]))
                api.step(step, float(step))
            return s.writer.axes["time_warm"]
        finally:
            api.finalize()

    outs = FakeWorld(nranks).run(body)
    assert [e[0] for e in outs[0]] == [STEPS]
    snap = assemble([o[0][3]["warm_Ta"] for o in outs], SHAPE)
    f = field(STEPS)
    np.testing.assert_allclose(snap, f - f.mean(axis=1, keepdims=True), rtol=0, atol=1e-12)
