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
                ("handoff.py", "handoff"), ("moments_onepass.py", "moments_onepass"),
                ("cold_step.py", "cold_step")]


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


@pytest.mark.parametrize("fixed", [False, True], ids=["rotated", "fixed-order"])
def test_overhead_quick_with_an_aa_mode(tmp_path, libinsitu, fixed):
    """overhead.py's quick mode with the A/A mode (--aa): a second
    --no-insitu run in every round, reported against the first, with its
    pairs beyond +-1/2% counted; the per-round lines; each mode's place in
    its rounds (rotating, or always the same with --fixed-order); the rows
    targets.py reads keep their keys."""
    out = run([PYTHON, BENCH / "overhead.py", "--quick", "--aa", "--pairs", "3"]
              + (["--fixed-order"] if fixed else []), timeout=600,
              env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / "overhead.json").read_text())
    rows = {r["mode"]: r for r in data["rows"]}
    assert list(rows) == ["off", "off [again]", "1 analysis", "10 analyses", "10 mixed"]
    aa = rows["off [again]"]
    assert aa["analyses"] is None and aa["loop_overhead_pct"]["n"] == 3
    assert aa["aa_pairs_beyond_pct"]["of"] == 3
    assert 0 <= aa["aa_pairs_beyond_pct"]["2%"] <= aa["aa_pairs_beyond_pct"]["1%"] <= 3
    assert "insitu_share_pct" not in aa
    assert "A/A (off [again] against off" in out.stdout
    for k in (1, 10):  # what targets.py reads
        r = next(r for r in data["rows"] if r["analyses"] == k)
        assert r["loop_overhead_pct"]["n"] == 3 and r["fixed_cost_s"]["n"] == 3
        assert r["insitu_share_pct"]["n"] == 3 and r["loop_minus_share_pct"]["n"] == 3
    places = {m: r["place_in_round"] for m, r in rows.items()}
    if fixed:
        assert data["order"] == "fixed"
        assert places == {m: [i] * 3 for i, m in enumerate(rows)}
    else:
        assert data["order"] == "rotated"
        assert places["off"] == [0, 4, 3] and places["1 analysis"] == [2, 1, 0]
    assert [line["round"] for line in data["rounds"]] == [1, 2, 3]
    assert all("1 analysis: own %" in line and "off [again]: loop %" in line
               for line in data["rounds"])


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
    assert [r["way"] for r in data["rows"]] == ["model only", "insitu"]


def test_time_to_answer_quick_prints_the_bound_on_its_ratio(tmp_path, libinsitu):
    """Beside each baseline's ratio to insitu: its time over the model-only
    run's of the same rounds (what an insitu that cost nothing would
    reach) and each way's time beyond the model; the model-only way runs
    even when --ways leaves it out."""
    out = run([PYTHON, BENCH / "time_to_answer.py", "--quick", "--ways", "insitu", "h5py"],
              timeout=600, env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    data = json.loads((tmp_path / "time_to_answer.json").read_text())
    rows = {r["way"]: r for r in data["rows"]}
    assert list(rows) == ["model only", "insitu", "h5py + xarray"]
    base = rows["h5py + xarray"]
    assert base["bound_vs_model"]["n"] == 2 and base["vs_insitu"]["n"] == 2
    assert base["beyond_model_s"]["n"] == 2 and rows["insitu"]["beyond_model_s"]["n"] == 2
    total = base["total_s"]["samples"]
    floor = rows["model only"]["total_s"]["samples"]
    assert base["bound_vs_model"]["samples"] == [a / b for a, b in zip(total, floor)]
    assert "h5py + xarray / insitu" in out.stdout and "bound (its time over the model " \
        "only's" in out.stdout and "time beyond the model: insitu" in out.stdout
