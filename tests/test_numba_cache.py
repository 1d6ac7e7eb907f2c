"""Results must not depend on numba's cache (issue 10, item 7).

Run heat2d at 1, 2 and 3 ranks twice: with an empty ``NUMBA_CACHE_DIR`` (every
kernel compiled in the run) and again with the now-warm cache (every kernel
loaded from it).  Every dataset of the two files must be equal bit for bit.
Nor on the CPU the kernels were built for: AVX-512 and AVX2 builds give the
same bits.
"""
import numpy as np
import pytest

from conftest import PYTHON, h5_datasets, mpi_env, mpirun


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
        files.append(h5_datasets(out))
    cold, warm = files
    assert cold.keys() == warm.keys()
    differ = [k for k in cold if cold[k].tobytes() != warm[k].tobytes()]
    assert not differ, {k: (cold[k].ravel()[:4], warm[k].ravel()[:4]) for k in differ}
    assert any(np.issubdtype(v.dtype, np.floating) for v in cold.values())


DIGEST = '''
import hashlib
import numpy as np
from insitu.kernels import histogram as kh, moments as km, reprosum as rs
rng = np.random.default_rng(5)
h = hashlib.sha256()
for dtype in (np.float32, np.float64):
    base = (288 + 15 * rng.standard_normal((301, 1203))).astype(dtype)
    bad = base.copy()
    bad[7, 11] = np.nan
    bad[100, 5] = np.inf
    for v in (base, base[1:-1, 2:-3], np.asfortranarray(base)[1:-1, 1:-1], bad, bad[1:-1, 1:-1]):
        h.update(km.moments(v).tobytes())
        h.update(kh.histogram(v, 250.0, 330.0, 23).tobytes())
        h.update(rs.local_words(v, 9).tobytes())
print(h.hexdigest())
'''


def test_bits_do_not_depend_on_the_cpus_vector_width(tmp_path):
    """The kernels add in the order their source gives (explicit lanes,
    kernels/simd.py), so code built for AVX2 (``NUMBA_CPU_NAME=haswell``)
    and for this machine (AVX-512 here) gives the same bits, compiled fresh
    or loaded from the cache.  (A build for plain x86-64, SSE2, was checked
    to agree too; left out here to keep to two cold compiles.)  A kernel
    that let LLVM reassociate its sums (fast-math) could differ between
    vector widths."""
    import concurrent.futures
    import subprocess
    script = tmp_path / "digest.py"
    script.write_text(DIGEST)

    def digest(target, cache):
        env = mpi_env({"NUMBA_CACHE_DIR": str(tmp_path / cache)})
        env.pop("NUMBA_CPU_NAME", None)
        if target:
            env["NUMBA_CPU_NAME"] = target
        out = subprocess.run([PYTHON, str(script)], env=env, capture_output=True, text=True,
                             timeout=600, check=True)
        return out.stdout.strip()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:   # the cold compiles at once
        host, avx2 = pool.map(digest, [None, "haswell"], ["host", "avx2"])
    warm = digest(None, "host")            # loaded from the cache the first run filled
    assert len(host) == 64
    assert host == avx2 == warm, {"host": host, "avx2": avx2, "warm": warm}
