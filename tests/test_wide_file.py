"""A file with 300 outputs opens quickly with both xarray engines.

Regression guard: every output lies on the unlimited ``time`` dimension, and
h5netcdf sizes an unlimited dimension by dereferencing every back-pointer in
its scale's REFERENCE_LIST, once per shape query of every variable.  With
one back-pointer per output, opening 300 outputs took 13-50 s with the
h5netcdf engine (0.1-1 s with netcdf4).  The writer now names the growing
axis through each variable's DIMENSION_LIST only (insitu.writer), and the
open takes under a second.  The bound is generous: it guards against the
quadratic, not against a slow machine.
"""
import json

import pytest

from conftest import PYTHON, mpirun, run

N_ANALYSES = 60
STATS = ["count", "mean", "min", "max", "std"]          # 60 x 5 = 300 outputs

# Each engine in its own process (netCDF4's wheel carries its own HDF5); the
# imports are done before the clock starts.
OPEN = """
import json, sys, time, warnings
import xarray as xr
import h5netcdf, netCDF4  # noqa: F401
warnings.simplefilter("error")
t0 = time.perf_counter()
ds = xr.open_dataset(sys.argv[1], engine=sys.argv[2])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "n": len(ds.data_vars),
                  "dims": {k: int(v) for k, v in ds.sizes.items()},
                  "T7_std_dims": list(ds["T7_std"].dims),
                  "T59_mean": [float(v) for v in ds["T59_mean"].values]}))
ds.close()
"""


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("wide")
    cfg = d / "wide.yaml"
    lines = ['time: {units: "seconds since 2000-01-01 00:00:00", calendar: standard}',
             "fields:", "  T: {units: K, long_name: temperature, dims: [y, x]}",
             "analyses:"]
    lines += [f"  - {{kind: stats, field: T, name: T{i}, stats: [{', '.join(STATS)}]}}"
              for i in range(N_ANALYSES)]
    cfg.write_text("\n".join(lines) + "\n")
    out = d / "wide.h5"
    mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
               "--steps", 4, "--output", out], timeout=300)
    return out


@pytest.mark.parametrize("engine", ["h5netcdf", "netcdf4"])
def test_300_outputs_open_in_under_two_seconds(wide_file, engine):
    r = run([PYTHON, "-c", OPEN, wide_file, engine], timeout=300)
    got = json.loads(r.stdout)
    print(f"{engine}: opened {got['n']} variables in {got['seconds']:.2f} s")
    assert got["n"] == N_ANALYSES * len(STATS)
    assert got["dims"] == {"time": 4}
    assert got["T7_std_dims"] == ["time"]
    assert len(got["T59_mean"]) == 4
    assert got["seconds"] <= 2.0, f"{engine} took {got['seconds']:.1f} s to open 300 outputs"


def test_300_outputs_keep_named_dims_for_every_reader(wide_file):
    r = run(["ncdump", "-h", wide_file], timeout=60)
    assert "time = UNLIMITED ; // (4 currently)" in r.stdout
    assert "double T0_mean(time) ;" in r.stdout and "phony" not in r.stdout
    check = ("import h5py, sys\n"
             "with h5py.File(sys.argv[1]) as f:\n"
             "    print(sorted({s.name for v in f.values() if isinstance(v, h5py.Dataset)\n"
             "                  and not v.is_scale and v.ndim\n"
             "                  for s in v.dims[0].values()}))\n")
    r = run([PYTHON, "-c", check, wide_file], timeout=60)
    assert r.stdout.strip() == "['/time']"
