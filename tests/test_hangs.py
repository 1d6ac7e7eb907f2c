"""Hangs become errors (issue 11): a collective that some rank never joins
ends the job within the watchdog's timeout, with each waiting rank saying
which insitu call and step it is in; ranks on different steps are caught by
the handshake that every due step, declare and finalize makes.

A step where nothing is due is no collective (issue 12: it returns before
any MPI call, in C for a Fortran host), so a misuse is caught at the next
due step or at finalize: with ``every: 2`` below, a rank that leaves after
step 2 is found at step 4, not at step 3."""
import time

import pytest

from conftest import PYTHON, ROOT, mpirun

PROGRAM = ROOT / "tests" / "mpi_programs" / "misuse.py"


#: the Python entry points at 2 and 3 ranks, and libinsitu's C ABI (whose
#: idle steps never enter Python) at 2
CASES = [(2, "python"), (3, "python"), (2, "c")]
ROUTES = ["python", "c"]


def _launch(mode, nranks, tmp_path, timeout=20, route="python"):
    t0 = time.monotonic()
    r = mpirun(nranks, [PYTHON, PROGRAM, mode, tmp_path / "out.h5", timeout,
                        *(["--c"] if route == "c" else [])], timeout=90, check=False)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("nranks,route", CASES)
def test_partial_declare_names_every_rank_and_its_call(nranks, route, tmp_path):
    """Rank 0 declares, the others step: every call starts with the same
    handshake, so they meet there and each learns what the others do."""
    r, took = _launch("partial-declare", nranks, tmp_path, route=route)
    assert r.returncode != 0 and took < 60, (took, r.stderr[-2000:])
    others = ", ".join(map(str, range(1, nranks)))
    assert ("ranks are in different insitu calls: rank(s) 0 in insitu_declare_field; "
            f"rank(s) {others} in insitu_step(step 1)") in r.stderr, r.stderr[-3000:]


@pytest.mark.parametrize("nranks,route", CASES)
def test_partial_step_names_every_rank_and_its_call(nranks, route, tmp_path):
    """The last rank finalizes after step 2; the others pass step 3 (nothing
    due) and meet its finalize at step 4's handshake."""
    r, took = _launch("partial-step", nranks, tmp_path, route=route)
    assert r.returncode != 0 and took < 60, (took, r.stderr[-2000:])
    others = ", ".join(map(str, range(nranks - 1)))
    assert (f"rank(s) {others} in insitu_step(step 4); rank(s) {nranks - 1} in "
            "insitu_finalize") in r.stderr, r.stderr[-3000:]


@pytest.mark.parametrize("nranks,route", CASES)
def test_ranks_on_different_steps_across_an_every_boundary_raise(nranks, route, tmp_path):
    """``every: 2``: at step 4 the others have an output step; the last rank
    skips it, returns from step 5 (nothing due) and meets them at step 6.
    Before the step check, the others waited in step 4's reduction while
    that rank went on: a hang until the batch system's limit."""
    r, took = _launch("skipped-step", nranks, tmp_path, timeout=600, route=route)
    assert r.returncode != 0 and took < 60, (took, r.stderr[-2000:])
    others = ", ".join(map(str, range(nranks - 1)))
    assert (f"ranks disagree on the step number: rank(s) {others} in insitu_step(step 4); "
            f"rank(s) {nranks - 1} in insitu_step(step 6)") in r.stderr, r.stderr[-3000:]


@pytest.mark.parametrize("nranks,route", CASES)
def test_a_rank_that_never_arrives_is_caught_by_the_watchdog(nranks, route, tmp_path):
    """The last rank stops calling insitu (stuck in the model, say) while the
    others step: at the next due step (4), after the timeout (3 s), each
    waiting rank says where it is, and the job ends with status 4 well
    before a hang would."""
    r, took = _launch("stuck", nranks, tmp_path, timeout=3, route=route)
    assert r.returncode != 0 and took < 40, (took, r.stderr[-2000:])
    for rank in range(nranks - 1):
        assert (f"rank {rank} of {nranks} waited 3 s in insitu_step(step 4)" in r.stderr), \
            r.stderr[-3000:]
    assert "hang_timeout_seconds" in r.stderr


@pytest.mark.parametrize("route", ROUTES)
def test_exit_without_finalize_is_said_and_the_file_keeps_its_steps(route, tmp_path):
    import h5py
    r, _ = _launch("no-finalize", 2, tmp_path, route=route)
    assert r.returncode == 0, r.stderr[-2000:]
    for rank in (0, 1):
        assert f"insitu[{rank}] WARNING: the process is exiting without insitu finalize" \
            in r.stderr, r.stderr[-2000:]
    from insitu.inspect import committed
    n = committed(str(tmp_path / "out.h5"))["time"]  # the readers' contract
    with h5py.File(tmp_path / "out.h5", "r", locking=False) as f:
        assert list(f["step"][:n]) == [2, 4, 6] and "insitu_finished" not in f.attrs
