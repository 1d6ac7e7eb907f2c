"""A full disk during a run (issue 11): a clear error naming the cause, the
step and what the file still holds, a non-zero exit, and every step written
before it readable by h5py and both xarray engines.  The disk is a small
tmpfs mounted by the test (root only; skipped with the reason otherwise)."""
import re

import h5py
import pytest

from conftest import PYTHON, mpirun


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs("size=512k", "disk")


@pytest.mark.parametrize("nranks", [1, 2])
def test_full_disk_names_the_cause_and_keeps_earlier_steps(small_disk, tmp_path, nranks):
    cfg = tmp_path / "c.yaml"
    # A durable flush every output step: the policy under which "steps up to
    # N - 1 are in the file" when step N fails.
    cfg.write_text("output: {flush_every_steps: 1}\n"
                   "fields: {T: {dims: [y, x]}}\nanalyses:\n  - {kind: stats, field: T}\n"
                   "  - {kind: reduce, field: T, over: [x]}\n")
    out = small_disk / "o.h5"
    r = mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--shape", 200, 100,
                        "--steps", 2000, "--config", cfg, "--output", out],
               timeout=180, check=False)
    assert r.returncode == 5, r.stderr[-3000:]
    m = re.search(r"no space left on device while writing step (\d+) to \S+ \(\d+ bytes free\); "
                  r"steps up to (\d+) are in the file", r.stderr)
    assert m, r.stderr[-3000:]
    failed, kept = int(m.group(1)), int(m.group(2))
    assert kept == failed - 1 and kept > 10
    assert "Traceback" not in r.stderr
    from insitu.inspect import committed, open_dataset
    assert committed(str(out))["time"] == kept  # the readers' contract
    with h5py.File(out, "r", locking=False) as f:
        assert list(f["step"][:kept]) == list(range(1, kept + 1))
    for engine in ("h5netcdf", "netcdf4"):
        with open_dataset(str(out), engine=engine) as ds:
            ds.load()
            assert ds.sizes["time"] == kept
            assert not ds["T_mean"].isnull().any()
            assert not ds["T_mean_over_x"].isnull().any()
