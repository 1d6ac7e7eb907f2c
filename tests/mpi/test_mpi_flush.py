"""The writer (rows buffered until a durable flush), its flush policy and output.mpi_info under real
MPI and parallel HDF5 (run on every rank by tests/test_mpi_suite.py at 1-4
ranks)."""
import h5py
import numpy as np
import pytest

from insitu import api, h5io
from insitu.layout import OutputError

NX = 10


def _rows(comm):
    """An uneven split of 4 * size + 1 rows."""
    gy = 4 * comm.size + 1
    parts = np.array_split(np.arange(gy), comm.size)
    return gy, int(parts[comm.rank][0]), len(parts[comm.rank])


def _field(gy, step):
    j, i = np.meshgrid(np.arange(gy), np.arange(NX), indexing="ij")
    return (3.0 * j - 2.0 * i + 7.0 * step) % 11 + 0.25 * step


def _run(comm, path, output, steps):
    cfg = {"output": {"path": str(path), "overwrite": True, **output}, "log_level": "WARNING",
           "fields": {"T": {"dims": ["y", "x"]}},
           "analyses": [{"kind": "stats", "field": "T", "stats": ["mean", "max"]},
                        {"kind": "reduce", "field": "T", "over": ["x"], "every": 2}]}
    s = api.init(comm, cfg)
    gy, y0, ny = _rows(comm)
    api.declare_field("T", np.float64, (gy, NX), (y0, 0), (ny, NX))
    flushes = []
    try:
        for step in range(1, steps + 1):
            a = np.ascontiguousarray(_field(gy, step)[y0:y0 + ny])
            api.expose("T", a)
            api.step(step, float(step))
            flushes.append(s.writer.flushes)
        info = s.writer.file.id.get_access_plist().get_fapl_mpio()[1]
        hints = {k: info.Get(k) for k in output.get("mpi_info", {})}
    finally:
        api.finalize()
    return s.writer, flushes, hints


@pytest.mark.parametrize("buffer", [None, 1])
def test_rows_of_every_cadence_land_whole(comm, shared_dir, monkeypatch, buffer):
    """Stats every step, a distributed zonal mean every 2nd step (rows in
    between keep their fill), flushed every 3 output steps, and also with a
    1-byte buffer (a rank whose buffer is full makes every rank flush at the
    next output step): the file equals numpy's, with exact sizes."""
    if buffer:
        monkeypatch.setattr(h5io, "BUFFER_BYTES", buffer)
    path = shared_dir / f"buffer{buffer}.h5"
    steps = 7
    writer, flushes, _ = _run(comm, path, {"flush_every_steps": 3, "flush_seconds": None}, steps)
    # the policy's flushes, on every rank alike (and more when blocks grow)
    got = np.array(comm.allgather(flushes))
    assert (got == got[0]).all()
    if not buffer:
        assert flushes == [0, 0, 1, 1, 1, 2, 2]
    else:  # rank 0's buffer is full after every step: a flush every 2nd
        assert flushes == [0, 1, 1, 2, 2, 3, 3]
    comm.Barrier()
    if comm.rank == 0:
        gy = 4 * comm.size + 1
        with h5py.File(path, "r") as f:
            assert f["time"].shape == (steps,) and f["T_mean_over_x"].shape == (steps, gy)
            assert list(f["insitu/committed_rows"][...]) == [steps]
            for step in range(1, steps + 1):
                want = _field(gy, step)
                assert f["T_mean"][step - 1] == pytest.approx(want.mean(), rel=1e-13)
                assert f["T_max"][step - 1] == want.max()
                row = f["T_mean_over_x"][step - 1]
                if step % 2:
                    assert np.isnan(row).all(), step
                else:
                    np.testing.assert_allclose(row, want.mean(axis=1), rtol=1e-13)
    comm.Barrier()


def test_mpi_info_reaches_the_file_open(comm, shared_dir):
    """The hints go to HDF5's file access list as an MPI_Info (integers as
    text); the MPI-IO layer may ignore those it does not know, as MPI allows."""
    _, _, seen = _run(comm, shared_dir / "hints.h5",
                      {"mpi_info": {"cb_nodes": 1, "romio_cb_write": "disable",
                                    "striping_factor": 1}}, 2)
    assert seen == {"cb_nodes": "1", "romio_cb_write": "disable", "striping_factor": "1"}


def test_mpi_info_key_too_long_for_this_mpi_fails_at_init_on_every_rank(comm, shared_dir):
    from mpi4py import MPI
    key = "k" * (MPI.MAX_INFO_KEY + 1)
    cfg = {"output": {"path": str(shared_dir / "long.h5"), "mpi_info": {key: "1"}},
           "analyses": [{"kind": "stats", "field": "T"}], "log_level": "WARNING"}
    with pytest.raises(OutputError, match=r"output\.mpi_info\.k+: the key is \d+ characters "
                                          r"long; this MPI library allows at most \d+"):
        api.init(comm, cfg)
    comm.Barrier()  # every rank raised: none is left waiting
