"""End to end under real mpiexec: the CLI with the Python stand-ins, the
Fortran model through libinsitu, and errors crossing into Fortran."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import PYTHON, ROOT, mpi_env, mpirun, run
import truth
from insitu.models import heat2d, life

STEPS = 30


def heat_truth(shape, steps):
    """``(step, time, T)`` from the tests' own heat equation (tests/truth.py)."""
    return [(s, s * truth.HEAT_DT, t) for s, t in truth.heat(shape, steps).items()]


def life_truth(shape, steps):
    j, i = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
    return [(s, float(s), a) for s, a in truth.life(life.initial(j, i), steps).items()]


def _numpy_stats(field):
    a = field.astype(np.float64)
    return {"count": a.size, "sum": a.sum(), "mean": a.mean(), "min": a.min(),
            "max": a.max(), "std": a.std(), "nan_count": 0}


def _compare(path, prefix, reference, stats, every):
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds[f"{prefix}_mean"].dims == ("time",)
        assert "time" in ds.coords and "step" in ds.coords
        steps = list(ds["step"].values)
        assert steps == list(range(every, STEPS + 1, every))
        i = 0
        for step, _, field in reference:
            if step % every:
                continue
            want = _numpy_stats(field)
            for s in stats:
                got = ds[f"{prefix}_{s}"].values[i]
                assert got == pytest.approx(want[s], rel=1e-12, abs=1e-300), (step, s)
            i += 1
        assert i == len(steps)


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_heat2d_cli_matches_numpy(nranks, tmp_path):
    shape = (97, 131)  # divides by none of 2, 3, 4: uneven slabs
    out = tmp_path / "heat.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config",
                    ROOT / "examples" / "heat2d.yaml", "--steps", STEPS, "--shape", *shape,
                    "--output", out])
    _compare(out, "T", heat_truth(shape, STEPS),
             ["count", "sum", "mean", "min", "max", "std", "nan_count"], every=10)
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["insitu_ranks"] == nranks
        assert np.issubdtype(ds["time"].dtype, np.datetime64)  # CF units decoded


@pytest.mark.parametrize("nranks", [1, 4])
def test_life_cli_matches_numpy(nranks, tmp_path):
    out = tmp_path / "life.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "life", "--config",
                    ROOT / "examples" / "life.yaml", "--steps", STEPS, "--shape", 45, 67,
                    "--output", out])
    _compare(out, "alive", life_truth((45, 67), STEPS), ["count", "sum", "mean", "std"], 1)


@pytest.mark.parametrize("nranks", [1, 3])
def test_cli_runs_when_the_first_result_is_not_a_scalar(nranks, tmp_path):
    """The progress label once formatted the step's first result as a float
    and crashed on a histogram (an array) or a reduction (a piece, or None
    on ranks that hold none) as the only analysis (issue 10, item 6)."""
    cfg = tmp_path / "arrays.yaml"
    cfg.write_text("fields: {T: {dims: [y, x]}}\n"
                   "analyses:\n"
                   "  - {kind: histogram, field: T, bins: 8, range: [0, 1], every: 5}\n"
                   "  - {kind: reduce, field: T, over: [x], every: 5}\n")
    out = tmp_path / "arrays.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                    "--steps", 10, "--shape", 23, 17, "--output", out], timeout=120)
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert list(ds["step"].values) == [5, 10]
        assert ds["T_mean_over_x"].shape == (2, 23)
        assert not np.isnan(ds["T_mean_over_x"].values).any()


def test_existing_output_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "exists.h5"
    out.write_bytes(b"precious")
    r = mpirun(2, [PYTHON, "-m", "insitu.run", "--steps", 2, "--output", out], check=False)
    assert r.returncode != 0
    assert "exists" in r.stderr and "overwrite" in r.stderr
    assert out.read_bytes() == b"precious"


def test_bad_config_exits_nonzero_with_message(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("analyses:\n  - {kind: stats, field: T, every: -4}\n")
    r = mpirun(3, [PYTHON, "-m", "insitu.run", "--config", cfg, "--steps", 2,
                   "--output", tmp_path / "o.h5"], check=False, timeout=60)
    assert r.returncode != 0
    assert "analyses[0].every: expected a positive integer, got -4" in r.stderr


# -- Fortran --------------------------------------------------------------

@pytest.fixture(scope="module")
def fortran_dir(tmp_path_factory, libinsitu):
    """Build the example with its own Makefile, in a scratch copy."""
    d = tmp_path_factory.mktemp("fortran")
    for f in (ROOT / "examples" / "fortran").iterdir():
        if f.suffix in (".f90", ".yaml") or f.name == "Makefile":
            shutil.copy(f, d)
    run(["make", "-C", d, f"PYTHON={PYTHON}"], timeout=300)
    for prog in ("error_check", "abort_check", "dtypes_check"):
        flags = subprocess.run([PYTHON, "-m", "insitu.config", "--fflags"], capture_output=True,
                               text=True, check=True).stdout.split()
        ldflags = subprocess.run([PYTHON, "-m", "insitu.config", "--ldflags"],
                                 capture_output=True, text=True, check=True).stdout.split()
        run(["mpif90", *flags, "-o", d / prog, ROOT / "tests" / "fortran" / f"{prog}.f90",
             *ldflags], timeout=300)
    return d


@pytest.mark.parametrize("nranks", [4, 3])
def test_fortran_heat2d_matches_numpy(fortran_dir, tmp_path, nranks):
    cfg = tmp_path / "heat2d.yaml"
    out = tmp_path / "fortran.h5"
    cfg.write_text((fortran_dir / "heat2d.yaml").read_text()
                   .replace("heat2d_fortran.h5", str(out)))
    nx, ny = 131, 97  # Fortran T(x, y) == Python T[y, x] of shape (97, 131)
    mpirun(nranks, [fortran_dir / "heat2d", cfg, nx, ny, STEPS], timeout=180)
    _compare(out, "T", heat_truth((ny, nx), STEPS),
             ["count", "sum", "mean", "min", "max", "std", "nan_count"], every=10)
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["insitu_host"] == "C/Fortran"
        assert ds["T_mean"].attrs["cell_methods"] == "area: mean"


def test_python_errors_reach_fortran_caller(fortran_dir, tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(f"output: {{path: {tmp_path / 'e.h5'}, overwrite: true}}\n"
                   "analyses: [{kind: stats, field: T}]\n")
    r = mpirun(2, [fortran_dir / "error_check", cfg], timeout=120)
    assert "ALL-CHECKS-PASSED" in r.stdout, r.stdout + r.stderr
    # Errors returned through ierr are logged once as one line, never with a
    # traceback on stderr (the message stays in insitu_last_error).
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert sum("/nonexistent/insitu.yaml" in ln for ln in lines) == 2, r.stderr  # once a rank
    assert sum(" ERROR: insitu_declare: field 'T'" in ln for ln in lines) == 2, r.stderr


def test_failed_call_without_ierr_aborts_whole_job(fortran_dir):
    r = mpirun(3, [fortran_dir / "abort_check"], timeout=60, check=False)
    assert r.returncode != 0
    assert "NOT-REACHED" not in r.stdout
    assert "/nonexistent/insitu.yaml" in r.stderr and "aborted" in r.stderr


def test_embedded_python_failure_is_an_error_not_success(fortran_dir, tmp_path):
    # An interpreter that cannot import insitu: init must return
    # INSITU_ERR_PYTHON, never cffi's default 0.
    fake = tmp_path / "venv" / "bin"
    fake.mkdir(parents=True)
    r = mpirun(1, [fortran_dir / "error_check", tmp_path / "x.yaml"], timeout=60, check=False,
               env=mpi_env({"INSITU_PYTHON": str(fake / "python")}))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "PYTHON-START-FAILED" in r.stdout and "embedded Python" in r.stdout


@pytest.mark.parametrize("nranks", [1, 3])
def test_fortran_generic_interface_all_dtypes_and_ranks(fortran_dir, tmp_path, nranks):
    out = tmp_path / "dtypes.h5"
    cfg = tmp_path / "dtypes.yaml"
    cfg.write_text(f"output: {{path: {out}}}\nanalyses:\n" + "".join(
        f"  - {{kind: stats, field: {f}, stats: [count, sum, mean, min, max, std]}}\n"
        for f in "abcde"))
    r = mpirun(nranks, [fortran_dir / "dtypes_check", cfg], timeout=120)
    assert "DTYPES-DONE" in r.stdout
    p = nranks
    nx, ny, nz = 5, 7, 3
    g = np.arange(11 * p)
    i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz * p + 2), indexing="ij")
    jb = np.meshgrid(np.arange(nx), np.arange(ny * p + 1), indexing="ij")
    want = {
        "a": (g * 0.5 + 1.25).astype(np.float32),
        "b": (jb[0] + 100 * jb[1]).astype(np.int32),
        "c": (i + 10 * j + 10**12 * k).astype(np.int64),
        "d": np.sin(0.1 * i) + np.cos(0.2 * j) + 0.01 * k,
        "e": np.add.outer(np.add.outer(np.add.outer(np.arange(nx), 10.0 * np.arange(2)),
                                       100.0 * np.arange(ny)), 1000.0 * np.arange(nz * p + 2)),
    }
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        for name, field in want.items():
            f = field.astype(np.float64)
            ref = {"count": f.size, "sum": f.sum(), "mean": f.mean(), "min": f.min(),
                   "max": f.max(), "std": f.std()}
            for stat, v in ref.items():
                got = ds[f"{name}_{stat}"].values[0]
                assert got == pytest.approx(v, rel=1e-12), (name, stat, got, v)


# -- every analysis kind, through both hosts --------------------------------

def _load(path):
    import yaml
    return yaml.safe_load(Path(path).read_text())


@pytest.mark.parametrize("nranks", [1, 4])
def test_example_analyses_python_host(nranks, tmp_path):
    from reference import check_file
    cfg = ROOT / "examples" / "heat2d_analyses.yaml"
    out = tmp_path / "an.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                    "--steps", 20, "--output", out])
    fields = truth.heat((96, 128), 20)
    area = {"area": heat2d.reference_area((96, 128))}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the output contract: no warnings at all
        with xr.open_dataset(out, engine="h5netcdf") as ds:
            ds.load()
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert check_file(ds, _load(cfg), fields, ("y", "x"), area) > 80
    r = run([PYTHON, "-m", "insitu.inspect", out], timeout=60)
    for line in ("T_coarse               (time, y_c8=12, x_c8=16) float64 [K]",
                 "T_hist                 (time, T_hist_bin=60) int64", "steps 5..20",
                 f"ranks: {nranks}"):
        assert line in r.stdout, r.stdout


@pytest.mark.parametrize("nranks", [2, 4])
def test_example_analyses_fortran_host(fortran_dir, nranks, tmp_path):
    from reference import check_file
    cfg = tmp_path / "an.yaml"
    out = tmp_path / "an.h5"
    text = (ROOT / "examples" / "fortran" / "heat2d_analyses.yaml").read_text()
    cfg.write_text(text.replace("heat2d_fortran_analyses.h5", str(out)))
    mpirun(nranks, [fortran_dir / "heat2d", cfg, 128, 96, 20], timeout=180, cwd=ROOT)
    fields = {s: t.T for s, t in truth.heat((96, 128), 20).items()}  # T(x, y)
    area = {"area": heat2d.reference_area((96, 128)).T}
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["T_mean_over_x"].dims == ("time", "y")
        assert ds["y"].attrs["standard_name"] == "latitude"
        assert check_file(ds, _load(cfg), fields, ("x", "y"), area) > 80
