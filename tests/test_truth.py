"""The tests' independent truth (tests/truth.py) agrees with the models'
own serial references, so either one being wrong shows."""
import numpy as np

import truth
from insitu.models import heat2d, life


def test_heat_truth_equals_the_models_reference():
    ref = {s: t for s, _, t in heat2d.reference((37, 53), 25)}
    mine = truth.heat((37, 53), 25)
    for s in ref:
        np.testing.assert_allclose(mine[s], ref[s], rtol=1e-13, atol=0)
    assert np.ptp(mine[25]) > 10.0  # a field with structure, not a constant


def test_life_truth_equals_the_models_reference():
    ref = {s: a for s, _, a in life.reference((29, 41), 30)}
    j, i = np.arange(29)[:, None], np.arange(41)[None, :]
    mine = truth.life(life.initial(j, i), 30)
    for s in ref:
        np.testing.assert_array_equal(mine[s], ref[s])
    assert 0 < mine[30].sum() < mine[30].size
