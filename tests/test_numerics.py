"""Global statistics against an exact truth (fractions), on fake ranks.

Issue 10, items 2 and 3: var/std must stay within 1e-12 relative of the
exact value for data at offsets up to 1e12 times their spread (plain and
weighted, and the window analysis's running var), and the mean and sum of
an integer field must be the exact integer sum rounded once.  The same cases
run under real MPI in tests/mpi/test_mpi_numerics.py.
"""
from fractions import Fraction

import numpy as np
import pytest

from insitu.analyses.window import _Acc
from insitu.comm import FakeWorld
from insitu.kernels import moments as km
from insitu.reduction import MOMENTS, SUM, ReductionPlan

import numerics_cases as nc


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
@pytest.mark.parametrize("name", sorted(nc.CASES))
def test_stats_exact_on_fake_ranks(name, nranks):
    outs = FakeWorld(nranks).run(nc.run, name)
    for step in outs[0]:
        field = nc.CASES[name][1](step)
        truth, wtruth = nc.exact(field), nc.exact_weighted(field)
        scale = float(np.abs(field.astype(np.float64)).max())
        for out in outs:
            nc.check(name, out[step], truth)
            nc.check_weighted(name, out[step], wtruth, scale)


@pytest.mark.parametrize("nranks", [1, 3])
def test_window_var_exact_on_fake_ranks(nranks):
    writer = FakeWorld(nranks).run(nc.run_window)[0]
    wins = writer.axes["time_w4"]
    truth = nc.window_truth()
    assert len(wins) == len(truth)
    for (_, _, _, values), var in zip(wins, truth):
        rel = abs(Fraction(float(values["f_mean_w4_var"])) - var) / var
        assert rel <= Fraction(1, 10**12), float(rel)


@pytest.mark.parametrize("ratio", [0.0, 288.0, 1e8, 1e12, -1e12])
def test_window_accumulator_exact_at_offsets(ratio):
    """Offsets of ``ratio`` times the spread, at three spreads."""
    rng = np.random.default_rng(5)
    spread = np.array([1.0, 1e-3, 1e3])
    xs = (ratio + rng.standard_normal((40, 3))) * spread
    xs[7, 1] = np.nan                       # skipped per element
    acc = _Acc((3,))
    for x in xs:
        acc.add(x)
    for j in range(3):
        col = [Fraction(float(v)) for v in xs[:, j] if np.isfinite(v)]
        m = sum(col) / len(col)
        var = sum((v - m) ** 2 for v in col) / len(col)
        assert abs(Fraction(float(acc.value("var")[j])) - var) / var <= Fraction(1, 10**12), j
        assert abs(Fraction(float(acc.value("mean")[j])) - m) <= 2.0**-52 * (
            abs(m) + spread[j]), j


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("offset", [0.0, 1e4, 1e8, 1e12])
def test_kernel_m2_and_mean_exact_at_offsets(dtype, offset):
    """The local one-pass kernel alone: M2 and the double-double mean."""
    spread = 1.0 if dtype == np.float64 else max(offset * 2.0**-20, 1.0)
    x = (offset + spread * np.random.default_rng(2).standard_normal((37, 501))).astype(dtype)
    view = np.pad(x, 1, constant_values=1e30)[1:-1, 1:-1]   # halo-sliced, too
    for a in (x, view):
        m = km.moments(a)
        xs = [Fraction(float(v)) for v in x.ravel()]
        mean = sum(xs) / len(xs)
        m2 = sum((v - mean) ** 2 for v in xs)
        assert abs(Fraction(m[km.M2]) - m2) / m2 <= Fraction(1, 10**13)
        dd = Fraction(m[km.MEAN]) + Fraction(m[km.MEAN_LO])
        assert abs(dd - mean) <= Fraction(spread) * 2.0**-50


def _partials(rng, k):
    """``k`` per-rank MOMENTS partials of one hard field, cut unevenly."""
    x = 1e12 + rng.standard_normal(997)
    cuts = np.sort(rng.choice(np.arange(1, 997), k - 1, replace=False))
    parts = []
    for piece in np.split(x, cuts):
        m = km.moments(piece)
        parts.append([m[km.COUNT], m[km.MEAN], m[km.M2], m[km.MEAN_LO]])
    return x, parts


def test_merge_is_symmetric_bit_for_bit_and_exact():
    rng = np.random.default_rng(11)
    plan = ReductionPlan()
    first = plan.reserve(MOMENTS)
    plan.reserve(SUM)
    plan.freeze()
    for trial in range(200):
        k = int(rng.integers(2, 5))
        x, parts = _partials(rng, k)
        records = []
        for p in parts + [[0.0, np.nan, 0.0, 0.0]]:          # an idle rank too
            r = plan.identity.copy()
            r[first:first + 4] = p
            records.append(r)
        a, b = records[0], records[1]
        ab, ba = b.copy(), a.copy()
        plan.combine(a, ab)
        plan.combine(b, ba)
        assert ab.tobytes() == ba.tobytes(), trial
        acc = records[-1].copy()
        for r in records[:-1]:
            plan.combine(r, acc)
        xs = [Fraction(float(v)) for v in x]
        mean = sum(xs) / len(xs)
        var = sum((v - mean) ** 2 for v in xs) / len(xs)
        assert abs(Fraction(acc[first + 2] / acc[first]) - var) / var <= Fraction(1, 10**12)


def test_integer_sum_beyond_int64_is_exact():
    """Per-rank int64 sums that overflow int64 are still exact (halves)."""
    x = np.full(4099, 2**63 - 1, dtype=np.int64)
    m = km.moments(x)
    assert int(m[km.ISUM_HI]) + int(m[km.ISUM_LO]) == 4099 * (2**63 - 1)
    y = np.full(3001, -2**63, dtype=np.int64)
    m = km.moments(y)
    assert int(m[km.ISUM_HI]) + int(m[km.ISUM_LO]) == 3001 * -2**63
