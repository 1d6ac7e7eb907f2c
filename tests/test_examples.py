"""The other examples: C through pkg-config, the Fortran Game of Life, and the
post-run plotting script."""
import shutil

import numpy as np
import pytest
import xarray as xr

from conftest import PYTHON, ROOT, mpi_env, mpirun, run


def ring_reference(n, steps):
    u = np.sin(0.01 * np.arange(n)) + 2.0
    out = {}
    for s in range(1, steps + 1):
        u = 0.5 * u + 0.25 * (np.roll(u, 1) + np.roll(u, -1))
        out[s] = u.copy()
    return out


def test_pkg_config_finds_insitu(libinsitu):
    env = mpi_env({"PKG_CONFIG_PATH": str(libinsitu.parent / "pkgconfig")})
    r = run(["pkg-config", "--cflags", "--libs", "insitu"], timeout=30, env=env)
    assert f"-I{libinsitu.parent}/include" in r.stdout and "-linsitu" in r.stdout


@pytest.mark.parametrize("nranks", [1, 3])
def test_c_example_matches_numpy(libinsitu, tmp_path, nranks):
    for f in ("ring.c", "ring.yaml", "Makefile"):
        shutil.copy(ROOT / "examples" / "c" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}"], timeout=120)
    mpirun(nranks, [tmp_path / "ring", "ring.yaml", 1001, 30], cwd=tmp_path, timeout=120)
    ref = ring_reference(1001, 30)
    with xr.open_dataset(tmp_path / "ring.h5", engine="h5netcdf") as ds:
        assert list(ds["step"].values) == [10, 20, 30]
        for i, s in enumerate((10, 20, 30)):
            assert ds["u_mean"].values[i] == pytest.approx(ref[s].mean(), rel=1e-12)
            assert ds["u_std"].values[i] == pytest.approx(ref[s].std(), rel=1e-12)
            assert ds["u_min"].values[i] == pytest.approx(ref[s].min(), rel=1e-12)
        assert ds.attrs["insitu_host"] == "C/Fortran"
    assert cf_failures(tmp_path / "ring.h5") == {}


def cf_failures(path):
    """What the IOOS compliance checker (cf:1.11) fails in the file."""
    import json
    import sys
    from pathlib import Path
    nc = path.with_suffix(".nc")  # the checker wants a netCDF name
    shutil.copy(path, nc)
    checker = str(Path(sys.executable).with_name("compliance-checker"))
    r = run([checker, "--test", "cf:1.11", "-f", "json", "-o", "-", nc], timeout=300,
            check=False)
    rep = json.loads(r.stdout[r.stdout.index("{"):])["cf:1.11"]
    return {x["name"]: x["msgs"] for p in ("high_priorities", "medium_priorities",
                                          "low_priorities")
            for x in rep.get(p, []) if x["value"][0] != x["value"][1]}


def life_reference(nx, ny, steps):
    """The Fortran example's soup, evolved by the tests' own rule (truth.py)."""
    import truth
    gi, gj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")  # alive(x, y)
    a = (((7 * gi + 13 * gj + (gi * gj) % 17) % 10) < 3).astype(np.int32)
    return truth.life(a, steps)


@pytest.mark.parametrize("nranks", [3, 4])
def test_fortran_life_matches_serial_reference(libinsitu, tmp_path, nranks):
    for f in ("life.f90", "life.yaml", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}", "life"], timeout=300)
    nx, ny, steps = 97, 65, 25  # uneven slabs on both process grids
    mpirun(nranks, [tmp_path / "life", "life.yaml", nx, ny, steps], cwd=tmp_path, timeout=120)
    ref = life_reference(nx, ny, steps)
    with xr.open_dataset(tmp_path / "life_fortran.h5", engine="h5netcdf") as ds:
        assert ds["alive_sum"].dtype.kind == "f"
        np.testing.assert_array_equal(ds["alive_sum"].values,
                                      [ref[s].sum() for s in range(1, steps + 1)])
        np.testing.assert_allclose(ds["alive_mean_over_x"].values,
                                   [ref[s].mean(axis=0) for s in range(1, steps + 1)],
                                   rtol=1e-12)
        assert ds["alive_mean_over_x"].dims == ("time", "y")
    assert cf_failures(tmp_path / "life_fortran.h5") == {}


def test_post_run_script_saves_a_figure(tmp_path):
    import matplotlib.image as mpimg
    out = tmp_path / "heat.h5"
    mpirun(2, [PYTHON, "-m", "insitu.run", "--steps", 30, "--output", out])
    fig = tmp_path / "fig.png"
    run([PYTHON, ROOT / "examples" / "python" / "plot_output.py", out, fig], timeout=120)
    img = mpimg.imread(fig)
    assert img.shape[0] > 100 and img[..., :3].std() > 0.01
