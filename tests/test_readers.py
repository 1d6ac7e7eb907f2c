"""The output is netCDF-4: ncdump, h5dump, and xarray with both engines read
it, and the two engines agree on variables, dimensions and coordinates."""
import json

import pytest

from conftest import PYTHON, run

# Each engine in its own process: netCDF4's wheel carries its own HDF5.
DESCRIBE = """
import json, sys, warnings
import xarray as xr
warnings.simplefilter("error")
with xr.open_dataset(sys.argv[1], engine=sys.argv[2]) as ds:
    ds.load()
    print(json.dumps({
        "vars": sorted(ds.data_vars), "coords": sorted(ds.coords),
        "dims": {k: int(v) for k, v in ds.sizes.items()},
        "time_dtype": str(ds["time"].dtype),
        "T_mean": [float(v) for v in ds["T_mean"].values],
        "units": ds["T_mean"].attrs["units"], "calendar": ds["time"].encoding.get("calendar")}))
"""


@pytest.fixture
def output(analyses_output):
    return analyses_output


def test_ncdump_reads_the_header(output):
    r = run(["ncdump", "-h", output], timeout=60)
    for text in ("time = UNLIMITED", "double T_mean(time)", 'T_mean:units = "K"',
                 "T_coarse(time, y_c8, x_c8)", 'time:calendar = "standard"'):
        assert text in r.stdout, text


def test_h5dump_reads_the_header(output):
    r = run(["h5dump", "-H", output], timeout=60)
    assert 'DATASET "T_mean"' in r.stdout and "DIMENSION_LIST" in r.stdout


def test_both_xarray_engines_agree(output):
    seen = {}
    for engine in ("h5netcdf", "netcdf4"):
        r = run([PYTHON, "-c", DESCRIBE, output, engine], timeout=120)
        seen[engine] = json.loads(r.stdout)
    a, b = seen["h5netcdf"], seen["netcdf4"]
    assert a == b
    assert a["time_dtype"].startswith("datetime64") and a["calendar"] == "standard"
    assert "T_mean_over_x" in a["vars"] and "y" in a["coords"]
