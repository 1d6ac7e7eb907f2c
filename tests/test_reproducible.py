"""reproducible: true -- global sums and means bit for bit the same for any
number of ranks and any decomposition, and equal to the exactly rounded sum."""
from fractions import Fraction

import numpy as np
import pytest
import xarray as xr

from conftest import PYTHON, ROOT, mpirun
from insitu.comm import FakeWorld
from insitu.kernels import reprosum as rs
from insitu.models import heat2d

import scenarios


def exact_sum(a):
    a = np.asarray(a, dtype=np.float64).ravel()
    return float(sum(map(Fraction, a[np.isfinite(a)].tolist())))


def run_repro(comm, case):
    return scenarios.run_case(comm, case, steps=2, reproducible=True)["results"]


@pytest.mark.parametrize("case", ["c2d-uneven", "f3d-nan", "c1d-f32", "c3d-i64"])
def test_bits_equal_for_1_to_4_fake_ranks(case):
    got = {n: FakeWorld(n).run(run_repro, case)[0] for n in (1, 2, 3, 4)}
    gshape, _, dtype, _, nan_frac = scenarios.CASES[case]
    for step in (1, 2):
        want = exact_sum(scenarios.global_field(gshape, dtype, nan_frac, step))
        sums = {n: got[n][step]["f_sum"] for n in got}
        means = {n: got[n][step]["f_mean"] for n in got}
        assert all(s == want for s in sums.values()), (sums, want)  # bitwise
        assert len({m.hex() for m in means.values()}) == 1, means


def test_words_detect_nothing_lost_for_tiny_and_huge_values():
    x = np.array([1e-300, 1e300, -1e300, 3.0, np.nan, np.inf])
    T = rs.grid_exponent(1e300)
    # 1e300 - 1e300 cancels exactly; 3.0 and 1e-300 fall below the grid of
    # 2**(T-99) and are rounded away -- deterministically, on every rank.
    assert rs.to_float(rs.local_words(x, T), T) == 0.0
    y = np.array([0.1] * 10 + [1e6])
    Ty = rs.grid_exponent(1e6)
    assert rs.to_float(rs.local_words(y, Ty), Ty) == exact_sum(y)


def test_cli_runs_agree_bitwise_at_1_to_4_ranks(tmp_path):
    cfg = ROOT / "examples" / "heat2d_reproducible.yaml"
    shape = (97, 131)
    sums = {}
    for n in (1, 2, 3, 4):
        out = tmp_path / f"r{n}.h5"
        mpirun(n, [PYTHON, "-m", "insitu.run", "--config", cfg, "--steps", 10,
                   "--shape", *shape, "--output", out])
        with xr.open_dataset(out, engine="h5netcdf") as ds:
            sums[n] = [v.hex() for v in ds["T_sum"].values.astype(float)]
            means = ds["T_mean"].values
    assert len({tuple(v) for v in sums.values()}) == 1, sums
    ref = {s: t for s, _, t in heat2d.reference(shape, 10)}
    assert [float.fromhex(h) for h in sums[1]] == [exact_sum(ref[5]), exact_sum(ref[10])]
    assert means[-1] == exact_sum(ref[10]) / ref[10].size
    with xr.open_dataset(tmp_path / "r3.h5", engine="h5netcdf") as ds:
        said = ds.attrs["insitu_reproducible"]
    assert said.startswith("bitwise identical for any decomposition: T_sum, T_mean;"), said
    assert "std" in said.split(";")[1]


def test_derived_sum_or_mean_is_refused_under_reproducible():
    """A derived T - T.mean(x) is combined in floating point, in an order
    that depends on the decomposition; it once ran and gave sums differing
    in the last bits between 1 and 2 ranks (issue 10, item 8)."""
    from insitu.options import ConfigError, parse
    cfg = {"derived": {"Ta": "T - T.mean(x)"}, "reproducible": True,
           "analyses": [{"kind": "stats", "field": "Ta"}]}
    with pytest.raises(ConfigError, match=r"^derived.Ta: T.mean\(x\) cannot be bitwise "
                                          r"reproducible"):
        parse(cfg)
    parse({**cfg, "reproducible": False})
    parse({**cfg, "derived": {"Ta": "T - T.max(x)"}})  # min/max are exact


def test_reproducible_sum_error_bound_as_documented():
    """The README's bound: |sum - exact| <= n * 2**(T-100) + ulp/2, with
    2**T > max |x|; the exactly rounded sum when nothing cancels, and a
    bounded error (not "exact") when large values cancel (issue 10)."""
    import math
    rng = np.random.default_rng(1)
    for scale in (2.0 ** -20, 2.0 ** -50, 2.0 ** -60, 2.0 ** -80):
        for x in (np.concatenate([[1.0], rng.random(1000) * scale]),          # no cancelling
                  np.concatenate([[1.0, -1.0], rng.random(1000) * scale])):   # cancelling
            T = rs.grid_exponent(np.abs(x).max())
            got = rs.to_float(rs.local_words(x, T), T)
            exact = sum(Fraction(v) for v in x)
            bound = x.size * Fraction(2) ** (T - 100) + Fraction(math.ulp(float(exact))) / 2
            assert abs(Fraction(got) - exact) <= bound, (scale, got, float(exact))
            if x[1] > 0:  # nothing cancels: the exactly rounded sum
                assert got == float(exact), scale
