"""tests/test_numerics.py under real MPI and through the real HDF5 writer.

Run on every rank by tests/test_mpi_suite.py (mpiexec -n 1..4): var/std
within 1e-12 of an exact truth at offsets up to 1e12 times the spread,
integer sum and mean correctly rounded, the window's var exact, and what the
file holds equal to what step() returned, on every rank.
"""
from fractions import Fraction

import h5py
import numpy as np
import pytest

import numerics_cases as nc


@pytest.mark.parametrize("name", sorted(nc.CASES))
def test_stats_exact_under_mpi(comm, icomm, shared_dir, name):
    path = shared_dir / f"{name}.h5"
    out = nc.run(icomm, name, output=str(path))
    for step, got in out.items():
        field = nc.CASES[name][1](step)
        scale = float(np.abs(field.astype(np.float64)).max())
        nc.check(name, got, nc.exact(field))
        nc.check_weighted(name, got, nc.exact_weighted(field), scale)
    # every rank holds the same bits
    vec = np.array([out[s][k] for s in sorted(out) for k in sorted(out[s])], dtype=np.float64)
    root = vec.copy()
    comm.Bcast(root, root=0)
    assert vec.tobytes() == root.tobytes()
    comm.Barrier()
    with h5py.File(path, "r") as f:
        for step in sorted(out):
            for k, v in out[step].items():
                assert np.float64(f[k][step - 1]).tobytes() == np.float64(v).tobytes(), k


def test_window_var_exact_under_mpi(comm, icomm, shared_dir):
    path = shared_dir / "window.h5"
    nc.run_window(icomm, output=str(path))
    comm.Barrier()
    with h5py.File(path, "r") as f:
        got = f["f_mean_w4_var"][...]
    truth = nc.window_truth()
    assert got.shape == (len(truth),)
    for g, var in zip(got, truth):
        rel = abs(Fraction(float(g)) - var) / var
        assert rel <= Fraction(1, 10**12), float(rel)
