"""CF 1.11 metadata of the output, checked by the IOOS compliance checker
(the tool data centres use) and attribute by attribute.

The file-level attributes (Conventions, history) are built by
insitu.session.provenance()."""
import json
import re
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run

pytest.importorskip("compliance_checker")
CHECKER = str(Path(sys.executable).with_name("compliance-checker"))
def NEEDS_SESSION(test):  # once xfail, until provenance() said CF-1.11 and wrote history
    return test


@pytest.fixture(scope="module")
def nc(analyses_output, tmp_path_factory):
    """examples/heat2d_analyses.yaml's output; the checker wants a .nc name."""
    path = tmp_path_factory.mktemp("cf") / "all.nc"
    shutil.copy(analyses_output, path)
    return path


@pytest.fixture(scope="module")
def report(nc):
    r = run([CHECKER, "--test", "cf:1.11", "-f", "json", "-o", "-", nc], timeout=300,
            check=False)
    return json.loads(r.stdout[r.stdout.index("{"):])["cf:1.11"]


def failures(report):
    return {r["name"]: r["msgs"] for p in ("high_priorities", "medium_priorities",
                                          "low_priorities")
            for r in report.get(p, []) if r["value"][0] != r["value"][1]}


def test_checker_finds_nothing_but_the_file_attributes(report):
    bad = {k: v for k, v in failures(report).items() if not k.startswith("§2.6")}
    assert bad == {}


@NEEDS_SESSION
def test_checker_gives_full_marks(report):
    assert failures(report) == {}
    assert report["scored_points"] == report["possible_points"]


@pytest.mark.parametrize("model,example", [("heat2d", "heat2d.yaml"), ("life", "life.yaml"),
                                           ("heat2d", "heat2d_reproducible.yaml")])
def test_every_python_example_scores_full_marks(model, example, tmp_path):
    from conftest import PYTHON, ROOT, mpirun
    out = tmp_path / "x.nc"  # the checker wants a netCDF name
    mpirun(2, [PYTHON, "-m", "insitu.run", "--model", model, "--config",
               ROOT / "examples" / example, "--steps", 10, "--output", out], timeout=180)
    r = run([CHECKER, "--test", "cf:1.11", "-f", "json", "-o", "-", out], timeout=300,
            check=False)
    rep = json.loads(r.stdout[r.stdout.index("{"):])["cf:1.11"]
    assert failures(rep) == {}, (example, failures(rep))


@NEEDS_SESSION
def test_conventions_and_history(nc):
    with h5py.File(nc) as f:
        assert "CF-1.11" in f.attrs["Conventions"]
        assert f.attrs.get("history")


def test_time_axes_say_they_count_no_leap_seconds(nc):
    with h5py.File(nc) as f:
        axes = [n for n in f if f[n].attrs.get("standard_name") == "time"]
        assert {"time", "time_w2", "time_warm"} <= set(axes)
        for n in axes:
            assert f[n].attrs["units_metadata"] == "leap_seconds: none", n


def test_bounds_carry_no_units_of_their_own(nc):
    with h5py.File(nc) as f:
        bounds = [f[n].attrs["bounds"] for n in f if "bounds" in f[n].attrs]
        assert "T_hist_bin_bounds" in bounds and "x_c8_bounds" in bounds
        for b in bounds:
            assert "units" not in f[b].attrs and "standard_name" not in f[b].attrs, b


def test_coarse_dims_copy_the_fine_coordinate(nc):
    with h5py.File(nc) as f:
        for fine, coarse in (("y", "y_c8"), ("x", "x_c8")):
            for k in ("standard_name", "long_name", "units"):
                assert f[coarse].attrs[k] == f[fine].attrs[k], (coarse, k)
            fv, cv, cb = f[fine][...], f[coarse][...], f[f"{coarse}_bounds"][...]
            step = fv[1] - fv[0]
            np.testing.assert_allclose(cv, fv.reshape(-1, 8).mean(axis=1))
            np.testing.assert_allclose(cb[:, 0], fv[::8] - step / 2)
            np.testing.assert_allclose(cb[:, 1], fv[7::8] + step / 2)
        assert f["T_coarse"].attrs["cell_methods"] == "y_c8: x_c8: mean"


def test_cell_methods_name_only_what_the_variable_has(nc):
    """Each name is a dim of the variable, ``area``, or a coordinate it lists
    (CF 7.3): the checker tests the last by substring, this test by word."""
    with h5py.File(nc) as f:
        checked = 0
        for n, v in f.items():
            cm = v.attrs.get("cell_methods")
            if cm is None:
                continue
            dims = [s.name.lstrip("/") for d in v.dims for s in d.values()]
            coords = str(v.attrs.get("coordinates", "")).split()
            for name in re.findall(r"(\w+):", cm):
                assert name in dims or name == "area" or name in coords, (n, cm)
                if name in coords:
                    assert f[name].shape == (), (n, name)
            checked += 1
        assert checked > 30
        assert f["T_mean"].attrs["cell_methods"] == "area: mean"
        assert f["T_mean_over_x"].attrs["cell_methods"] == "x_extent: mean"
        assert f["x_extent"].attrs["standard_name"] == "longitude"
        assert float(f["x_extent"][()]) == pytest.approx(180.0 - 2.8125 / 2)


# -- python analyses: dims named by the user or by the field ------------------

def _user(outputs):
    from test_time_and_triggers import USER
    return {**USER, "outputs": {"hot": {"op": "sum"}, "tmax": {"op": "max"},
                                "ranks": {"op": "sum"}, **outputs}}


def _dims(outputs):
    from test_time_and_triggers import FakeWorld, drive
    writer = FakeWorld(2).run(drive, [_user(outputs)])[0][0]
    return writer.variables["u_rows"].dims


def test_python_output_dims_come_from_the_field():
    assert _dims({"rows": {"op": "sum", "shape": [12]}}) == ("y",)


def test_python_output_dims_named_by_the_user():
    assert _dims({"rows": {"op": "sum", "shape": [12], "dims": ["row"]}}) == ("row",)


@pytest.mark.parametrize("out,message", [
    ({"op": "sum", "shape": [7]}, r"shape \[7\] matches no dims of T"),
    ({"op": "sum", "shape": [12], "dims": ["a", "b"]}, "2 names for the 1 dims"),
])
def test_python_output_dims_that_cannot_be_named_are_refused(out, message):
    from insitu.analyses.base import AnalysisError
    from insitu.schema import ConfigError
    with pytest.raises((AnalysisError, ConfigError), match=message):
        _dims({"rows": out})
