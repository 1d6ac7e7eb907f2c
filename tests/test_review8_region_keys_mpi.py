"""Review of fcc2058 and c1c9e6d under real mpiexec: two ``stats`` regions
that cover the same rows of rank 0's slab but not of the others' (the
heat stand-in's 37 rows split 19/18 at 2 and 4 ranks, 13/12/12 at 3:
``north`` is y [0, 19), ``whole`` every row).  ``whole`` must be the
whole field's statistics, bit for bit those of ``plain`` (no region), and
``north`` those of its rows; keyed by the local slices (StepMemo.formed
since c1c9e6d, Session._runners since fcc2058) rank 0 wrote ``north``'s
numbers under ``whole``'s names (count 19*53 for 37*53).

Fails on 37a2e9a and 749e0e5 at 2, 3 and 4 ranks; passes on c1c9e6d's
parent and with /tmp/r8/fix_region_keys.patch."""
import h5py
import numpy as np
import pytest

from conftest import PYTHON, mpirun

CONFIG = """\
fields: {T: {dims: [y, x]}, area: {dims: [y, x]}}
analyses:
  - {kind: stats, field: T, name: north, region: {y: [0, 19]}, every: 2}
  - {kind: stats, field: T, name: whole, region: {y: [0, 37]}, every: 2}
  - {kind: stats, field: T, name: whole_sample, region: {y: [0, 37], x: [0, 53]},
     stats: [var, std, count], ddof: 1, every: 4}
  - {kind: stats, field: T, name: plain, every: 2}
  - {kind: stats, field: T, name: plain_sample, stats: [var, std, count], ddof: 1, every: 4}
  - {kind: stats, field: T, name: wnorth, region: {y: [0, 19]}, weights: area,
     stats: [mean, var], every: 2}
  - {kind: stats, field: T, name: wwhole, region: {y: [0, 37]}, weights: area,
     stats: [mean, var], every: 2}
  - {kind: stats, field: T, name: wplain, weights: area, stats: [mean, var], every: 2}
"""


@pytest.mark.parametrize("nranks", [2, 3, 4])
def test_regions_that_meet_on_one_rank_keep_their_own_numbers(tmp_path, nranks):
    cfg = tmp_path / "regions.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                    "--steps", 8, "--shape", 37, 53, "--output", out, "--no-progress"],
           timeout=180)
    with h5py.File(out, "r") as f:
        v = {k: f[k][...] for k in f if k.startswith(("north_", "whole", "plain", "w"))}
    assert (v["whole_count"] == 37 * 53).all(), v["whole_count"]
    assert (v["north_count"] == 19 * 53).all(), v["north_count"]
    for stat in ("count", "sum", "mean", "min", "max", "std", "nan_count", "inf_count"):
        assert v[f"whole_{stat}"].tobytes() == v[f"plain_{stat}"].tobytes(), stat
    for stat in ("count", "var", "std"):
        assert v[f"whole_sample_{stat}"].tobytes() == v[f"plain_sample_{stat}"].tobytes(), stat
    for stat in ("mean", "var"):
        assert v[f"wwhole_{stat}"].tobytes() == v[f"wplain_{stat}"].tobytes(), stat
        assert v[f"wwhole_{stat}"].tobytes() != v[f"wnorth_{stat}"].tobytes(), stat
    assert not np.array_equal(v["whole_sum"], v["north_sum"])
