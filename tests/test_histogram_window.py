"""The histogram kernel counts eight values at a time into a window of
three adjacent slots kept in registers (insitu.kernels.histogram.
_count_vectors), and value by value where a vector leaves it.  Its counts
must be numpy's wherever the window moves: runs of one bin, values hopping
between two bins, a jump over a bin, values below the range beside values
an ulp from an edge (the unsure slot must never be counted in the window
of slot 0), runs of NaN and +-Inf, rows not a multiple of 8, strided
views -- and with values collected for the exact quantiles."""
import numpy as np
import pytest

from insitu.kernels import histogram as kh

LO, HI, NB = 200.0, 320.0, 64


def _numpy(x):
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    mid, _ = np.histogram(x[(x >= LO) & (x <= HI)], NB, (LO, HI))
    return np.concatenate([[np.sum(x < LO)], mid, [np.sum(x > HI)]]).astype(np.float64)


def _cases():
    rng = np.random.default_rng(11)
    edges = np.linspace(LO, HI, NB + 1)
    width = edges[1] - edges[0]
    smooth = 260.0 + 50.0 * np.sin(np.arange(4000) / 300.0)
    hop = np.where(np.arange(4000) % 3 == 0, edges[30] - width / 4, edges[30] + width / 4)
    jump = np.where(np.arange(4000) % 5 == 0, edges[10] + width / 2, edges[12] + width / 2)
    below = np.full(4000, LO - 5.0)                 # slot 0 ...
    below[7::8] = LO                                # ... beside values on an edge (unsure)
    below[3::16] = -np.inf                          # and -Inf (unsure too)
    below[5::24] = np.nextafter(LO, np.inf)
    edgy = rng.choice(edges, 4000) + rng.choice([-1, 0, 1], 4000) * 1e-13
    nan_runs = smooth.copy()
    nan_runs[100:900] = np.nan
    nan_runs[1500:1510] = np.inf
    nan_runs[2000:2300] = -np.inf
    nan_runs[3000:3100] = HI
    top = np.full(4000, HI + 1.0)
    top[::9] = HI
    noisy = rng.normal(260.0, 40.0, 4000)
    return {"smooth": smooth, "hop": hop, "jump": jump, "below": below, "edgy": edgy,
            "nan_runs": nan_runs, "top": top, "noisy": noisy}


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("n", [4000, 3997, 13, 8])
def test_window_counts_equal_numpys(name, n):
    x = CASES[name][:n]
    np.testing.assert_array_equal(kh.histogram(x, LO, HI, NB), _numpy(x))
    # rows of 37 (a vector's worth left over in each) and a strided view
    m = n - n % 37
    if m:
        rows = x[:m].reshape(-1, 37)
        np.testing.assert_array_equal(kh.histogram(rows, LO, HI, NB), _numpy(rows))
        buf = np.zeros((rows.shape[0] + 2, 37 + 3))
        buf[1:-1, 2:-1] = rows
        v = buf[1:-1, 2:-1]
        np.testing.assert_array_equal(kh.histogram(v, LO, HI, NB), _numpy(rows))


@pytest.mark.parametrize("name", sorted(CASES))
def test_window_counts_and_collected_values_with_quantile_bins_armed(name):
    """Collecting the values of some slots (the exact quantiles' pass)
    takes the other copy of the counting loop: the same counts, and the
    values collected are those numpy's rule puts in the slots."""
    x = CASES[name].reshape(40, 100)
    want = _numpy(x)
    slots = [int(s) for s in np.flatnonzero(want)[:3]]
    c = kh.Collector(NB)
    c.arm(slots, int(max(want[slots])))
    got = kh.histogram(x, LO, HI, NB, collect=c)
    np.testing.assert_array_equal(got, want)
    flat = x.ravel()
    flat = flat[~np.isnan(flat)]
    edges = np.linspace(LO, HI, NB + 1)
    for s in slots:
        if s == 0:
            mine = flat[flat < LO]
        elif s == NB + 1:
            mine = flat[flat > HI]
        else:
            inside = flat[(flat >= LO) & (flat <= HI)]
            b = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, NB - 1)
            mine = inside[b == s - 1]
        np.testing.assert_array_equal(np.sort(c.values(s)), np.sort(mine))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("name", ["smooth", "hop", "below", "nan_runs", "noisy"])
def test_weighted_rows_equal_a_general_weight_and_numpys(name, order):
    """A weight constant along the rows (a cos(lat) broadcast along lon:
    stride 0 in memory order) takes the row kernel, whose window counts
    are multiplied by the row's weight; the same weights as a full array
    in the field's layout take the per-value kernel; both equal
    ``numpy.histogram(x, weights=w)``, and a weight of 1.0 gives the
    counts exactly."""
    x = np.asarray(CASES[name][:3960].reshape(11, 10, 36), order=order)
    lat = np.linspace(-80.0, 80.0, 10)
    cos = np.cos(np.deg2rad(lat))[None, :, None]
    row_w = np.broadcast_to(cos, x.shape) if order == "C" else \
        np.broadcast_to(np.cos(np.deg2rad(np.linspace(-80, 80, 11)))[:, None, None], x.shape)
    full_w = np.asarray(np.array(row_w), order=order)
    assert full_w.strides[-1 if order == "C" else 0] != 0
    got_rows = kh.weighted_histogram(x, row_w, LO, HI, NB)
    got_full = kh.weighted_histogram(x, full_w, LO, HI, NB)
    fin = ~np.isnan(x)
    xs, ws = x[fin], np.asarray(row_w)[fin]
    mid, _ = np.histogram(xs[(xs >= LO) & (xs <= HI)], NB, (LO, HI),
                          weights=ws[(xs >= LO) & (xs <= HI)])
    want = np.concatenate([[ws[xs < LO].sum()], mid, [ws[xs > HI].sum()]])
    np.testing.assert_allclose(got_rows, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_full, want, rtol=1e-12, atol=1e-12)
    ones = kh.weighted_histogram(x, np.broadcast_to(1.0, x.shape), LO, HI, NB)
    np.testing.assert_array_equal(ones, _numpy(x))


def test_a_slot_out_of_room_spoils_no_other_row():
    """A slot with more values than its room (the quantile's bin grew
    since the last output step) shows as out of room, and its eight-value
    stores never spill into the next slot's row."""
    edges = np.linspace(LO, HI, NB + 1)
    x = np.full(4000, edges[10] + 0.5)             # slot 11: 4000 values in runs
    x[::50] = edges[40] + 0.5                      # slot 41: 80 values
    c = kh.Collector(NB)
    c.arm([11, 41], 100)                            # room for 100 of each
    np.testing.assert_array_equal(kh.histogram(x, LO, HI, NB, collect=c), _numpy(x))
    assert c.values(11) is None                     # out of room
    np.testing.assert_array_equal(c.values(41), np.full(80, edges[40] + 0.5))


@pytest.mark.parametrize("shape", [(4000,), (40, 100), (150, 101)])
def test_values_collected_in_a_window_that_never_moves(shape):
    """All values in the wanted slot: the window never moves after the
    first vector, so the count of values copied lives in a register until
    each row's end (and the rests of rows not a multiple of 8 are staged)."""
    edges = np.linspace(LO, HI, NB + 1)
    x = np.full(shape, edges[10] + 0.25) + np.linspace(0.0, 0.5, int(np.prod(shape))).reshape(shape)
    if x.ndim == 2:   # rows of a halo view (a contiguous array is counted as one row)
        buf = np.zeros((shape[0], shape[1] + 3))
        buf[:, 1:-2] = x
        x = buf[:, 1:-2]
    c = kh.Collector(NB)
    c.arm([11], x.size + 8)
    np.testing.assert_array_equal(kh.histogram(x, LO, HI, NB, collect=c), _numpy(x))
    np.testing.assert_array_equal(np.sort(c.values(11)), np.sort(x, axis=None))
