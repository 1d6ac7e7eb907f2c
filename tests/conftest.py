"""Shared test helpers.

MPI tests launch real ``mpiexec`` jobs through :func:`mpirun`, which kills
the whole process group when the timeout expires, so a deadlock fails the
test instead of hanging CI.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "NUMBA_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


def mpi_env(extra=None) -> dict:
    env = dict(os.environ)
    env.update(MPI_ENV)
    env["PATH"] = os.path.dirname(PYTHON) + os.pathsep + env.get("PATH", "")
    env.pop("PYTEST_CURRENT_TEST", None)
    if extra:
        env.update(extra)
    return env


def session_pids(sid: int) -> list[int]:
    """Every process in session ``sid``.

    Open MPI gives each rank its own process group, so killing mpiexec's
    group would leave the ranks running; the session holds them all.
    """
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: session id
            pids.append(int(entry))
    return pids


def kill_session(sid: int) -> None:
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(cmd, timeout: float, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own session; kill the whole session on timeout."""
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd or ROOT, env=env or mpi_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc.pid)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout}s (a hang?): {' '.join(map(str, cmd))}\n"
                    f"--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}")
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and proc.returncode != 0:
        pytest.fail(f"exit {proc.returncode}: {' '.join(map(str, cmd))}\n"
                    f"--- stdout\n{out[-6000:]}\n--- stderr\n{err[-6000:]}")
    return result


def mpirun(n: int, args, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    """``mpiexec -n n args...`` with a timeout."""
    return run(["mpiexec", "-n", str(n), *args], timeout=timeout, **kw)


@pytest.fixture(scope="session")
def libinsitu() -> Path:
    from insitu import config
    lib = Path(config.library())
    if not lib.exists():
        pytest.fail(f"{lib} is not built; run ./scripts/test.sh (pip install -e .)")
    return lib


@pytest.fixture(scope="session")
def analyses_output(tmp_path_factory):
    """examples/heat2d_analyses.yaml run on 2 ranks: a file with every kind of result."""
    out = tmp_path_factory.mktemp("analyses") / "all.h5"
    mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config",
               ROOT / "examples" / "heat2d_analyses.yaml", "--steps", 20, "--output", out])
    return out


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(options)`` mounts a small tmpfs (``size=512k``, ``ro,size=64k``)
    under the test's directory and returns its path; the test is skipped,
    with the reason, where mounting is not possible (not root).  Unmounted
    after the test."""
    mounted = []

    def mount(options: str, name: str = "mnt") -> Path:
        mnt = tmp_path / name
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs ({options}) here: {r.stderr.strip()}")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# tests/mpi runs only under mpiexec (launched by test_mpi_suite.py).
collect_ignore = [] if os.environ.get("INSITU_MPI_TESTS") else ["mpi"]


def h5_datasets(path) -> dict:
    """Every dataset of the HDF5 file at ``path`` by its path, read whole:
    for tests that compare two runs' files bit for bit."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...])
                     if isinstance(obj, h5py.Dataset) else None)
    return out
