"""Derived fields: pointwise expressions, evaluated on the local views."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld
from insitu.decomposition import cartesian_box, process_grid
from insitu.fields import FieldError

SHAPE = (20, 30)


def uv():
    j, i = np.indices(SHAPE, dtype=np.float64)
    return np.sin(0.2 * i) * 3.0 + j * 0.1, np.cos(0.3 * j) * 2.0 - 1.0


def run(comm, derived, analyses):
    grid = process_grid(comm.size, 2)
    off, shp = cartesian_box(SHAPE, grid, np.unravel_index(comm.rank, grid))
    sl = tuple(slice(o, o + n) for o, n in zip(off, shp))
    api.init(comm, {"fields": {n: {"dims": ["y", "x"]} for n in ("u", "v")},
                    "derived": derived, "analyses": analyses})
    try:
        u, v = uv()
        for name, a in (("u", u), ("v", v)):
            api.declare_field(name, np.float64, SHAPE, off, tuple(n + 2 for n in shp),
                              (1, 1), (1, 1))
            buf = np.full(tuple(n + 2 for n in shp), np.nan)
            buf[1:-1, 1:-1] = a[sl]
            api.expose(name, buf)
        return api.step(1, 0.0)
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 3, 4])
def test_derived_speed_equals_numpy(nranks):
    derived = {"speed": "sqrt(u**2 + v**2)", "fast": "where(speed > 3.0, 1.0, 0.0)"}
    analyses = [{"kind": "stats", "field": "speed", "stats": ["mean", "max", "nan_count"]},
                {"kind": "stats", "field": "fast", "stats": ["sum"]},
                {"kind": "histogram", "field": "speed", "bins": 10, "range": [0, 6]}]
    outs = FakeWorld(nranks).run(run, derived, analyses)
    u, v = uv()
    speed = np.sqrt(u ** 2 + v ** 2)
    r = outs[0]
    assert r["speed_mean"] == pytest.approx(speed.mean(), rel=1e-12)
    assert r["speed_max"] == speed.max() and r["speed_nan_count"] == 0  # halos excluded
    assert r["fast_sum"] == (speed > 3.0).sum()
    np.testing.assert_array_equal(r["speed_hist"], np.histogram(speed, 10, (0, 6))[0])


def test_derived_field_of_an_undeclared_field_is_refused():
    with pytest.raises(FieldError, match="derived.w: 'q' is not a declared field"):
        FakeWorld(2).run(run, {"w": "q * 2"}, [{"kind": "stats", "field": "w"}])
