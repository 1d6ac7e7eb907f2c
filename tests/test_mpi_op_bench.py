"""scripts/bench/record_op.py still runs (quick mode: the collective at 2
ranks, MPI_Reduce_local at 1) and measures what it says: the compiled op's
contender ran the compiled operation and the Python one the callback.
Never timed here."""
import json

import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun


@pytest.mark.parametrize("nranks,local", [(2, False), (1, True)], ids=["allreduce", "local"])
def test_record_op_benchmark_quick(tmp_path, nranks, local):
    mpirun(nranks, [PYTHON, ROOT / "scripts" / "bench" / "record_op.py", "--quick",
                    *(["--local"] if local else [])], timeout=300,
           env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    name = f"record_op{'_local' if local else ''}_n{nranks}"
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert data["machine"]["cores"] and data["local"] is local
    paths = {r["op"]: r["path"] for r in data["rows"]}
    assert paths == {"compiled": "compiled", "python": "python callback", "sum": "MPI.SUM"}
    for r in data["rows"]:
        assert r["us"]["n"] == data["rounds"] and r["us"]["median"] > 0
