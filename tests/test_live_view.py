"""The live view's document without a browser or a server (the browser
test is tests/test_live.py): every panel from a file with every output
kind, the status with errors and trigger firings, a file that does not
exist yet, and rows that land between two polls."""
import json
import shutil

import h5py
import pytest

pytest.importorskip("bokeh", reason="bokeh is not installed (./scripts/install.sh installs it)")


def _view(path):
    from bokeh.document import Document

    from insitu.live.app import LiveView
    return LiveView(Document(), str(path), interval=1.0)


def test_every_panel_from_a_file_with_every_output_kind(analyses_output, tmp_path):
    path = tmp_path / "all.h5"
    shutil.copy(analyses_output, path)
    with h5py.File(path, "r+") as f:  # an analysis that failed, as a run records it
        f.attrs["insitu_errors"] = json.dumps([{"step": 10, "analysis": "analyses[3] (reduce)",
                                                "ranks_failed": 1, "first_rank": 1,
                                                "error": "ValueError: boom"}])
    view = _view(path)
    doc = view.doc
    status = doc.get_model_by_name("status").text
    assert "finished" in status and ">4<" in status
    assert "ERROR at step 10" in status and "ValueError: boom" in status
    assert "2 trigger firing(s)" in status
    assert len(doc.get_model_by_name("series_T_mean").data["x"]) == 4
    chosen = doc.get_model_by_name("series_choice").value
    assert set(chosen) <= {"T_max", "T_min", "T_mean", "T_box_max", "T_box_min", "T_box_mean",
                           "T_hot_max"} and "T_mean" in chosen
    # the map and histogram are filled at the second poll (the first builds)
    view.poll()
    assert doc.get_model_by_name("map_image").data["image"][0].shape == (12, 16)
    assert len(doc.get_model_by_name("hist_bars").data["top"]) == 60
    assert len(doc.get_model_by_name("window_T_mean_w2_mean").data["y"]) == 1
    # trigger firings are marked on the series' time axis
    spans = [m for m in doc.get_model_by_name("series").center
             if getattr(m, "name", "") and m.name.startswith("trigger_warm")]
    assert len(spans) == 2
    # a profile (reduction) draws as a line over its coordinate
    view._set_map("T_mean_over_x")
    assert len(doc.get_model_by_name("map_profile").data["y"]) == 96


def test_a_file_that_does_not_exist_yet_then_appears(analyses_output, tmp_path):
    path = tmp_path / "later.h5"
    view = _view(path)
    assert "waiting for the file" in view.doc.get_model_by_name("status").text
    shutil.copy(analyses_output, path)
    view.poll()
    assert len(view.doc.get_model_by_name("series_T_mean").data["x"]) == 4


def test_rows_that_land_between_polls_are_streamed_once(analyses_output, tmp_path):
    """The committed count grows: only the new rows are added."""
    path = tmp_path / "grow.h5"
    shutil.copy(analyses_output, path)
    with h5py.File(path, "r+") as f:  # as if only 2 of 4 rows were committed
        c = f["insitu/committed_rows"]
        axes = c.attrs["axes"].split()
        rows = c[...]
        rows[axes.index("time")] = 2
        c[...] = rows
        del f.attrs["insitu_finished"]
    view = _view(path)
    src = view.doc.get_model_by_name("series_T_mean")
    assert len(src.data["x"]) == 2
    assert "running" in view.doc.get_model_by_name("status").text
    with h5py.File(path, "r+") as f:
        rows[axes.index("time")] = 4
        f["insitu/committed_rows"][...] = rows
    view.poll()
    view.poll()
    assert len(src.data["x"]) == 4
    with h5py.File(path, "r") as f:
        assert list(src.data["y"]) == list(f["T_mean"][...])
