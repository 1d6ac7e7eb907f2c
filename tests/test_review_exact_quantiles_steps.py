"""Review of the exact quantiles' copying pass (the predicted bins' values
copied as the histogram window counts them, slots and their room decided
from the last output step): a run whose steps jump between shapes the
prediction gets wrong -- every value on one bin edge, the field out of the
range below then above, back inside, all NaN, a single finite value,
ties squeezed into one bin -- with two histograms of the same field (other
bins, other periods), float64/float32/int32 fields, at 1-4 fake ranks with
uneven slabs.  Every step must give numpy.quantile(method='inverted_cdf')
over the non-NaN values."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

QS = [1e-9, 0.001, 0.1, 0.25, 0.5, 0.5001, 0.75, 0.9, 0.999, 1 - 1e-9]
SHAPE = (11, 13)
#: uneven slabs along the first axis, per rank count
CUTS = {1: [0, 11], 2: [0, 2, 11], 3: [0, 5, 6, 11], 4: [0, 3, 4, 10, 11]}
ANALYSES = [
    {"kind": "histogram", "field": "f", "bins": 8, "range": [260.0, 300.0], "quantiles": QS,
     "quantile_method": "exact", "name": "h"},
    {"kind": "histogram", "field": "f", "bins": 3, "range": [250.0, 310.0], "quantiles": QS[::3],
     "quantile_method": "exact", "name": "g", "every": 2},
]


def _steps(dtype):
    rng = np.random.default_rng(5)
    base = rng.normal(280.0, 10.0, SHAPE)
    out = [base,
           base + 0.01,                                  # the same bins
           np.full(SHAPE, 265.0),                        # every value on one edge
           base - 100.0,                                 # all below the range
           base + 100.0,                                 # all above
           np.where(np.abs(base - 280) < 9, 280.0 + 1e-3 * (base - 280), base),  # squeezed
           np.full(SHAPE, np.nan),                       # nothing
           np.where(np.arange(base.size).reshape(SHAPE) == 77, 281.5, np.nan),  # one value
           base]
    out[2][3, 4] = -np.inf
    out[5][::3, ::2] = np.inf
    if np.dtype(dtype).kind == "i":
        return [np.nan_to_num(np.round(f), nan=0.0, posinf=400.0, neginf=100.0).astype(dtype)
                for f in out]
    return [f.astype(dtype) for f in out]


def _body(comm, dtype, layout="plain"):
    lo, hi = CUTS[comm.size][comm.rank], CUTS[comm.size][comm.rank + 1]
    api.init(comm, {"fields": {"f": {"dims": ["a", "b"]}}, "analyses": ANALYSES})
    halo = 1 if layout == "halo" else 0
    order = "F" if layout == "F" else "C"
    local = (hi - lo + 2 * halo, SHAPE[1] + 2 * halo)
    try:
        api.declare_field("f", dtype, SHAPE, (lo, 0), local, [halo] * 2, [halo] * 2, order)
        res = []
        for k, full in enumerate(_steps(dtype), start=1):
            buf = np.zeros(local, dtype=dtype, order=order)
            buf[halo:local[0] - halo, halo:local[1] - halo] = full[lo:hi]
            api.expose("f", buf)
            res.append(api.step(k, float(k)))
        return res
    finally:
        api.finalize()


def _want(x, qs):
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return np.full(len(qs), np.nan)
    return np.array([np.quantile(x, q, method="inverted_cdf") for q in qs])


@pytest.mark.parametrize("dtype,layout", [(np.float64, "plain"), (np.float32, "plain"),
                                          (np.int32, "plain"), (np.float64, "halo"),
                                          (np.float32, "halo"), (np.float64, "F")])
@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_exact_quantiles_stay_exact_when_the_prediction_is_wrong(nranks, dtype, layout):
    """Contiguous slabs (one long row), halo views (rows of 13 with the
    rests staged between rows) and Fortran order."""
    outs = FakeWorld(nranks, timeout=30).run(_body, dtype, layout)
    for k, full in enumerate(_steps(dtype), start=1):
        for res in outs:
            r = res[k - 1]
            np.testing.assert_array_equal(r["h_quantile"], _want(full, QS),
                                          err_msg=f"step {k} h")
            if k % 2 == 0:
                np.testing.assert_array_equal(r["g_quantile"], _want(full, QS[::3]),
                                              err_msg=f"step {k} g")
            else:
                assert "g_quantile" not in r
