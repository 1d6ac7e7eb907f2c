"""Review of replay's rank-0 verdict (host._on_root, 26fabfe): the error
text travels as UTF-8 bytes, but a file name that is not valid UTF-8 (any
byte string is a legal POSIX name; Python holds it with surrogate escapes)
makes ``str.encode()`` raise on rank 0 alone, so a plain input error (a file
that is not netCDF) becomes a traceback on rank 0, and the other ranks are
left waiting in the broadcast until the launcher kills them (with a
launcher that does not, they waited for ever: host._idle had no timeout,
since replaced by host.Own.wait and hang_timeout_seconds).
The same was true before this session (_bcast_text encoded the same way).
Fixed: text crosses ranks encoded and decoded with
``errors="surrogateescape"`` (host._ENC), so the name travels as its own
bytes; this test failed before the fix."""
import os
import shutil
import sys

import pytest

import test_replay as tr
import test_replay_cli as tc
from conftest import PYTHON, mpi_env, mpirun


def _replay(tmp_path, args):
    """test_replay_cli.replay, but a rank that left no status (killed by
    the launcher) shows as None instead of failing the read."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(tc.CONFIG)
    rcdir = tmp_path / "rc"
    shutil.rmtree(rcdir, ignore_errors=True)
    rcdir.mkdir()
    r = mpirun(tc.RANKS, [PYTHON, "-c", tc.WRAPPER, rcdir, *map(str, args), "--config", cfg],
               timeout=120, check=False, env=mpi_env(None))
    codes = [int((rcdir / f"rc.{i}").read_text()) if (rcdir / f"rc.{i}").exists() else None
             for i in range(tc.RANKS)]
    lines = [line for line in r.stderr.splitlines() if line.startswith("insitu")]
    return codes, lines, r


def test_a_bad_file_with_a_non_utf8_name_fails_cleanly_on_every_rank(tmp_path):
    if sys.platform == "darwin":
        pytest.skip("macOS file systems refuse non-UTF-8 names")
    d = tmp_path / "in"
    d.mkdir()
    tr.write_nc(d / "a.nc", [0.0, 31.0])
    (d / os.fsdecode(b"b\xff.nc")).write_bytes(b"this is not a netCDF file at all\n" * 10)
    codes, lines, r = _replay(tmp_path, ["--input", d / "*.nc", "--variable", "ta",
                                         "--output", tc.out(tmp_path)])
    tc.assert_clean_failure(tmp_path, codes, lines, r, "not a netCDF or HDF5 file")
