"""Review of the step check folded into the step's record (commit 16b4e9f):
a failure under ``on_error: abort`` on a rank that is at another step than
the others, under real MPI at 2 and 3 ranks.

Rank 0 is at step 4, where a ``fault`` analysis raises in its local pass,
and the other ranks are at step 6.  With only pure kinds due, the local
pass runs before the record's Allreduce, so rank 0 aborts the job from it,
naming the fault, and the others, waiting in the Allreduce, are ended by
the abort; with a spell due too, rank 0 compares first, in the record
alone, and every rank raises the StepError instead.  Either way: one clear
error, no hang, and no row of step 4 or 6 in the file.

This file is also the program the tests launch (``python THIS MODE OUT``).
"""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import PYTHON, mpirun  # noqa: E402


@pytest.mark.parametrize("mode,nranks", [("pure", 3), ("spell", 2)])
def test_an_abort_at_a_mismatched_step_ends_the_job_with_one_clear_error(mode, nranks,
                                                                         tmp_path):
    out = tmp_path / "out.h5"
    t0 = time.monotonic()
    r = mpirun(nranks, [PYTHON, __file__, mode, out], timeout=90, check=False)
    took = time.monotonic() - t0
    assert r.returncode != 0 and took < 60, (took, r.stderr[-2000:])
    if mode == "pure":
        assert "fault 'boom') failed: InjectedFault" in r.stderr, r.stderr[-3000:]
        assert "on_error: abort, ending the job" in r.stderr
    else:
        for rank in range(nranks):
            assert (f"review6[{rank}]: StepError: ranks disagree on the step number: "
                    "rank(s) 0 in insitu_step(step 4)") in r.stderr, r.stderr[-3000:]
    import h5py
    with h5py.File(out, "r") as f:   # what the last durable flush holds
        assert 4 not in f["step"][:].tolist() and 6 not in f["step"][:].tolist()


def main() -> int:
    import traceback

    import numpy as np
    from mpi4py import MPI

    from insitu import api
    mode, out = sys.argv[1], sys.argv[2]
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    analyses = [{"kind": "stats", "field": "T", "every": 2},
                {"kind": "fault", "field": "T", "at_step": 4, "ranks": "first", "every": 2,
                 "name": "boom"}]
    if mode == "spell":
        analyses.append({"kind": "spell", "field": "T", "threshold": 1.0, "every": 4})
    cfg = {"output": {"path": str(out), "overwrite": True, "flush_every_steps": 1},
           "hang_timeout_seconds": 20, "on_error": "abort", "analyses": analyses}
    try:
        api.init(comm, cfg)
        api.declare_field("T", np.float64, (3 * size,), (3 * rank,), (3,))
        a = np.arange(3, dtype=np.float64) + rank
        api.expose("T", a)
        api.step(2, 2.0)
        api.step(4 if rank == 0 else 6, 4.0)
        api.finalize()
    except BaseException as exc:  # noqa: BLE001 - never leave the other ranks waiting
        sys.stderr.write(f"review6[{rank}]: {type(exc).__name__}: {exc}\n"
                         + "".join(traceback.format_exception(exc)))
        sys.stderr.flush()
        comm.Barrier()   # every rank raised: let each say so before the abort
        time.sleep(0.5)
        comm.Abort(4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
