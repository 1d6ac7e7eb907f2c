"""A one-node Slurm cluster for the tests (scripts/slurm-local.sh), and a
dataset-by-dataset comparison of two insitu files.

The cluster lives in the test session's own directory, on ports found free,
so it never touches a cluster a person started with the script's defaults;
it is stopped at the end of the session (the script stops only the daemons
whose pid files it wrote)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess

import h5py
import numpy as np
import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "slurm-local.sh"
#: exit status of slurm-local.sh start when Slurm is missing and apt-get is too
NO_APT = 3


def _free_port_pair(first: int = 16900, last: int = 17900) -> int:
    for port in range(first, last, 2):
        ok = True
        for p in (port, port + 1):
            with socket.socket() as s:
                try:
                    s.bind(("", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free pair of ports for slurmctld and slurmd")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """``{"SLURM_CONF": ...}`` for srun and sbatch; the cluster is up."""
    if shutil.which("dpkg-query") is None and shutil.which("srun") is None:
        pytest.skip("Slurm cannot be installed here: neither srun nor dpkg/apt-get exists")
    d = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, INSITU_SLURM_DIR=str(d), INSITU_SLURM_PORT=str(_free_port_pair()))
    r = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True,
                       text=True, timeout=600)
    if r.returncode == NO_APT:
        pytest.skip(f"Slurm cannot be installed here (no apt-get): {r.stderr.strip()}")
    assert r.returncode == 0, f"slurm-local.sh start failed:\n{r.stdout}\n{r.stderr}"
    try:
        yield {"SLURM_CONF": str(d / "slurm.conf")}
    finally:
        r = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr


def datasets(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_datasets(path, reference, exact: bool = True, rtol: float = 1e-12) -> int:
    """Every dataset of ``reference`` is in ``path`` with the same name,
    shape, dtype and values (bit for bit if ``exact``, else floats within
    ``rtol`` and everything else equal).  Returns the number compared."""
    got, want = datasets(path), datasets(reference)
    assert sorted(got) == sorted(want), (sorted(set(got) ^ set(want)))
    for name in want:
        a, b = got[name], want[name]
        assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, b.shape, a.dtype,
                                                           b.dtype)
        if exact or not np.issubdtype(b.dtype, np.floating):
            assert a.tobytes() == b.tobytes(), (name, a.ravel()[:6], b.ravel()[:6])
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True, err_msg=name)
    return len(want)
