"""Start-up (issue 12, item 6): nothing recompiles on a warm numba cache,
init loads none of the readers and plots, and ``import insitu`` alone loads
nothing heavy.  The timings themselves are measured by
``scripts/bench/startup.py`` (docs/performance.md), never asserted here."""
import json
import subprocess

from conftest import PYTHON, ROOT, mpi_env, run

READERS = {"xarray", "matplotlib", "pandas", "h5netcdf", "netCDF4", "insitu.plots",
           "insitu.inspect"}


def test_startup_benchmark_loads_every_kernel_from_a_warm_cache(tmp_path):
    """The benchmark's quick mode at 2 ranks, Python and Fortran hosts: after
    its warm-up run, every kernel the first due step needs is a cache hit
    (numba's dispatcher statistics) and a NUMBA_DEBUG_CACHE run saves
    nothing (a save is a recompile); and init has not loaded the readers."""
    run([PYTHON, ROOT / "scripts" / "bench" / "startup.py", "--quick"], timeout=600,
        env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path),
                     "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}))
    data = json.loads((tmp_path / "startup.json").read_text())
    assert data["machine"]["cpu"] is not None and data["rows"]
    cache = data["cache"]
    assert all(h > 0 for h in cache["hits"]), cache
    assert cache["misses"] == [0] * len(cache["misses"]), cache
    assert cache["debug_cache_saves"] == {"python/this": [], "fortran/this": []}, cache
    assert not READERS & set(data["loaded_at_init"]), data["loaded_at_init"]
    for row in data["rows"]:
        assert row["this"]["runs"] == 2 and row["this"]["median"] > 0, row


def test_import_insitu_alone_loads_nothing_heavy():
    """``import insitu`` (and ``python -m insitu.config``, which a model's
    Makefile runs) must not pay for numba, mpi4py or h5py; the entry points
    load them on first use."""
    code = ("import sys, insitu\n"
            "heavy = {'numba', 'mpi4py', 'h5py', 'yaml', 'xarray', 'insitu.api'}\n"
            "print(sorted(heavy & set(sys.modules)))\n"
            "insitu.step\n"
            "print('insitu.api' in sys.modules, insitu.step is insitu.api.step)\n")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=mpi_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True True"], out.stdout


def test_first_kernel_load_does_not_import_scipy_linalg():
    """numba's first cache load imports numba.np.arraymath, whose BLAS check
    imported scipy.linalg (about 0.1 s of CPU per rank); insitu.kernels
    imports that module with scipy.linalg hidden.  numba's linear algebra
    still works afterwards (it imports scipy's BLAS when it compiles)."""
    code = ("import sys, numpy as np\n"
            "from insitu.kernels import moments as km\n"
            "km.moments(np.ones((8, 8)), np.empty(len(km.FIELDS)))\n"
            "print('scipy.linalg' in sys.modules)\n"
            "import numba\n"
            "inv = numba.njit(lambda a: np.linalg.inv(a))\n"
            "print(inv(2 * np.eye(2))[0, 0])\n")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env=mpi_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["False", "0.5"], out.stdout
