"""Review 7: extremes (min, max, argmax, argmin), a region's, histograms
with every bin edge on a value, and the exceedance (kernels/extremes.py, kernels/weighted.py, 236b71c/d7adda8) on
Fortran-order halo fields split unevenly over 1-4 fake ranks (rows only,
columns only, 2x2), against numpy on the whole field: many ties (values
0-4), NaN and +-Inf (finite values only), a region whose edges fall on
and off the ranks' borders, and halos filled with +-1e300 so that any read
of a halo shows in min or max.  argmax/argmin: the lowest global C-order
index among the tied values.
"""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld

G = (9, 11)
REGION = {"y": [2, 6], "x": [3, 8]}
SPLITS = {1: [((0, 9), (0, 11))],
          2: [((0, 4), (0, 11)), ((4, 9), (0, 11))],
          3: [((0, 9), (0, 2)), ((0, 9), (2, 9)), ((0, 9), (9, 11))],
          4: [((0, 3), (0, 5)), ((0, 3), (5, 11)), ((3, 9), (0, 5)), ((3, 9), (5, 11))]}


def _field(seed):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 5, G).astype(np.float64)
    f[rng.random(G) < 0.08] = np.nan
    f[rng.random(G) < 0.03] = np.inf
    f[rng.random(G) < 0.03] = -np.inf
    return f


def _body(comm, seed, steps, output=None):
    (y0, y1), (x0, x1) = SPLITS[comm.size][comm.rank]
    ny, nx = y1 - y0, x1 - x0
    cfg = {"fields": {"T": {"units": "K", "dims": ["y", "x"]}},
           "analyses": [{"kind": "stats", "field": "T", "name": "e",
                         "stats": ["min", "max", "argmax", "argmin", "count"]},
                        {"kind": "stats", "field": "T", "name": "r", "region": REGION,
                         "stats": ["min", "max", "argmax", "argmin", "count"]},
                        {"kind": "exceedance", "field": "T", "threshold": 3.0, "op": "ge",
                         "name": "x"},
                        {"kind": "exceedance", "field": "T", "threshold": 1.0, "op": "lt",
                         "name": "lo", "region": REGION},
                        # bin edges on the values themselves (ties on every edge)
                        {"kind": "histogram", "field": "T", "bins": 4, "range": [0, 4],
                         "name": "h"},
                        {"kind": "histogram", "field": "T", "bins": 3, "range": [0.5, 3.5],
                         "name": "hr", "region": REGION}],
           "output": {"overwrite": True, **({"path": output} if output else {})}}
    api.init(comm, cfg)
    try:
        api.declare_field("T", np.float64, G, (y0, x0), (ny + 2, nx + 2), (1, 1), (1, 1), "F")
        a = np.asfortranarray(np.empty((ny + 2, nx + 2)))
        out = []
        for step in range(1, steps + 1):
            a[...] = 1e300
            a[::2, :] = -1e300            # halos: any read shows in min or max
            a[1:-1, 1:-1] = _field(seed + step)[y0:y1, x0:x1]
            api.expose("T", a)
            out.append(api.step(step, float(step)))
        return out
    finally:
        api.finalize()


def _want(f, prefix):
    fin = np.isfinite(f)
    vals = f[fin]
    hi = np.where(fin, f, -np.inf).ravel()
    lo = np.where(fin, f, np.inf).ravel()
    return {f"{prefix}_count": int(fin.sum()), f"{prefix}_min": vals.min(),
            f"{prefix}_max": vals.max(), f"{prefix}_argmax": int(np.argmax(hi)),
            f"{prefix}_argmin": int(np.argmin(lo))}


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 10, 20])
def test_extremes_and_exceedance_equal_numpy(tmp_path, monkeypatch, nranks, seed):
    monkeypatch.chdir(tmp_path)
    check(FakeWorld(nranks, timeout=30).run(_body, seed, STEPS), seed)


STEPS = 3


def check(outs, seed):
    """Every rank's results of _body against numpy (also run under real
    MPI by tests/mpi/test_review7_extremes.py)."""
    steps = STEPS
    (ry0, ry1), (rx0, rx1) = REGION["y"], REGION["x"]
    for rank, out in enumerate(outs):
        for step, res in enumerate(out, 1):
            f = _field(seed + step)
            want = _want(f, "e")
            reg = f[ry0:ry1, rx0:rx1]
            w = _want(reg, "r")
            # a region's argmax is the whole field's flat index
            for k in ("r_argmax", "r_argmin"):
                iy, ix = np.unravel_index(w[k], reg.shape)
                w[k] = int(np.ravel_multi_index((iy + ry0, ix + rx0), G))
            want.update(w)
            fin = np.isfinite(f)
            want["x_count"] = int((f[fin] >= 3.0).sum())
            rfin = np.isfinite(reg)
            want["lo_count"] = int((reg[rfin] < 1.0).sum())
            for name, x, lo_, hi_, nb in (("h", f, 0.0, 4.0, 4),
                                          ("hr", reg, 0.5, 3.5, 3)):
                v = x[~np.isnan(x)]
                want[name] = np.histogram(v[np.isfinite(v)], nb, (lo_, hi_))[0].tolist()
                want[f"{name}_below"] = int((v < lo_).sum())
                want[f"{name}_above"] = int((v > hi_).sum())
            got = {k: (res[k].tolist() if k in ("h", "hr") else res[k]) for k in want}
            assert got == want, (rank, step)
            assert res["x_fraction"] == want["x_count"] / fin.sum()
            iy, ix = np.unravel_index(want["e_argmax"], G)
            assert (res["e_argmax_y"], res["e_argmax_x"]) == (iy, ix)
