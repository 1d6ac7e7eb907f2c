"""Review of the compiled combine (insitu.reduction._combine): on records
made the way ranks make them (the moments kernel on uneven pieces of a
field, empty pieces included) and on adversarial slot values (NaN, +-Inf,
signed zeros, subnormals, the largest doubles), it must

* give the numpy combine's bits (its reference), but for MIN and MAX of two
  equal zeros, where it follows -0.0 < +0.0;
* give the same bits whichever side MPI hands it first (merge(a, b) ==
  merge(b, a)), since every rank must end with the same record;
* give MIN/MAX/ARGMAX/integer SUM results that do not depend on how the
  partials are paired (any reduction tree), and moments within 1e-13 of
  numpy's on the whole field.
"""
import itertools

import numpy as np
import pytest

from insitu import reduction as rd
from insitu.kernels import moments as km

KINDS = [rd.SUM, rd.MIN, rd.MAX, rd.MOMENTS, rd.ARGMAX]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308,
           1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0, 3.0]


def _plan(kinds):
    p = rd.ReductionPlan()
    for k in kinds:
        p.reserve(k)
    p.freeze()
    return p


def _bits(x):
    return np.asarray(x, dtype=np.float64).view(np.int64)


def _random_record(rng, plan, kinds, side):
    rec = plan.identity.copy()
    i = 0
    for k in kinds:
        w = rd._WIDTH[k]
        if rng.random() < 0.2:
            pass  # the identity (an empty rank, a non-due analysis)
        elif k == rd.MOMENTS:
            piece = rng.choice(SPECIAL, size=rng.integers(0, 12))
            out = np.empty(len(km.FIELDS))
            km.moments(np.ascontiguousarray(piece), out)
            rec[i:i + 4] = out[[km.COUNT, km.MEAN, km.M2, km.MEAN_LO]]
        elif k == rd.ARGMAX:
            # a finite candidate (the kernels skip NaN and Inf) or none; the
            # ranks' global indices differ (one index, one value)
            rec[i] = rng.choice([v for v in SPECIAL if np.isfinite(v)] + [-np.inf])
            rec[i + 1] = float(2 * rng.integers(0, 4) + side) if np.isfinite(rec[i]) else np.inf
        else:
            rec[i] = rng.choice(SPECIAL)
        i += w
    return rec


def test_compiled_combine_matches_numpy_and_is_symmetric_on_adversarial_records():
    rng = np.random.default_rng(12)
    for trial in range(300):
        kinds = list(rng.choice(KINDS, size=rng.integers(1, 9)))
        plan = _plan(kinds)
        a = _random_record(rng, plan, kinds, 0)
        b = _random_record(rng, plan, kinds, 1)
        ab, ba, ref = b.copy(), a.copy(), b.copy()
        plan.combine(a, ab)
        plan.combine(b, ba)
        with np.errstate(all="ignore"):
            plan.combine_numpy(a, ref)
        # symmetric, bit for bit (NaNs by their bits too)
        assert _bits(ab).tolist() == _bits(ba).tolist(), (kinds, a, b, ab, ba)
        zeros = np.zeros(plan.size, dtype=bool)
        zeros[plan.min_idx] = (a[plan.min_idx] == 0) & (b[plan.min_idx] == 0)
        zeros[plan.max_idx] = (a[plan.max_idx] == 0) & (b[plan.max_idx] == 0)
        same = (_bits(ab) == _bits(ref)) | (np.isnan(ab) & np.isnan(ref)) | zeros
        assert same.all(), (kinds, a, b, ab, ref)
        # of two zeros, MIN keeps -0.0 if either side has it, MAX +0.0
        for i in np.flatnonzero(zeros):
            neg = np.signbit(a[i]) or np.signbit(b[i])
            pos = not np.signbit(a[i]) or not np.signbit(b[i])
            if i in plan.min_idx:
                assert np.signbit(ab[i]) == neg
            else:
                assert np.signbit(ab[i]) == (not pos)


def _reduce(plan, parts, order):
    """Combine ``parts`` in ``order`` as a chain (one of MPI's pairings)."""
    acc = parts[order[0]].copy()
    for j in order[1:]:
        plan.combine(parts[j], acc)
    return acc


@pytest.mark.parametrize("nparts", [2, 3, 4])
def test_pairing_does_not_change_selections_and_moments_match_numpy(nparts):
    """Partials of one field cut unevenly (one piece may be empty): MIN,
    MAX, ARGMAX and an exact SUM give the same bits in every order, the
    moments numpy's values on the whole field."""
    rng = np.random.default_rng(nparts)
    kinds = [rd.MOMENTS, rd.SUM, rd.MIN, rd.MAX, rd.ARGMAX]
    plan = _plan(kinds)
    for trial in range(40):
        n = int(rng.integers(nparts, 60))
        x = rng.normal(1e8, 3.0, size=n)
        x[rng.random(n) < 0.1] = np.nan
        x[rng.random(n) < 0.05] = rng.choice([-0.0, 0.0])
        cuts = np.sort(rng.choice(np.arange(0, n + 1), size=nparts - 1))
        bounds = [0, *cuts.tolist(), n]
        parts = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            piece = x[lo:hi]
            out = np.empty(len(km.FIELDS))
            km.moments(np.ascontiguousarray(piece), out)
            rec = plan.identity.copy()
            rec[0:4] = out[[km.COUNT, km.MEAN, km.M2, km.MEAN_LO]]
            rec[4] = np.count_nonzero(np.isnan(piece))  # an exact (integer) sum
            rec[5] = out[km.MIN]
            rec[6] = out[km.MAX]
            fin = np.where(np.isfinite(piece), piece, -np.inf)
            if piece.size and np.isfinite(piece).any():
                k = int(np.argmax(fin))
                rec[7], rec[8] = piece[k], float(lo + k)
            parts.append(rec)
        results = [_reduce(plan, parts, order)
                   for order in itertools.permutations(range(nparts))]
        sel = [4, 5, 6, 7, 8]
        for r in results[1:]:
            assert _bits(r[sel]).tolist() == _bits(results[0][sel]).tolist()
        f = x[np.isfinite(x)]
        r = results[0]
        assert r[0] == f.size and r[4] == np.isnan(x).sum()
        if f.size:
            assert r[1] == pytest.approx(f.mean(), rel=1e-14)
            assert r[2] == pytest.approx(((f - f.mean()) ** 2).sum(), rel=1e-9, abs=1e-12)
            assert r[5] == f.min() and r[6] == f.max()
            assert r[7] == f.max() and r[8] == int(np.flatnonzero(x == f.max())[0])
            zmin = f.min() == 0
            if zmin:  # a zero minimum is -0.0 iff the field holds a -0.0
                assert np.signbit(r[5]) == bool(np.any((x == 0) & np.signbit(x)))
