"""output.verify (issue 11): after each flush every rank re-reads what it
wrote and compares it bit for bit.  A clean run with every kind of output
passes; a writer that corrupts one cell is caught at the step it happens,
with exit status 5."""
import pytest

from conftest import PYTHON, ROOT, mpirun

EXAMPLE = ROOT / "examples" / "heat2d_analyses.yaml"


def _config(tmp_path):
    import yaml
    cfg = tmp_path / "verify.yaml"
    data = yaml.safe_load(EXAMPLE.read_text())
    data["output"]["verify"] = True
    cfg.write_text(yaml.safe_dump(data))
    return cfg


@pytest.mark.parametrize("nranks", [1, 3])
def test_verify_passes_a_clean_run_with_every_output_kind(nranks, tmp_path):
    out = tmp_path / "clean.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config",
                    _config(tmp_path), "--steps", 20, "--output", out], timeout=180)
    assert out.exists()


@pytest.mark.parametrize("nranks", [2, 3])
def test_verify_catches_a_corrupted_cell(nranks, tmp_path):
    out = tmp_path / "bad.h5"
    bad = nranks - 1
    r = mpirun(nranks, [PYTHON, ROOT / "tests" / "mpi_programs" / "corrupt_writes.py", bad,
                        "--model", "heat2d", "--config", _config(tmp_path), "--steps", 20,
                        "--output", out], timeout=180, check=False)
    assert r.returncode == 5, r.stderr[-3000:]
    assert f"output.verify: rank {bad} re-read " in r.stderr, r.stderr[-3000:]
    assert "1 of " in r.stderr and "cell(s) differ from what it wrote" in r.stderr
