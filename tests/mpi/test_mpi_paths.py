"""Writer paths the examples never take, under real MPI, checked from the
file (issue 10): an analysis disabled by ``on_error: skip`` leaves fill
values from the failing step on, and analyses with different ``every``
leave fill in the rows where they were not due (the partial-row path)."""
from pathlib import Path

import numpy as np
import xarray as xr

from insitu import api

SHAPE = (13, 11)
STEPS = 6


def field(step):
    j, i = np.indices(SHAPE, dtype=np.float64)
    return 280.0 + 3.0 * step + np.sin(0.4 * i + 0.2 * j)


def fails_late(views, meta, comm):
    """A user analysis that breaks once the field is warm (from step 4 on)."""
    t = views["T"]
    if t.size and t.max() > 280.0 + 3.0 * 4 - 1.5:
        raise ValueError("too warm for this diagnostic")
    return {"tmax": t.max() if t.size else -np.inf}


def test_skipped_analysis_and_mixed_cadences_leave_fill(comm, icomm, shared_dir):
    path = shared_dir / "paths.h5"
    rows = np.array_split(np.arange(SHAPE[0]), comm.size)[comm.rank]
    me = Path(__file__).resolve()
    cfg = {"on_error": "skip",
           "fields": {"T": {"dims": ["y", "x"]}},
           "analyses": [{"kind": "stats", "field": "T", "stats": ["max"]},
                        {"kind": "stats", "field": "T", "name": "half", "every": 2,
                         "stats": ["mean", "count"]},
                        {"kind": "reduce", "field": "T", "over": ["x"], "every": 3},
                        {"kind": "python", "function": f"{me}:fails_late", "fields": ["T"],
                         "name": "late", "outputs": {"tmax": {"op": "max"}}}]}
    api.init(icomm, cfg, output=str(path))
    try:
        api.declare_field("T", np.float64, SHAPE, (int(rows[0]), 0), (len(rows), SHAPE[1]))
        for step in range(1, STEPS + 1):
            api.expose("T", np.ascontiguousarray(field(step)[rows]))
            api.step(step, float(step))
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank != 0:
        return
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert list(ds["step"].values) == list(range(1, STEPS + 1))
        np.testing.assert_array_equal(ds["T_max"].values,
                                      [field(s).max() for s in range(1, STEPS + 1)])
        # every: 2 -> rows 1, 3, 5 are fill (NaN for floats; the int64 count's
        # netCDF fill, masked to NaN by xarray), rows 2, 4, 6 hold values.
        mean = ds["half_mean"].values
        count = ds["half_count"].values
        for k, s in enumerate(range(1, STEPS + 1)):
            if s % 2:
                assert np.isnan(mean[k]) and np.isnan(count[k]), s
            else:
                assert mean[k] == field(s).mean() or abs(mean[k] / field(s).mean() - 1) < 1e-14
                assert count[k] == field(s).size
        prof = ds["T_mean_over_x"].values
        for k, s in enumerate(range(1, STEPS + 1)):
            if s % 3:
                assert np.isnan(prof[k]).all(), s
            else:
                np.testing.assert_allclose(prof[k], field(s).mean(axis=1), rtol=1e-13)
        # The user analysis worked at steps 1-3, failed at 4 and is disabled:
        # fill from step 4 on, and the error is recorded in the file.
        late = ds["late_tmax"].values
        np.testing.assert_array_equal(late[:3], [field(s).max() for s in (1, 2, 3)])
        assert np.isnan(late[3:]).all()
        assert "too warm for this diagnostic" in ds.attrs["insitu_errors"]
