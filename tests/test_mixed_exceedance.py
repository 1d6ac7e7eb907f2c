"""The exceedance kernel on the layouts a model hands over (issue 12, a real
config's due step): Fortran-order halo views read as padded C rows, W
values at a time (kernels.weighted._exceed_rows).

Counts must equal numpy's on every op, with values exactly at the
threshold, NaN and +-Inf in the slab, and halos holding values that would
count (a kernel that read a row's padding would count them); the weighted
sums must be within a few ulps of the exact sum (math.fsum) of the kept
weights; with one weight per row they must keep the bits of the row-by-row
rule (the row's weight times its integer count, rows added in memory
order)."""
import math

import numpy as np
import pytest

from insitu.kernels.rows import padded
from insitu.kernels.weighted import OPS, Prepared, exceedance, exceedance_prepared

THR = 0.5
CMP = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}


def _slab(shape, order, halo, seed=3):
    """A slab with values at the threshold, NaN and +-Inf, as a view with
    halos full of values past the threshold either way (and NaN)."""
    rng = np.random.default_rng(seed)
    full_shape = tuple(n + 2 * halo for n in shape)
    full = np.asarray(rng.choice([THR, -5.0, 7.0, np.nan], full_shape), order=order)
    inner = tuple(slice(halo, halo + n) for n in shape)
    v = full[inner]
    v[...] = np.round(rng.normal(THR, 1.0, shape), 1)
    idx = tuple(rng.integers(0, n, 25) for n in shape)
    v[idx] = THR                                   # exactly at the threshold
    v[tuple(i[:4] for i in idx)] = np.nan
    v[tuple(i[4:7] for i in idx)] = np.inf
    v[tuple(i[7:9] for i in idx)] = -np.inf
    return v


LAYOUTS = [((1000, 37), "F", 1), ((37, 1000), "F", 1), ((53, 61), "C", 2), ((61, 53), "F", 3),
           ((4, 19, 23), "F", 1), ((5, 9, 13), "C", 1), ((3, 4, 5, 17), "C", 1)]


def _reference(v, w, op):
    fin = np.isfinite(v)
    past = fin & CMP[op](v, THR)
    w = np.broadcast_to(w, v.shape)
    return past.sum(), fin.sum(), math.fsum(w[past].ravel()), math.fsum(w[fin].ravel())


@pytest.mark.parametrize("shape,order,halo", LAYOUTS, ids=[f"{s}-{o}{h}" for s, o, h in LAYOUTS])
@pytest.mark.parametrize("op", list(OPS))
def test_counts_and_weights_on_halo_views(shape, order, halo, op):
    v = _slab(shape, order, halo)
    rng = np.random.default_rng(11)
    wfull = np.asarray(rng.random(tuple(n + 2 for n in shape)), order=order)
    weights = [np.float64(1.0), wfull[tuple(slice(1, -1) for _ in shape)],
               np.asarray(rng.random(shape), order=order)]
    for w in weights:
        c, n, cw, nw = exceedance(v, w, THR, op)
        rc, rn, rcw, rnw = _reference(v, w, op)
        assert (c, n) == (rc, rn)
        # each row's weights in W lanes and a fixed tree: within n ulps
        assert abs(cw - rcw) <= 4 * rn * 2**-53 * rnw
        assert abs(nw - rnw) <= 4 * rn * 2**-53 * rnw


def test_a_view_of_a_padded_array_is_read_as_c_rows():
    """The layout the speed-up rests on: a Fortran halo view, transposed to
    memory order, has a C-contiguous padded description (no copy)."""
    full = np.asfortranarray(np.zeros((1002, 1002)))
    a = full[1:-1, 1:-1].T
    p = padded(a)
    assert p.flags.c_contiguous and p.shape == (1000, 1002)
    assert np.shares_memory(p, full) and p.__array_interface__["data"][0] == \
        a.__array_interface__["data"][0]
    strided = full[1:-1, 1:-1]                      # rows strided: unchanged, not copied
    assert padded(strided) is strided


def test_one_weight_per_row_keeps_the_row_rule_bits():
    """coslat along the slow axis: the row's weight times its integer count,
    rows added in memory order, bit for bit (the rule of the kernel before
    the vector rows, so these fractions did not change)."""
    v = _slab((300, 200), "F", 1)
    coslat = np.cos(np.linspace(-1.5, 1.5, 200))[None, :]
    for op in OPS:
        got = exceedance(v, coslat, THR, op)
        fin = np.isfinite(v)
        past = fin & CMP[op](v, THR)
        cw = nw = 0.0
        for j in range(200):          # rows in memory order: y slow, x fast
            rc, rn = int(past[:, j].sum()), int(fin[:, j].sum())
            cw += coslat[0, j] * rc if rc else 0.0
            nw += coslat[0, j] * rn if rn else 0.0
        assert got[2] == cw and got[3] == nw


def test_nan_weights_are_dropped_where_the_value_does_not_count():
    """A weight where the value is NaN or Inf is dropped, not multiplied by
    0 (a NaN weight there would make the sums NaN)."""
    v = np.array([[1.0, np.nan, 2.0, np.inf] * 4] * 3)
    w = np.where(np.isfinite(v), 0.5, np.nan)
    got = exceedance(v, w, 0.0, "gt")
    assert got.tolist() == [24.0, 24.0, 12.0, 12.0]


def test_prepared_layout_is_kept_while_the_view_is_the_same():
    v = _slab((40, 30), "F", 1)
    p = Prepared()
    out = np.zeros(4)
    first = exceedance_prepared(p.get(v, np.float64(1.0), (v, None)), THR, OPS["gt"], out).copy()
    a = p.a
    exceedance_prepared(p.get(v, np.float64(1.0), (v, None)), THR, OPS["gt"], out)
    assert p.a is a and out.tolist() == first.tolist()
    v[...] = -1.0    # the same memory, new values: read again
    assert exceedance_prepared(p.get(v, np.float64(1.0), (v, None)), THR, OPS["gt"],
                               out)[0] == 0
