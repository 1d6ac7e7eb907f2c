"""kind: spell (issue 16, item 4): per-point current and longest run lengths of
consecutive samples past a threshold, against numpy's comparison on the
whole field's series, at 1 to 4 fake ranks on every process grid (uneven
slabs), C and Fortran order, NaN (which ends a spell) and +-Inf present.
tests/mpi/test_mpi_perpoint.py checks the same from the parallel file."""
import numpy as np
import pytest

from insitu.comm import FakeWorld
from insitu.options import ConfigError, parse

import perpoint_cases as pc


def _check(rows, every, threshold, op, first=1):
    for step, time, bounds, values in rows:
        last = int(time)   # dt = 1; at finalize the step is the run's last, the time the sample's
        samples = [pc.field(s) for s in range(first, last + 1) if s % every == 0]
        cur, mx = pc.spell_truth(samples, threshold, op)
        assert values["sp_samples"] == len(samples)
        np.testing.assert_array_equal(values["sp_current"], cur)
        np.testing.assert_array_equal(values["sp_max"], mx)
        assert bounds[1] == time


@pytest.mark.parametrize("nranks", [1, 2, 3, 4])
@pytest.mark.parametrize("order", ["C", "F"])
def test_spell_equals_numpy_on_the_whole_series(nranks, order):
    an = [{"kind": "spell", "field": "T", "threshold": pc.THRESHOLD, "write_every": 10,
           "name": "sp"}]
    writers = FakeWorld(nranks).run(lambda c: pc.run(c, an, 47, order))
    rows = pc.rows(writers, "time_sp")
    # at its cadence (samples 10, 20, 30, 40) and at the end (47)
    assert [r[0] for r in rows] == [10, 20, 30, 40, 47]
    assert all(r[2][0] == 1.0 for r in rows)   # bounds start at the first sample
    _check(rows, 1, pc.THRESHOLD, "gt")
    # the spells are not trivial: long ones, and ones a NaN cut
    assert rows[-1][3]["sp_max"].max() >= 5 and (rows[-1][3]["sp_max"] == 0).sum() >= 1


@pytest.mark.parametrize("op,threshold", [("ge", 0.3), ("lt", -0.2), ("le", 270.0)])
@pytest.mark.parametrize("nranks", [2, 3])
def test_spell_ops_and_a_sampling_cadence(op, threshold, nranks):
    """``every: 3`` samples every third step: spells count samples, and the
    end of the run (step 40, not a sample) writes the state of sample 39."""
    an = [{"kind": "spell", "field": "T", "threshold": threshold, "op": op, "every": 3,
           "name": "sp"}]
    writers = FakeWorld(nranks).run(lambda c: pc.run(c, an, 40))
    rows = pc.rows(writers, "time_sp")
    assert [(r[0], r[1]) for r in rows] == [(40, 39.0)]   # at the end only (no write_every)
    _check(rows, 3, threshold, op)


def test_a_nan_ends_a_spell_and_an_all_nan_point_has_none():
    an = [{"kind": "spell", "field": "T", "threshold": -2.0, "name": "sp"}]  # always true
    rows = pc.rows(FakeWorld(2).run(lambda c: pc.run(c, an, 12)), "time_sp")
    v = rows[-1][3]
    assert v["sp_max"][2, 3] == 0 and v["sp_current"][2, 3] == 0      # NaN throughout
    assert v["sp_max"][4, 1] == 4 and v["sp_current"][4, 1] == 2      # NaN at 5 and 10
    assert v["sp_max"][0, 0] == 12 == v["sp_current"][0, 0]
    assert v["sp_max"][6, 0] == 12 - 4   # -Inf at step 4 is not > -2


def test_spell_config_errors():
    base = {"kind": "spell", "field": "T", "threshold": 1.0}
    parse({"analyses": [base]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.op"):
        parse({"analyses": [{**base, "op": "gtx"}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.write_every"):
        parse({"analyses": [{**base, "write_every": 0}]})
    with pytest.raises(ConfigError, match=r"analyses\[0\]"):
        parse({"analyses": [{"kind": "spell", "field": "T"}]})   # no threshold
