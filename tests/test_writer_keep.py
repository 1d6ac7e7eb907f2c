"""What H5Writer.append keeps of a row (issue 12): replicated float64 and
int64 scalars as Python numbers, converted at append as numpy would be at
the write (a 0-d array the analysis changes afterwards does not change the
row; a value that does not convert fails at append, on the rank and step
that made it, not later in the collective flush), arrays and pieces as
copies.  One rank, the real parallel-HDF5 writer on COMM_SELF."""
import h5py
import numpy as np
import pytest

from insitu.analyses.base import Axis, Variable
from insitu.comm import MPIComm


def _writer(path):
    from mpi4py import MPI
    from insitu.h5io import H5Writer
    w = H5Writer(MPIComm(MPI.COMM_SELF.Dup(), owned=True), str(path), True, {},
                 {"flush_seconds": None})
    w.define([Variable("m", np.dtype(np.float64)), Variable("n", np.dtype(np.int64)),
              Variable("h", np.dtype(np.int64), dims=("bin",), shape=(3,))],
             [], {}, fill=True, axes=[Axis("time", "step")])
    return w


def test_scalars_are_kept_as_numbers_and_arrays_as_copies(tmp_path):
    w = _writer(tmp_path / "k.h5")
    zero_d = np.array(2.5)
    counts = np.array([1, 2, 3])
    w.append(1, 10.0, {"m": zero_d, "n": np.int64(7), "h": counts})
    zero_d[()] = -1.0   # the analysis reuses its buffers after the step
    counts[:] = 0
    w.append(2, 20.0, {"m": np.float32(0.25), "n": 3.0})          # h missing: its fill
    w.append(3, 30.0, {"n": True, "h": [4, 5, 6]})                 # m missing: its fill
    assert all(type(v) in (float, int) for _, _, _, kept in w.pending["time"]
               for k, v in kept.items() if k in ("m", "n"))
    w.flush()
    w.close()
    with h5py.File(tmp_path / "k.h5", "r") as f:
        m = f["m"][...]
        assert m[0] == 2.5 and m[1] == 0.25 and np.isnan(m[2])
        assert list(f["n"][...]) == [7, 3, 1]
        assert list(f["h"][0]) == [1, 2, 3] and list(f["h"][2]) == [4, 5, 6]


def test_a_value_that_does_not_convert_fails_at_append(tmp_path):
    w = _writer(tmp_path / "bad.h5")
    with pytest.raises((TypeError, ValueError)):
        w.append(1, 1.0, {"m": "not a number", "n": 1})
    with pytest.raises((TypeError, ValueError)):
        w.append(1, 1.0, {"m": 1.0, "n": float("nan")})
    assert w.pending["time"] == []
    w.close()
