"""Replay (issue 14), serial parts and shared helpers: the file-set rules,
the field names, the dates, the coordinates from files, the decomposition
replay chooses, CF masking; and the data the MPI tests replay.

The data are real CMIP6 ``ta`` files from the ``esmvaltool-sample-data``
package (a test dependency in requirements.txt); it is located without
being imported (its ``__init__`` imports iris, which replay never needs).
Synthetic files are written with netCDF4-python, in both netCDF-4 and
classic netCDF-3 formats, for the cases the real data do not have.
"""
from __future__ import annotations

import glob
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest


# -- the real data ---------------------------------------------------------
def sample_root() -> Path:
    from insitu.replay.samples import cmip6_dir
    d = cmip6_dir()
    if d is None:
        pytest.fail("esmvaltool-sample-data is not installed (a test dependency in "
                    "requirements.txt: ./scripts/install.sh installs it)")
    return Path(d)


GISS = {"g": "GISS-E2-1-G", "gcc": "GISS-E2-1-G-CC", "h": "GISS-E2-1-H"}


def giss_files(model: str) -> list[str]:
    files = sorted(glob.glob(str(sample_root() / "CMIP" / "NASA-GISS" / model / "historical" /
                                 "*" / "Amon" / "ta" / "gn" / "*" / "*.nc")))
    assert len(files) == 3, files
    return files


def awi_files() -> list[str]:
    files = sorted(glob.glob(str(sample_root() / "CMIP" / "AWI" / "AWI-CM-1-1-MR" /
                                 "historical" / "*" / "Amon" / "ta" / "gn" / "*" / "*.nc")))
    assert len(files) == 65, len(files)
    return files


def punch_holes(files: list[str], dest: Path, seed: int, all_missing=None) -> list[str]:
    """Copies of real files with cells set to CMIP's missing value (1e20,
    declared by ``missing_value``): 5% of the cells, and every cell of the
    records ``all_missing`` names (file index -> record: a step with no
    finite value)."""
    import h5py
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for k, f in enumerate(files):
        p = dest / os.path.basename(f)
        shutil.copy(f, p)
        with h5py.File(p, "r+") as h:
            ta = h["ta"]
            data = ta[...]
            holes = rng.random(data.shape) < 0.05
            data[holes] = np.float32(1e20)
            if all_missing and k in all_missing:
                data[all_missing[k]] = np.float32(1e20)
            ta[...] = data
            ta.attrs["missing_value"] = np.float32(1e20)
        out.append(str(p))
    return out


def open_model(files):
    """xarray's view of a file set: open_mfdataset, CF-decoded (masked)."""
    import xarray as xr
    return xr.open_mfdataset(files, engine="h5netcdf", combine="by_coords",
                             data_vars="minimal", coords="minimal", compat="override",
                             decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))


# -- synthetic files -------------------------------------------------------
def write_nc(path, times, data=None, *, units="days since 2000-01-01", calendar="noleap",
             fmt="NETCDF4", var="ta", lat=(-45.0, 45.0), lon=(0.0, 120.0, 240.0),
             plev=(85000.0, 50000.0), attrs=None, source_id="TOY-1", bounds=True,
             time_bounds=None, chunks=None, fletcher32=False):
    """A small CMIP-like file: ``var(time, plev, lat, lon)`` with coordinates,
    their bounds and CF attributes."""
    import netCDF4
    times = np.asarray(times, dtype=np.float64)
    shape = (times.size, len(plev), len(lat), len(lon))
    if data is None:
        data = 250.0 + np.arange(np.prod(shape), dtype=np.float64).reshape(shape) % 37
    with netCDF4.Dataset(path, "w", format=fmt) as d:
        d.source_id = source_id
        d.createDimension("time", None)
        d.createDimension("bnds", 2)
        for name, vals, a in (("plev", plev, {"units": "Pa", "standard_name": "air_pressure",
                                               "positive": "down", "axis": "Z"}),
                              ("lat", lat, {"units": "degrees_north", "axis": "Y",
                                            "standard_name": "latitude"}),
                              ("lon", lon, {"units": "degrees_east", "axis": "X",
                                            "standard_name": "longitude"})):
            d.createDimension(name, len(vals))
            v = d.createVariable(name, "f8", (name,))
            v[:] = vals
            v.setncatts(a)
            if bounds:
                v.bounds = f"{name}_bnds"
                b = d.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
                vals = np.asarray(vals, dtype=np.float64)
                step = np.diff(vals).mean() if vals.size > 1 else 1.0
                b[:] = np.stack([vals - step / 2, vals + step / 2], axis=1)
        t = d.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.standard_name, t.axis = units, calendar, "time", "T"
        t[:] = times
        if time_bounds is not None:
            t.bounds = "time_bnds"
            tb = d.createVariable("time_bnds", "f8", ("time", "bnds"))
            tb[:] = time_bounds
        kw = {}
        if fmt == "NETCDF4" and chunks:
            kw = {"chunksizes": chunks, "fletcher32": fletcher32}
        v = d.createVariable(var, "f4", ("time", "plev", "lat", "lon"), **kw)
        v.units, v.standard_name, v.long_name = "K", "air_temperature", "Air Temperature"
        for k, val in (attrs or {}).items():
            v.setncattr(k, val)
        v[:] = data
    return path


def monthly(year0: int, years: int):
    """Mid-month times and month bounds (days since 2000-01-01, noleap)."""
    lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    edges = [365 * (year0 - 2000)]
    for _ in range(years):
        for n in lengths:
            edges.append(edges[-1] + n)
    edges = np.array(edges, dtype=np.float64)
    return (edges[:-1] + edges[1:]) / 2, np.stack([edges[:-1], edges[1:]], axis=1)


# -- the file-set rules ----------------------------------------------------
def _scan(tmp_path, files, **kw):
    from insitu.replay.fileset import scan
    return scan([(None, str(tmp_path / "*.nc"))], ["ta"], **kw)


def test_files_are_ordered_by_decoded_time_not_by_name(tmp_path):
    """The file named first holds the later years; a second file counts
    from another reference date: the order comes from the decoded dates."""
    t0, b0 = monthly(2000, 1)
    t1, b1 = monthly(2001, 1)
    write_nc(tmp_path / "a.nc", t1, time_bounds=b1)
    # the same calendar, other units: days since 2000-01-01 minus 31 days
    write_nc(tmp_path / "b.nc", t0 + 31.0, units="days since 1999-12-01", time_bounds=b0 + 31.0)
    plan = _scan(tmp_path, None)
    assert [os.path.basename(p) for p in plan.sets[0].files] == ["b.nc", "a.nc"]
    np.testing.assert_allclose(plan.times, np.concatenate([t0 + 31.0, t1 + 31.0]))
    assert plan.time_units == "days since 1999-12-01" and plan.calendar == "noleap"
    assert plan.dates[0] == "2000-01-16 12:00:00" and plan.dates[-1].startswith("2001-12-16")


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "proleptic_gregorian", "julian",
                                      "all_leap", "standard"])
def test_calendars_decode(tmp_path, calendar):
    import cftime
    write_nc(tmp_path / "x.nc", [0.0, 30.0, 60.0], calendar=calendar)
    plan = _scan(tmp_path, None)
    want = [d.isoformat(sep=" ") for d in
            cftime.num2date([0.0, 30.0, 60.0], "days since 2000-01-01", calendar)]
    assert plan.calendar == calendar and [d[:10] for d in plan.dates] == [w[:10] for w in want]
    assert plan.dates[1] == ("2000-02-01" if calendar == "360_day" else "2000-01-31")


def test_overlap_and_gap_are_refused_and_gaps_can_be_allowed(tmp_path):
    from insitu.replay.sources import InputError
    t, b = monthly(2000, 3)
    write_nc(tmp_path / "y2000.nc", t[:12], time_bounds=b[:12])
    write_nc(tmp_path / "y2002.nc", t[24:], time_bounds=b[24:])
    with pytest.raises(InputError, match=r"gap in time between y2000.nc and y2002.nc: nothing "
                                         r"between 2000-12-16 12:00:00 and 2002-01-16 12:00:00"
                                         r".*--allow-gaps"):
        _scan(tmp_path, None)
    assert len(_scan(tmp_path, None, allow_gaps=True).times) == 24
    # a gap outside --start/--end does not matter
    assert len(_scan(tmp_path, None, end="2000").times) == 12
    write_nc(tmp_path / "y2000b.nc", t[6:18], time_bounds=b[6:18])
    with pytest.raises(InputError, match="files overlap in time: y2000.nc .* and y2000b.nc"):
        _scan(tmp_path, None, allow_gaps=True)


def test_gap_without_time_bounds_uses_the_spacing(tmp_path):
    from insitu.replay.sources import InputError
    t, _ = monthly(2000, 2)
    write_nc(tmp_path / "x.nc", np.delete(t, 5))
    with pytest.raises(InputError, match=r"gap in time in x.nc: nothing between 2000-05-16.* "
                                         r"and 2000-07-16.*the usual spacing is"):
        _scan(tmp_path, None)


def test_times_that_go_back_inside_a_file_are_refused(tmp_path):
    from insitu.replay.sources import InputError
    write_nc(tmp_path / "x.nc", [0.0, 31.0, 20.0])
    with pytest.raises(InputError, match=r"x.nc: times do not increase: record 2"):
        _scan(tmp_path, None)


def test_start_end_every_select_like_xarray(tmp_path):
    """``--end 2001`` keeps all of 2001 (xarray's partial-date slice);
    ``--every 3`` keeps one record in three of what start/end selected."""
    import xarray as xr
    t, b = monthly(2000, 3)
    write_nc(tmp_path / "x.nc", t, time_bounds=b)
    plan = _scan(tmp_path, None, start="2000-06", end="2001")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(tmp_path / "x.nc", decode_times=coder) as ds:
        want = ds.time.sel(time=slice("2000-06", "2001")).values
    assert len(plan.times) == len(want) == 19
    assert plan.dates[0] == want[0].isoformat(sep=" ")[:10]
    plan = _scan(tmp_path, None, start="2000-06", end="2001", every=3)
    assert plan.dates == _scan(tmp_path, None, start="2000-06", end="2001").dates[::3]
    from insitu.replay.sources import InputError
    with pytest.raises(InputError, match="no record between --start and --end"):
        _scan(tmp_path, None, start="2010")
    with pytest.raises(InputError, match="not a date in the noleap calendar"):
        _scan(tmp_path, None, start="2000-02-29")
    with pytest.raises(InputError, match="expected YYYY"):
        _scan(tmp_path, None, start="June 2000")


def test_coordinates_bounds_and_attributes_come_from_the_file(tmp_path):
    write_nc(tmp_path / "x.nc", [0.0, 31.0], plev=(100000.0, 92500.0, 50000.0))
    plan = _scan(tmp_path, None)
    c = plan.coords
    assert c["plev"]["values"] == [100000.0, 92500.0, 50000.0]
    assert c["plev"]["units"] == "Pa" and c["plev"]["standard_name"] == "air_pressure"
    assert c["lat"]["bounds"] == [[-90.0, 0.0], [0.0, 90.0]]
    var = plan.sets[0].variables["ta"]
    assert (var.dims, var.shape, var.dtype, var.units) == (["plev", "lat", "lon"], [3, 2, 3],
                                                           "float32", "K")


def test_mask_attributes(tmp_path):
    """_FillValue and missing_value (several) become NaN in float fields;
    valid_range, valid_min and valid_max too, compared in the field's type."""
    from insitu.replay.fileset import _variable
    from insitu.replay.reader import mask_invalid
    from insitu.replay.sources import open_source
    write_nc(tmp_path / "x.nc", [0.0], attrs={"missing_value": np.array([1e20, -999.0], "f4"),
                                              "valid_range": np.array([0.0, 400.0], "f4")})
    src = open_source(str(tmp_path / "x.nc"))
    var = _variable(src, str(tmp_path / "x.nc"), "ta", src.dims("ta"))
    src.close()
    assert var.fill == [pytest.approx(1e20, rel=1e-7), -999.0] and var.valid == [0.0, 400.0]
    buf = np.array([1e20, -999.0, 250.0, 400.5, -0.1, 0.0, 400.0], dtype=np.float32)
    mask_invalid(buf, var.fill, *var.valid)
    np.testing.assert_array_equal(buf, [np.nan, np.nan, 250.0, np.nan, np.nan, 0.0, 400.0])
    buf = np.array([1.0, 2.0, 3.0, 4.0, -np.inf], dtype=np.float64)  # three fill values
    mask_invalid(buf, [1.0, 2.0, 4.0], None, None)
    np.testing.assert_array_equal(buf, [np.nan, np.nan, 3.0, np.nan, -np.inf])


def test_regular_coordinates_are_kept_short_and_exact():
    """A coordinate that is start + step * i bit for bit, without bounds,
    goes into the config as start/step; one with bounds in the file keeps
    its values and bounds (the output's <dim>_bounds are the file's), and
    an irregular one keeps its values."""
    from insitu.replay.fileset import compact_coord
    values = (1.25 + 2.5 * np.arange(144)).tolist()
    lon = {"values": values, "units": "degrees_east"}
    c = compact_coord(lon)
    assert c == {"units": "degrees_east", "start": 1.25, "step": 2.5}
    assert np.array_equal(c["start"] + c["step"] * np.arange(144), lon["values"])
    bounded = dict(lon, bounds=np.stack([2.5 * np.arange(144), 2.5 * np.arange(1, 145)],
                                        1).tolist())
    assert compact_coord(bounded) == bounded
    plev = {"values": [100000.0, 92500.0, 85000.0, 70000.0], "units": "Pa"}
    assert compact_coord(plev) == plev


def write_packed(path, times, raw, *, scale, offset, fill=-32767, missing=None,
                 raw_type="i2", fmt="NETCDF4"):
    """A file like write_nc's whose ``ta`` is packed: the integers ``raw``
    stored as they are, with ``scale_factor``/``add_offset`` (numpy values:
    their type is what xarray decodes to; None leaves one out) and an
    integer ``_FillValue`` (and ``missing_value``)."""
    import netCDF4
    write_nc(path, times, var="unused", fmt=fmt)
    with netCDF4.Dataset(path, "a") as d:
        v = d.createVariable("ta", raw_type, ("time", "plev", "lat", "lon"),
                             fill_value=np.dtype(raw_type).type(fill))
        v.set_auto_maskandscale(False)
        v.units, v.standard_name = "K", "air_temperature"
        if scale is not None:
            v.scale_factor = scale
        if offset is not None:
            v.add_offset = offset
        if missing is not None:
            v.missing_value = np.dtype(raw_type).type(missing)
        v[:] = raw
    return path


def packed_raw(shape, seed, raw_type="i2"):
    """Packed integers over the type's range, with fill and missing values
    among them (-32767 and -32768 for int16)."""
    info = np.iinfo(raw_type)
    rng = np.random.default_rng(seed)
    raw = rng.integers(max(info.min, -2**31) + 2, min(info.max, 2**31 - 1), shape,
                       dtype=np.int64)
    raw.reshape(-1)[::7] = -32767
    raw.reshape(-1)[3::11] = -32768
    return raw.astype(raw_type)


@pytest.mark.parametrize("attrs", [
    ("f4", "f4", "i2"),     # ERA5-like: float32 field
    ("f8", "f8", "i2"),     # float64 attributes: float64 field
    ("f4", None, "i2"),     # a scale alone: its type
    ("f4", "f4", "i4"),     # int32 needs float64's mantissa
    ("f4", "f8", "i2"),     # types that differ: float64
])
def test_packed_integers_decode_as_xarray_does(tmp_path, attrs):
    """Each file of a packed (int16/int32, scale_factor/add_offset) series
    decodes to xarray's values bit for bit, in xarray's dtype, with its own
    scale and offset (reanalysis files are packed one by one), fill and
    missing values NaN."""
    import xarray as xr

    from insitu.replay import reader as rd
    from insitu.replay.fileset import scan
    scale_t, offset_t, raw_t = attrs
    shape = (12, 2, 2, 3)
    times, tb = monthly(2000, 1)
    for k in range(2):
        scale = np.dtype(scale_t).type(0.0021 * (k + 1))
        offset = None if offset_t is None else np.dtype(offset_t).type(251.3 - 7 * k)
        write_packed(tmp_path / f"p{k}.nc", times + 365 * k, packed_raw(shape, k, raw_t),
                     scale=scale, offset=offset, missing=-32768, raw_type=raw_t)
    plan = scan([(None, str(tmp_path / "p*.nc"))], ["ta"])
    var = plan.sets[0].variables["ta"]
    with xr.open_mfdataset(str(tmp_path / "p*.nc"), engine="h5netcdf", combine="by_coords",
                           data_vars="minimal", coords="minimal", compat="override") as ds:
        want = ds.ta.values
    assert var.field_dtype == want.dtype.name and var.dtype == np.dtype(raw_t).name
    assert len(var.packing) == 2 and var.packing[0] != var.packing[1]
    assert np.isnan(want).any() and np.isfinite(want).any()
    r = rd.SlabReader(rd.OpenFile(plan.sets[0]), var, ((0, 1, 1), (2, 1, 2)))
    try:
        for step, (f, i) in enumerate(plan.sets[0].records):
            got = r.read(f, i, step % 2)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want[step, :, 1:2, 1:3])
    finally:
        r.files.close()


def test_packed_valid_range_is_in_packed_values():
    """valid_range of a packed variable bounds the packed integers (as
    netCDF4-python applies it), and more than two fill values all mask."""
    from insitu.replay.reader import unpack
    raw = np.array([-5, 0, 5, 10, 11, 7, 3], dtype=np.int16)
    out = np.empty(raw.shape, np.float32)
    unpack(raw, out, np.float32(0.5), np.float32(100), [7.0, 3.0, 5.0], 0.0, 10.0)
    np.testing.assert_array_equal(out, [np.nan, 100.0, np.nan, 105.0, np.nan, np.nan, np.nan])
    # float data packed too: a float64 fill attribute meets the float32 data's value
    raw = np.array([1e20, 2.0], dtype=np.float32)
    unpack(raw, out[:2], np.float32(2.0), None, [1e20], None, None)
    np.testing.assert_array_equal(out[:2], [np.nan, 4.0])


def test_unsupported_variables_are_refused(tmp_path):
    import netCDF4

    from insitu.replay.fileset import scan
    from insitu.replay.sources import InputError
    p = tmp_path / "x.nc"
    write_nc(p, [0.0])
    with netCDF4.Dataset(p, "a") as d:
        d.createVariable("flags", "i1", ("time", "lat", "lon"))
        v = d.createVariable("tp", "i2", ("time", "lat", "lon"))
        v.scale_factor, v.add_offset, v._Unsigned = 0.01, 250.0, "true"
        v = d.createVariable("bad", "i2", ("time", "lat", "lon"))
        v.scale_factor = np.array([0.1, 0.2])
    with pytest.raises(InputError, match="'flags' has dtype int8; replay reads"):
        scan([(None, str(p))], ["flags"])
    with pytest.raises(InputError, match="'tp' has _Unsigned .*packed values as signed"):
        scan([(None, str(p))], ["tp"])
    with pytest.raises(InputError, match="'bad' has scale_factor \\[0.1, 0.2\\]; expected one"):
        scan([(None, str(p))], ["bad"])


def test_netcdf3_is_read_through_netcdf4_python(tmp_path):
    from insitu.replay.fileset import scan
    from insitu.replay.reader import OpenFile, SlabReader
    data = np.random.default_rng(1).normal(250, 10, (3, 2, 2, 3)).astype("f4")
    write_nc(tmp_path / "x.nc", [0.0, 1.0, 2.0], data, fmt="NETCDF3_CLASSIC")
    plan = scan([(None, str(tmp_path / "x.nc"))], ["ta"])
    assert plan.sets[0].kinds == ["netcdf3"]
    r = SlabReader(OpenFile(plan.sets[0]), plan.sets[0].variables["ta"],
                   ((1, 0, 1), (1, 2, 2)))
    r.read(0, 2)
    np.testing.assert_array_equal(r.buffer, data[2, 1:2, 0:2, 1:3])


def test_field_names():
    from types import SimpleNamespace as NS

    from insitu.replay.naming import field_names, identifier, split_input
    from insitu.replay.sources import InputError
    assert split_input("g=a/b*.nc") == ("g", "a/b*.nc")
    assert split_input("dir/x=1/*.nc") == (None, "dir/x=1/*.nc")
    assert identifier("GISS-E2-1-G") == "GISS_E2_1_G" and identifier("4x") == "_4x"
    sets = [NS(label=None, source_id="GISS-E2-1-G", pattern="a"),
            NS(label="h", source_id="GISS-E2-1-H", pattern="b")]
    assert field_names(sets, ["ta"], {"lat"}) == [("ta_GISS_E2_1_G", 0, "ta"), ("h", 1, "ta")]
    assert [n for n, _, _ in field_names(sets, ["ta", "ua"], set())] == \
        ["ta_GISS_E2_1_G", "ua_GISS_E2_1_G", "h_ta", "h_ua"]
    with pytest.raises(InputError, match="would both give a field named 'ta_X'"):
        field_names([NS(label=None, source_id="X", pattern="a"),
                     NS(label=None, source_id="X", pattern="b")], ["ta"], set())
    with pytest.raises(InputError, match="no source_id attribute"):
        field_names([NS(label=None, source_id=None, pattern="a")], ["ta"], set())
    with pytest.raises(InputError, match="taken by a dimension"):
        field_names([NS(label="lat", source_id=None, pattern="a")], ["ta"], {"lat"})


# -- the decomposition replay chooses --------------------------------------
@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 2, 3), (19, 180, 360), (5,), (3, 1, 7),
                                   (1, 1, 4)])
@pytest.mark.parametrize("nprocs", [1, 2, 3, 4, 5, 8])
def test_fitted_boxes_tile_and_project_onto_leading_dims(shape, nprocs):
    from insitu.decomposition import fitted_boxes, tiling_problems
    if nprocs > np.prod(shape):
        with pytest.raises(ValueError):
            fitted_boxes(shape, nprocs)
        return
    boxes = fitted_boxes(shape, nprocs)
    assert len(boxes) == nprocs and not tiling_problems(shape, boxes)
    assert all(min(s) >= 1 for _, s in boxes)
    for k in range(1, len(shape) + 1):  # what a reduce keeping leading dims needs
        proj = sorted({(o[:k], s[:k]) for o, s in boxes})
        assert not tiling_problems(shape[:k], proj), (k, proj)


def test_fitted_grid_prefers_balance_then_slow_dims():
    from insitu.decomposition import fitted_grid
    assert fitted_grid((2, 2, 2), 3) is None
    assert fitted_grid((2, 2, 3), 3) == (1, 1, 3)
    assert fitted_grid((19, 180, 360), 2) == (1, 2, 1)   # 19 splits 10/9: less even
    assert fitted_grid((20, 180, 360), 2) == (2, 1, 1)   # as even: the slowest dim
    assert fitted_grid((2, 2, 2), 4) == (2, 2, 1)


# -- irregular coordinates in the config ----------------------------------
def test_irregular_coords_serve_every_reader_of_a_coords_entry():
    """Values and bounds from a file go into ``coords:``; the readers that
    evaluate ``start + step * i`` get the values at integer positions, the
    bounds at half-integer ones (coarse cells, extents), linear between."""
    import yaml

    from insitu.analyses.reduce import extent_coords
    from insitu.analyses.region import box, coordinate_values
    from insitu.fields import make_spec
    from insitu.options import ConfigError, coordinate_at, parse
    plev = [100000.0, 92500.0, 85000.0, 70000.0]
    pb = [[103750.0, 96250.0], [96250.0, 88750.0], [88750.0, 77500.0], [77500.0, 60000.0]]
    cfg = parse({"analyses": [{"kind": "stats", "field": "T"}],
                 "coords": {"plev": {"values": plev, "bounds": pb, "units": "Pa",
                                     "standard_name": "air_pressure"},
                            "lat": {"values": [-80.0, -30.0, 10.0, 70.0],
                                    "units": "degrees_north"}}})
    c = cfg["coords"]["plev"]
    np.testing.assert_array_equal(c["start"] + c["step"] * np.arange(4), plev)
    np.testing.assert_array_equal(coordinate_at(c, [-0.5, 0.5, 3.5]), [103750, 96250, 60000])
    np.testing.assert_array_equal(coordinate_at(c, 2.5 + np.zeros((2, 2))), np.full((2, 2), 77500))
    np.testing.assert_array_equal(coordinate_values(cfg["coords"], "lat", 4), [-80, -30, 10, 70])
    spec = make_spec("T", np.float64, (4, 4), (0, 0), (4, 4), dims=("plev", "lat"))
    assert box(spec, {"lat": {"from": -40.0, "to": 20.0}}, "r", cfg["coords"]) == \
        ((0, 1), (4, 2))
    ext = extent_coords("plev", 4, c)[0]
    assert float(ext.values) == (103750 + 60000) / 2 and "from 103750 to 60000" in \
        ext.attrs["comment"]
    # midpoints (and half a spacing beyond the ends) without bounds
    np.testing.assert_array_equal(coordinate_at(cfg["coords"]["lat"], [-0.5, 0.5, 3.5]),
                                  [-105.0, -55.0, 100.0])
    with pytest.raises(ConfigError, match="coords.lat: 4 coordinate value"):
        coordinate_values(cfg["coords"], "lat", 5)
    yaml.safe_dump({"coords": cfg["coords"]})  # the session records the config as YAML
    for bad, msg in [({"values": [1.0, 1.0]}, "strictly increasing or decreasing"),
                     ({"values": [1.0, 2.0], "bounds": [[0.0, 1.5]]}, "expected 2 "),
                     ({"values": [1.0, 2.0], "bounds": [[0, 1.5], [2.5, 3.0]]},
                      r"bounds\[1\]: \[2.5, 3.0\] does not hold"),
                     ({"start": 0.0, "step": 1.0, "values": [1.0]}, "not both"),
                     ({"start": 1.0}, "give 'start' and 'step'"),
                     ({"start": 0.0, "step": 0.0}, "non-zero spacing")]:
        with pytest.raises(ConfigError, match=msg):
            parse({"analyses": [{"kind": "stats", "field": "T"}], "coords": {"y": bad}})


def shuffled_awi(dest: Path, seed: int = 7) -> list[str]:
    """The 65 yearly AWI-CM-1-1-MR files copied under names whose order is
    not their time order."""
    dest.mkdir(parents=True, exist_ok=True)
    files = awi_files()
    names = [f"part{i:03d}.nc" for i in range(len(files))]
    random.Random(seed).shuffle(names)
    for f, n in zip(files, names):
        shutil.copy(f, dest / n)
    assert sorted(names) != names
    return [str(dest / n) for n in names]
