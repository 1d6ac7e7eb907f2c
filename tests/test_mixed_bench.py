"""scripts/bench/mixed_kinds.py --quick still runs and reports every kind of
overhead.py's mixed config (its figures are measured by hand; never timed
here)."""
import json

from conftest import PYTHON, ROOT, mpi_env, run


def test_mixed_kinds_benchmark_quick(tmp_path):
    out = run([PYTHON, ROOT / "scripts" / "bench" / "mixed_kinds.py", "--quick"], timeout=600,
              env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / "mixed_kinds.json").read_text())
    kinds = [r["kind"] for r in data["rows"]]
    assert len(kinds) == 10 and "exceedance area-weighted" in kinds \
        and "min/max/argmax/argmin" in kinds and "histogram 50 bins" in kinds
    assert "machine: " in data["machine_line"]
    assert "load average before" in out.stdout
