"""Local numba kernels: plain loops over one rank's slab, no MPI, no checks.

Argument checking lives in the Python wrappers next to each kernel.

Start-up (issue 12): numba's first compile or cache load imports
``numba.np.arraymath``, whose import checks for a BLAS by importing
``scipy.linalg.cython_blas`` when scipy is installed: about 0.1 s of CPU
per rank (scipy.linalg, its array-API layer, numpy.f2py), for an answer
used only by numba's ``np.correlate`` and ``np.convolve`` (which then use
a plain loop instead of BLAS).  :func:`_arraymath_without_scipy_blas`
imports that module once here with ``scipy.linalg`` hidden, unless it or
scipy.linalg is loaded already (then nothing changes); numba's linear
algebra still works, since each ``np.linalg`` function imports scipy's
BLAS again when it is first compiled.
"""
from __future__ import annotations

import sys


class _HideScipyLinalg:
    """A finder that says ``scipy.linalg`` is not there (for one import)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "scipy.linalg" or name.startswith("scipy.linalg."):
            raise ModuleNotFoundError(f"{name} hidden during numba's BLAS check (insitu)")
        return None


def _arraymath_without_scipy_blas() -> None:
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    finder = _HideScipyLinalg()
    sys.meta_path.insert(0, finder)
    try:
        import numba.np.arraymath  # noqa: F401 - registers numba's numpy functions
    finally:
        sys.meta_path.remove(finder)


_arraymath_without_scipy_blas()
