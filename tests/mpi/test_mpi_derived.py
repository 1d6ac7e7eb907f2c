"""Derived fields with nested reductions and trigger snapshots of them,
under real MPI through the parallel HDF5 writer, checked from the file
against numpy on the whole field (issue 10, items 1 and 5)."""
import numpy as np
import xarray as xr

from insitu import api

SHAPE = (19, 23)  # divides by none of 2, 3, 4
STEPS = 7  # odd: the trigger fires at a step where no analysis reads b


def field(step):
    j, i = np.indices(SHAPE, dtype=np.float64)
    return (np.sin(0.2 * i) * 3.0 + 0.1 * j) * (np.cos(0.3 * j + 0.1 * step) * 2.0 - 1.0) \
        + 0.5 * step


def my_box(rank, size):
    """This rank's slab, split here rather than with insitu's own maths:
    x is decomposed at 2 and 4 ranks, y at 3 and 4, unevenly."""
    px = 2 if size in (2, 4) else 1
    py = size // px
    ry, rx = divmod(rank, px)
    ys = np.array_split(np.arange(SHAPE[0]), py)[ry]
    xs = np.array_split(np.arange(SHAPE[1]), px)[rx]
    return (int(ys[0]), int(xs[0])), (len(ys), len(xs))


def test_nested_derived_reductions_and_their_snapshots(comm, icomm, shared_dir):
    path = shared_dir / "derived.h5"
    last = field(STEPS).max()
    before = field(STEPS - 1).max()
    cfg = {"fields": {"u": {"dims": ["y", "x"]}},
           "derived": {"a": "u - u.mean(x)", "b": "a - a.mean(y)",
                       "a2": "u - u.mean(y)", "b2": "a2 - a2.max(x)"},
           "analyses": [{"kind": "stats", "field": "u", "stats": ["max"]},
                        {"kind": "stats", "field": "b", "stats": ["min", "max"], "every": 2},
                        {"kind": "stats", "field": "b2", "stats": ["min", "max"], "every": 2}],
           "triggers": [{"name": "snap", "when": f"u_max > {float(0.5 * (last + before))!r}",
                         "fields": ["b", "b2"]}]}
    assert STEPS % 2 == 1 and last > before
    (oy, ox), (ny, nx) = my_box(comm.rank, comm.size)
    api.init(icomm, cfg, output=str(path))
    try:
        api.declare_field("u", np.float64, SHAPE, (oy, ox), (ny, nx))
        for step in range(1, STEPS + 1):
            api.expose("u", np.ascontiguousarray(field(step)[oy:oy + ny, ox:ox + nx]))
            api.step(step, float(step))
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank == 0:
        def truth(step):
            u = field(step)
            a = u - u.mean(axis=1, keepdims=True)
            a2 = u - u.mean(axis=0, keepdims=True)
            return a - a.mean(axis=0, keepdims=True), a2 - a2.max(axis=1, keepdims=True)

        with xr.open_dataset(path, engine="h5netcdf") as ds:
            for k, step in enumerate(range(2, STEPS + 1, 2)):
                b, b2 = truth(step)
                row = ds.sel(time=ds.time[ds.step == step])
                for name, ref in (("b", b), ("b2", b2)):
                    np.testing.assert_allclose(row[f"{name}_min"].values, ref.min(), rtol=1e-12)
                    np.testing.assert_allclose(row[f"{name}_max"].values, ref.max(), rtol=1e-12)
            assert list(ds["step_snap"].values) == [STEPS]
            b, b2 = truth(STEPS)
            np.testing.assert_allclose(ds["snap_b"].values[0], b, rtol=0, atol=1e-12)
            np.testing.assert_allclose(ds["snap_b2"].values[0], b2, rtol=0, atol=1e-12)
