"""A host that misuses insitu on purpose, for the hang tests.

    mpiexec -n N python tests/mpi_programs/misuse.py MODE OUT.h5 [TIMEOUT] [--c]

With ``--c`` the same program drives libinsitu's C ABI through ctypes (a C
host: a step where nothing is due returns in C, without Python), and a
nonzero status raises with ``insitu_last_error()``; without it, the Python
entry points.

Modes:

``partial-declare``  rank 0 declares a field the others never declare; they
                     go on to step 1.
``partial-step``     the last rank stops stepping after step 2 and finalizes;
                     the others go on to step 3.
``skipped-step``     the last rank skips step 4 (``every: 2``, so step 4 is
                     an output step for the others and not a call at all
                     for it).
``stuck``            the last rank stops calling insitu after step 2 and
                     sleeps (a model stuck in its own loop).
``no-finalize``      every rank steps and exits without finalize.

Without insitu's watchdog and step check, each of these waits in a
collective until the batch system kills the job.  An exception ends the
job with ``MPI_Abort`` (as ``insitu.run`` does), never a hang.
"""
from __future__ import annotations

import sys
import traceback

import numpy as np


class CHost:
    """The calls of :mod:`insitu.api` that misuse makes, through the C ABI."""

    def __init__(self, comm):
        import ctypes

        from insitu import config
        self.ct = ctypes
        lib = self.lib = ctypes.CDLL(config.library())
        i64p = ctypes.POINTER(ctypes.c_int64)
        lib.insitu_init.argtypes = [ctypes.c_int, ctypes.c_char_p]
        lib.insitu_declare_field.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int] + \
            [i64p] * 5 + [ctypes.c_int]
        lib.insitu_expose.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int,
                                      ctypes.c_int, i64p]
        lib.insitu_step.argtypes = [ctypes.c_int64, ctypes.c_double]
        lib.insitu_last_error.restype = ctypes.c_char_p
        self.comm = comm

    def _check(self, rc):
        if rc != 0:
            raise RuntimeError(f"status {rc}: {self.lib.insitu_last_error().decode()}")

    def _i64(self, v):
        return (self.ct.c_int64 * 1)(*v)

    def init(self, cfg):
        import yaml
        path = f"{cfg['output']['path']}.{self.comm.Get_rank()}.yaml"
        with open(path, "w") as fh:
            yaml.safe_dump(cfg, fh)
        self._check(self.lib.insitu_init(self.comm.py2f(), path.encode()))

    def declare_field(self, name, dtype, gshape, offset, lshape):
        zero = self._i64([0])
        self._check(self.lib.insitu_declare_field(name.encode(), 2, 1, self._i64(gshape),
                                                  self._i64(offset), self._i64(lshape), zero,
                                                  zero, 0))

    def expose(self, name, a):
        self._check(self.lib.insitu_expose(name.encode(), a.ctypes.data, 2, 1,
                                           self._i64(a.shape)))

    def step(self, step, time):
        self._check(self.lib.insitu_step(step, time))

    def finalize(self):
        self._check(self.lib.insitu_finalize())


def main() -> int:
    mode, out = sys.argv[1], sys.argv[2]
    args = [a for a in sys.argv[3:] if a != "--c"]
    timeout = float(args[0]) if args else 20.0
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    host = CHost(comm) if "--c" in sys.argv else api
    rank, size = comm.Get_rank(), comm.Get_size()
    last = rank == size - 1
    n = 4
    try:
        # a durable flush every output step: no-finalize checks that the
        # file keeps every step under that policy (docs/output.md)
        cfg = {"output": {"path": str(out), "overwrite": True, "flush_every_steps": 1},
               "hang_timeout_seconds": timeout,
               "analyses": [{"kind": "stats", "field": "T", "every": 2}]}
        if host is api:
            api.init(comm, cfg)
        else:
            host.init(cfg)
        if mode != "partial-declare" or rank == 0:
            host.declare_field("T", np.float64, (n * size,), (n * rank,), (n,))
        a = np.arange(n, dtype=np.float64) + rank
        for step in range(1, 7):
            if mode == "partial-step" and last and step == 3:
                break
            if mode == "stuck" and last and step == 3:
                import time
                time.sleep(120)
            if mode == "skipped-step" and last and step == 4:
                continue
            if mode != "partial-declare" or rank == 0:
                host.expose("T", a)
            host.step(step, float(step))
        if mode != "no-finalize":
            host.finalize()
    except BaseException as exc:  # noqa: BLE001 - never leave the other ranks waiting
        sys.stderr.write(f"misuse[{rank}]: {type(exc).__name__}: {exc}\n"
                         + "".join(traceback.format_exception(exc)))
        sys.stderr.flush()
        comm.Abort(4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
