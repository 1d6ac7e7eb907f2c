"""Results must not depend on numba's cache (issue 10, item 7).

Run heat2d at 1, 2 and 3 ranks twice: with an empty ``NUMBA_CACHE_DIR`` (every
kernel compiled in the run) and again with the now-warm cache (every kernel
loaded from it).  Every dataset of the two files must be equal bit for bit.
"""
import h5py
import numpy as np
import pytest

from conftest import PYTHON, mpi_env, mpirun


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_cold_and_warm_numba_cache_give_the_same_bits(tmp_path, nranks):
    env = mpi_env({"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")})
    cfg = tmp_path / "kernels.yaml"  # the kernels that sum: moments, reduce, histogram
    cfg.write_text("fields: {T: {dims: [y, x]}}\nanalyses:\n  - {kind: stats, field: T}\n"
                   "  - {kind: reduce, field: T, over: [x]}\n"
                   "  - {kind: reduce, field: T, over: [y]}\n"
                   "  - {kind: histogram, field: T, bins: 16, range: [270, 330],"
                   " quantiles: [0.5]}\n")
    files = []
    for run in ("cold", "warm"):
        out = tmp_path / f"{run}.h5"
        mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--steps", 20,
                        "--config", cfg, "--output", out], timeout=600, env=env)
        files.append(_datasets(out))
    cold, warm = files
    assert cold.keys() == warm.keys()
    differ = [k for k in cold if cold[k].tobytes() != warm[k].tobytes()]
    assert not differ, {k: (cold[k].ravel()[:4], warm[k].ravel()[:4]) for k in differ}
    assert any(np.issubdtype(v.dtype, np.floating) for v in cold.values())
