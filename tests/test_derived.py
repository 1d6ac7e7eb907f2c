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
    from insitu.options import ConfigError
    with pytest.raises(ConfigError, match="derived.w: 'q' is not a declared field"):
        FakeWorld(2).run(run, {"w": "q * 2"}, [{"kind": "stats", "field": "w"}])


def anomaly_run(comm):
    return run(comm, {"ua": "u - u.mean(x)", "vmax": "v.max(y) - v"},
               [{"kind": "reduce", "field": "ua", "over": ["y"], "op": "max"},
                {"kind": "stats", "field": "ua", "stats": ["sum", "max"]},
                {"kind": "stats", "field": "vmax", "stats": ["min", "sum"]}])


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_derived_reductions_like_t_minus_zonal_mean(nranks):
    outs = FakeWorld(nranks).run(anomaly_run)
    u, v = uv()
    ua = u - u.mean(axis=1, keepdims=True)       # dims (y, x): x is axis 1
    vmax = v.max(axis=0, keepdims=True) - v
    r = outs[0]
    assert abs(r["ua_sum"]) < 1e-10 and r["ua_max"] == pytest.approx(ua.max(), rel=1e-12)
    assert r["vmax_min"] == 0.0 and r["vmax_sum"] == pytest.approx(vmax.sum(), rel=1e-12)
    pieces = [o["ua_max_over_y"] for o in outs if o["ua_max_over_y"] is not None]
    full = np.full(SHAPE[1], np.nan)
    for p in pieces:
        full[p.start[0]:p.start[0] + p.values.shape[0]] = p.values
    np.testing.assert_allclose(full, ua.max(axis=0), rtol=1e-12)


def nested_run(comm):
    return run(comm, {"p": "u * v", "a": "p - p.mean(x)", "b": "a - a.mean(y)",
                      "c": "b * v.max(y)", "a2": "p - p.mean(y)", "b2": "a2 - a2.sum(x)"},
               [{"kind": "stats", "field": "b", "stats": ["sum", "min", "max"]},
                {"kind": "stats", "field": "b2", "stats": ["min", "max"]},
                {"kind": "stats", "field": "c", "stats": ["min", "max"]},
                {"kind": "reduce", "field": "b", "over": ["x"], "op": "max"}])


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_nested_derived_reductions_equal_numpy(nranks):
    """b reduces a field that itself holds a reduction: its partials exist
    only once a's reduction is combined across ranks (issue 10, item 1)."""
    outs = FakeWorld(nranks).run(nested_run)
    u, v = uv()
    p = u * v
    a = p - p.mean(axis=1, keepdims=True)
    b = a - a.mean(axis=0, keepdims=True)
    assert np.ptp(b) > 1.0  # not a field the reductions cancel
    c = b * v.max(axis=0, keepdims=True)
    a2 = p - p.mean(axis=0, keepdims=True)
    b2 = a2 - a2.sum(axis=1, keepdims=True)
    for r in outs:
        assert abs(r["b_sum"]) < 1e-10
        assert r["b_min"] == pytest.approx(b.min(), rel=1e-12)
        assert r["b_max"] == pytest.approx(b.max(), rel=1e-12)
        assert r["c_min"] == pytest.approx(c.min(), rel=1e-12)
        assert r["c_max"] == pytest.approx(c.max(), rel=1e-12)
        assert r["b2_min"] == pytest.approx(b2.min(), rel=1e-12)
        assert r["b2_max"] == pytest.approx(b2.max(), rel=1e-12)
    pieces = [o["b_max_over_x"] for o in outs if o["b_max_over_x"] is not None]
    full = np.full(SHAPE[0], np.nan)
    for p in pieces:
        full[p.start[0]:p.start[0] + p.values.shape[0]] = p.values
    np.testing.assert_allclose(full, b.max(axis=1), rtol=1e-12)
