"""insitu: in-situ analysis of MPI simulations in Python.

``pip install -e .`` installs the package and builds libinsitu (the C ABI
with an embedded interpreter) and the Fortran module into ``insitu/_lib``.
"""
import os
import sys

from setuptools import Distribution, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildLibinsitu(build_ext):
    """Build libinsitu with cffi's embedding mode instead of a normal extension."""

    def run(self):
        sys.path.insert(0, os.path.join(HERE, "fortran_shim"))
        import build_libinsitu
        if self.inplace or getattr(self, "editable_mode", False):
            outdir = os.path.join(HERE, "insitu", "_lib")
        else:
            outdir = os.path.join(os.path.abspath(self.build_lib), "insitu", "_lib")
        build_libinsitu.build(outdir, python=sys.executable)

    def get_outputs(self):
        return []


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(
    name="insitu",
    version="0.1.0",
    description="In-situ analysis of MPI simulations: zero-copy handoff, numba kernels, "
                "MPI reductions, parallel HDF5",
    packages=find_packages(include=["insitu", "insitu.*"]),
    python_requires=">=3.10",
    install_requires=["numpy", "numba", "cffi", "pyyaml", "mpi4py", "h5py", "xarray", "h5netcdf",
                      "cftime",  # CF calendars: time units, calendar windows, replay
                      "bokeh"],  # insitu.live, the live view of a running job
    cmdclass={"build_ext": BuildLibinsitu},
    distclass=BinaryDistribution,
    zip_safe=False,
)
