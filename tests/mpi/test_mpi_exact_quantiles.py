"""histogram quantile_method: exact under real MPI (the merge is a
user-defined MPI operation over the candidates' record), read back from the
parallel file: equal to numpy.quantile(..., method="inverted_cdf") on the
whole field (tests/test_exact_quantiles.py has the fake-rank cases)."""
import numpy as np
import xarray as xr

from insitu import api

import test_exact_quantiles as tq


def test_exact_quantiles_from_the_file(comm, icomm, shared_dir):
    path = shared_dir / "q.h5"
    shape = (11, 13)
    fulls = {step: tq.field(shape, 10 + step) for step in (1, 2, 3)}
    cuts = np.array_split(np.arange(shape[0]), icomm.size)[icomm.rank]
    api.init(icomm, {"fields": {"f": {"dims": ["y", "x"]}},
                     "analyses": [tq.hist(bins=8, rng=(270.0, 290.0))]}, output=str(path))
    try:
        api.declare_field("f", np.float64, shape, (int(cuts[0]), 0), (cuts.size, shape[1]))
        for step, full in fulls.items():
            local = np.ascontiguousarray(full[cuts])
            api.expose("f", local)
            out = api.step(step, float(step))
            np.testing.assert_array_equal(out["h_quantile"], tq.want(full, tq.QS))
        # the fields share their distribution: after the first step the bins
        # were predicted, their sub-histograms reduced with the counts
        h = [a for a in api._current().analyses if a.kind == "histogram"][0]
        assert h.passes["fused"] >= 1, h.passes
    finally:
        api.finalize()
    comm.Barrier()
    if comm.rank == 0:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            for i, full in enumerate(fulls.values()):
                np.testing.assert_array_equal(ds["h_quantile"].values[i], tq.want(full, tq.QS))
            assert ds["h_quantile"].attrs["insitu_quantile_method"] == "exact"
