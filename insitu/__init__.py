"""insitu: in-situ analysis of running MPI simulations in Python.

A model (Fortran through libinsitu, or Python) hands each rank's slab to
insitu without a copy; numba kernels reduce it, one batched MPI collective
combines the ranks, and parallel HDF5 stores the summaries.

The entry points (``init``, ``declare_field``, ``expose``, ``step``,
``finalize``, from :mod:`insitu.api`) are imported on first use, so that
``import insitu`` and the tools that only read the package
(``python -m insitu.config`` in a model's Makefile, ``insitu.inspect``) do
not load numba, mpi4py and h5py.
"""
__version__ = "0.1.0"

__all__ = ["init", "declare_field", "expose", "step", "checkpoint", "finalize", "__version__"]
_API = ("init", "declare_field", "expose", "step", "checkpoint", "finalize")


def __getattr__(name):
    if name in _API:
        from . import api
        value = getattr(api, name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'insitu' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
