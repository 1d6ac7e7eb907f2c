"""A Python host under the conditions of a threaded Fortran model, for
tests/test_host_conditions.py.  Run under mpiexec::

    mpiexec -n 6 python tests/mpi_programs/grid_host.py OUT.h5 --dims 3 2 \
        --thread-level funneled --probe-threads

* MPI is initialised with ``--thread-level`` (``single``, ``funneled``,
  ``serialized`` or ``multiple``) through ``mpi4py.rc.thread_level``, and the
  program checks that MPI provides exactly that level;
* ranks form a ``--dims`` Cartesian grid (``MPI.Comm.Create_cart``, dims[0]
  splits y, dims[1] splits x), passed to ``insitu.api.init``;
* every rank owns an uneven block, cut here with the Fortran examples'
  block formula (not with insitu's decomposition code), with a 1-cell halo
  full of garbage;
* ``--probe-threads``: a worker thread named ``insitu-worker`` tries
  ``init`` before the session opens and ``step``/``expose`` after; each
  attempt's outcome is printed as one ``PROBE`` line per rank.  The main
  thread then runs the model as if nothing happened.

The fields are pure functions of the global index and the step
(:func:`field_f`, :func:`field_g`), so the test rebuilds them in numpy.
"""
from __future__ import annotations

import argparse
import threading

import numpy as np

SHAPE = (53, 47)  # (y, x): uneven at 2, 3, 4 and 6 ranks in either direction
HALO = 1


def field_f(j, i, step):
    """Integer-valued float64: sums are exact in any order."""
    return ((7 * j + 13 * i + 5 * step) % 1000 - 300).astype(np.float64)


def field_g(j, i, step):
    return ((3 * j + i * i + step) % 17 - 8).astype(np.int32)


def block(n: int, p: int, c: int) -> tuple[int, int]:
    """(start, size) of block c of p; the first n % p blocks get one more."""
    size = n // p + (1 if c < n % p else 0)
    return c * (n // p) + min(c, n % p), size


def config(path: str) -> dict:
    return {
        "output": {"path": path, "overwrite": True},
        "fields": {"f": {"dims": ["y", "x"]}, "g": {"dims": ["y", "x"]}},
        "analyses": [
            {"kind": "stats", "field": "f",
             "stats": ["count", "sum", "mean", "min", "max", "std"]},
            {"kind": "stats", "field": "g", "stats": ["sum", "min", "max"]},
            {"kind": "reduce", "field": "f", "over": ["x"], "op": "sum"},
            {"kind": "reduce", "field": "f", "over": ["y"], "op": "max"},
        ],
        "log_level": "WARNING",
    }


def in_thread(fn):
    """Run fn() on a thread named insitu-worker; return 'ok' or 'ExcType: msg'."""
    out = {}

    def target():
        try:
            fn()
            out["r"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out["r"] = f"{type(exc).__name__}: {exc}"

    t = threading.Thread(target=target, name="insitu-worker")
    t.start()
    t.join(60)
    return out.get("r", "hung")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output")
    p.add_argument("--dims", type=int, nargs=2, required=True)
    p.add_argument("--thread-level", default="funneled")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--probe-threads", action="store_true")
    args = p.parse_args(argv)
    import mpi4py
    mpi4py.rc.thread_level = args.thread_level  # before MPI is initialised
    from mpi4py import MPI

    from insitu import api
    want = getattr(MPI, f"THREAD_{args.thread_level.upper()}")
    assert MPI.Query_thread() == want, (MPI.Query_thread(), want)
    world = MPI.COMM_WORLD
    assert args.dims[0] * args.dims[1] == world.size, (args.dims, world.size)
    cart = world.Create_cart(args.dims, periods=[False, False], reorder=False)
    assert cart.Get_topology() == MPI.CART
    cy, cx = cart.Get_coords(cart.rank)
    (y0, ny), (x0, nx) = block(SHAPE[0], args.dims[0], cy), block(SHAPE[1], args.dims[1], cx)
    j, i = np.meshgrid(np.arange(y0, y0 + ny), np.arange(x0, x0 + nx), indexing="ij")
    local = (ny + 2 * HALO, nx + 2 * HALO)
    inner = (slice(HALO, HALO + ny), slice(HALO, HALO + nx))
    f = np.full(local, 1.0e30)  # halo garbage: must never reach a result
    g = np.full(local, 10 ** 9, dtype=np.int32)
    cfg = config(args.output)

    def probe(what, fn):
        print(f"PROBE rank {cart.rank} {what}: {in_thread(fn)}", flush=True)

    if args.probe_threads:
        probe("init", lambda: api.init(cart, cfg, host="python:grid_host"))
        cart.Barrier()
    api.init(cart, cfg, host="python:grid_host")
    api.declare_field("f", np.float64, SHAPE, (y0, x0), local, [HALO] * 2, [HALO] * 2, "C")
    api.declare_field("g", np.int32, SHAPE, (y0, x0), local, [HALO] * 2, [HALO] * 2, "C")
    for step in range(1, args.steps + 1):
        f[inner] = field_f(j, i, step)
        g[inner] = field_g(j, i, step)
        if args.probe_threads and step == 2:
            probe("expose", lambda: api.expose("f", f))
            probe("step", lambda: api.step(step, float(step)))
        api.expose("f", f)
        api.expose("g", g)
        api.step(step, float(step))
    if args.probe_threads:
        probe("finalize", api.finalize)
    api.finalize()
    cart.Free()
    if world.rank == 0:
        print("GRID-HOST-DONE", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
