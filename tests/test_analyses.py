"""Every analysis kind on fake ranks (1 to 4) against numpy on the whole
field; tests/mpi/test_mpi_analyses.py runs the same under MPI."""
import numpy as np
import pytest

from insitu import api
from insitu.analyses import AnalysisError, Piece
from insitu.options import ConfigError
from insitu.comm import FakeWorld
from insitu.kernels.histogram import histogram, quantiles_from_counts
from insitu.kernels.coarsen import coarsen_mean

import analysis_scenarios as sc


def assemble(outs, step):
    """Replicated results from rank 0; distributed pieces put together."""
    got = {}
    for name, v in outs[0][step].items():
        if not isinstance(v, Piece) and v is not None:
            got[name] = v
    shapes = {"T_mean_over_x": (24,), "T_max_over_y": (32,), "T_coarse": (6, 8)}
    for name, shape in shapes.items():
        full = np.full(shape, np.nan)
        written = np.zeros(shape, dtype=int)
        for out in outs:
            p = out[step][name]
            if p is not None:
                sl = tuple(slice(s, s + n) for s, n in zip(p.start, p.values.shape))
                full[sl] = p.values
                written[sl] += 1
        assert (written == 1).all(), f"{name}: every point written exactly once"
        got[name] = full
    return got


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
def test_every_analysis_equals_numpy(nranks):
    outs = FakeWorld(nranks).run(sc.run)
    for step in (1, 2):
        sc.check(step, assemble(outs, step))


def test_histogram_kernel_matches_numpy_bin_rule():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 5000), np.linspace(-2, 2, 41), [np.nan, np.inf]])
    got = histogram(x, -2.0, 2.0, 40)
    fin = x[np.isfinite(x)]
    want, _ = np.histogram(fin, bins=40, range=(-2, 2))
    np.testing.assert_array_equal(got[1:-1], want)
    assert got[0] == (fin < -2).sum() and got[-1] == (x[~np.isnan(x)] > 2).sum()


def test_quantiles_within_one_bin():
    x = np.random.default_rng(5).gamma(2.0, 2.0, 20000)
    edges = np.linspace(0, 40, 401)
    c = histogram(x, 0, 40, 400)
    q = quantiles_from_counts(c[1:-1], c[0], c[-1], edges, [0.05, 0.5, 0.95])
    from reference import _quantile_bins
    lo, hi = _quantile_bins(x, [0.05, 0.5, 0.95], edges)  # the bin of numpy's quantile
    assert np.all((lo <= q) & (q <= hi)), (q, lo, hi)


def test_coarsen_kernel_matches_reshape_mean():
    a = np.random.default_rng(1).normal(size=(12, 20, 6))
    np.testing.assert_allclose(coarsen_mean(a, (3, 4, 2)),
                               a.reshape(4, 3, 5, 4, 3, 2).mean(axis=(1, 3, 5)), rtol=1e-13)
    f = np.asfortranarray(a)[:, :, 1:5]
    np.testing.assert_allclose(coarsen_mean(f, (2, 5, 2)),
                               f.reshape(6, 2, 4, 5, 2, 2).mean(axis=(1, 3, 5)), rtol=1e-13)


def _bind_error(nranks, analysis, shape=(24, 32)):
    def body(comm):
        from insitu.decomposition import cartesian_box, process_grid
        grid = process_grid(comm.size, 2)
        off, shp = cartesian_box(shape, grid, np.unravel_index(comm.rank, grid))
        try:  # refused at init (the schema) or at the first step (the declarations)
            api.init(comm, {"fields": {"T": {"dims": ["y", "x"]}}, "analyses": [analysis]})
        except ConfigError as exc:
            return str(exc)
        try:
            api.declare_field("T", np.float64, shape, off, shp)
            api.expose("T", np.zeros(shp))
            api.step(1, 0.0)
        except (AnalysisError, ConfigError) as exc:
            return str(exc)
        finally:
            api.finalize()
    messages = FakeWorld(nranks).run(body)
    assert all(m == messages[0] for m in messages), messages  # the same on every rank
    return messages[0]


@pytest.mark.parametrize("analysis,nranks,shape,message", [
    ({"kind": "coarsen", "field": "T", "factors": {"y": 8}}, 4, (24, 32),
     "rank 0's slab covers [0, 12) along 'y', which does not start and end on blocks of 8"),
    ({"kind": "coarsen", "field": "T", "factors": {"x": 5}}, 1, (24, 32),
     "the global size 32 is not a multiple of the factor 5"),
    ({"kind": "coarsen", "field": "T", "factors": {"z": 2}}, 1, (24, 32), "no dimension 'z'"),
    ({"kind": "reduce", "field": "T", "over": ["y", "x"]}, 2, (24, 32), "use kind: stats"),
    ({"kind": "reduce", "field": "T", "over": ["lon"]}, 2, (24, 32), "no dimension 'lon'"),
    ({"kind": "histogram", "field": "T", "bins": 4, "range": [5, 1]}, 1, (24, 32),
     "range: expected [low, high] with low < high"),
    ({"kind": "probe", "field": "T", "points": [[3, 40]]}, 2, (24, 32),
     "points[0]: index 40 along 'x' is outside [0, 32)"),
    ({"kind": "probe", "field": "T", "points": [[3]]}, 1, (24, 32), "has 1 indices"),
    ({"kind": "stats", "field": "T", "region": {"y": [10, 10]}}, 2, (24, 32),
     "region.y: [10, 10) is empty"),
    ({"kind": "stats", "field": "T", "region": {"y": [0, 99]}}, 2, (24, 32),
     "outside the global range [0, 24)"),
    ({"kind": "stats", "field": "T", "region": {"q": [0, 1]}}, 1, (24, 32), "no dimension 'q'"),
    ({"kind": "stats", "field": "T", "weights": "area"}, 1, (24, 32),
     "weights: field 'area' is not declared"),
    ({"kind": "stats", "field": "T", "region": {"y": {"from": 0.0, "to": 1.0}}}, 1, (24, 32),
     "region.y: a coordinate range needs a 'coords: y:' entry"),
])
def test_bad_analysis_configs_are_refused_on_every_rank(analysis, nranks, shape, message):
    assert message in _bind_error(nranks, analysis, shape)


@pytest.mark.parametrize("nranks", [1, 3])
def test_ddof_and_fields_without_a_finite_value(nranks):
    """ddof: 0 (numpy's default) or 1, for stats and windows; a field with
    no finite value gives count 0 and sum 0 (numpy's nansum, xarray's skipna
    sum) and NaN for the rest (issue 10)."""
    shape = (7, 5)
    full = np.sin(np.arange(35.0)).reshape(shape) * 3.0 + 1.0

    def body(comm):
        rows = np.array_split(np.arange(shape[0]), comm.size)[comm.rank]
        api.init(comm, {"fields": {"T": {"dims": ["y", "x"]}},
                        "derived": {"N": "T * log(-1.0)"},  # NaN everywhere
                        "analyses": [{"kind": "stats", "field": "T", "stats": ["var", "std"],
                                      "ddof": 1},
                                     {"kind": "stats", "field": "T", "name": "p",
                                      "stats": ["var"]},
                                     {"kind": "stats", "field": "N"},
                                     {"kind": "window", "source": "p", "steps": 3,
                                      "ops": ["var"], "ddof": 1}]})
        try:
            api.declare_field("T", np.float64, shape, (int(rows[0]), 0), (len(rows), 5))
            got, s = [], api.session()
            # Steps 0-2 fill the window [0, 3); step 3 reaches its end.
            for step in (0, 1, 2, 3):
                api.expose("T", np.ascontiguousarray(full[rows] * (step + 1)))
                got.append(api.step(step, float(step)))
            return got, s.writer.axes
        finally:
            api.finalize()

    outs = FakeWorld(nranks).run(body)
    got, axes = outs[0]  # got[0] is step 0's, of the field ``full``
    assert got[0]["T_var"] == pytest.approx(full.var(ddof=1), rel=1e-13)
    assert got[0]["T_std"] == pytest.approx(full.std(ddof=1), rel=1e-13)
    assert got[0]["p_var"] == pytest.approx(full.var(), rel=1e-13)
    assert got[0]["N_count"] == 0 and got[0]["N_sum"] == 0.0 and got[0]["N_nan_count"] == 35
    for k in ("mean", "min", "max", "std"):
        assert np.isnan(got[0][f"N_{k}"]), k
    series = [full.var() * s * s for s in (1, 2, 3)]
    (window,) = axes.values()
    assert window[0][3]["p_var_w3_var"] == pytest.approx(np.var(series, ddof=1), rel=1e-12)


def test_ddof_with_weights_is_refused():
    with pytest.raises(ConfigError, match=r"analyses\[0\].ddof: weighted var"):
        from insitu.options import parse
        parse({"analyses": [{"kind": "stats", "field": "T", "weights": "a", "ddof": 1}]})
