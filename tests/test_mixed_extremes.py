"""min/max/argmax/argmin on the layouts a model hands over (issue 12, a real
config's due step): rows bounded by vectors, then chunks, then values
(kernels.extremes._argext on padded C rows of a halo view).

The answer must be numpy's on the whole field in the global frame: the
largest and smallest finite value and the LOWEST global C-order index
among equal ones, NaN and +-Inf skipped, -0.0 and 0.0 tied; on one rank
(with an offset into a larger global field) and across any split of the
field into slabs merged with the reduction's rule (insitu.reduction's
ARGMAX slots: larger value, then lower index)."""
import numpy as np
import pytest

from insitu.kernels.extremes import arg_extremes


def _reference(full):
    fin = np.isfinite(full)
    if not fin.any():
        return [-np.inf, np.inf, np.inf, np.inf]
    flat = np.where(fin, full, np.nan).ravel()
    return [np.nanmax(flat), int(np.nanargmax(flat)), np.nanmin(flat), int(np.nanargmin(flat))]


def _halo(field, order, halo=1, fill=1e300):
    """``field`` as the interior of a larger array whose halo holds values
    beyond every extreme (and NaN): a kernel that read the padding of a row
    would report them."""
    full = np.full(tuple(n + 2 * halo for n in field.shape), fill, order=order)
    full.flat[::7] = -1e300
    full.flat[::11] = np.nan
    inner = tuple(slice(halo, halo + n) for n in field.shape)
    full[inner] = field
    return full[inner]


def _fields():
    rng = np.random.default_rng(4)
    ties = rng.integers(0, 3, (130, 77)).astype(np.float64)
    yield "ties", ties
    # the extreme's ties where memory order and C order disagree: in
    # Fortran order a later row (column) holds a lower C index
    t = np.zeros((64, 40))
    t[50, 3] = t[2, 30] = t[10, 3] = 9.0
    t[60, 1] = t[1, 39] = -9.0
    yield "ties across columns", t
    yield "constant", np.full((90, 100), 3.0)
    z = np.zeros((40, 70))
    z[::3, ::5] = -0.0
    yield "signed zeros", z
    n = rng.normal(0, 1, (50, 33))
    n[rng.random(n.shape) < 0.3] = np.nan
    n[n > 1.5] = np.inf
    n[n < -1.7] = -np.inf
    yield "nan and inf", n
    m = rng.normal(0, 1, (45, 260))
    m[:, 7] = np.nan        # every row holds a NaN: the row bound must skip it
    m[20, 200] = 50.0
    m[30, 5] = -50.0
    yield "a NaN in every row", m
    r = np.full((20, 300), np.inf)
    r[4, 299] = 1.0
    r[19, 0] = -1.0
    yield "inf rows", r
    yield "all nan", np.full((10, 10), np.nan)
    yield "3-D", rng.integers(0, 4, (6, 21, 25)).astype(np.float64)
    yield "4-D", rng.integers(0, 5, (3, 4, 5, 17)).astype(np.float64)
    s = np.sin(np.linspace(0, 30, 1000 * 60)).reshape(1000, 60)  # many ties at +-1
    yield "smooth", s


FIELDS = list(_fields())


@pytest.mark.parametrize("name,field", FIELDS, ids=[f[0] for f in FIELDS])
@pytest.mark.parametrize("order", ["C", "F"])
def test_one_slab_with_halos_is_numpys(name, field, order):
    v = _halo(field, order)
    got = arg_extremes(v, (0,) * field.ndim, field.shape).tolist()
    assert got == _reference(field)
    # signed zeros: the value's bits are a field's, not a new -0.0 or 0.0
    if got[1] < np.inf:
        assert np.signbit(got[0]) == np.signbit(field.ravel()[int(got[1])])


def _merge(a, b):
    """The reduction's ARGMAX rule on (value, index) pairs, for max and min."""
    out = list(a)
    for k, better in ((0, lambda x, y: x > y), (2, lambda x, y: x < y)):
        if better(b[k], a[k]) or (b[k] == a[k] and b[k + 1] < a[k + 1]):
            out[k], out[k + 1] = b[k], b[k + 1]
    return out


@pytest.mark.parametrize("name,field", [f for f in FIELDS if f[1].ndim == 2],
                         ids=[f[0] for f in FIELDS if f[1].ndim == 2])
@pytest.mark.parametrize("nranks", [2, 3, 4])
def test_any_split_gives_the_same_answer(name, field, nranks):
    """Uneven splits along either axis, each rank's slab a Fortran halo view
    with its global offset."""
    want = _reference(field)
    for axis in (0, 1):
        n = field.shape[axis]
        cuts = [0] + sorted({(n * k) // nranks + (k % 2) for k in range(1, nranks)}) + [n]
        got = [-np.inf, np.inf, np.inf, np.inf]
        for lo, hi in zip(cuts, cuts[1:]):
            if hi <= lo:
                continue
            sel = [slice(None)] * 2
            sel[axis] = slice(lo, hi)
            off = [0, 0]
            off[axis] = lo
            got = _merge(got, arg_extremes(_halo(field[tuple(sel)], "F"), off,
                                           field.shape).tolist())
        assert got == want, (axis, cuts)


def test_the_layout_plan_is_per_offset_and_global_shape():
    """arg_extremes keeps its Python layout per (shape, strides, offset,
    global shape): two slabs of one shape at other offsets, or of another
    global field, must not share one (their global indices differ)."""
    v = _halo(np.arange(12.0).reshape(3, 4), "F")
    assert arg_extremes(v, (0, 0), (3, 4)).tolist() == [11.0, 11, 0.0, 0]
    assert arg_extremes(v, (3, 0), (6, 4)).tolist() == [11.0, 23, 0.0, 12]
    assert arg_extremes(v, (0, 2), (3, 6)).tolist() == [11.0, 17, 0.0, 2]
    assert arg_extremes(v, (0, 0), (3, 4)).tolist() == [11.0, 11, 0.0, 0]
