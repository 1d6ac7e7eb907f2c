"""Replay's own waits have the session's watchdog (hang_timeout_seconds).

The session's collectives end the job when a rank waits longer than
``hang_timeout_seconds`` for ranks that never join (insitu.comm); replay's
own collectives (rank 0's scan and publication, the read checks) waited
forever (``host._idle`` had no deadline), so a rank stuck in a file system
that does not answer hung the whole job until the batch system's limit.
The end-to-end test runs the CLI at 2 ranks with rank 0 stuck listing the
inputs; before the watchdog it ran into this test's own timeout."""
from __future__ import annotations

import subprocess
import textwrap
import time

import pytest

from conftest import PYTHON, mpi_env, mpirun
from insitu.exits import EXIT_INTERFACE
from insitu.replay import host

#: rank 0 never comes back from listing the inputs (a hung file system)
STUCK = textwrap.dedent("""
    import sys, time
    from mpi4py import MPI
    import insitu.replay.fileset as fileset
    if MPI.COMM_WORLD.Get_rank() == 0:
        fileset.expand = lambda pattern: time.sleep(600)
    from insitu.replay.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_stuck_rank_ends_the_replay_with_a_message_naming_the_wait(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("analyses:\n  - {kind: stats, field: ta}\nhang_timeout_seconds: 2\n"
                   "log_level: WARNING\n")
    t0 = time.monotonic()
    try:
        r = mpirun(2, [PYTHON, "-c", STUCK, "--input", str(tmp_path / "*.nc"),
                       "--variable", "ta", "--config", str(cfg),
                       "--output", str(tmp_path / "out.h5")],
                   timeout=60, check=False, env=mpi_env())
    except subprocess.TimeoutExpired:
        pytest.fail("the replay hung: a rank waited for rank 0 for ever")
    took = time.monotonic() - t0
    assert r.returncode != 0 and took < 50, (took, r.returncode, r.stderr[-2000:])
    assert ("insitu[1] CRITICAL: replay: rank 1 of 2 waited 2 s in the scan: rank 0 "
            "listing the input files (rank 0's verdict) for ranks that never joined"
            in r.stderr), r.stderr[-3000:]
    assert not (tmp_path / "out.h5").exists()


class _Never:
    """A request that never completes."""
    tests = 0

    def Test(self):  # noqa: N802 - mpi4py's name
        _Never.tests += 1
        return False


class _Comm:
    def __init__(self):
        self.aborted = None

    def Get_rank(self):  # noqa: N802
        return 1

    def Get_size(self):  # noqa: N802
        return 2

    def Abort(self, code):  # noqa: N802
        self.aborted = code
        raise SystemExit(code)


def test_wait_aborts_after_the_timeout_with_the_interface_status(caplog):
    comm = _Comm()
    own = host.Own(comm, 0.2)
    t0 = time.monotonic()
    with caplog.at_level("CRITICAL", logger="insitu"), pytest.raises(SystemExit):
        own.wait(_Never(), "a test's wait")
    assert comm.aborted == EXIT_INTERFACE
    assert 0.2 <= time.monotonic() - t0 < 5
    assert "rank 1 of 2 waited 0.2 s in a test's wait" in caplog.text


def test_a_zero_timeout_waits_for_ever():
    """0 keeps the documented meaning: wait forever (here: until done)."""
    class Later:
        n = 0

        def Test(self):  # noqa: N802
            Later.n += 1
            return Later.n > 200
    own = host.Own(_Comm(), 0.0)
    own.wait(Later(), "a wait")
    assert Later.n == 201
