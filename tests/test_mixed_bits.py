"""The kernels of a real config's due step (issue 12) give the same bits
whatever the CPU's vector width and whether numba compiled them in this run
or loaded them from its cache: the weighted exceedance sums (W lanes per
row, simd's fixed tree), the extremes (no arithmetic, but vector bounds)
and the histogram counts, on Fortran-order halo views.  As
tests/test_numba_cache.py does for the moments kernel: a digest of the
results from a fresh cache built for this machine, one built for AVX2
(``NUMBA_CPU_NAME=haswell``), and the first cache again (warm)."""
import concurrent.futures

from conftest import PYTHON, mpi_env, run

DIGEST = '''
import hashlib
import numpy as np
from insitu.kernels.extremes import arg_extremes
from insitu.kernels.histogram import histogram
from insitu.kernels.weighted import exceedance, weighted_histogram
rng = np.random.default_rng(9)
h = hashlib.sha256()
for dtype in (np.float32, np.float64):
    full = np.asfortranarray((288 + 15 * rng.standard_normal((303, 1203))).astype(dtype))
    full[7, 11] = np.nan
    full[100, 5] = np.inf
    w = np.asfortranarray(rng.random((301, 1201)))
    coslat = np.cos(np.linspace(-1.5, 1.5, 1201))[None, :]
    for v in (full[1:-1, 1:-1], np.ascontiguousarray(full)[1:-1, 1:-1]):
        for wt in (w, coslat, np.float64(1.0)):
            for op in ("gt", "le"):
                h.update(exceedance(v, wt, 290.0, op).tobytes())
            h.update(weighted_histogram(v, wt, 250.0, 330.0, 23).tobytes())
        h.update(arg_extremes(v, (1, 1), (303, 1203)).tobytes())
        h.update(histogram(v, 250.0, 330.0, 50).tobytes())
print(h.hexdigest())
'''


def _digest(script, cache, cpu=None) -> str:
    """The digest printed by ``script`` with numba's cache in ``cache``,
    built for ``cpu`` (``NUMBA_CPU_NAME``) or for this machine."""
    env = mpi_env({"NUMBA_CACHE_DIR": str(cache)})
    env.pop("NUMBA_CPU_NAME", None)
    if cpu:
        env["NUMBA_CPU_NAME"] = cpu
    return run([PYTHON, script], timeout=600, env=env).stdout.strip()


def test_same_bits_on_avx2_and_this_cpu_cold_and_warm(tmp_path):
    script = tmp_path / "digest.py"
    script.write_text(DIGEST)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:   # both cold compiles at once
        cold = [pool.submit(_digest, script, tmp_path / "host"),
                pool.submit(_digest, script, tmp_path / "avx2", "haswell")]
        host, avx2 = (f.result() for f in cold)
    warm = _digest(script, tmp_path / "host")                # from the cache just filled
    assert len(host) == 64
    assert host == avx2 == warm, {"host": host, "avx2": avx2, "warm": warm}
