"""H5Writer.append's shortcut for a row made only of scalars (issue 12):
when every value is already a Python float or int of its variable's kind,
the row is one dict copy; any other value (a 0-d array the analysis will
change, a numpy scalar, a bool, None, a missing or extra name) takes the
converting loop, so what is kept and written is what it always was.  One
rank, the real parallel-HDF5 writer on COMM_SELF."""
import h5py
import numpy as np

from insitu.analyses.base import Axis, Variable
from insitu.comm import MPIComm


def test_scalar_rows_keep_python_numbers_whatever_the_values(tmp_path):
    from mpi4py import MPI
    from insitu.h5io import H5Writer
    path = tmp_path / "s.h5"
    w = H5Writer(MPIComm(MPI.COMM_SELF.Dup(), owned=True), str(path), True, {},
                 {"flush_seconds": None})
    w.define([Variable("m", np.dtype(np.float64)), Variable("n", np.dtype(np.int64))],
             [], {}, fill=True, axes=[Axis("time", "step")])
    zero_d = np.array(2.5)
    rows = [{"m": 1.5, "n": 7},                       # the shortcut
            {"m": zero_d, "n": 8},                    # a 0-d array: copied
            {"m": np.float64(0.25), "n": np.int64(9)},
            {"m": 3.0, "n": True},                    # a bool: kept as 1
            {"m": 4.0},                               # n missing: its fill
            {"m": 5.0, "n": None},                    # None: missing too
            {"m": 6.0, "n": 10, "other": 1.0}]        # a name the file lacks
    for i, row in enumerate(rows):
        w.append(i, float(i), row)
    zero_d[()] = -1.0  # the analysis reuses its buffer after the step
    kept = [k for _, _, _, k in w.pending["time"]]
    assert [sorted(k) for k in kept] == [["m", "n"]] * 4 + [["m"]] * 2 + [["m", "n"]]
    assert all(type(k["m"]) is float for k in kept)
    assert all(type(k["n"]) is int for k in kept if "n" in k)
    assert kept[1]["m"] == 2.5 and kept[3]["n"] == 1
    w.flush()
    w.close()
    with h5py.File(path, "r") as f:
        assert f["m"][...].tolist() == [1.5, 2.5, 0.25, 3.0, 4.0, 5.0, 6.0]
        n = f["n"][...].tolist()
        assert n[:4] == [7, 8, 9, 1] and n[6] == 10
        assert n[4] == n[5] == f["n"].attrs["_FillValue"]
