"""scripts/bench/record_op.py still runs (quick mode, 2 ranks) and
measures what it says: the compiled op's contender ran the compiled
operation and the Python one the callback.  Never timed here."""
import json

from conftest import PYTHON, ROOT, mpi_env, mpirun


def test_record_op_benchmark_quick(tmp_path):
    mpirun(2, [PYTHON, ROOT / "scripts" / "bench" / "record_op.py", "--quick"], timeout=300,
           env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / "record_op_n2.json").read_text())
    assert data["machine"]["cores"]
    paths = {r["op"]: r["path"] for r in data["rows"]}
    assert paths == {"compiled": "message", "python": "record", "sum": "MPI.SUM"}
    for r in data["rows"]:
        assert r["us"]["n"] == data["rounds"] and r["us"]["median"] > 0
