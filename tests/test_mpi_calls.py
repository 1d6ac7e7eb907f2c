"""MPI calls per output step, counted at the PMPI level (issue 12, item 2).

A counter library (``tests/mpi_programs/pmpi_count.c``, built here with
mpicc) is preloaded into every rank, so it counts the MPI calls that libhdf5
makes from C as well as insitu's own through mpi4py.  A Python-level count
cannot see HDF5's resize broadcasts and flush barriers, which were most of
the cost: before the preallocated writer an output step made 16, 90 and 417
collective calls with 1, 10 and 50 stats analyses at 2 ranks.

Counted as communication: collectives (blocking or not), communicator
creation, collective MPI-IO (open, close, sync, set_view, set_size, the
``_all`` writes) and point-to-point calls.  Rank 0's independent writes of
the rows (``MPI_File_write_at``, one per variable: no other rank takes part)
are counted apart and reported.
"""
import json
import subprocess

import pytest

from conftest import PYTHON, ROOT, mpi_env, mpirun

STEPS = 30
FLUSH_EVERY = 10  # output steps 10, 20 and 30 also make a durable flush


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    """The PMPI counter, built with the MPI compiler wrapper mpi4py's MPI uses."""
    lib = tmp_path_factory.mktemp("pmpi") / "libpmpicount.so"
    src = ROOT / "tests" / "mpi_programs" / "pmpi_count.c"
    r = subprocess.run(["mpicc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(lib), str(src)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return lib


def _count(counter, tmp_path, nranks, k, output=None):
    args = ["env", f"LD_PRELOAD={counter}", f"INSITU_PMPI_LIB={counter}", PYTHON,
            ROOT / "tests" / "mpi_programs" / "count_calls.py", k, STEPS, tmp_path / "c.h5",
            json.dumps(output if output is not None else {"flush_every_steps": FLUSH_EVERY})]
    r = mpirun(nranks, args, timeout=240, env=mpi_env())
    return json.loads(r.stdout.split("COUNTS ", 1)[1].splitlines()[0])


def _communication(row) -> int:
    return row["collective"] + row["p2p"]


@pytest.fixture(scope="module")
def counts(counter, tmp_path_factory):
    """Per-step counts for 1, 10 and 50 analyses at 1 and 2 ranks."""
    return {(n, k): _count(counter, tmp_path_factory.mktemp(f"n{n}k{k}"), n, k)
            for n in (1, 2) for k in (1, 10, 50)}


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("k", [1, 10, 50])
def test_at_most_two_mpi_calls_per_output_step(counts, nranks, k):
    """Every output step after the first (which creates the file) makes at
    most the handshake and the record's Allreduce; a step that also flushes
    adds the collective MPI_File_sync, whatever the number of analyses."""
    ranks = counts[(nranks, k)]
    assert len(ranks) == nranks
    for rank, data in enumerate(ranks):
        steps = data["steps"][1:]
        plain = [s for s in steps if not s["flushed"] and not s["grew"]]
        flushed = [s for s in steps if s["flushed"] and not s["grew"]]
        assert len(plain) == STEPS - 1 - STEPS // FLUSH_EVERY
        assert [s["step"] for s in flushed] == list(range(FLUSH_EVERY, STEPS + 1, FLUSH_EVERY))
        for s in plain:
            assert _communication(s) <= 2, (rank, s)
            if nranks == 1:
                assert _communication(s) == 0, (rank, s)
        for s in flushed:
            assert _communication(s) <= 3, (rank, s)
            assert s["calls"].get("MPI_File_sync") == 1, (rank, s)
        # the rows themselves: one independent write per variable, on rank 0 only
        per_row = 8 * k + 2  # 8 statistics per analysis, time and step
        for s in plain:
            assert s["file_independent"] == (per_row if rank == 0 else 0), (rank, s)


def test_flush_cost_does_not_grow_with_the_analyses(counts):
    for n in (1, 2):
        flush = {k: [s for s in counts[(n, k)][0]["steps"] if s["flushed"]][-1]
                 for k in (1, 10, 50)}
        assert len({_communication(s) for s in flush.values()}) == 1, flush


def test_default_policy_makes_no_flush_in_a_short_run(counter, tmp_path):
    """With the default 10 s policy a run of a few seconds flushes only at
    finalize: every output step is the two calls."""
    ranks = _count(counter, tmp_path, 2, 10, output={})
    for data in ranks:
        steps = data["steps"][1:]
        assert not any(s["flushed"] or s["grew"] for s in steps)
        assert max(_communication(s) for s in steps) <= 2
