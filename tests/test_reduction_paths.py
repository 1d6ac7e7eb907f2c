"""The reduction's two ways of merging MOMENTS partials give the same bits:
:func:`insitu.reduction.chan_merge` on numpy arrays and
:func:`insitu.reduction.chan_merge_floats` on Python floats (which the
combine uses for records with few MOMENTS values, the common case, at a
tenth of the cost)."""
import numpy as np
import pytest

from insitu import reduction as rd
from insitu.reduction import ARGMAX, MAX, MIN, MOMENTS, SUM, ReductionPlan


def _partials(rng, count):
    """(n, mean, m2, mean_lo) quadruples: ordinary, at large offsets, tied
    counts and means, empty sides (NaN mean), a one-value side."""
    out = []
    for _ in range(count):
        kind = rng.integers(6)
        n = float(rng.integers(1, 1000))
        offset = [0.0, 1e12, -3e8, 1.0][rng.integers(4)]
        mean = offset + rng.normal()
        lo = float(rng.normal() * 1e-17 * max(1.0, abs(offset)))
        m2 = float(abs(rng.normal()) * n)
        if kind == 0:
            out.append((0.0, np.nan, 0.0, 0.0))        # the identity
        elif kind == 1:
            out.append((1.0, mean, 0.0, 0.0))
        else:
            out.append((n, mean, m2, lo))
    return out


def test_float_merge_equals_array_merge_bit_for_bit():
    rng = np.random.default_rng(12)
    a = _partials(rng, 4000)
    b = _partials(rng, 4000)
    # ties: equal counts, equal means, both empty, the same partial twice
    # (an empty partial is always the identity: chan_merge orders two
    # empty sides by their means, which are NaN)
    for i in range(200):
        if a[i][0] > 0 and b[i][0] > 0:
            b[i] = [(a[i][0], *b[i][1:]),                       # counts
                    (b[i][0], a[i][1], b[i][2], a[i][3]),        # means
                    (a[i][0], a[i][1], b[i][2], b[i][3]),        # counts and high parts
                    (a[i][0], a[i][1], b[i][2], a[i][3])][i // 50]  # all but m2
    a[200:210] = b[200:210] = [(0.0, np.nan, 0.0, 0.0)] * 10
    b[210:260] = a[210:260]
    arrays = [np.array(c) for c in zip(*a)] + [np.array(c) for c in zip(*b)]
    ref = np.array(rd.chan_merge(*arrays)).T
    got = np.array([rd.chan_merge_floats(*x, *y) for x, y in zip(a, b)])
    assert got.tobytes() == ref.tobytes()
    swapped = np.array([rd.chan_merge_floats(*y, *x) for x, y in zip(a, b)])
    assert swapped.tobytes() == ref.tobytes()  # symmetric, bit for bit


@pytest.mark.parametrize("moments", [1, 3, rd.SCALAR_MOMENTS, rd.SCALAR_MOMENTS + 1, 40])
def test_combine_gives_the_same_bits_on_either_path(moments, monkeypatch):
    rng = np.random.default_rng(moments)
    plan = ReductionPlan()
    for _ in range(moments):
        plan.reserve(MOMENTS)
        plan.reserve(SUM)
        plan.reserve(MIN)
        plan.reserve(MAX)
    plan.freeze()
    for _ in range(50):
        recs = []
        for _ in range(2):
            r = plan.identity.copy()
            for k, p in zip(plan.mom_idx, _partials(rng, moments)):
                r[k:k + 4] = p
            for idx in (plan.sum_idx, plan.min_idx, plan.max_idx):
                r[idx] = rng.normal(size=idx.size)
            recs.append(r)
        out = {}
        for threshold in (0, 10**6):  # numpy only, floats only
            monkeypatch.setattr(rd, "SCALAR_MOMENTS", threshold)
            acc = recs[1].copy()
            plan.combine_numpy(recs[0], acc)
            out[threshold] = acc.tobytes()
        assert out[0] == out[10**6]


def _mixed_plan(count):
    """A plan with every kind, interleaved as analyses reserve them."""
    plan = ReductionPlan()
    for _ in range(count):
        plan.reserve(MOMENTS)
        plan.reserve(SUM)
        plan.reserve(MIN)
        plan.reserve(MAX)
        plan.reserve(ARGMAX)
        plan.reserve(SUM)
    plan.freeze()
    return plan


def _record(plan, rng):
    r = plan.identity.copy()
    for k, p in zip(plan.mom_idx, _partials(rng, plan.mom_idx.size)):
        r[k:k + 4] = p
    for idx in (plan.sum_idx, plan.min_idx, plan.max_idx):
        r[idx] = rng.normal(size=idx.size)
        r[idx[rng.random(idx.size) < 0.2]] = np.nan      # a slot of an idle rank
        r[idx[rng.random(idx.size) < 0.2]] = np.inf
    for k in plan.arg_idx:
        r[k] = float(rng.integers(3))                     # ties in the value
        r[k + 1] = float(rng.integers(10**6))
        if rng.random() < 0.2:
            r[k:k + 2] = (-np.inf, np.inf)                # no candidate
    return r


@pytest.mark.parametrize("count", [1, 3, 10, 40])
def test_compiled_combine_gives_the_numpy_combines_bits(count):
    """The compiled combine (ReductionPlan.combine, one pass over the record)
    against the numpy one it replaced, on records with every kind, NaN and
    Inf, ties in the ARGMAX values and empty MOMENTS sides."""
    rng = np.random.default_rng(count)
    plan = _mixed_plan(count)
    for _ in range(100):
        a, b = _record(plan, rng), _record(plan, rng)
        got, ref = b.copy(), b.copy()
        plan.combine(a, got)
        plan.combine_numpy(a, ref)
        assert got.tobytes() == ref.tobytes()


def test_min_and_max_of_signed_zeros_do_not_depend_on_the_pairing():
    """Ranks holding -0.0 and +0.0 as their min (or max) give the total
    order's answer, -0.0 (+0.0), whichever side MPI hands the combine
    first, as the kernels do within a rank.  (numpy's fmin returns its
    second argument of two equal zeros: fails with combine_numpy.)"""
    plan = ReductionPlan()
    lo, hi = plan.reserve(MIN), plan.reserve(MAX)
    plan.freeze()
    for x, y in ((0.0, -0.0), (-0.0, 0.0), (-0.0, -0.0), (0.0, 0.0)):
        a, b = plan.identity.copy(), plan.identity.copy()
        a[lo], a[hi], b[lo], b[hi] = x, x, y, y
        ab, ba = b.copy(), a.copy()
        plan.combine(a, ab)
        plan.combine(b, ba)
        assert ab.tobytes() == ba.tobytes(), (x, y)
        assert np.signbit(ab[lo]) == (np.signbit(x) or np.signbit(y)), (x, y)
        assert np.signbit(ab[hi]) == (np.signbit(x) and np.signbit(y)), (x, y)
