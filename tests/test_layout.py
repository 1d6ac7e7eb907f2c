"""The output layout (insitu.layout), pure: no MPI, no file."""
import numpy as np
import pytest

from insitu.analyses.base import Axis, Variable
from insitu.layout import OutputError, fill_value, time_attrs, variable_fill


def test_time_attrs_name_bounds_or_climatology():
    plain = time_attrs(Axis("time_w", "step_w", bounds=True), {"units": "days since 2000-01-01"})
    assert plain["bounds"] == "time_w_bounds" and "climatology" not in plain
    assert plain["units_metadata"] == "leap_seconds: none"
    clim = time_attrs(Axis("time_c", "step_c", bounds=True, climatology=True),
                      {"units": "days since 2000-01-01", "calendar": "noleap"})
    assert clim["climatology"] == "time_c_bounds" and "bounds" not in clim
    assert "units_metadata" not in clim  # noleap counts no leap seconds by definition


def test_fill_values_never_wrap():
    assert np.isnan(fill_value(np.float32))
    assert fill_value(np.int32) == -2147483647 and fill_value(np.int8) == -127
    with pytest.raises(OutputError):
        fill_value(np.complex128)


def test_integer_fill_is_masked_only_where_a_row_can_miss():
    v = Variable("n", np.dtype(np.int64))
    assert variable_fill(v, fill=False) == (None, False)
    assert variable_fill(v, fill=True)[1]
    snap = Variable("s", np.dtype(np.int32), shape=(4,), distributed=True, axis="time_t")
    fv, masked = variable_fill(snap, fill=True)
    assert fv == -2147483647 and not masked


