"""The benchmarks still run (quick mode).  They are measured by hand with
./scripts/bench.sh, never timed here."""
import json

from conftest import PYTHON, ROOT, mpi_env, mpirun


def test_flush_cost_quick(tmp_path):
    r = mpirun(2, [PYTHON, ROOT / "scripts" / "bench" / "flush_cost.py", "--quick"],
               timeout=180, env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    assert "flush_every" in r.stdout
    data = json.loads((tmp_path / "flush_cost_n2.json").read_text())
    assert [row["flush_every"] for row in data["rows"]] == [1, 10, 100, "never"]


def test_reprosum_quick(tmp_path):
    from conftest import run
    r = run([PYTHON, ROOT / "scripts" / "bench" / "reprosum.py", "--quick"], timeout=180,
            env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    assert "reprosum_ms" in r.stdout
    assert len(json.loads((tmp_path / "reprosum.json").read_text())["rows"]) == 2
