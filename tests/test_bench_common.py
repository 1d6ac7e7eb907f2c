"""The benchmarks' shared helpers (scripts/bench/common.py), the targets
check (targets.py, what ``bench.sh --check`` exits with) and the report
generator (report.py), on fake timings and fake results: no benchmark is
run here."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "bench"))
import common  # noqa: E402
import report  # noqa: E402
import targets  # noqa: E402


# -- interleaving and summaries --------------------------------------------------------

def _recording(calls, name, values):
    """A contender that logs its name and returns its next value."""
    it = iter(values)

    def run():
        calls.append(name)
        return next(it)
    return run


def test_interleave_takes_turns_and_keeps_every_sample():
    calls = []
    got = common.interleave({"A": _recording(calls, "A", [1, 2, 3, 4, 5]),
                             "B": _recording(calls, "B", [10, 20, 30, 40, 50])}, pairs=5)
    # A B, B A, A B ...: never all A then all B, and each first in turn
    assert calls == ["A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
    assert got == {"A": [1, 2, 3, 4, 5], "B": [10, 20, 30, 40, 50]}


def test_interleave_fixed_order_on_request():
    calls = []
    got = common.interleave({"A": _recording(calls, "A", [1, 2, 3]),
                             "B": _recording(calls, "B", [10, 20, 30])}, pairs=3,
                            rotate=False)
    assert calls == ["A", "B"] * 3
    assert got == {"A": [1, 2, 3], "B": [10, 20, 30]}


def test_interleave_three_contenders_and_default_pairs():
    calls = []
    fns = {k: (lambda k=k: calls.append(k) or 1.0) for k in "ABC"}
    got = common.interleave(fns)
    assert calls == list("ABCBCACABABCBCA")[:3 * common.MIN_PAIRS]
    assert all(len(v) == common.MIN_PAIRS for v in got.values())
    with pytest.raises(ValueError):
        common.interleave(fns, pairs=0)


@pytest.mark.parametrize("n,pairs", [(2, 6), (3, 9), (4, 8), (5, 10), (5, 9), (3, 7)])
def test_rotation_keeps_pairs_aligned_and_every_place_equally_often(n, pairs):
    """Each sample stays in its round's slot whatever its place in the
    round (a per-pair ratio pairs the same round's runs), and each
    contender holds every place equally often: exactly over whole cycles of
    n rounds, within one otherwise."""
    names = [f"c{i}" for i in range(n)]
    calls: list[tuple[int, str]] = []
    current = {"round": 0}

    def contender(name):
        def run():
            calls.append((current["round"], name))
            return 100.0 * current["round"] + names.index(name)
        return run

    got = common.interleave({k: contender(k) for k in names}, pairs=pairs,
                            on_round=lambda r: current.update(round=r + 1))
    for k in names:  # aligned: sample r of every contender is round r's
        assert got[k] == [100.0 * r + names.index(k) for r in range(pairs)]
    places = {k: [0] * n for k in names}
    for r in range(pairs):
        order = [name for rr, name in calls if rr == r]
        assert sorted(order) == names  # every contender once a round
        assert order == common.round_orders(names, pairs)[r]
        for place, name in enumerate(order):
            places[name][place] += 1
    for k in names:
        if pairs % n == 0:
            assert places[k] == [pairs // n] * n
        else:
            assert max(places[k]) - min(places[k]) <= 1
    # a fixed order puts each contender in one place only
    fixed = common.round_orders(names, pairs, rotate=False)
    assert all(order == names for order in fixed)


def test_summary_odd_count():
    s = common.summarize([5.0, 1.0, 3.0, 9.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (3.0, 1.0, 9.0, 5)
    assert s["samples"] == [5.0, 1.0, 3.0, 9.0, 2.0]  # every sample, in run order


def test_summary_even_count_is_the_mean_of_the_middle_two():
    s = common.summarize([4.0, 1.0, 3.0, 2.0, 10.0, 0.5])
    assert s["median"] == 2.5 and s["min"] == 0.5 and s["max"] == 10.0 and s["n"] == 6


def test_summary_of_nothing():
    assert common.summarize([])["median"] is None
    assert common.fmt(common.summarize([])) == "-"


def test_compare_is_the_median_of_per_pair_ratios_not_the_ratio_of_medians():
    a = [1.0, 5.0, 10.0, 2.0, 4.0]
    b = [2.0, 6.0, 30.0, 2.0, 12.0]
    c = common.compare(a, b)
    assert c["ratio"]["samples"] == [2.0, 1.2, 3.0, 1.0, 3.0]
    assert c["ratio"]["median"] == 2.0
    assert c["ratio"]["min"] == 1.0 and c["ratio"]["max"] == 3.0
    assert c["b"]["median"] / c["a"]["median"] == 1.5  # what a ratio of medians says
    assert c["a"]["median"] == 4.0 and c["b"]["median"] == 6.0


def test_compare_even_pairs_and_unpaired_samples():
    c = common.compare([1.0, 2.0, 4.0, 8.0], [2.0, 2.0, 2.0, 2.0])
    assert c["ratio"]["samples"] == [2.0, 1.0, 0.5, 0.25]
    assert c["ratio"]["median"] == 0.75
    with pytest.raises(ValueError):
        common.compare([1.0, 2.0], [1.0])


def test_timed_measures_the_call():
    import time
    t = common.timed(lambda: time.sleep(0.02))()
    assert 0.015 < t < 1.0


def test_fmt_and_parse_spread_round_trip():
    s = common.summarize([1.5, 1.25, 2.0])
    assert common.fmt(s) == "1.5 (1.25-2)"
    assert common.parse_spread(common.fmt(s)) == {"median": 1.5, "min": 1.25, "max": 2.0,
                                                  "n": None}
    neg = common.summarize([-3.5, -4.75, -2.25])
    assert common.fmt(neg) == "-3.5 (-4.75 to -2.25)"
    assert common.parse_spread(common.fmt(neg))["min"] == -4.75
    assert common.parse_spread({"median": 2, "min": 1, "max": 3, "runs": 5})["n"] == 5
    assert common.parse_spread(7)["n"] == 1
    assert common.parse_spread("fast") is None and common.parse_spread(None) is None


def test_machine_header_says_what_a_figure_depends_on():
    m = common.machine()
    for key in ("cpu", "simd", "cores", "mpi", "hdf5", "numba", "numpy", "date", "command"):
        assert key in m
    text = common.machine_header(m)
    assert "SIMD" in text and "numba" in text and "HDF5" in text and "command:" in text


def test_best_of_is_gone():
    """A best-of reports the luckiest sample; no benchmark may use one."""
    assert not hasattr(common, "best")


# -- the targets check -------------------------------------------------------------------

# issue 12's heat case, as time_to_answer.py --full stores it
TTA_CASE = {"ranks": 2, "cells_per_rank": 10**6, "steps": 2000, "every": 10}


def spread(med, lo, hi, n=5):
    return {"median": med, "min": lo, "max": hi, "n": n, "samples": []}


def results_meeting_every_target() -> dict:
    """Fake JSON results, one per benchmark, in each script's format."""
    def overhead_row(analyses, pct, fixed):
        return {"ranks": 2, "cells_per_rank": 10**6, "steps": 2000, "every": 10,
                "mode": f"{analyses} analyses", "analyses": analyses,
                "loop_overhead_pct": spread(pct, pct - 1, pct + 1),
                "fixed_cost_s": spread(fixed, fixed - 0.1, fixed + 0.1)}

    def handoff_row(host, metric, ranks, values, us):
        return {"host": host, "ranks": ranks, "values": values, "metric": metric,
                "this": {"median": us, "min": us * 0.9, "max": us * 1.1, "runs": 5}}

    return {
        "overhead": {"quick": False, "rows": [overhead_row(1, 3.0, 0.6),
                                              overhead_row(10, 4.0, 0.8)]},
        "collectives_n2": {"rows": [{"analyses": k, "collectives_per_step": 2,
                                     "mpi_calls_per_step": 2} for k in (1, 10, 50)]},
        "handoff": {"quick": False, "rows": [
            handoff_row("cbind", "bind_moved_us_per_field", 1, 100, 0.4),
            handoff_row("python", "expose_moved_us", 1, 100, 0.5),
            handoff_row("python", "expose_moved_us", 2, 100, 0.6),
            handoff_row("fortran", "idle_step_us", 2, 100, 0.2)]},
        "startup": {"quick": False, "rows": [
            {"host": h, "ranks": 2, "metric": "init_s",
             "this": {"median": 0.8, "min": 0.7, "max": 0.95, "runs": 5}}
            for h in ("python", "fortran")]},
        "kernels": {"quick": False, "pairs": 7, "rows": [
            {"dtype": d, "bytes": 2**28, "new_of_sum": "0.85 (0.8-0.9)"}
            for d in ("float32", "float64")]},
        "reprosum": {"quick": False, "pairs": 7, "rows": [
            {"values": 10**6, "layout": "halo view", "new_ratio": "1.5 (1.4-1.7)"},
            {"values": 10**6, "layout": "contiguous", "new_ratio": "9 (9-9)"}]},
        "time_to_answer_full": {"quick": False, "rows": [
            {**TTA_CASE, "way": "insitu", "total_s": spread(1, 1, 1)},
            {**TTA_CASE, "way": "h5py + xarray", "vs_insitu": spread(12.0, 11.0, 14.0)}]},
    }


def write(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in results.items():
        (folder / f"{name}.json").write_text(json.dumps({"benchmark": name, **payload}))
    return folder


def test_check_passes_when_every_target_is_met(tmp_path, capsys):
    folder = write(tmp_path / "r", results_meeting_every_target())
    assert targets.main(["--results", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "MISSED" not in out and "PASS" in out
    # each target printed with its median, spread and sample count
    assert "3 (2-4, n=5)" in out and "12 (11-14, n=5)" in out


@pytest.mark.parametrize("name,edit,key", [
    ("overhead", lambda r: r["rows"][0].update(loop_overhead_pct=spread(7.0, 2.0, 9.0)),
     "loop_overhead"),
    ("overhead", lambda r: r["rows"][1].update(fixed_cost_s=spread(1.2, 0.9, 1.5)),
     "fixed_cost_10"),
    ("collectives_n2", lambda r: r["rows"][2].update(mpi_calls_per_step=3), "mpi_calls"),
    ("handoff", lambda r: r["rows"][2]["this"].update(median=1.3), "expose_python"),
    ("kernels", lambda r: r["rows"][0].update(new_of_sum="0.6 (0.55-0.72)"),
     "kernel_bandwidth"),
    ("reprosum", lambda r: r["rows"][0].update(new_ratio="2.2 (1.9-3)"), "reprosum"),
    ("startup", lambda r: r["rows"][1]["this"].update(median=1.2), "startup"),
    ("time_to_answer_full", lambda r: r["rows"][1].update(vs_insitu=spread(1.6, 1.2, 11)),
     "time_to_answer"),
])
def test_check_fails_when_a_target_is_missed(tmp_path, capsys, name, edit, key):
    res = results_meeting_every_target()
    edit(res[name])
    folder = write(tmp_path / "r", res)
    assert targets.main(["--results", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"[MISSED] {key}:" in out and "FAIL" in out
    verdicts = {v.target.key: v.status for v in targets.evaluate(targets.load_results(folder))}
    assert [k for k, s in verdicts.items() if s == targets.MISSED] == [key]


@pytest.mark.parametrize("how", ["no file", "quick run", "too few samples", "no rows",
                                 "one case missing"])
def test_check_fails_when_a_target_is_not_measured(tmp_path, capsys, how):
    res = results_meeting_every_target()
    if how == "no file":
        del res["startup"]
    elif how == "quick run":
        res["startup"]["quick"] = True
    elif how == "too few samples":
        for row in res["startup"]["rows"]:
            row["this"]["runs"] = 2
    elif how == "no rows":
        res["startup"]["rows"] = []
    elif how == "one case missing":  # the fortran host's row only
        res["startup"]["rows"] = res["startup"]["rows"][:1]
    folder = write(tmp_path / "r", res)
    assert targets.main(["--results", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "[not measured] startup:" in out and "MISSED" not in out


def test_insitus_own_count_does_not_measure_the_mpi_calls_target(tmp_path):
    """The issue counts HDF5's resize broadcasts too: a count of insitu's
    own collectives alone is not that measurement."""
    res = results_meeting_every_target()
    for row in res["collectives_n2"]["rows"]:
        del row["mpi_calls_per_step"]
    folder = write(tmp_path / "r", res)
    v = {v.target.key: v for v in targets.evaluate(targets.load_results(folder))}
    assert v["mpi_calls"].status == targets.NOT_MEASURED
    assert "PMPI" in v["mpi_calls"].cases[0].why_missing


def test_the_table_holds_the_issues_numbers():
    t = {x.key: (x.op, x.limit) for x in targets.TARGETS}
    assert t["loop_overhead"] == ("<=", 5.0) and t["loop_overhead_10"] == ("<=", 5.0)
    assert t["fixed_cost"] == ("<=", 1.0) and t["mpi_calls"] == ("<=", 2)
    assert t["moved_buffer"] == ("<=", 1.0) and t["expose_python"] == ("<=", 1.0)
    assert t["kernel_bandwidth"] == (">=", 0.70) and t["reprosum"] == ("<=", 2.0)
    assert t["startup"] == ("<=", 1.0) and t["time_to_answer"] == (">=", 10.0)
    assert t["idle_step"] == ("<=", 5.0) and t["histogram"] == (">=", 3.0)


def test_the_time_to_answer_target_takes_only_the_issues_case(tmp_path):
    """The default run's smaller sweep (100 steps) is another measurement,
    however large its ratio; the case counts from time_to_answer.json too
    when a run there holds it."""
    res = results_meeting_every_target()
    rows = res.pop("time_to_answer_full")["rows"]
    short = [{**r, "steps": 100, "every": 1} for r in rows]
    res["time_to_answer"] = {"quick": False, "rows": short}
    folder = write(tmp_path / "short", res)
    v = {v.target.key: v for v in targets.evaluate(targets.load_results(folder))}
    assert v["time_to_answer"].status == targets.NOT_MEASURED
    assert "--full" in v["time_to_answer"].cases[0].why_missing
    res["time_to_answer"]["rows"] = short + rows
    folder = write(tmp_path / "case", res)
    v = {v.target.key: v for v in targets.evaluate(targets.load_results(folder))}
    assert v["time_to_answer"].status == targets.MET


def test_the_time_to_answer_check_prints_the_bound_and_keeps_its_verdict(tmp_path, capsys):
    """The check's line for time to answer says what bounds the ratio (the
    baseline's time over the model alone's) and each way's time beyond
    the model; the target (>= 10) and its verdict stay as they are."""
    res = results_meeting_every_target()
    rows = res["time_to_answer_full"]["rows"]
    rows[1].update(vs_insitu=spread(1.3, 1.25, 1.36), bound_vs_model=spread(1.34, 1.3, 1.4),
                   beyond_model_s=spread(3.9, 3.7, 4.1))
    rows[0]["beyond_model_s"] = spread(0.4, 0.3, 0.5)
    folder = write(tmp_path / "r", res)
    assert targets.main(["--results", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "[MISSED] time_to_answer:" in out
    line = out[out.index("[MISSED] time_to_answer:"):]
    assert "at most 1.34 (1.3-1.4) x for an insitu that cost nothing" in line
    assert "insitu 0.4 (0.3-0.5) s, h5py + xarray 3.9 (3.7-4.1) s" in line
    t = {x.key: x for x in targets.TARGETS}["time_to_answer"]
    assert (t.op, t.limit) == (">=", 10.0)
    md = targets.render_markdown(targets.evaluate(targets.load_results(folder)))
    assert "at most 1.34 (1.3-1.4) x" in md
    # a result written before the bound was stored: from the rows' samples
    del rows[1]["bound_vs_model"]
    rows[1]["total_s"] = {**spread(15.0, 14.0, 16.0), "samples": [15.0, 14.0, 16.0]}
    rows.append({**TTA_CASE, "way": "model only",
                 "total_s": {**spread(11.0, 10.0, 12.0), "samples": [11.0, 10.0, 12.0]}})
    folder = write(tmp_path / "older", res)
    v = {v.target.key: v for v in targets.evaluate(targets.load_results(folder))}
    assert v["time_to_answer"].status == targets.MISSED
    assert "at most 1.36 (1.33-1.4) x" in v["time_to_answer"].cases[0].note
    # without the model-only way it says so, and is judged alike
    rows.pop()
    folder = write(tmp_path / "old", res)
    v = {v.target.key: v for v in targets.evaluate(targets.load_results(folder))}
    assert v["time_to_answer"].status == targets.MISSED
    assert "no bound" in v["time_to_answer"].cases[0].note


def test_the_overhead_target_takes_only_the_issues_configuration(tmp_path):
    """A shorter or smaller run is another measurement, not the target's."""
    res = results_meeting_every_target()
    for row in res["overhead"]["rows"]:
        row["steps"] = 200
    folder = write(tmp_path / "r", res)
    status = {v.target.key: v.status for v in targets.evaluate(targets.load_results(folder))}
    assert status["loop_overhead"] == targets.NOT_MEASURED


# -- the generated report ----------------------------------------------------------------

def test_report_is_generated_from_the_json(tmp_path):
    res = results_meeting_every_target()
    m = dict(common.machine(), cpu="Test CPU 9000", simd="avx2 fma",
             command=".venv/bin/python scripts/bench/overhead.py")
    res["overhead"]["machine"] = m
    folder = write(tmp_path / "r", res)
    out = tmp_path / "performance.md"
    assert report.main(["--results", str(folder), "--output", str(out)]) == 0
    text = out.read_text()
    assert "Test CPU 9000" in text and "SIMD: avx2 fma" in text
    assert "command: .venv/bin/python scripts/bench/overhead.py" in text
    assert "| 3 (2-4) |" in text  # the overhead row, median (min-max)
    assert "all checked targets met" in text
    assert text.index("## Targets") < text.index("## overhead") < text.index("## Notes")
    notes = text[text.index("## Notes"):]
    figures = re.findall(r"\d+(?:\.\d+)?\s*(?:ms|us|µs|s|%|x|GB/s|MiB)\b|\d+\.\d+", notes)
    assert not figures, "the hand-written notes hold no figures"


def test_report_marks_quick_results_and_says_what_is_missing(tmp_path):
    res = results_meeting_every_target()
    res["overhead"]["quick"] = True
    del res["startup"]
    folder = write(tmp_path / "r", res)
    text = report.render(targets.load_results(folder))
    assert "A `--quick` run" in text
    assert "not measured: no startup.json" in text
    assert "some checked targets missed or not measured" in text
