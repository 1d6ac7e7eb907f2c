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


def test_listing_groups_every_output_by_analysis_with_dims_units_and_cadence(output):
    """Issue 15: every output, windows and trigger snapshots included, under
    the analysis that wrote it, with dims and shape, units and cadence."""
    r = run([PYTHON, "-m", "insitu.inspect", output], timeout=60)
    out = r.stdout
    assert "outputs, by analysis:" in out
    groups = [line.strip() for line in out.splitlines() if line.startswith("    ")
              and not line.startswith("      ")]
    for text in ("stats of T [along time, 4 committed row(s)] every 5 steps",
                 "stats of T, region y: [50, 70), x: [30, 60) [along time",
                 "stats of T, weighted by area [along time",
                 "histogram of T [along time", "coarsen of T [along time",
                 "window w2 of T [along time_w2, 1 committed row(s)] one row per window",
                 "trigger warm: snapshots (warm_T) when T_max > 300",
                 "python (examples/python/diagnostics.py:hot_cells)"):
        assert any(g.startswith(text) for g in groups), (text, groups)
    for text in ("T_coarse               (time, y_c8=12, x_c8=16) float64 [K]",
                 "T_hist                 (time, T_hist_bin=60) int64 [1]",
                 "T_mean_w2_mean         (time_w2) float64 [K]",
                 "w2_samples             (time_w2) int32 [1]",
                 "warm_T                 (time_warm, y=96, x=128) float64 [K]",
                 "T_mean                 (time) float64 [K]  last="):
        assert text in out, text
    # each variable listed once, under one analysis; no coordinates or bounds
    names = [line.split()[0] for line in out.splitlines() if line.startswith("      ")]
    assert len(names) == len(set(names))
    assert not {"step", "time", "step_w2", "time_w2_bounds", "T_hist_bin_bounds"} & set(names)
    assert "NOT FINISHED" not in out


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
    assert r.stdout.splitlines()[2].startswith("  NOT FINISHED: the run is still running")
    assert (tmp_path / "figs" / "series_T_mean.png").exists()


def test_summary_lists_the_checkpoints(tmp_path):
    """Issue 13: inspect lists the checkpoints a restart can go on from (and
    says when there are none)."""
    out = tmp_path / "ck.h5"
    mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--steps", 12,
               "--checkpoint-every", 5, "--model-restart", tmp_path / "model.h5",
               "--output", out, "--no-progress"], timeout=180)
    r = run([PYTHON, "-m", "insitu.inspect", out], timeout=60)
    lines = [line.strip() for line in r.stdout.splitlines() if "checkpoint" in line]
    assert len(lines) == 2 and lines[0].startswith("checkpoint at step 5 (time")
    assert lines[1].startswith("checkpoint at step 10 (time") and "rows time " in lines[1]
    assert "INCOMPLETE" not in r.stdout


def test_summary_says_when_there_is_no_checkpoint(output):
    r = run([PYTHON, "-m", "insitu.inspect", output], timeout=60)
    assert "checkpoints: none" in r.stdout
