"""The benchmarks still run (quick mode).  They are measured by hand with
./scripts/bench.sh (figures in docs/performance.md), never timed here."""
import json

import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun, run

BENCH = ROOT / "scripts" / "bench"

MPI_CASES = [("flush_cost.py", 2, "flush_cost_n2"), ("collectives.py", 2, "collectives_n2"),
             ("verify_cost.py", 2, "verify_cost_n2"), ("scaling.py", 2, "scaling_n2"),
             ("checkpoint.py", 2, "checkpoint_n2")]
SERIAL_CASES = [("reprosum.py", "reprosum"), ("kernels.py", "kernels"),
                ("handoff.py", "handoff"), ("overhead.py", "overhead"),
                ("time_to_answer.py", "time_to_answer")]


@pytest.mark.parametrize("script,n,result", MPI_CASES, ids=[c[0] for c in MPI_CASES])
def test_mpi_benchmark_quick(script, n, result, tmp_path):
    mpirun(n, [PYTHON, BENCH / script, "--quick"], timeout=300,
           env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / f"{result}.json").read_text())
    assert data["machine"]["cores"] and ("rows" in data or "row" in data)


@pytest.mark.parametrize("script,result", SERIAL_CASES, ids=[c[0] for c in SERIAL_CASES])
def test_benchmark_quick(script, result, tmp_path, libinsitu):
    run([PYTHON, BENCH / script, "--quick"], timeout=600,
        env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    assert json.loads((tmp_path / f"{result}.json").read_text())["rows"]


def test_collectives_stay_at_one_per_output_step(tmp_path):
    """The one reduction of the record, which carries the step check (the
    handshake, insitu.session._stamp)."""
    mpirun(2, [PYTHON, BENCH / "collectives.py", "--quick"], timeout=300,
           env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    rows = json.loads((tmp_path / "collectives_n2.json").read_text())["rows"]
    assert [r["collectives_per_step"] for r in rows] == [1, 1, 1]


def test_time_to_answer_says_why_it_skips_adios2(tmp_path):
    """Without the adios2 package the ADIOS2 baseline is skipped with the
    reason printed and stored, never silently."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "adios2.py").write_text("raise ImportError('no adios2 here')\n")
    out = run([PYTHON, BENCH / "time_to_answer.py", "--quick", "--pairs", "1",
               "--ways", "insitu", "adios2"], timeout=600,
              env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path), "PYTHONPATH": str(fake)}))
    assert "SKIPPED (b) ADIOS2 BP5 + numpy: the adios2 package is not installed" in out.stdout
    data = json.loads((tmp_path / "time_to_answer.json").read_text())
    assert "no adios2 here" in data["adios2_skipped"]
    assert [r["way"] for r in data["rows"]] == ["insitu"]
