"""Replay under real MPI (tests/test_mpi_suite.py runs it at 1, 2, 3 and 4
ranks): real CMIP6 files from esmvaltool-sample-data, every result
compared with ``xarray.open_mfdataset`` and the same reduction done after
the fact, to 1e-12 relative, NaN cells included.

At 3 ranks the GISS grid (2 x 2 x 2 per time step) fits no Cartesian
process grid, so replay's nested decomposition is exercised there.
"""
import numpy as np
import pytest
import xarray as xr

import test_replay as tr

CONFIG = {
    "derived": {"ens": "(g + gcc + h) / 3"},
    "analyses": [
        {"kind": "stats", "field": "g", "stats": ["count", "mean", "min", "max", "std",
                                                  "nan_count"]},
        {"kind": "stats", "field": "ens", "stats": ["count", "mean", "min", "max", "nan_count"]},
        {"kind": "stats", "field": "ens", "name": "ensw", "stats": ["mean"],
         "weights": {"dim": "lat", "values": "coslat"}},
        {"kind": "reduce", "field": "ens", "over": ["lon"], "op": "mean"},
        {"kind": "reduce", "field": "h", "over": ["lon"], "op": "mean"},
        {"kind": "histogram", "field": "g", "bins": 30, "range": [200.0, 290.0]},
        {"kind": "stats", "field": "ens", "name": "arctic", "stats": ["mean"],
         "region": {"lat": {"from": 88.0, "to": 90.0}}},
    ],
    "log_level": "WARNING",
}

RTOL = 1e-12


def close(got, want, what):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                               np.asarray(want, dtype=np.float64), rtol=RTOL, atol=0,
                               equal_nan=True, err_msg=what)


def check_giss(path, sets, start=None, end=None):
    """Every output of CONFIG against xarray over the same files."""
    models = {}
    for k, files in sets.items():
        ds = tr.open_model(files)
        ta = ds.ta.sel(time=slice(start, end)) if (start or end) else ds.ta
        models[k] = ta.load()  # float32 with NaN where the files say missing
    g = models["g"].astype("f8")
    # the derived field, evaluated as insitu evaluates it: on the fields'
    # own float32 values, then held in float64
    ens = ((models["g"] + models["gcc"] + models["h"]) / 3).astype("f8")
    space = ("plev", "lat", "lon")
    with xr.open_dataset(path, engine="h5netcdf",
                         decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)) as out:
        assert list(out.time.values) == list(models["g"].time.values)
        assert list(out.step.values) == list(range(1, out.sizes["time"] + 1))
        for name, a in (("g", g), ("ens", ens)):
            close(out[f"{name}_count"], a.count(space), f"{name}_count")
            close(out[f"{name}_nan_count"], a.isnull().sum(space), f"{name}_nan_count")
            close(out[f"{name}_mean"], a.mean(space), f"{name}_mean")
            close(out[f"{name}_min"], a.min(space), f"{name}_min")
            close(out[f"{name}_max"], a.max(space), f"{name}_max")
        close(out["g_std"], g.std(space), "g_std")
        # ...and within float32 rounding of the same mean in float64 arithmetic
        # (three roundings of float32 per cell: measured 6.6e-8 in the means)
        ens64 = sum(m.astype("f8") for m in models.values()) / 3
        np.testing.assert_allclose(out["ens_mean"], ens64.mean(space), rtol=2.5e-7, atol=0,
                                   equal_nan=True, err_msg="ens_mean vs float64 arithmetic")
        coslat = np.cos(np.deg2rad(ens.lat))
        close(out["ensw_mean"], ens.weighted(coslat).mean(space), "coslat-weighted mean")
        close(out["ens_mean_over_lon"], ens.mean("lon").transpose("time", "plev", "lat"),
              "zonal mean of the ensemble")
        close(out["h_mean_over_lon"], models["h"].astype("f8").mean("lon"), "zonal mean of h")
        close(out["arctic_mean"], ens.sel(lat=slice(88.0, 90.0)).mean(space), "lat region")
        hist = np.array([np.histogram(x[np.isfinite(x)], bins=30, range=(200.0, 290.0))[0]
                         for x in g.values.reshape(g.shape[0], -1)])
        np.testing.assert_array_equal(out["g_hist"].values, hist)
        # coordinates with their CF attributes, from the files
        for d, units, std in (("plev", "Pa", "air_pressure"), ("lat", "degrees_north",
                                                                "latitude"),
                              ("lon", "degrees_east", "longitude")):
            np.testing.assert_array_equal(out[d].values, g[d].values)
            assert out[d].attrs["units"] == units and out[d].attrs["standard_name"] == std
        # the files' cell bounds (lat_bnds, lon_bnds; regular axes included),
        # named by the coordinate's bounds attribute; plev has none there
        import h5py
        with h5py.File(sets["g"][0], "r") as f:
            for d in ("lat", "lon"):
                assert out[d].attrs["bounds"] == f"{d}_bounds"
                np.testing.assert_array_equal(out[f"{d}_bounds"].values, f[f"{d}_bnds"][...])
            assert "bounds" not in f["plev"].attrs and "bounds" not in out.plev.attrs
        assert out.time.encoding["calendar"] == "365_day"
        return out.sizes["time"]


def test_giss_ensemble_against_xarray(comm, shared_dir):
    """The three GISS-E2-1-* models' monthly ta (3 files each, 1368 months)."""
    from insitu import replay
    sets = {k: tr.giss_files(m) for k, m in tr.GISS.items()}
    path = shared_dir / "giss.h5"
    summary = replay.run({k: f"{tr.giss_files(m)[0].rsplit('/', 1)[0]}/*.nc"
                          for k, m in tr.GISS.items()}, "ta", CONFIG, comm, output=str(path))
    assert summary.steps == 1368 and summary.files == 9 and summary.fields == ["g", "gcc", "h"]
    comm.Barrier()
    if comm.rank == 0:
        assert check_giss(path, sets) == 1368
        import h5py
        import yaml
        with h5py.File(path, "r") as f:  # the config as given (a mapping: as YAML)
            assert yaml.safe_load(f.attrs["insitu_config"]) == CONFIG
        assert not list(shared_dir.glob(".*partial"))


def test_giss_with_missing_cells_and_a_date_range(comm, shared_dir):
    """The same files with cells set to 1e20 and declared ``missing_value``
    (one record of g has no finite value at all), replayed from 1995-06 to
    2003: NaN where xarray masks, the statistics of the finite values."""
    from insitu import replay
    sets = {}
    if comm.rank == 0:
        for i, (k, m) in enumerate(tr.GISS.items()):
            # g's 1951-2000 file: its record 534 is 1995-07, the range's second
            sets[k] = tr.punch_holes(tr.giss_files(m), shared_dir / k, seed=i,
                                     all_missing={1: 534} if k == "g" else None)
    sets = comm.bcast(sets)
    path = shared_dir / "holes.h5"
    replay.run({k: str(shared_dir / k / "*.nc") for k in tr.GISS}, ["ta"], CONFIG, comm,
               output=str(path), start="1995-06", end="2003")
    comm.Barrier()
    if comm.rank == 0:
        n = check_giss(path, sets, start="1995-06", end="2003")
        assert n == 7 + 12 * 8
        with xr.open_dataset(path, engine="h5netcdf") as out:
            assert out.g_count.values[1] == 0 and np.isnan(out.g_mean.values[1])
            assert out.g_nan_count.values[1] == 8
            assert out.g_nan_count.values.sum() > 8


def test_awi_shuffled_on_disk_comes_out_in_time_order(comm, shared_dir):
    """65 yearly files under names whose order is not their time order."""
    from insitu import replay
    if comm.rank == 0:
        tr.shuffled_awi(shared_dir / "awi")
    comm.Barrier()
    path = shared_dir / "awi.h5"
    cfg = {"analyses": [{"kind": "stats", "field": "awi", "stats": ["mean", "max"]},
                        {"kind": "reduce", "field": "awi", "over": ["lon"]}],
           "log_level": "WARNING"}
    summary = replay.run([f"awi={shared_dir / 'awi' / '*.nc'}"], "ta", cfg, comm,
                         output=str(path))
    assert summary.steps == 65 * 12 and summary.files == 65
    comm.Barrier()
    if comm.rank == 0:
        # the originals, whose names sort by time: concatenated in that order
        # (h5py and cftime directly: xarray over 65 files took 10 s here)
        import cftime
        import h5py
        ta, dates = [], []
        for f in tr.awi_files():
            with h5py.File(f, "r") as h:
                ta.append(h["ta"][...].astype("f8"))
                t = h["time"]
                dates += list(cftime.num2date(t[...], t.attrs["units"].decode(),
                                              t.attrs["calendar"].decode()))
                lat = h["lat"][...]
        ta = np.concatenate(ta)
        with xr.open_dataset(path, engine="h5netcdf",
                             decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)) as out:
            t = out.time.values
            assert all(a < b for a, b in zip(t[:-1], t[1:]))
            assert [d.isoformat() for d in t] == [d.isoformat() for d in dates]
            close(out.awi_mean, ta.mean(axis=(1, 2, 3)), "awi_mean")
            close(out.awi_max, ta.max(axis=(1, 2, 3)), "awi_max")
            close(out.awi_mean_over_lon, ta.mean(axis=3), "awi zonal mean")
            np.testing.assert_array_equal(out.lat.values, lat)  # Gaussian: irregular


@pytest.mark.parametrize("bad", ["variable", "grid"])
def test_bad_inputs_fail_alike_on_every_rank(comm, shared_dir, bad):
    """Errors found while scanning (on rank 0) reach every rank as the same
    ReplayError, and no output is left."""
    from insitu import replay
    from insitu.replay import ReplayError
    g = tr.giss_files("GISS-E2-1-G")[0].rsplit("/", 1)[0] + "/*.nc"
    awi = tr.awi_files()[0].rsplit("/", 1)[0] + "/*.nc"
    inputs, variables = ([g], ["tas"]) if bad == "variable" else ([g, awi], ["ta"])
    with pytest.raises(ReplayError) as err:
        replay.run(inputs, variables, CONFIG, comm, output=str(shared_dir / "bad.h5"))
    assert err.value.status == 2
    texts = comm.allgather(str(err.value))
    assert len(set(texts)) == 1
    assert ("no variable 'tas'" if bad == "variable" else "different grids") in texts[0]
    comm.Barrier()
    assert not list(shared_dir.glob("*bad.h5*"))


def test_packed_int16_series_against_xarray(comm, shared_dir):
    """Two int16 files packed with their own float32 scale_factor and
    add_offset (as ERA5 files are), fill and missing values among them:
    replay's statistics and zonal means equal xarray's over its decoded
    float32 values."""
    from insitu import replay
    times, _ = tr.monthly(2000, 1)
    if comm.rank == 0:
        (shared_dir / "packed").mkdir()
        for k in range(2):
            tr.write_packed(shared_dir / "packed" / f"p{k}.nc", times + 365 * k,
                            tr.packed_raw((12, 2, 2, 3), 10 + k),
                            scale=np.float32(0.0019 + 0.001 * k),
                            offset=np.float32(248.5 + 3 * k), missing=-32768)
    comm.Barrier()
    path = shared_dir / "packed.h5"
    cfg = {"analyses": [{"kind": "stats", "field": "p", "stats": ["count", "mean", "min",
                                                                  "max", "nan_count"]},
                        {"kind": "reduce", "field": "p", "over": ["lon"], "op": "mean"}],
           "log_level": "WARNING"}
    summary = replay.run({"p": str(shared_dir / "packed" / "p*.nc")}, "ta", cfg, comm,
                         output=str(path))
    assert summary.steps == 24
    comm.Barrier()
    if comm.rank == 0:
        ds = tr.open_model(sorted(str(p) for p in (shared_dir / "packed").glob("p*.nc")))
        ta = ds.ta.load()
        assert ta.dtype == np.float32 and int(ta.isnull().sum()) > 0
        a = ta.astype("f8")
        space = ("plev", "lat", "lon")
        with xr.open_dataset(path, engine="h5netcdf") as out:
            close(out.p_count, a.count(space), "p_count")
            close(out.p_nan_count, a.isnull().sum(space), "p_nan_count")
            close(out.p_mean, a.mean(space), "p_mean")
            close(out.p_min, a.min(space), "p_min")
            close(out.p_max, a.max(space), "p_max")
            close(out.p_mean_over_lon, a.mean("lon"), "zonal mean")


def test_the_output_is_published_durably(comm, shared_dir, monkeypatch):
    """After the session has closed the file, rank 0 syncs the closed file's
    data (HDF5's close writes the superblock again after the last durable
    flush), renames it over the output, then syncs the directory (a rename
    is only on disk once its directory is); the other ranks do none of it.
    Python's own sync and replace calls are recorded (MPI-IO's fsync in
    the writer's flush goes through C and is not among them)."""
    import os

    from insitu import api, replay
    events = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    real_replace, real_finalize = os.replace, api.finalize

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def fdatasync(fd):
        events.append(("fdatasync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fdatasync(fd)

    def rename(a, b):
        events.append(("replace", os.path.realpath(a), os.path.realpath(b)))
        return real_replace(a, b)

    def finalize():
        real_finalize()
        events.append(("finalized",))
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "replace", rename)
    monkeypatch.setattr(api, "finalize", finalize)
    path = shared_dir / "durable.h5"
    cfg = {"analyses": [{"kind": "stats", "field": "g", "stats": ["mean"]}],
           "log_level": "WARNING"}
    replay.run({"g": tr.giss_files("GISS-E2-1-G")[0].rsplit("/", 1)[0] + "/*.nc"}, "ta",
               cfg, comm, output=str(path), end="1902")
    after = events[events.index(("finalized",)) + 1:]
    if comm.rank == 0:
        final = os.path.realpath(path)
        partial = os.path.join(os.path.dirname(final), f".{path.name}.replay-partial")
        assert after == [("fdatasync", partial), ("replace", partial, final),
                         ("fsync", os.path.dirname(final))], events
    else:
        assert after == [], events
    comm.Barrier()
    with xr.open_dataset(path, engine="h5netcdf") as out:
        assert out.sizes["time"] == 24


def test_ranks_wait_for_each_other_without_spinning(comm):
    """replay's own collectives (the scan's, the checks, the publishing)
    leave the core of a waiting rank free: rank 0 arrives 0.3 s late at
    a check, and the other ranks spend little CPU time waiting for it
    (Open MPI's blocking collectives busy-poll: they spent the 0.3 s)."""
    import time

    from insitu.replay import host
    if comm.size == 1:
        pytest.skip("needs a rank to wait for")
    own = host.Own(comm.Dup(), 60.0)
    try:
        own.comm.Barrier()
        if own.comm.rank == 0:
            time.sleep(0.3)
        c0, t0 = time.thread_time(), time.perf_counter()
        host._agree(own, None)
        texts = host._gather_text(own, f"rank {own.comm.rank}", "a test's gather")
        text = host._bcast_text(own, "from 0" if own.comm.rank == 0 else None)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
    finally:
        own.comm.Free()
    assert text == "from 0"
    assert texts == [f"rank {r}" for r in range(comm.size)] if comm.rank == 0 else texts is None
    if comm.rank != 0:
        assert wall > 0.25 and cpu < 0.1, (wall, cpu)


def test_rank_0_work_reaches_every_rank_in_two_broadcasts(comm):
    """``_on_root`` (the scan's listing and plan): rank 0's result, or its
    error with its exit status, reaches every rank in two collectives, the
    verdict with the length then the text (a reduction to agree was a
    third: only rank 0 can fail there)."""
    from insitu.replay import host
    from insitu.replay.host import ReplayError
    from insitu.replay.sources import InputError

    class Counted:  # the communicator, counting the collectives started
        def __init__(self, c):
            self.c, self.calls = c, []

        def __getattr__(self, name):
            attr = getattr(self.c, name)
            if name[:1] == "I" or name in ("Allreduce", "Bcast", "Barrier", "Gather"):
                def counted(*a, **k):
                    self.calls.append(name)
                    return attr(*a, **k)
                return counted
            return attr

    own = host.Own(comm.Dup(), 60.0)
    try:
        c = host.Own(Counted(own.comm), 60.0)
        assert host._on_root(c, lambda: "plan from rank 0", "a test") == "plan from rank 0"
        assert c.comm.calls == ["Ibcast", "Ibcast"]
        for exc, status, text in ((InputError("a.nc: no variable 'ta'"), 2,
                                   "input error: a.nc: no variable 'ta'"),
                                  (KeyError("bug"), 1, "internal error while scanning")):
            def fail():
                raise exc
            with pytest.raises(ReplayError) as err:
                host._on_root(own, fail, "a test")
            assert err.value.status == status and str(err.value).startswith(text)
            assert len(set(own.comm.allgather(str(err.value)))) == 1
    finally:
        own.comm.Free()
