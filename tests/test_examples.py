"""The other examples: C through pkg-config, the Fortran Game of Life, and the
post-run plotting script."""
import os
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
