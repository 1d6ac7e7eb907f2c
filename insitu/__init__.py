"""insitu: in-situ analysis of running MPI simulations in Python.

A model (Fortran through libinsitu, or Python) hands each rank's slab to
insitu without a copy; numba kernels reduce it, one batched MPI collective
combines the ranks, and parallel HDF5 stores the summaries.
"""
__version__ = "0.1.0"

from .api import declare_field, expose, finalize, init, step  # noqa: E402

__all__ = ["init", "declare_field", "expose", "step", "finalize", "__version__"]
