"""Review of fcc2058: a trigger's condition computes as numpy does.

Before fcc2058 a weighted stats' mean and var reached the triggers as
numpy float64 (read from the record), so ``1.0 / w_var`` of a flat field
was inf, under the errstate _check_triggers sets, and the trigger fired;
StatsBatch forms them as Python floats, and the same condition raised
ZeroDivisionError out of Session.step on every rank (a Fortran model gets
an error status from insitu_step; insitu.run aborts).  The unweighted
std, counts and sums were Python numbers already, so ``1.0 / T_std`` or
``T_max ** 400`` (OverflowError) took the step down on 749e0e5 too.

test_weighted_*: fails on 37a2e9a, passes on 749e0e5.  test_unweighted_*:
fails on both.  Both pass with /tmp/r8/fix_trigger_numbers.patch (the
condition's names bound to numpy scalars)."""
import numpy as np
import pytest

from insitu import api
from insitu.comm import FakeWorld


def _run(size, analyses, when):
    cfg = {"output": {"path": "unused.h5"}, "log_level": "WARNING",
           "fields": {"T": {"dims": ["x"]}, "W": {"dims": ["x"]}},
           "analyses": analyses,
           "triggers": [{"name": "flat", "when": when, "fields": ["T"], "max_snapshots": 3}]}

    def run(comm):
        api.init(comm, cfg)
        try:
            api.declare_field("T", np.float64, (4 * comm.size,), (4 * comm.rank,), (4,))
            api.declare_field("W", np.float64, (4 * comm.size,), (4 * comm.rank,), (4,))
            keep = [np.full(4, 3e300), np.ones(4)]
            api.expose("T", keep[0])
            api.expose("W", keep[1])
            for step in (1, 2):
                api.step(step, float(step))
            return [e["step"] for e in api.session().trigger_events]
        finally:
            api.finalize()
    return FakeWorld(size).run(run)


@pytest.mark.parametrize("size", [1, 2])
def test_weighted_var_of_a_flat_field_divides_to_inf(size):
    analyses = [{"kind": "stats", "field": "T", "name": "w", "weights": "W",
                 "stats": ["mean", "var"]}]
    assert _run(size, analyses, "1.0 / w_var > 5 and w_mean > 0") == [[1, 2]] * size


@pytest.mark.parametrize("when", ["1.0 / T_std > 5", "T_max ** 400 > 1", "1 / T_nan_count > 0"])
def test_unweighted_values_divide_and_overflow_as_numpy(when):
    analyses = [{"kind": "stats", "field": "T"}]
    assert _run(2, analyses, when) == [[1, 2]] * 2
