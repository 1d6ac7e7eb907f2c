"""Review 7 (16977c5): kernels.moments.prepare/entry on the views
tests/test_prepared_calls.py leaves out: read-only, unaligned (an address
not a multiple of 8, as a C model's packed buffer can be), negative
strides, empty, 0-d, a view of a view, and a byte-swapped dtype (refused
with a clear error, never typed as native).  The compiled entry point is
called with the very objects it was typed for, so its bits must equal
the dispatcher's typing the same arguments, and the moments wrapper's.
"""
import numpy as np
import pytest

from insitu.kernels import moments as km


def _unaligned(shape, dtype=np.float64):
    n = int(np.prod(shape))
    buf = np.zeros(n * np.dtype(dtype).itemsize + 1, dtype=np.uint8)
    a = np.frombuffer(buf.data, dtype=dtype, count=n, offset=1).reshape(shape)
    assert not a.flags.aligned
    return a


def _views():
    rng = np.random.default_rng(7)
    base = rng.normal(280.0, 5.0, (11, 13))
    base[2, 3] = np.nan
    ro = base.copy()
    ro.flags.writeable = False
    un = _unaligned((11, 13))
    un.flags.writeable = True
    un[...] = base
    un32 = _unaligned((11, 13), np.float32)
    un32[...] = base
    return [("readonly", ro), ("readonly-halo", ro[1:-1, 1:-1]),
            ("unaligned", un), ("unaligned-halo", un[1:-1, 1:-1]),
            ("unaligned-f32-halo", un32[1:-1, 1:-1]),
            ("reversed", base[::-1, ::-1]), ("reversed-halo", base[-2:0:-1, 1:-1]),
            ("step2", base[::2, 1::3]), ("empty", base[3:3]), ("empty-cols", base[:, 5:5]),
            ("0d", np.array(3.5)), ("view-of-view", base[1:-1, 1:-1][1:, :-1]),
            ("int-reversed", np.arange(40, dtype=np.int64).reshape(5, 8)[::-1])]


VIEWS = _views()


@pytest.mark.parametrize("name,view", VIEWS, ids=[n for n, _ in VIEWS])
def test_prepared_equals_dispatcher_and_wrapper(name, view):
    out = np.full(len(km.FIELDS), 777.0)
    fn, args = km.prepare(view, out)
    fn(*args)
    want = np.full(len(km.FIELDS), -1.0)
    dispatcher = km._moments4 if view.ndim == 4 else km._moments3
    dispatcher(*args[:-1], want)
    assert out.tobytes() == want.tobytes()
    assert km.moments(view).tobytes() == out.tobytes()
    x = np.asarray(view, dtype=np.float64).ravel()
    fin = x[np.isfinite(x)]
    assert out[0] == fin.size
    if fin.size:
        assert np.isclose(out[1], fin.sum())
    # the same prepared call again, after the data changed in place where
    # it can: it reads the memory, not a copy
    if view.flags.writeable and view.size:
        view[...] = 1
        fn(*args)
        assert out[0] == view.size and out[1] == view.size


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">i4", ">i8"])
def test_byte_swapped_views_are_refused(dtype):
    a = np.arange(12, dtype=dtype).reshape(3, 4)
    with pytest.raises(TypeError):
        km.prepare(a)


def test_entries_stay_bounded_over_many_views():
    """One entry point per argument types, however many views are made
    ready (a C model exposing ever new addresses)."""
    rng = np.random.default_rng(1)
    before = len(km._ENTRIES)
    for i in range(200):
        a = rng.normal(size=(6, 7 + i % 5))
        km.prepare(a[1:-1, 1:-1] if i % 2 else a)
    assert len(km._ENTRIES) - before <= 4
