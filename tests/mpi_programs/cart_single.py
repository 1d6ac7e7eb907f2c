"""A Python host that stands in for a Fortran model, for MPI-IO integrity tests.

Run under mpiexec::

    mpiexec -n 3 python tests/mpi_programs/cart_single.py OUT.h5 --steps 20

It reproduces the two conditions a real Fortran host gives and mpi4py's
defaults hide (docs/mpiio.md):

* ``MPI_THREAD_SINGLE`` (a Fortran ``MPI_Init``), not mpi4py's default
  ``MPI_THREAD_MULTIPLE``, which turns ompio's faulty path off;
* a 2-D Cartesian communicator (``MPI.Compute_dims``), passed to
  ``insitu.api.init``: ompio then picks one aggregator per grid row.

Each rank owns an uneven slab of two fields whose values are pure functions
of the global index and the step (:func:`field_f`, :func:`field_g`), so the
test can check every written cell against numpy.  ``mpi4py.MPI`` is
imported inside :func:`main`, so importing this module for those functions
does not initialise MPI.  The analyses are
distributed: ``reduce`` over each dimension of the float64 field ``f`` and a
trigger snapshot of the int32 field ``g``.  The file is read back by the
test, not here.
"""
from __future__ import annotations

import argparse

import numpy as np

from insitu import api
from insitu.decomposition import cartesian_box

SHAPE = (301, 203)  # (y, x): uneven at 2, 3 and 4 ranks
HALO = 1


def field_f(j, i, step):
    """Integer-valued float64, so sums over a dimension are exact in any order."""
    return ((7 * j + 13 * i + 5 * step) % 1000 - 300).astype(np.float64)


def field_g(j, i, step):
    """int32 values 0..3: plenty of 2s, which an int32 fill of 2 would hide."""
    return ((j + 2 * i + step) % 4).astype(np.int32)


def config(path: str) -> dict:
    return {
        "output": {"path": path, "overwrite": True},
        "fields": {"f": {"dims": ["y", "x"]}, "g": {"dims": ["y", "x"]}},
        "analyses": [
            {"kind": "stats", "field": "f", "stats": ["max"]},
            {"kind": "reduce", "field": "f", "over": ["x"], "op": "sum"},
            {"kind": "reduce", "field": "f", "over": ["y"], "op": "max"},
        ],
        "triggers": [{"name": "snap", "when": "f_max > -1e300", "fields": ["g"],
                      "max_snapshots": 3}],
        "log_level": "WARNING",
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    # MPI is imported here, not at module level, so that the tests can import
    # the reference fields without initialising MPI in the pytest process.
    import mpi4py
    mpi4py.rc.thread_level = "single"  # before importing mpi4py.MPI, as a Fortran host
    from mpi4py import MPI
    assert MPI.Query_thread() == MPI.THREAD_SINGLE, MPI.Query_thread()
    world = MPI.COMM_WORLD
    dims = MPI.Compute_dims(world.Get_size(), 2)
    cart = world.Create_cart(dims, periods=[False, False], reorder=False)
    coords = cart.Get_coords(cart.Get_rank())
    offset, shape = cartesian_box(SHAPE, tuple(dims), tuple(coords))
    j, i = np.meshgrid(np.arange(offset[0], offset[0] + shape[0]),
                       np.arange(offset[1], offset[1] + shape[1]), indexing="ij")
    local = tuple(n + 2 * HALO for n in shape)
    inner = (slice(HALO, HALO + shape[0]), slice(HALO, HALO + shape[1]))
    f = np.full(local, 1.0e30)  # halo garbage: must never reach a result
    g = np.full(local, 10 ** 9, dtype=np.int32)
    api.init(cart, config(args.output), host="python:cart_single")
    api.declare_field("f", np.float64, SHAPE, offset, local, [HALO] * 2, [HALO] * 2, "C")
    api.declare_field("g", np.int32, SHAPE, offset, local, [HALO] * 2, [HALO] * 2, "C")
    for step in range(1, args.steps + 1):
        f[inner] = field_f(j, i, step)
        g[inner] = field_g(j, i, step)
        api.expose("f", f)
        api.expose("g", g)
        api.step(step, float(step))
    api.finalize()
    cart.Free()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
