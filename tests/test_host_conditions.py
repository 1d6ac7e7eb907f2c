"""Host conditions the rest of the suite never exercised (issue 11, "Host
conditions never exercised"), each under real mpiexec with a timeout:

* a sub-communicator smaller than WORLD, with idle ranks outside it that do
  their own collectives (Fortran here; the Python host in
  tests/mpi/test_mpi_host_conditions.py at 2-4 ranks);
* the Fortran integer-handle ``insitu_init`` (``use mpi``), i.e. the
  module's ``init_handle``, not ``mpi_f08``;
* ``MPI_THREAD_FUNNELED``, from a Python host (``mpi4py.rc.thread_level``)
  and a Fortran host (``MPI_Init_thread``);
* insitu calls from a thread other than the one that opened the session:
  refused with a ``StateError`` that names the thread, before any MPI call
  (insitu/api.py, README), and the run goes on unharmed;
* 6 ranks on a 3x2 Cartesian grid with uneven blocks.

Every result is compared with numpy on the whole field, rebuilt from the
formula the host uses, so nothing here depends on insitu's decomposition.
"""
from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import PYTHON, ROOT, mpirun, run

sys.path.insert(0, str(ROOT / "tests" / "mpi_programs"))
import grid_host  # noqa: E402

GRID_HOST = ROOT / "tests" / "mpi_programs" / "grid_host.py"


def _check_stats(h5, prefix, field, step_index, stats):
    a = field.astype(np.float64)
    want = {"count": a.size, "sum": a.sum(), "mean": a.mean(), "min": a.min(),
            "max": a.max(), "std": a.std()}
    for s in stats:
        got = h5[f"{prefix}_{s}"][step_index]
        assert got == pytest.approx(want[s], rel=1e-12), (prefix, s, step_index, got, want[s])


# -- Python host: a Cartesian grid, FUNNELED or SINGLE, a worker thread -------

def _grid_fields(step):
    j, i = np.meshgrid(np.arange(grid_host.SHAPE[0]), np.arange(grid_host.SHAPE[1]),
                       indexing="ij")
    return grid_host.field_f(j, i, step), grid_host.field_g(j, i, step)


def _check_grid_file(path, nranks, steps):
    with h5py.File(path, "r") as h5:
        assert list(h5["step"][...]) == list(range(1, steps + 1))
        assert h5.attrs["insitu_ranks"] == nranks
        for n in range(steps):
            f, g = _grid_fields(n + 1)
            _check_stats(h5, "f", f, n, ["count", "sum", "mean", "min", "max", "std"])
            _check_stats(h5, "g", g, n, ["sum", "min", "max"])
            # distributed results: every cell of every rank's piece, exact
            np.testing.assert_array_equal(h5["f_sum_over_x"][n], f.sum(axis=1))
            np.testing.assert_array_equal(h5["f_max_over_y"][n], f.max(axis=0))


@pytest.mark.parametrize("nranks, dims, level", [
    (6, (3, 2), "funneled"),   # the 3x2 grid, uneven both ways, FUNNELED
    (4, (2, 2), "single"),     # a Fortran MPI_Init's level, blocks with gaps in each row
])
def test_python_host_on_cartesian_grid_matches_numpy(tmp_path, nranks, dims, level):
    out = tmp_path / "grid.h5"
    r = mpirun(nranks, [PYTHON, GRID_HOST, out, "--dims", *dims, "--thread-level", level,
                        "--steps", 4], timeout=240)
    assert "GRID-HOST-DONE" in r.stdout, r.stdout + r.stderr
    _check_grid_file(out, nranks, 4)


def test_calls_from_another_thread_are_refused_under_funneled(tmp_path):
    """Under MPI_THREAD_FUNNELED a worker thread may make no MPI call at all:
    init is refused off the main thread, and once the main thread owns the
    session, expose, step and finalize from the worker are refused too.  The
    main thread's run is unharmed (same numbers as numpy), which it would not
    be if a refused step had entered the step's collective on some rank."""
    out = tmp_path / "probe.h5"
    nranks = 3
    r = mpirun(nranks, [PYTHON, GRID_HOST, out, "--dims", 3, 1, "--thread-level", "funneled",
                        "--steps", 3, "--probe-threads"], timeout=180)
    # Ranks' lines can interleave in mpiexec's stdout (two on one line), so
    # split at each "PROBE " rather than at newlines.
    import re
    probes = [p.strip() for p in re.split(r"(?=PROBE rank )", r.stdout)
              if p.startswith("PROBE rank ")]
    assert len(probes) == 4 * nranks, r.stdout
    for line in probes:
        what = line.split()[3].rstrip(":")
        assert ": StateError: insitu." + what + " called from thread 'insitu-worker'" in line, line
        if what == "init":
            assert "not MPI's main thread: under MPI_THREAD_FUNNELED" in line, line
        else:
            assert "but the session was opened by thread 'MainThread'" in line, line
            assert "every insitu call must come from the thread that called init" in line, line
    assert "Traceback" not in r.stderr, r.stderr
    _check_grid_file(out, nranks, 3)


# -- Fortran host: `use mpi`, integer handles, MPI_Init_thread, idle ranks ----

@pytest.fixture(scope="module")
def handle_check(tmp_path_factory, libinsitu):
    d = tmp_path_factory.mktemp("fortran_handles")
    flags = subprocess.run([PYTHON, "-m", "insitu.config", "--fflags"], capture_output=True,
                           text=True, check=True).stdout.split()
    ldflags = subprocess.run([PYTHON, "-m", "insitu.config", "--ldflags"],
                             capture_output=True, text=True, check=True).stdout.split()
    run(["mpif90", *flags, "-o", d / "handle_check", ROOT / "tests" / "fortran" /
         "handle_check.f90", *ldflags], timeout=300, cwd=d)
    return d / "handle_check"


def _fortran_field(step, nx=41, ny=29):
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")  # T(x, y)
    return ((7 * gx + 13 * gy + 5 * step) % 1000 - 300).astype(np.float64)


@pytest.mark.parametrize("nranks, nactive, level, grid", [
    (4, 3, "funneled", "3x1"),  # 3 ranks on a split communicator, rank 3 idle
    (5, 2, "single", "2x1"),    # 3 idle ranks with collectives of their own
    (6, 6, "funneled", "3x2"),  # every rank, a 3x2 grid
])
def test_fortran_integer_handle_host_matches_numpy(handle_check, tmp_path, nranks, nactive,
                                                   level, grid):
    out = tmp_path / "handles.h5"
    cfg = tmp_path / "handles.yaml"
    cfg.write_text(f"output: {{path: {out}, overwrite: true}}\n"
                   "fields: {T: {dims: [x, y]}}\n"
                   "analyses:\n"
                   "  - {kind: stats, field: T, stats: [count, sum, mean, min, max, std]}\n"
                   "  - {kind: reduce, field: T, over: [x], op: sum}\n"
                   "  - {kind: reduce, field: T, over: [y], op: max}\n")
    steps = 3
    r = mpirun(nranks, [handle_check, cfg, nactive, level, steps], timeout=240, cwd=tmp_path)
    assert f"THREAD-LEVEL {level}" in r.stdout and f"GRID {grid}" in r.stdout, r.stdout
    assert "HANDLE-CHECK-DONE" in r.stdout, r.stdout + r.stderr
    idle = sorted(int(line.split()[2]) for line in r.stdout.splitlines()
                  if line.startswith("IDLE rank"))
    assert idle == list(range(nactive, nranks)), r.stdout
    nidle = nranks - nactive
    for line in r.stdout.splitlines():
        if line.startswith("IDLE rank"):
            assert int(line.split()[4]) == nidle * 50 * 51 // 2, line
    with h5py.File(out, "r") as h5:
        assert h5.attrs["insitu_ranks"] == nactive
        assert h5.attrs["insitu_host"] == "C/Fortran"
        assert list(h5["step"][...]) == list(range(1, steps + 1))
        for n in range(steps):
            t = _fortran_field(n + 1)
            _check_stats(h5, "T", t, n, ["count", "sum", "mean", "min", "max", "std"])
            np.testing.assert_array_equal(h5["T_sum_over_x"][n], t.sum(axis=0))
            np.testing.assert_array_equal(h5["T_max_over_y"][n], t.max(axis=1))
