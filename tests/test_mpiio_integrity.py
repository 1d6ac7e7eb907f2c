"""No distributed output loses a cell under a real host's conditions.

tests/mpi_programs/cart_single.py is a host as a Fortran model would be
(``MPI_THREAD_SINGLE``, a 2-D Cartesian communicator).  Under Debian 12's
Open MPI 4.1.4 with the default MPI-IO component (ompio, fcoll vulcan), the
old collective hyperslab writes lost cells in most runs of 10
(open-mpi/ompi#12718, docs/mpiio.md).  The stress test runs the host 10
times with every MPI-IO setting that hides the bug removed from the
environment, so it proves insitu's write pattern on its own.
"""
from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
import xarray as xr

from conftest import PYTHON, ROOT, mpi_env, mpirun
from insitu import mpiio

sys.path.insert(0, str(ROOT / "tests" / "mpi_programs"))
import cart_single as host  # noqa: E402

PROGRAM = ROOT / "tests" / "mpi_programs" / "cart_single.py"
STEPS = 20


def default_mpiio_env() -> dict:
    """The environment with Open MPI's defaults: no lock setting, no romio,
    no fcoll or data-sieving choice (scripts/env.sh may have set one)."""
    env = mpi_env()
    for k in mpiio.USER_CHOICES:
        env.pop(k, None)
    return env


def full(fn, step):
    j, i = np.meshgrid(np.arange(host.SHAPE[0]), np.arange(host.SHAPE[1]), indexing="ij")
    return fn(j, i, step)


def bad_cells(path) -> dict:
    """Cells of each distributed result that are fill (NaN) or differ from
    numpy on the full field, over every step."""
    f = np.stack([full(host.field_f, s) for s in range(1, STEPS + 1)])
    want = {"f_sum_over_x": f.sum(axis=2), "f_max_over_y": f.max(axis=1)}
    out = {}
    with h5py.File(path, "r") as h5:
        for name, ref in want.items():
            got = h5[name][...]
            assert got.shape == ref.shape, (name, got.shape, ref.shape)
            out[name] = {"fill": int(np.isnan(got).sum()), "wrong": int((got != ref).sum())}
        g = h5["snap_g"][...]
        steps = list(h5["step_snap"][...])
        ref = np.stack([full(host.field_g, s) for s in steps])
        fill = int(h5["snap_g"].fillvalue)  # what HDF5 puts in a cell never written
        assert fill == -2147483647  # netCDF's NC_FILL_INT
        assert "_FillValue" not in h5["snap_g"].attrs  # no cell is missing: none masked
        out["snap_g"] = {"fill": int((g == fill).sum()), "wrong": int((g != ref).sum())}
    return out


def run_host(path, nranks=3, env=None):
    mpirun(nranks, [PYTHON, PROGRAM, path, "--steps", STEPS], timeout=120,
           env=env or default_mpiio_env())


def test_stress_reduce_at_3_ranks_loses_no_cell_under_default_ompio(tmp_path):
    """10 runs at 3 ranks, default MPI-IO component: zero lost cells."""
    runs = []
    for k in range(10):
        path = tmp_path / f"run{k}.h5"
        run_host(path)
        runs.append(bad_cells(path))
        path.unlink()
    lost = [sum(v["fill"] for v in r.values()) for r in runs]
    wrong = [sum(v["wrong"] for v in r.values()) for r in runs]
    assert lost == [0] * 10 and wrong == [0] * 10, (
        f"{sum(x > 0 for x in wrong)} of 10 runs lost or corrupted cells; "
        f"fill cells per run {lost}, wrong cells per run {wrong}: {runs}")


def test_int32_snapshot_keeps_its_twos_in_xarray(tmp_path):
    """An int32 distributed result read with xarray: real 2s stay 2, not NaN
    (the old fill, int64 min + 2 cast to int32, was 2)."""
    path = tmp_path / "int32.h5"
    run_host(path, nranks=3)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        snap = ds["snap_g"]
        assert "_FillValue" not in snap.encoding  # every cell written: nothing masked
        got = snap.values
        steps = [int(s) for s in ds["step_snap"].values]
    assert len(steps) == 3
    ref = np.stack([full(host.field_g, s) for s in steps])
    assert (ref == 2).sum() > 0
    assert not np.isnan(got).any(), f"{int(np.isnan(got).sum())} cells read back as NaN"
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("nranks", [2, 4])
def test_host_conditions_at_other_rank_counts(tmp_path, nranks):
    """2 ranks (a 2x1 grid) and 4 ranks (2x2: pieces with gaps in each row)."""
    path = tmp_path / "out.h5"
    run_host(path, nranks=nranks)
    bad = bad_cells(path)
    assert all(v == {"fill": 0, "wrong": 0} for v in bad.values()), bad
