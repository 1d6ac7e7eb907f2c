"""The ranks' agreement on the record's MPI operation through the whole
chain (insitu.comm.MPIComm: the session's first handshake, the groups'
splits): the heat stand-in under real mpiexec at 2 and 3 ranks, with
``insitu.mpi_op.create`` made to fail on one rank only (a node whose numba
cache or libmpi cannot make the compiled op), on test_mpi_op_mpi's config
(every slot kind, reductions over x and over y whose group
sub-communicators have plans of their own, a derived field).

* ``INSITU_RECORD_OP=auto``: every rank passes the Python op for every
  message plan, on the session's communicator and on every group's, and
  the file is bit for bit an all-compiled run's.  Before the agreement
  (3945ace's parent) the other ranks passed the compiled op: this test
  failed on the op each rank used, with the same bits.
* ``INSITU_RECORD_OP=compiled``: every rank raises the same RuntimeError,
  naming the rank without the op and its reason, at the same reduction,
  and the job ends at once (insitu.run aborts on it) instead of the other
  ranks waiting in the Allreduce for the watchdog.  Before, only that rank
  raised: the others went on with the compiled op into the Allreduce.

The program below runs ``insitu.run`` with a spy around
``MPIComm._op_for`` that writes, per rank, the op chosen for each message
plan (or the error raised there)."""
import pytest

from conftest import PYTHON, h5_datasets, mpi_env, mpirun
from test_mpi_op_mpi import CONFIG

PROGRAM = r'''
import os
import runpy
import sys

rank = int(os.environ.get("OMPI_COMM_WORLD_RANK") or os.environ["PMI_RANK"])
refusing = {int(r) for r in sys.argv[1].split(",") if r}
spy_dir = sys.argv[2]

from insitu import comm as icomm, mpi_op

if rank in refusing:
    def refuse(MPI):
        raise mpi_op.Unavailable(f"simulated on rank {rank}: no compiled op here")
    mpi_op.create = refuse

original = icomm.MPIComm._op_for


def spy(self, plan):
    first = id(plan) not in self._ops and getattr(plan, "message", None) is not None
    try:
        entry = original(self, plan)
    except RuntimeError as exc:
        with open(f"{spy_dir}/rank{rank}.txt", "a") as f:
            f.write(f"raised {exc}\n")
        raise
    if first and self.size > 1:
        used = "compiled" if entry[1] is self._compiled_op else "python"
        with open(f"{spy_dir}/rank{rank}.txt", "a") as f:
            f.write(f"size {self.size} {used}\n")
    return entry


icomm.MPIComm._op_for = spy
sys.argv = ["insitu.run", *sys.argv[3:]]
runpy.run_module("insitu.run", run_name="__main__", alter_sys=True)
'''


def _run(tmp_path, nranks, refusing, record_op, tag, check=True):
    cfg = tmp_path / "every_kind.yaml"
    cfg.write_text(CONFIG)
    prog = tmp_path / "refusing_rank.py"
    prog.write_text(PROGRAM)
    spy = tmp_path / f"spy_{tag}"
    spy.mkdir()
    out = tmp_path / f"{tag}.h5"
    r = mpirun(nranks, [PYTHON, prog, refusing, spy, "--model", "heat2d", "--config", cfg,
                        "--steps", 12, "--shape", 37, 53, "--output", out, "--no-progress"],
               timeout=240, env=mpi_env({"INSITU_RECORD_OP": record_op}), check=check)
    lines = {k: (spy / f"rank{k}.txt").read_text().splitlines()
             if (spy / f"rank{k}.txt").exists() else [] for k in range(nranks)}
    return r, out, lines


@pytest.mark.parametrize("nranks,refusing", [(2, "1"), (3, "0")])
def test_one_rank_without_the_compiled_op_makes_every_rank_use_python(tmp_path, nranks,
                                                                      refusing):
    _, compiled, ops = _run(tmp_path, nranks, "", "compiled", "compiled")
    assert all(ops[k] and all(line.endswith(" compiled") for line in ops[k])
               for k in range(nranks)), ops
    _, agreed, ops = _run(tmp_path, nranks, refusing, "auto", "agreed")
    # the session's plan on every rank, and the groups' plans of more than one rank
    assert all(ops[k] and all(line.endswith(" python") for line in ops[k])
               for k in range(nranks)), ops
    # rank 0 has the session's plan and a group's over every rank (at 2 and 3
    # ranks the reduction over the decomposed axis groups them all)
    assert [line.split()[1] for line in ops[0]].count(str(nranks)) >= 2, ops
    want, got = h5_datasets(compiled), h5_datasets(agreed)
    assert want.keys() == got.keys()
    differ = [k for k in want if want[k].tobytes() != got[k].tobytes()]
    assert not differ, differ


@pytest.mark.parametrize("nranks,refusing", [(2, "0"), (3, "2")])
def test_forced_compiled_op_raises_on_every_rank(tmp_path, nranks, refusing):
    r, _, ops = _run(tmp_path, nranks, refusing, "compiled", "forced", check=False)
    assert r.returncode != 0
    cause = f"rank {refusing} of {nranks} has not the compiled MPI operation " \
            f"(Unavailable: simulated on rank {refusing}: no compiled op here)"
    for k in range(nranks):
        assert ops[k] and ops[k][-1].startswith("raised ") and cause in ops[k][-1], (k, ops)
    assert "waited" not in r.stderr, r.stderr[-3000:]  # no rank left to the watchdog
