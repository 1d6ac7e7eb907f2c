"""Local numba kernels: plain loops over one rank's slab, no MPI, no checks.

Argument checking lives in the Python wrappers next to each kernel.
"""
