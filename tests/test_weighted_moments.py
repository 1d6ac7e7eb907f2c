"""The weighted moments kernel (``kernels.moments.weighted_moments``, used by
``stats`` with ``weights:``) against numpy on the finite values, in every
layout the kernel's vector path and its scalar tail meet: C and Fortran
order, halo views, rows that are not a multiple of the vector width, a
weight per row (a stride-0 broadcast: coslat, dp) and a weight per value,
NaN and +-Inf in the vector part and in the tail."""
from __future__ import annotations

import numpy as np
import pytest

from insitu.kernels.moments import weighted_moments


def _truth(x, w):
    f = np.isfinite(x)
    xs, ws = x[f].astype(np.float64), np.broadcast_to(w, x.shape)[f].astype(np.float64)
    big_w = ws.sum()
    mean = (ws * xs).sum() / big_w
    return big_w, mean, (ws * (xs - mean) ** 2).sum()


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("halo", [0, 1])
@pytest.mark.parametrize("ny, nx", [(7, 13), (5, 64), (33, 21)])
@pytest.mark.parametrize("weights", ["row", "column", "full"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_moments_is_numpys(order, halo, ny, nx, weights, dtype):
    rng = np.random.default_rng(ny * nx + halo)
    base = np.asarray(rng.normal(288.0, 3.0, (ny + 2 * halo, nx + 2 * halo)), dtype=dtype,
                      order=order)
    x = base[halo:halo + ny, halo:halo + nx] if halo else base
    x[0, 0] = np.nan                   # in a first vector
    x[ny // 2, nx - 1] = np.inf        # in a row's tail (or last vector)
    x[ny - 1, nx // 2] = -np.inf
    x[1, 3:5] = np.nan
    if weights == "row":
        w = np.cos(np.linspace(-1.4, 1.4, ny))[:, None]
    elif weights == "column":
        w = np.linspace(0.5, 2.0, nx)[None, :]
    else:
        w = np.asarray(rng.uniform(0.1, 1.0, (ny, nx)), order=order)
    out = weighted_moments(x, w)
    big_w, mean, m2 = _truth(x, w)
    assert out[0] == pytest.approx(big_w, rel=1e-13)
    assert out[1] + out[3] == pytest.approx(mean, rel=1e-13)
    assert out[2] == pytest.approx(m2, rel=1e-11)


def test_all_non_finite_gives_the_merge_identities():
    x = np.full((4, 19), np.nan)
    x[2, 5] = np.inf
    out = weighted_moments(x, np.ones((4, 1)))
    assert out[0] == 0.0 and np.isnan(out[1]) and out[2] == 0.0
