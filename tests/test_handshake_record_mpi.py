"""The step check inside the step's record, under real MPI and parallel
HDF5, for the divergences that end the job (insitu.session._agree).

Once bound, a session's step, checkpoint and finalize all start with the
record's Allreduce (a due step's is its one collective): a rank in another
call meets it there, and a rank that never comes leaves the others in it
until the watchdog (``hang_timeout_seconds``) ends the job, naming the call.
This file is also the program the tests launch (``python THIS MODE OUT
TIMEOUT [--c]``); tests/mpi/test_handshake_record.py has the divergences
the session survives.
"""
import sys
import time
import traceback
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import PYTHON, mpirun  # noqa: E402

#: the Python entry points at 2 and 3 ranks, and libinsitu's C ABI at 2
CASES = [(2, "python"), (3, "python"), (2, "c")]


def _launch(mode, nranks, tmp_path, timeout=20, route="python"):
    t0 = time.monotonic()
    r = mpirun(nranks, [PYTHON, __file__, mode, tmp_path / "out.h5", timeout,
                        *(["--c"] if route == "c" else [])], timeout=90, check=False)
    return r, time.monotonic() - t0


def _said_by_every_rank(stderr, want, nranks):
    """Each rank's own line (the program's, below) carries the error."""
    for rank in range(nranks):
        lines = [ln for ln in stderr.splitlines() if f"handshake[{rank}]: " in ln]
        assert any(want in ln for ln in lines), (rank, stderr[-3000:])


@pytest.mark.parametrize("nranks,route", CASES)
def test_rank0_finalizing_while_the_others_step_is_said_on_every_rank(nranks, route,
                                                                      tmp_path):
    """Rank 0 finalizes after step 2; the others go on to step 4 (due):
    the finalize's Allreduce meets step 4's, every rank raises the same
    error, naming each rank's call, and no rank hangs."""
    r, took = _launch("finalize-vs-step", nranks, tmp_path, route=route)
    assert r.returncode != 0 and took < 60, (took, r.stderr[-2000:])
    others = ", ".join(map(str, range(1, nranks)))
    want = (f"ranks are in different insitu calls: rank(s) 0 in insitu_finalize; rank(s) "
            f"{others} in insitu_step(step 4)")
    _said_by_every_rank(r.stderr, want, nranks)


@pytest.mark.parametrize("nranks", [2, 3])
def test_a_checkpoint_against_a_step_is_said_on_every_rank(nranks, tmp_path):
    r, took = _launch("checkpoint-vs-step", nranks, tmp_path)
    assert r.returncode != 0 and took < 60, (took, r.stderr[-2000:])
    others = ", ".join(map(str, range(nranks - 1)))
    want = (f"ranks are in different insitu calls: rank(s) {others} in insitu_step(step 4); "
            f"rank(s) {nranks - 1} in insitu_checkpoint(step 4)")
    _said_by_every_rank(r.stderr, want, nranks)


@pytest.mark.parametrize("mode,call", [
    ("stuck-finalize", "insitu_finalize (the call's handshake)"),
    ("stuck-checkpoint", "insitu_checkpoint(step 2) (the call's handshake)"),
    ("stuck-spell", "insitu_step(step 3) (the call's handshake)"),
    ("stuck-step", "insitu_step(step 4) (the step's reduction)"),
])
@pytest.mark.parametrize("nranks", [2, 3])
def test_a_rank_that_never_comes_is_caught_by_the_watchdog_naming_the_call(
        mode, call, nranks, tmp_path):
    """The last rank stops calling insitu after step 2; the others make
    their next bound call: finalize, a checkpoint, a step whose spell
    compares first, a step whose record carries the check.  Each waiting
    rank says where it waits after the timeout (3 s) and the job ends."""
    r, took = _launch(mode, nranks, tmp_path, timeout=3)
    assert r.returncode != 0 and took < 40, (took, r.stderr[-2000:])
    for rank in range(nranks - 1):
        assert f"rank {rank} of {nranks} waited 3 s in {call}" in r.stderr, r.stderr[-3000:]
    assert "hang_timeout_seconds" in r.stderr


@pytest.mark.parametrize("route", ["python", "c"])
def test_the_c_route_finalize_meets_a_stuck_rank_in_the_record(route, tmp_path):
    r, took = _launch("stuck-finalize", 2, tmp_path, timeout=3, route=route)
    assert r.returncode != 0 and took < 40, (took, r.stderr[-2000:])
    assert "rank 0 of 2 waited 3 s in insitu_finalize" in r.stderr, r.stderr[-3000:]


# -- the program ---------------------------------------------------------------
def main() -> int:
    import numpy as np
    mode, out = sys.argv[1], sys.argv[2]
    args = [a for a in sys.argv[3:] if a != "--c"]
    timeout = float(args[0]) if args else 20.0
    from mpi4py import MPI

    from insitu import api
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    last = rank == size - 1
    if "--c" in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent / "mpi_programs"))
        from misuse import CHost
        host = CHost(comm)
    else:
        host = api
    n = 4
    cfg = {"output": {"path": str(out), "overwrite": True},
           "hang_timeout_seconds": timeout,
           "analyses": [{"kind": "stats", "field": "T", "every": 2}]}
    if mode == "stuck-spell":
        cfg["analyses"].append({"kind": "spell", "field": "T", "threshold": 1.0, "every": 3})
    try:
        if host is api:
            api.init(comm, cfg)
        else:
            host.init(cfg)
        host.declare_field("T", np.float64, (n * size,), (n * rank,), (n,))
        a = np.arange(n, dtype=np.float64) + rank
        for step in range(1, 7):
            if step == 3 and mode.startswith("stuck") and last:
                time.sleep(120)
            if step == 3 and mode == "finalize-vs-step" and rank == 0:
                break
            if step == 3 and mode == "stuck-finalize":
                break
            if step == 3 and mode == "stuck-checkpoint":
                api.checkpoint(2)
            if step == 4 and mode == "checkpoint-vs-step" and last:
                api.checkpoint(4)
            host.expose("T", a)
            host.step(step, float(step))
        host.finalize()
    except BaseException as exc:  # noqa: BLE001 - never leave the other ranks waiting
        sys.stderr.write(f"handshake[{rank}]: {type(exc).__name__}: {exc}\n"
                         + "".join(traceback.format_exception(exc)))
        sys.stderr.flush()
        if "disagree" in str(exc) or "different insitu calls" in str(exc):
            comm.Barrier()  # every rank raised: let each say so before the abort
            time.sleep(0.5)  # and let mpiexec forward what they said
        comm.Abort(4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
