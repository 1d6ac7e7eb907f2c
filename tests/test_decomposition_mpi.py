"""The declaration check under real MPI: every rank raises the same error,
naming the ranks and the point, for slabs that overlap or leave a gap, at
2 and 3 ranks, and a correct uneven decomposition still passes (the session
gathers every rank's box with one Allgather and runs the check on each
rank; tests/test_decomposition_scale.py tests the check itself)."""
import json

import pytest

from conftest import PYTHON, mpi_env, mpirun

PROGRAM = r'''
import json, sys
import numpy as np
from mpi4py import MPI
from insitu import api
from insitu.fields import FieldError

case, out = sys.argv[1], sys.argv[2]
comm = MPI.COMM_WORLD
r, n = comm.rank, comm.size
# a 1-D field of 10 * n points in uneven blocks, then the case's mistake
sizes = [10 + (1 if i == 0 else 0) - (1 if i == n - 1 else 0) for i in range(n)]
starts = [sum(sizes[:i]) for i in range(n)]
if case == "overlap" and r == 1:
    starts[1] -= 2; sizes[1] += 2          # rank 1 reaches 2 points into rank 0
if case == "gap" and r == n - 1:
    starts[r] += 1; sizes[r] -= 1          # the last rank starts one point late
if case == "grid2d":                       # (rows, 10 n): rank r takes columns
    gshape, offset, shape = (3, 10 * n), (0, starts[r]), (3, sizes[r])
else:
    gshape, offset, shape = (10 * n,), (starts[r],), (sizes[r],)
api.init(comm, {"fields": {"f": {"units": "K"}}, "output": {"overwrite": True,
         "path": out + ".h5"}, "analyses": [{"kind": "stats", "field": "f"}]})
message = None
try:
    api.declare_field("f", np.float64, gshape, offset, shape)
except FieldError as exc:
    message = str(exc)
finally:
    api.finalize()
with open(f"{out}.{r}.json", "w") as fh:
    json.dump(message, fh)
'''


def _run(tmp_path, n, case):
    prog = tmp_path / "declare.py"
    prog.write_text(PROGRAM)
    out = tmp_path / case
    mpirun(n, [PYTHON, prog, case, out], timeout=180, env=mpi_env())
    return [json.loads((tmp_path / f"{case}.{r}.json").read_text()) for r in range(n)]


@pytest.mark.parametrize("n", [2, 3])
def test_every_rank_names_the_overlap_or_the_gap(tmp_path, n):
    assert _run(tmp_path, n, "grid2d") == [None] * n
    messages = _run(tmp_path, n, "overlap")
    assert len(set(messages)) == 1, messages
    assert messages[0] == ("field 'f': the ranks' interiors do not tile the global shape "
                           f"({10 * n},): ranks 0 and 1 overlap in 2 points, [9, 11)")
    messages = _run(tmp_path, n, "gap")
    start = 10 * n - 9  # the last rank's first point: blocks of 11, 10, ..., 9
    assert len(set(messages)) == 1, messages
    assert messages[0] == ("field 'f': the ranks' interiors do not tile the global shape "
                           f"({10 * n},): the ranks cover {10 * n - 1} of {10 * n} global "
                           f"points (a gap: no rank covers the point ({start},))")
