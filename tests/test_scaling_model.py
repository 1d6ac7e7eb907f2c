"""scripts/bench/scaling.py --sweep: the scaling model behind docs/scaling.md
still runs end to end (quick: 1, 2, 3, 4 and 8 ranks, one round, the fit,
the 8-rank check and the projection, printed instead of written), and its
fit does what docs/scaling.md says."""
import json
import sys

from conftest import PYTHON, ROOT, mpi_env, run

sys.path.insert(0, str(ROOT / "scripts" / "bench"))
import scaling  # noqa: E402


def test_the_fit_recovers_a_known_model_and_never_projects_a_shrinking_cost():
    basis = scaling.MODELS["reduction"][0]
    xs = [2, 3, 4]
    coef = scaling.lstsq(xs, [5.0 + 2.0 * scaling.log2(p) for p in xs], basis)
    assert abs(coef[0] - 5.0) < 1e-9 and abs(coef[1] - 2.0) < 1e-9
    coef = scaling.lstsq([1, 2, 3, 4], [4.0, 3.0, 2.5, 2.0], scaling.MODELS["write"][0])
    assert coef[1] == 0.0 and coef[0] == 2.875  # noise that falls: a flat mean


def test_the_quick_sweep_fits_checks_and_projects(tmp_path):
    r = run([PYTHON, ROOT / "scripts" / "bench" / "scaling.py", "--sweep", "--quick",
             "--rounds", "1"], timeout=900, env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    assert "## The model, fitted on 1-4 ranks and checked at 8" in r.stdout, r.stdout[-3000:]
    assert "| 10,000 ranks |" in r.stdout and "What breaks first" in r.stdout
    data = json.loads((tmp_path / "scaling_sweep.json").read_text())
    assert sorted(map(int, data["rows"])) == [1, 2, 3, 4, 8]
    assert data["c2"] > 0 and "step" in data["checks"]
    # the page is rewritten from the saved figures alone
    again = run([PYTHON, ROOT / "scripts" / "bench" / "scaling.py", "--sweep", "--quick",
                 "--from-json", tmp_path / "scaling_sweep.json"], timeout=300,
                env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    assert again.stdout.split("## What was measured")[1] == \
        r.stdout.split("## What was measured")[1]
