"""scripts/bench/replay.py still runs (its --quick mode, 2 ranks).  The
figures are measured by hand (docs/replay.md), never timed here."""
import json

from conftest import PYTHON, ROOT, mpi_env, mpirun


def test_replay_benchmark_quick(tmp_path):
    mpirun(2, [PYTHON, ROOT / "scripts" / "bench" / "replay.py", "--quick"], timeout=300,
           env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / "replay_n2_quick.json").read_text())
    assert data["machine"]["cores"] and data["quick"] is True
    assert [r["method"] for r in data["rows"]] == ["replay", "xarray+dask", "read",
                                                   "read + CF mask", "replay, no read-ahead"]
    assert all(len(t) == data["rounds"] for t in data["times"].values())
    assert all(r["time_s"]["n"] == data["rounds"] for r in data["rows"])
    assert [c["comparison"] for c in data["comparisons"]][:2] == ["xarray+dask / replay",
                                                                   "replay / read"]
    assert [m["files"] for m in data["memory"]] == [3, 6]
    assert all(len(m["peak_rss_MiB_per_rank"]) == 2 for m in data["memory"])
    assert [p["rank"] for p in data["phases"]] == [0, 1]
    assert all(p["steps_s"] > 0 and p["scan_s"] > 0 for p in data["phases"])
    # the handshakes are timed inside the steps (a private method of the
    # session's: 0 if it is renamed); only rank 0 publishes the output
    assert all(0 <= p["handshakes_s"] < p["total_s"] for p in data["phases"])
    assert [p["publish_s"] > 0 for p in data["phases"]] == [True, False]
    assert [p["time"] for p in data["phases"] + data["phases_cpu"]] == ["wall"] * 2 + ["cpu"] * 2


def test_replay_targets_read_the_benchmarks_json(tmp_path):
    """targets.py (and so docs/performance.md) takes issue 14's figures from
    replay_n2.json: the per-round ratios and the memory growth per rank."""
    import sys
    sys.path.insert(0, str(ROOT / "scripts" / "bench"))
    import targets

    def ratio(med, lo, hi):
        return {"median": med, "min": lo, "max": hi, "n": 5, "samples": []}
    result = {"benchmark": "replay_n2", "quick": False, "comparisons": [
        {"comparison": "xarray+dask / replay", "per_round": ratio(3.4, 2.9, 4.1)},
        {"comparison": "replay / read", "per_round": ratio(1.9, 1.6, 2.4)}],
        "memory": [{"files": 12, "peak_rss_MiB_per_rank": [300.0, 200.0]},
                   {"files": 24, "peak_rss_MiB_per_rank": [300.5, 209.0]}]}
    (tmp_path / "replay_n2.json").write_text(json.dumps(result))
    v = {x.target.key: x for x in targets.evaluate(targets.load_results(tmp_path))}
    assert v["replay_xarray"].status == targets.MET
    assert v["replay_xarray"].cases[0].summary["median"] == 3.4
    assert v["replay_read"].status == targets.MISSED
    assert v["replay_memory"].status == targets.MISSED  # rank 1 grew by 9 MiB
    assert [c.summary["median"] for c in v["replay_memory"].cases] == [0.5, 9.0]
    result["quick"] = True
    (tmp_path / "replay_n2.json").write_text(json.dumps(result))
    v = {x.target.key: x for x in targets.evaluate(targets.load_results(tmp_path))}
    assert v["replay_read"].status == targets.NOT_MEASURED
