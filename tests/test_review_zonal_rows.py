"""Review of the zonal sums written straight into the record
(kernels.reduce.row_sums_into, analyses.reduce): analyses not due at
every step, two zonal means of one field (separate slots, one every step,
one every other), a sum every third step and a max beside them, on
float64/float32/int32 fields with halos, NaN and +-Inf, split unevenly over
1-4 fake ranks along the reduced axis and a kept one.  Each piece must be
numpy's on the whole field at every due step: slots that were not zeroed,
or shared, would carry a previous step's or another analysis's sums.  A
point with no finite value is NaN, for op sum too (as analyses.reduce
documents)."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

SHAPE = (5, 7, 37)  # plev, lat, lon
#: per rank count: (plev cut, lon cut) boxes ((offset, size) along plev and lon)
LAYOUTS = {
    1: [((0, 5), (0, 37))],
    2: [((0, 5), (0, 9)), ((0, 5), (9, 28))],
    3: [((0, 5), (0, 1)), ((0, 5), (1, 20)), ((0, 5), (21, 16))],
    4: [((0, 2), (0, 11)), ((0, 2), (11, 26)), ((2, 3), (0, 30)), ((2, 3), (30, 7))],
}
ANALYSES = [
    {"kind": "reduce", "field": "T", "over": ["lon"], "op": "mean", "name": "zm", "every": 2},
    {"kind": "reduce", "field": "T", "over": ["lon"], "op": "mean", "name": "zm1"},
    {"kind": "reduce", "field": "T", "over": ["lon"], "op": "sum", "name": "zs", "every": 3},
    {"kind": "reduce", "field": "T", "over": ["lon"], "op": "max", "name": "zx"},
]
EVERY = {a["name"]: a.get("every", 1) for a in ANALYSES}


def _field(step, dtype):
    p, y, x = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    f = 250.0 + 10 * np.sin(0.3 * x + step) + p * 3 + y * 0.5 + step
    if np.dtype(dtype).kind == "f":
        f[(p + x + step) % 11 == 0] = np.nan
        f[1, 2, :] = np.nan          # a row with no finite value
        f[3, (step % 7), 5] = np.inf
        return f.astype(dtype)
    return (f * 1000).astype(dtype)


def _body(comm, dtype):
    (po, pn), (xo, xn) = LAYOUTS[comm.size][comm.rank]
    api.init(comm, {"output": {"path": "unused.h5"}, "analyses": ANALYSES,
                    "fields": {"T": {"dims": ["plev", "lat", "lon"]}}})
    try:
        # a halo of 1 on lon: rows are strided views
        api.declare_field("T", dtype, SHAPE, (po, 0, xo), (pn, SHAPE[1], xn + 2), (0, 0, 1),
                          (0, 0, 1))
        out = {}
        for step in range(1, 7):
            buf = np.zeros((pn, SHAPE[1], xn + 2), dtype=dtype)
            buf[..., 1:-1] = _field(step, dtype)[po:po + pn, :, xo:xo + xn]
            api.expose("T", buf)
            out[step] = {k: v for k, v in api.step(step, float(step)).items() if v is not None}
        return out
    finally:
        api.finalize()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_zonal_pieces_equal_numpy_at_every_due_step(nranks, dtype):
    outs = FakeWorld(nranks, timeout=30).run(_body, dtype)
    for step in range(1, 7):
        f = _field(step, dtype).astype(np.float64)
        fin = np.isfinite(f)
        s = np.where(fin, f, 0.0).sum(axis=-1)
        c = fin.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            want = {"zm": np.where(c > 0, s / c, np.nan), "zm1": np.where(c > 0, s / c, np.nan),
                    "zs": np.where(c > 0, s, np.nan), "zx": np.where(c > 0, np.where(fin, f, -np.inf).max(axis=-1), np.nan)}
        got = {k: np.full(SHAPE[:2], -12345.0) for k in want}
        for out in outs:
            for k, piece in out[step].items():
                sl = tuple(slice(o, o + n) for o, n in zip(piece.start, piece.values.shape))
                got[k][sl] = piece.values
        for k in want:
            due = step % EVERY[k] == 0
            present = any(k in out[step] for out in outs)
            assert present == due, (step, k)
            if due:
                np.testing.assert_allclose(got[k], want[k], rtol=1e-13, atol=1e-9,
                                           err_msg=f"step {step} {k}")
