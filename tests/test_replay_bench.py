"""scripts/bench/replay.py still runs (its --quick mode, 2 ranks).  The
figures are measured by hand (docs/replay.md), never timed here."""
import json

from conftest import PYTHON, ROOT, mpi_env, mpirun


def test_replay_benchmark_quick(tmp_path):
    mpirun(2, [PYTHON, ROOT / "scripts" / "bench" / "replay.py", "--quick"], timeout=300,
           env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / "replay_n2_quick.json").read_text())
    assert data["machine"]["cores"]
    assert [r["method"] for r in data["rows"]] == ["replay", "xarray+dask", "read",
                                                   "replay, no read-ahead"]
    assert all(len(t) == data["rounds"] for t in data["times"].values())
    mem = data["peak_rss_MiB"]
    assert mem["files"] == [1, 3] and len(mem["few"]) == len(mem["all"]) == 2
