"""``python -m insitu.run`` with a writer that corrupts what it writes.

    mpiexec -n N python tests/mpi_programs/corrupt_writes.py RANK insitu.run-args...

On rank RANK, every block of distributed rows is written with one cell changed,
while ``output.verify`` is told the true values: a stand-in for an MPI-IO
layer that loses or overwrites cells (docs/mpiio.md), to prove that
``output.verify`` catches it.
"""
import sys

import numpy as np

from insitu import writer
from insitu.analyses.base import Piece


def main() -> int:
    bad_rank = int(sys.argv[1])
    from mpi4py import MPI
    real = writer.H5Writer._write_run

    def corrupting(self, r, first, run):
        """The writer's block of a run of distributed rows, one cell wrong."""
        if MPI.COMM_WORLD.Get_rank() == bad_rank and run:
            true = np.stack([p.values for p in run]).astype(r.dtype)
            wrong = np.array(run[0].values, dtype=r.dtype, copy=True)
            wrong.flat[0] = wrong.flat[0] + 1
            real(self, r, first, [Piece(run[0].start, wrong), *run[1:]])
            if self.verify:  # what the rank believes it wrote
                self._log[-1] = (*self._log[-1][:2], np.ascontiguousarray(true))
            return
        real(self, r, first, run)

    writer.H5Writer._write_run = corrupting
    from insitu.run import main as run_main
    return run_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
