"""The output layout (insitu.layout), pure: no MPI, no file."""
import numpy as np
import pytest

from insitu.analyses.base import Axis, Variable
from insitu.layout import (BLOCK_BYTES, FIRST_BYTES, ROWS, OutputError, fill_value, grown,
                           growth, row_bytes, time_attrs, variable_fill)


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


def test_growth_blocks():
    # scalars only: one chunk of ROWS rows, grown a chunk at a time
    assert growth(0) == (ROWS, ROWS)
    assert grown(ROWS, ROWS + 1, ROWS, ROWS) == 2 * ROWS
    # small array rows: start with FIRST_BYTES worth, double up to ROWS
    first, block = growth(800)
    assert first == FIRST_BYTES // 800 and block == ROWS
    sizes = [first]
    while sizes[-1] < 3 * ROWS:
        sizes.append(grown(sizes[-1], sizes[-1] + 1, first, block))
    steps = np.diff(sizes)
    assert steps[0] == first and steps.max() == ROWS and (steps[1:] >= steps[:-1]).all()
    # a whole-field snapshot per row: nothing until the first row, then one at a time
    big = 2000 * 1000 * 8
    assert growth(big) == (0, 1)
    assert grown(0, 1, 0, 1) == 1 and grown(1, 2, 0, 1) == 2
    assert growth(BLOCK_BYTES // 10)[1] == 10


def test_row_bytes_counts_array_rows_only():
    vs = [Variable("a", np.dtype("f8")), Variable("b", np.dtype("f4"), shape=(3, 5)),
          Variable("c", np.dtype("i8"), shape=(7,))]
    assert row_bytes(vs) == 3 * 5 * 4 + 7 * 8
