"""``python -m insitu.replay`` under real ``mpiexec`` (2 ranks): the worked
example on real CMIP6 data, and each bad input of issue 14 failing the
same way on every rank -- one line, no traceback, the same exit status on
all ranks, no output file and no partial file left behind.

Each rank's exit status is recorded by a two-line wrapper around
``insitu.replay.cli.main``, because ``mpiexec`` reports only one of them.
"""
from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

import test_replay as tr
from conftest import PYTHON, ROOT, mpi_env, mpirun

RANKS = 2

#: runs main() and leaves rc.<rank> in the directory given first
WRAPPER = textwrap.dedent("""
    import os, sys
    from insitu.replay.cli import main
    rc = 1
    try:
        rc = main(sys.argv[2:])
    finally:
        with open(os.path.join(sys.argv[1], "rc." + os.environ["OMPI_COMM_WORLD_RANK"]), "w") as f:
            f.write(str(rc))
    sys.exit(rc)
""")

CONFIG = """\
analyses:
  - {kind: stats, field: ta_TOY_1, stats: [count, mean, nan_count]}
log_level: WARNING
"""


def replay(tmp_path, args, env=None, ranks=RANKS, config=CONFIG):
    """Run the CLI; return (per-rank statuses, insitu's stderr lines, the result)."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config)
    rcdir = tmp_path / "rc"
    shutil.rmtree(rcdir, ignore_errors=True)
    rcdir.mkdir()
    args = [str(a) for a in args]
    if "--config" not in args:
        args += ["--config", str(cfg)]
    r = mpirun(ranks, [PYTHON, "-c", WRAPPER, rcdir, *args], timeout=180, check=False,
               env=mpi_env(env))
    codes = [int((rcdir / f"rc.{i}").read_text()) for i in range(ranks)]
    lines = [line for line in r.stderr.splitlines() if line.startswith("insitu")]
    return codes, lines, r


def assert_clean_failure(tmp_path, codes, lines, r, match, status=2):
    assert codes == [status] * RANKS, (codes, r.stderr[-3000:])
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert lines[0].startswith("insitu: ") and match in lines[0], lines[0]
    left = [p.name for p in tmp_path.rglob("*out.h5*")]
    assert not left, left


def out(tmp_path) -> Path:
    return tmp_path / "out.h5"


# -- each bad input --------------------------------------------------------
def _no_match(d):
    return ["--input", d / "nothing-*.nc"], "no file matches"


def _missing_variable(d):
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    tr.write_nc(d / "b.nc", [59.0, 90.0], var="tb")
    return ["--input", d / "*.nc"], "b.nc: no variable 'ta' in this file"


def _shapes_differ(d):
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    tr.write_nc(d / "b.nc", [59.0, 90.0], lat=(-60.0, 0.0, 60.0))
    return ["--input", d / "*.nc"], "shapes differ between files: 'ta' is {'plev': 2, " \
                                    "'lat': 2, 'lon': 3} per time step in a.nc but " \
                                    "{'plev': 2, 'lat': 3, 'lon': 3} in b.nc"


def _unknown_calendar(d):
    tr.write_nc(d / "a.nc", [0.0, 31.0], calendar="mayan")
    return ["--input", d / "*.nc"], "time has calendar 'mayan', which cftime cannot decode"


def _garbage_file(d):
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    (d / "b.nc").write_bytes(b"this is not a netCDF file at all\n" * 10)
    return ["--input", d / "*.nc"], "b.nc: not a netCDF or HDF5 file"


def _truncated_file(d):
    src = tr.giss_files("GISS-E2-1-G")[0]
    data = Path(src).read_bytes()
    (d / "t.nc").write_bytes(data[: len(data) // 3])
    return ["--input", d / "*.nc"], "t.nc: cannot open with h5py"


def _overlap(d):
    t, b = tr.monthly(2000, 2)
    tr.write_nc(d / "a.nc", t[:12], time_bounds=b[:12])
    tr.write_nc(d / "b.nc", t[10:], time_bounds=b[10:])
    return ["--input", d / "*.nc"], "files overlap in time: a.nc (2000-01-16 12:00:00 to " \
                                    "2000-12-16 12:00:00) and b.nc"


def _gap(d):
    t, b = tr.monthly(2000, 3)
    tr.write_nc(d / "a.nc", t[:12], time_bounds=b[:12])
    tr.write_nc(d / "b.nc", t[24:], time_bounds=b[24:])
    return ["--input", d / "*.nc"], "gap in time between a.nc and b.nc"


def _grids_differ(d):
    (d / "m1").mkdir()
    (d / "m2").mkdir()
    tr.write_nc(d / "m1" / "a.nc", [0.0, 31.0])
    tr.write_nc(d / "m2" / "a.nc", [0.0, 31.0], lat=(-40.0, 40.0))
    return ["--input", f"m1={d / 'm1' / '*.nc'}", "--input", f"m2={d / 'm2' / '*.nc'}"], \
        "have different grids: lat[0] is -45 in one and -40 in the other"


def _times_differ(d):
    (d / "m1").mkdir()
    (d / "m2").mkdir()
    tr.write_nc(d / "m1" / "a.nc", [0.0, 31.0])
    tr.write_nc(d / "m2" / "a.nc", [31.0, 59.0])
    return ["--input", f"m1={d / 'm1' / '*.nc'}", "--input", f"m2={d / 'm2' / '*.nc'}"], \
        "replay different times"


def _bad_date(d):
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    return ["--input", d / "*.nc", "--start", "2000-02-30"], "not a date in the noleap calendar"


CASES = {f.__name__.lstrip("_"): f for f in (
    _no_match, _missing_variable, _shapes_differ, _unknown_calendar, _garbage_file,
    _truncated_file, _overlap, _gap, _grids_differ, _times_differ, _bad_date)}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_cleanly_on_every_rank(tmp_path, case):
    d = tmp_path / "in"
    d.mkdir()
    args, match = CASES[case](d)
    config = CONFIG if case not in ("grids_differ", "times_differ") else \
        CONFIG.replace("ta_TOY_1", "m1")
    codes, lines, r = replay(tmp_path, [*args, "--variable", "ta", "--output", out(tmp_path)],
                             config=config)
    assert_clean_failure(tmp_path, codes, lines, r, match)


def test_allow_gaps_replays_the_series_with_its_hole(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    args, _ = _gap(d)
    codes, lines, r = replay(tmp_path, [*args, "--variable", "ta", "--output", out(tmp_path),
                                        "--allow-gaps"])
    assert codes == [0, 0], r.stderr[-3000:]
    import h5py
    with h5py.File(out(tmp_path), "r") as f:
        assert f["time"].shape == (24,)


def test_netcdf3_refused_with_the_conversion_when_netcdf4_python_is_missing(tmp_path):
    """Without netCDF4-python a classic file gets the nccopy command; with
    it (requirements.txt installs it) the same file is replayed."""
    d = tmp_path / "in"
    d.mkdir()
    tr.write_nc(d / "c.nc", [0.0, 31.0, 59.0], fmt="NETCDF3_CLASSIC")
    block = tmp_path / "block"
    (block / "netCDF4").mkdir(parents=True)
    (block / "netCDF4" / "__init__.py").write_text("raise ImportError('blocked by the test')\n")
    args = ["--input", d / "*.nc", "--variable", "ta", "--output", out(tmp_path)]
    codes, lines, r = replay(tmp_path, args, env={"PYTHONPATH": str(block)})
    assert_clean_failure(tmp_path, codes, lines, r, f"nccopy -k nc4 {d / 'c.nc'}")
    codes, lines, r = replay(tmp_path, args)
    assert codes == [0, 0], r.stderr[-3000:]


def _corrupt_chunk(path, coord):
    """Overwrite the stored bytes of the chunk at ``coord`` (fletcher32 then
    fails on read; the metadata the scan reads are intact)."""
    import h5py
    with h5py.File(path, "r") as f:
        info = f["ta"].id.get_chunk_info_by_coord(coord)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * 8)


def test_a_record_only_one_rank_cannot_read_fails_on_every_rank(tmp_path):
    """Record 5's chunk for plev 1, which only rank 1 reads, is corrupt:
    rank 1's read fails mid-run; every rank stops with its message and
    status 2, the partial output is removed, and an existing output
    (replaced with --overwrite) is left as it was."""
    d = tmp_path / "in"
    d.mkdir()
    t, b = tr.monthly(2000, 1)
    tr.write_nc(d / "a.nc", t, time_bounds=b, chunks=(1, 1, 2, 3), fletcher32=True)
    _corrupt_chunk(d / "a.nc", (5, 1, 0, 0))
    old = tmp_path / "keep.h5"
    old.write_bytes(b"an earlier result")
    codes, lines, r = replay(tmp_path, ["--input", d / "*.nc", "--variable", "ta",
                                        "--output", old, "--overwrite"])
    assert codes == [2, 2], r.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "a.nc: cannot read record 5 of 'ta'" in lines[0], lines[0]
    assert old.read_bytes() == b"an earlier result"
    assert not list(tmp_path.glob(".*partial"))


def test_an_existing_output_is_refused_without_overwrite(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    out(tmp_path).write_bytes(b"old")
    codes, lines, r = replay(tmp_path, ["--input", d / "*.nc", "--variable", "ta",
                                        "--output", out(tmp_path)])
    assert codes == [2, 2] and len(lines) == 1 and "exists" in lines[0], r.stderr[-2000:]
    assert out(tmp_path).read_bytes() == b"old"


def test_config_errors_are_one_line(tmp_path):
    """A config that does not fit the replayed fields (an unknown field) is
    found at the first step, on every rank, before the file exists."""
    d = tmp_path / "in"
    d.mkdir()
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    codes, lines, r = replay(tmp_path, ["--input", d / "*.nc", "--variable", "ta",
                                        "--output", out(tmp_path)],
                             config=CONFIG.replace("ta_TOY_1", "tas_TOY_1"))
    assert_clean_failure(tmp_path, codes, lines, r, "config error:")
    assert "tas_TOY_1" in lines[0] and "ta_TOY_1" in lines[0]


# -- the worked example ----------------------------------------------------
def test_worked_example_on_the_giss_models(tmp_path):
    """examples/replay/giss.yaml as docs/replay.md runs it: the global and
    zonal means, the ensemble mean of the three GISS models and a plev-lat
    section, with the files' coordinates and cell bounds in the output,
    which the CF checker passes."""
    import xarray as xr
    args = []
    for k, m in tr.GISS.items():
        args += ["--input", f"{k}={os.path.dirname(tr.giss_files(m)[0])}/*.nc"]
    codes, lines, r = replay(tmp_path, [*args, "--variable", "ta",
                                        "--config", ROOT / "examples" / "replay" / "giss.yaml",
                                        "--output", out(tmp_path)])
    assert codes == [0, 0], r.stderr[-3000:]
    with xr.open_dataset(out(tmp_path), engine="h5netcdf") as ds:
        assert ds.sizes["time"] == 1368
        assert ds.ens_mean_over_lon.dims == ("time", "plev", "lat")
        assert ds.lat.attrs["standard_name"] == "latitude"
        assert ds.plev.attrs["units"] == "Pa" and ds.ens_mean.attrs["units"] == "K"
        assert np.isfinite(ds.ens_mean.values).all()
        assert set(ds.data_vars) >= {"g_mean", "ens_mean", "ens_std", "g_mean_over_lon",
                                     "g_hist", "ens_arctic_mean"}
        # the files' lat/lon cells (a regular grid: bounds from lat_bnds, lon_bnds)
        assert ds.lat.attrs["bounds"] == "lat_bounds" and ds.lon.attrs["bounds"] == "lon_bounds"
        assert ds.lat_bounds.values.tolist() == [[86.0, 88.0], [88.0, 90.0]]
        assert ds.lon_bounds.values.tolist() == [[0.0, 2.5], [2.5, 5.0]]
        # the config as the user wrote it, as a live run records its YAML
        example = ROOT / "examples" / "replay" / "giss.yaml"
        assert ds.attrs["insitu_config"] == example.read_text()
        assert ds.attrs["insitu_config_path"] == str(example)
    from test_examples import cf_failures
    assert cf_failures(out(tmp_path)) == {}


def test_progress_bar_on_rank_0_in_a_terminal(tmp_path):
    """Under mpiexec a rank's stdout is a terminal when mpiexec's is (its
    stderr never is): the bar shows records, the file and MB/s, once."""
    import pty
    import subprocess
    d = tmp_path / "in"
    d.mkdir()
    for y in range(3):
        t, b = tr.monthly(2000 + y, 1)
        tr.write_nc(d / f"y{y}.nc", t, time_bounds=b)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG)
    master, slave = pty.openpty()
    proc = subprocess.Popen(["mpiexec", "-n", "2", PYTHON, "-m", "insitu.replay", "--input",
                             str(d / "*.nc"), "--variable", "ta", "--config", str(cfg),
                             "--output", str(out(tmp_path))],
                            stdout=slave, stderr=subprocess.PIPE, env=mpi_env(), cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    import select
    import time
    from conftest import kill_session
    chunks, deadline = [], time.monotonic() + 180
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            kill_session(proc.pid)
            pytest.fail("timed out after 180 s (a hang?)")
        if not select.select([master], [], [], left)[0]:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:  # the terminal closed: every writer exited
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "36/36 steps" in text and "file 3/3" in text and "MB/s" in text, text[-2000:]
    assert text.count("36/36 steps") == 1  # rank 0 only
