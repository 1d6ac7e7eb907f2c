"""A lat-lon-level atmosphere stand-in: temperature and humidity on pressure
levels, with a seasonal cycle, a lapse rate, travelling waves and a plateau.

The fields are C-ordered ``(plev, lat, lon)``, float64, without halos,
decomposed over (lat, lon) on a balanced process grid with uneven slabs
(every rank holds whole columns, as in most atmosphere models).  Model time
is in days on a ``noleap`` calendar (``days since 2000-01-01``), one day per
step, so ``--steps 800`` covers two model years.

The fields are smooth, deterministic functions of the global grid point and
the time (any decomposition gives the same numbers, and
:func:`fields_at` gives the whole grid for the tests):

* surface temperature ``288 - 45 sin^2(lat)`` with a seasonal cycle of
  ``12 sin(lat)`` K peaking on day 196 (mid July) in the north, and a
  summer heat low over a subtropical continent (the warmest point moves);
* a lapse rate of 6.5 K/km up to a smooth tropopause at 210 K, heights from
  a 7 km scale height;
* a wave-3 travelling east in 12 days and a wave-5 travelling west in 5;
* a plateau at (32N, 88E) whose surface pressure drops to 560 hPa: levels
  below ground are NaN, as in pressure-level archives;
* specific humidity ``q = 0.75 q_sat(T, p)`` (Bolton's saturation vapour
  pressure), NaN below ground too, so that ``sum(q dp) / g`` is the
  precipitable water in kg m-2 (``examples/climate_latlon.yaml``).

The model is cheap (numpy on the local slab, in place: the exposed arrays
never move), so runs measure insitu.
"""
from __future__ import annotations

import numpy as np

from ..decomposition import cartesian_box, process_grid

#: one model step, in days
DT = 1.0
DAYS_PER_YEAR = 365.0   # noleap
G = 9.80665
#: the default levels (Pa) and their layer edges: dp of each layer
PLEV = np.array([100000.0, 92500.0, 85000.0, 70000.0, 50000.0, 30000.0, 20000.0, 10000.0])
PLEV_EDGES = np.array([103750.0, 96250.0, 88750.0, 77500.0, 60000.0, 40000.0, 25000.0,
                       15000.0, 5000.0])
SHAPE = (8, 36, 72)

DEFAULT_CONFIG = """\
output: {path: latlon.h5}
time: {units: "days since 2000-01-01 00:00:00", calendar: noleap}
fields:
  T: {units: K, long_name: air temperature, dims: [plev, lat, lon]}
  q: {units: kg kg-1, long_name: specific humidity, dims: [plev, lat, lon]}
analyses:
  - {kind: stats, field: T, every: 10, stats: [count, mean, min, max, argmax, nan_count]}
"""


def levels(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(plev, edges)`` in Pa: the default 8 levels, or ``n`` levels evenly
    spaced in log-pressure between 1000 and 100 hPa."""
    if n == PLEV.size:
        return PLEV.copy(), PLEV_EDGES.copy()
    p = np.geomspace(100000.0, 10000.0, n) if n > 1 else np.array([50000.0])
    mid = np.sqrt(p[:-1] * p[1:])
    first = p[0] * p[0] / mid[0] if n > 1 else 100000.0
    last = p[-1] * p[-1] / mid[-1] if n > 1 else 1000.0
    return p, np.concatenate([[first], mid, [last]])


def grid(shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(plev Pa, lat degrees, lon degrees)`` of a grid of ``shape``: cell
    centres of equal lat and lon cells (no point on a pole)."""
    nz, ny, nx = shape
    lat = -90.0 + 180.0 / ny * (np.arange(ny) + 0.5)
    lon = 360.0 / nx * np.arange(nx)
    return levels(nz)[0], lat, lon


def surface_pressure(lat, lon):
    """Pa: 1010 hPa, and a plateau at (32N, 88E) whose top reaches 560 hPa."""
    return 101000.0 - 45000.0 * np.exp(-((lat - 32.0) ** 2 / 50.0 + (lon - 88.0) ** 2 / 200.0))


def temperature(p, lat, lon, t):
    """K at pressure ``p`` (Pa), ``lat``/``lon`` (degrees), day ``t``
    (broadcasting arrays); NaN below the ground."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    season = np.cos(2 * np.pi * (np.mod(t, DAYS_PER_YEAR) - 196.0) / DAYS_PER_YEAR)
    ts = 288.0 - 45.0 * np.sin(phi) ** 2 + 12.0 * np.sin(phi) * season
    ts = ts + 12.0 * np.exp(-((lat - 25.0) ** 2 / 100.0 + (lon - 30.0) ** 2 / 400.0)) \
        * np.maximum(season, 0.0) * (p / 100000.0) ** 4          # a summer heat low
    z = 7000.0 * np.log(100000.0 / p)
    lapse = ts - 6.5e-3 * z
    t_air = 0.5 * (lapse + 210.0 + np.sqrt((lapse - 210.0) ** 2 + 25.0))  # smooth max
    amp = 3.0 + 2.0 * (1.0 - p / 100000.0)
    waves = amp * np.cos(phi) * np.sin(3 * lam - 2 * np.pi * t / 12.0) \
        + 1.5 * np.sin(2 * phi) * np.cos(5 * lam + 2 * np.pi * t / 5.0)
    return np.where(p > surface_pressure(lat, lon), np.nan, t_air + waves)


def humidity(tk, p):
    """kg/kg: 75 % of saturation (Bolton 1980), NaN where ``tk`` is."""
    es = 611.2 * np.exp(17.67 * (tk - 273.15) / (tk - 29.65))
    return 0.75 * 0.622 * es / np.maximum(p - 0.378 * es, 1.0)


def fields_at(shape, t: float, box=None):
    """``(T, q)`` on ``box`` = ``(offset, shape)`` of the grid (default the
    whole grid) at day ``t``."""
    p, lat, lon = grid(shape)
    if box is not None:
        (oz, oy, ox), (nz, ny, nx) = box
        p, lat, lon = p[oz:oz + nz], lat[oy:oy + ny], lon[ox:ox + nx]
    p, lat, lon = p[:, None, None], lat[None, :, None], lon[None, None, :]
    tk = temperature(p, lat, lon, t)
    return tk, humidity(tk, p)


class LatLon:
    name = "latlon"
    DEFAULT_CONFIG = DEFAULT_CONFIG

    def __init__(self, comm, shape=SHAPE) -> None:
        shape = tuple(int(n) for n in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"--shape takes three sizes (plev lat lon), got {shape}")
        self.global_shape = shape
        size, rank = comm.Get_size(), comm.Get_rank()
        pgrid = process_grid(size, 2)
        if pgrid[0] > shape[1] or pgrid[1] > shape[2]:
            raise ValueError(f"{size} ranks on a {pgrid[0]} x {pgrid[1]} grid do not fit "
                             f"{shape[1]} latitudes x {shape[2]} longitudes")
        (oy, ox), (ny, nx) = cartesian_box(shape[1:], pgrid, np.unravel_index(rank, pgrid))
        self.offset = (0, oy, ox)
        self.shape = (shape[0], ny, nx)
        p, lat, lon = grid(shape)
        self._p = p[:, None, None]
        self._lat = lat[None, oy:oy + ny, None]
        self._lon = lon[None, None, ox:ox + nx]
        # The model's memory: filled in place each step, never reallocated.
        self.T = np.empty(self.shape)
        self.q = np.empty(self.shape)
        self.step = 0
        self.time = 0.0

    def declare(self, api) -> None:
        for name in ("T", "q"):
            api.declare_field(name, np.float64, self.global_shape, self.offset, self.shape)

    def advance(self) -> None:
        self.step += 1
        self.time = self.step * DT
        self.T[...] = temperature(self._p, self._lat, self._lon, self.time)
        self.q[...] = humidity(self.T, self._p)

    def expose(self, api) -> None:
        api.expose("T", self.T)
        api.expose("q", self.q)

    def free(self) -> None:
        pass


def reference(shape=SHAPE, steps: int = 10):
    """Yield ``(step, time, T, q)`` on the whole grid, serially."""
    for step in range(1, steps + 1):
        yield (step, step * DT, *fields_at(shape, step * DT))
