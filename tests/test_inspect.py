"""python -m insitu.inspect: the summary, and --plot's figures (not empty)."""
import pytest

from conftest import PYTHON, mpirun, run


@pytest.fixture
def output(analyses_output):
    return analyses_output


def test_summary_lists_provenance_triggers_and_config(output):
    r = run([PYTHON, "-m", "insitu.inspect", output, "--config"], timeout=60)
    for text in ("ranks: 2", "steps 5..20", "field T: float64 (96, 128) dims ('y', 'x')",
                 "trigger warm fired at step", "versions: insitu", "T_coarse", "config:",
                 "kind: histogram"):
        assert text in r.stdout, text


def test_plots_one_sensible_figure_per_result(output, tmp_path):
    import matplotlib.image as mpimg
    r = run([PYTHON, "-m", "insitu.inspect", output, "--plot", tmp_path], timeout=120)
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    for name in ("series_T_mean.png", "hovmoller_T_mean_over_x.png", "map_T_coarse.png",
                 "histogram_T_hist.png", "probe_T_probe.png", "map_warm_T.png",
                 "series_T_mean_w2_mean.png", "series_hot_count.png"):
        assert name in files, files
    assert f"wrote {len(files)} figure(s)" in r.stdout
    # no plots of coordinates or bounds (issue 15): step numbers, time bounds
    assert not [n for n in files if "step" in n or "bounds" in n], files
    for f in tmp_path.glob("*.png"):
        img = mpimg.imread(f)
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.01, f"{f.name} looks blank"


def test_inspect_reads_a_file_left_by_a_killed_run(tmp_path):
    """The kill tests leave such files; here a run that stopped mid-way."""
    import h5py
    out = tmp_path / "partial.h5"
    mpirun(1, [PYTHON, "-m", "insitu.run", "--steps", 20, "--output", out])
    with h5py.File(out, "r+") as f:  # as if killed before finalize wrote its attributes
        del f.attrs["insitu_finished"]
    r = run([PYTHON, "-m", "insitu.inspect", out, "--plot", tmp_path / "figs"], timeout=60)
    assert "finished: no (still running or killed)" in r.stdout
    assert (tmp_path / "figs" / "series_T_mean.png").exists()
