"""Field specs and the Python route's zero-copy views."""
import numpy as np
import pytest

from insitu.fields import FieldError, FieldSlot, make_spec


def spec(**kw):
    args = dict(name="T", dtype=np.float64, global_shape=(8, 6), offset=(0, 0),
                local_shape=(10, 8), halo_lo=(1, 1), halo_hi=(1, 1), order="C")
    args.update(kw)
    return make_spec(**args)


@pytest.mark.parametrize("order", ["C", "F"])
def test_view_is_the_models_memory_without_halos(order):
    s = spec(order=order)
    a = np.full(s.local_shape, -1.0, order=order)
    a[1:-1, 1:-1] = np.arange(48).reshape(8, 6)
    slot = FieldSlot(s, 0)
    v = slot.bind_array(a)
    assert v.shape == (8, 6)
    assert np.shares_memory(v, a)
    assert v.__array_interface__["data"][0] == a[1:, 1:].__array_interface__["data"][0]
    np.testing.assert_array_equal(v, a[1:-1, 1:-1])
    a[3, 4] = 1234.0  # the model writes; the view sees it
    assert v[2, 3] == 1234.0
    assert (v != -1.0).all()  # no halo value inside


def test_rebinding_is_skipped_when_the_array_is_the_same():
    s = spec()
    a = np.zeros(s.local_shape)
    slot = FieldSlot(s, 0)
    v1 = slot.bind_array(a)
    assert slot.bind_array(a) is v1
    b = np.zeros(s.local_shape)
    assert slot.bind_array(b) is not v1 and np.shares_memory(slot.view, b)


@pytest.mark.parametrize("array,message", [
    (np.zeros((10, 8), dtype=np.float32), "dtype float32 but declared float64"),
    (np.zeros((10, 9)), "shape (10, 9) but declared local shape (10, 8)"),
    (np.zeros((10, 8), order="F"), "not C-contiguous"),
    (np.zeros((10, 16))[:, ::2], "not C-contiguous"),
    ([[0.0]], "needs a numpy array"),
])
def test_bad_exposures_are_refused(array, message):
    with pytest.raises(FieldError) as err:
        FieldSlot(spec(), 0).bind_array(array, rank=3)
    assert message in str(err.value) and "'T'" in str(err.value) and "rank 3" in str(err.value)


@pytest.mark.parametrize("kw,message", [
    (dict(dtype=np.complex64), "unsupported dtype"),
    (dict(dtype=7), "unsupported dtype code 7"),
    (dict(global_shape=(2,) * 5, offset=(0,) * 5, local_shape=(2,) * 5, halo_lo=None,
          halo_hi=None), "rank 5 is not supported"),
    (dict(halo_lo=(9, 1)), "leave no interior"),
    (dict(offset=(3, 0)), "outside the global range"),
    (dict(offset=(0,)), "offset has 1 entries"),
    (dict(order="X"), "order must be"),
    (dict(name="2T"), "expected an identifier"),
    (dict(dims=("y",)), "gives 1 dims"),
])
def test_bad_declarations_name_field_and_rank(kw, message):
    with pytest.raises(FieldError) as err:
        make_spec(**{**dict(name="T", dtype=np.float64, global_shape=(8, 6), offset=(0, 0),
                            local_shape=(10, 8), halo_lo=(1, 1), halo_hi=(1, 1)), **kw}, rank=2)
    assert message in str(err.value) and "rank 2" in str(err.value)


def test_default_dims_follow_the_memory_order():
    assert spec(order="F").dims == ("x", "y")
    assert spec(order="C").dims == ("y", "x")
