"""Time-partitioned file sets: one glob, one series.

A set's files are ordered by their **decoded** time coordinate (cftime, in
the files' own calendar), never by name: ``ta_..._195001-195012.nc`` sorts
correctly by name, but a set renamed, copied or produced by several tools
does not.  The ordered series is then checked: one calendar for the whole
set, one shape per time step, one grid; times strictly increasing (files
that overlap are an error); and no gap in time (unless allowed), a gap
being a hole between the time bounds of consecutive records when the files
give bounds, else a spacing over 1.5 times the series' median spacing.

:func:`scan` does all of it on one rank and returns a :class:`Plan`, plain
data that travels to the other ranks as JSON, so every rank replays the
same records in the same order and every rank fails on the same error.
"""
from __future__ import annotations

import glob as _glob
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..options import CALENDARS
from .sources import InputError, open_source

#: relative tolerance when coordinates of two files or sets are compared:
#: the same grid written by two tools may differ in the last bits
GRID_RTOL = 1e-9


@dataclass
class Variable:
    """What a set's files say about one variable (the first file's view;
    every other file is checked against it)."""
    name: str
    dims: list            # spatial dimension names (time excluded), in file order
    shape: list           # spatial shape of one time step
    dtype: str
    units: str
    long_name: str
    standard_name: str
    #: values that become NaN: _FillValue, missing_value (floats only)
    fill: list = field(default_factory=list)
    #: [lo, hi] from valid_range or valid_min / valid_max (None: open)
    valid: list = field(default_factory=lambda: [None, None])
    #: a packed variable (``scale_factor``/``add_offset``): the dtype it
    #: decodes to, as xarray chooses it, and ``[scale_factor, add_offset]``
    #: of each file of the set in time order (None: not given), as each file
    #: of a reanalysis may pack its own range; ``dtype`` stays the file's,
    #: and ``fill`` and ``valid`` are in its packed values
    decoded: str = None
    packing: list = None

    @property
    def field_dtype(self) -> str:
        """The dtype of the field replay declares: the decoded one if packed."""
        return self.decoded or self.dtype


@dataclass
class FileSet:
    """One ``--input``: its files in time order and the records replayed."""
    pattern: str
    label: str             # the NAME of NAME=GLOB, or None
    source_id: str
    files: list            # paths, ordered by decoded time
    kinds: list            # "hdf5" or "netcdf3", per file
    records: list          # [file index, index in the file] per replayed step
    variables: dict        # name -> Variable


@dataclass
class Plan:
    """Everything the ranks need to replay: plain data (JSON)."""
    time_units: str
    calendar: str
    times: list            # replayed time values, in time_units
    dates: list            # the same as ISO text, for messages and logs
    coords: dict           # dim -> coords: entry (values, bounds, units, names)
    sets: list             # FileSet per --input
    files_total: int = 0

    def to_json(self) -> str:
        # vars() rather than dataclasses.asdict, which deep-copies every list
        # first (the coordinates' values and bounds): 32 ms of rank 0's scan
        # at 2 ranks while the others waited, for a 360 x 180 grid
        return json.dumps({**vars(self), "sets": [
            {**vars(s), "variables": {k: vars(v) for k, v in s.variables.items()}}
            for s in self.sets]})

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        d = json.loads(text)
        sets = []
        for s in d.pop("sets"):
            s["variables"] = {k: Variable(**v) for k, v in s["variables"].items()}
            sets.append(FileSet(**s))
        return cls(sets=sets, **d)


def _calendar(attrs: dict, path: str, name: str) -> str:
    cal = str(attrs.get("calendar", "standard")).strip().lower()
    if cal not in CALENDARS or cal == "none":
        raise InputError(f"{path}: {name} has calendar {attrs.get('calendar')!r}, which cftime "
                         f"cannot decode (known: {', '.join(c for c in CALENDARS if c != 'none')})")
    return cal


def _date_text(d) -> str:
    text = d.isoformat(sep=" ")
    return text[:-9] if text.endswith(" 00:00:00") else text


@dataclass
class _FileTimes:
    path: str
    kind: str
    units: str
    calendar: str
    values: np.ndarray      # in the file's units
    dates: list             # cftime datetimes
    bounds: np.ndarray      # (n, 2) in the file's units, or None


def _file_times(src, path: str, variables) -> tuple[_FileTimes, dict]:
    """The time axis of one file and its view of each variable."""
    import cftime
    seen = {}
    tdim = None
    for v in variables:
        if not src.has(v):
            raise InputError(f"{path}: no variable {v!r} in this file")
        dims = src.dims(v)
        if not dims:
            raise InputError(f"{path}: variable {v!r} is a scalar; replay needs a time axis")
        if tdim is None:
            tdim = dims[0]
        elif dims[0] != tdim:
            raise InputError(f"{path}: variables disagree on the time dimension "
                             f"({tdim!r}, {dims[0]!r})")
        seen[v] = dims
    if not src.has(tdim):
        raise InputError(f"{path}: the first dimension of {variables[0]!r}, {tdim!r}, has no "
                         "coordinate variable; replay needs a time coordinate with CF units")
    tattrs = src.attrs(tdim)
    units = str(tattrs.get("units", ""))
    if " since " not in f" {units} ":
        raise InputError(f"{path}: the first dimension of {variables[0]!r}, {tdim!r}, is not a "
                         f"CF time (units {units!r}; expected e.g. 'days since 1850-01-01')")
    cal = _calendar(tattrs, path, tdim)
    values = np.asarray(src.read(tdim), dtype=np.float64).reshape(-1)
    try:
        dates = list(cftime.num2date(values, units, cal, only_use_cftime_datetimes=True))
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{path}: cannot decode {tdim!r} ({units!r}, calendar {cal!r}): "
                         f"{exc}") from None
    bounds = None
    bname = tattrs.get("bounds")
    if isinstance(bname, str) and src.has(bname):
        b = np.asarray(src.read(bname), dtype=np.float64)
        if b.shape == (values.size, 2):
            bounds = b
    return _FileTimes(path, src.kind, units, cal, values, dates, bounds), seen


def decoded_dtype(dtype: np.dtype, scale, offset) -> np.dtype:
    """The float type a packed variable decodes to: xarray's rule
    (``xarray.coding.variables._choose_float_dtype``), so that replay's
    values are xarray's bit for bit.  ``scale``/``offset`` are the raw
    attributes (numpy values, their type matters) or None.

    Both given and of one float type: that type, except int32 and uint32
    data, which need float64's mantissa; an offset alone, or of another
    type than the scale: float64 (a large offset would lose digits in
    float32); a scale alone: its type."""
    def kind(a):
        return np.dtype(np.asarray(a).dtype)
    if scale is not None and offset is not None and kind(scale) == kind(offset) \
            and kind(scale) in (np.float32, np.float64):
        if dtype.itemsize == 4 and dtype.kind in "iu":
            return np.dtype(np.float64)
        return kind(scale)
    if offset is not None:
        return np.dtype(np.float64)
    t = kind(scale)
    return t if t in (np.float32, np.float64) else np.dtype(np.float64)


def _representable(value, dtype: np.dtype) -> bool:
    """Whether a fill value can occur in data of ``dtype`` (an integer fill
    of a float-typed attribute, or one outside an integer type's range,
    matches nothing and is dropped)."""
    if dtype.kind == "f":
        return True
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def _variable(src, path: str, name: str, dims: tuple) -> Variable:
    attrs = src.attrs(name)
    dtype = np.dtype(src.dtype(name))
    packed = "scale_factor" in attrs or "add_offset" in attrs
    if packed:
        if dtype.kind not in "iuf" or dtype.itemsize > 8:
            raise InputError(f"{path}: {name!r} is packed (scale_factor/add_offset) in "
                             f"{dtype}, which replay does not unpack; it unpacks integers "
                             "and floats")
        if "_Unsigned" in attrs:
            raise InputError(f"{path}: {name!r} has _Unsigned (netCDF-3's unsigned packed "
                             "data), which replay does not apply: it would read the packed "
                             "values as signed")
        scale = src.raw_attr(name, "scale_factor")
        offset = src.raw_attr(name, "add_offset")
        for key, a in (("scale_factor", scale), ("add_offset", offset)):
            if a is not None and (np.asarray(a).size != 1 or np.asarray(a).dtype.kind not in
                                  "iuf"):
                raise InputError(f"{path}: {name!r} has {key} {_plain_text(a)}; expected one "
                                 "number")
        decoded = decoded_dtype(dtype, scale, offset)
    elif dtype.kind not in "fi" or dtype.itemsize not in (4, 8):
        raise InputError(f"{path}: {name!r} has dtype {dtype}; replay reads float32, float64, "
                         "int32 and int64 variables (and packed integers)")
    fill = []
    if dtype.kind == "f" or packed:
        for key in ("_FillValue", "missing_value"):
            v = attrs.get(key)
            for x in (v if isinstance(v, list) else [v]):
                if isinstance(x, (int, float)) and not np.isnan(x) and x not in fill \
                        and _representable(x, dtype):
                    fill.append(float(x))
    lo = hi = None
    vr = attrs.get("valid_range")
    if isinstance(vr, list) and len(vr) == 2:
        lo, hi = float(vr[0]), float(vr[1])
    if isinstance(attrs.get("valid_min"), (int, float)):
        lo = float(attrs["valid_min"])
    if isinstance(attrs.get("valid_max"), (int, float)):
        hi = float(attrs["valid_max"])
    if dtype.kind != "f" and not packed:
        lo = hi = None  # an integer field has no NaN to put there
    out = Variable(name, list(dims[1:]), list(src.shape(name)[1:]), dtype.name,
                   str(attrs.get("units", "1")), str(attrs.get("long_name", name)),
                   str(attrs.get("standard_name", "")), fill, [lo, hi])
    if packed:
        out.decoded = decoded.name
        out.packing = [[None if a is None else float(np.asarray(a).item())
                        for a in (scale, offset)]]
    return out


def _plain_text(a) -> str:
    return repr(np.asarray(a).tolist())


def _coords(src, path: str, dims, full: bool = True) -> dict:
    """The ``coords:`` entry of each dimension that has a coordinate
    variable; only the values unless ``full`` (the files after a set's
    first are only compared with it)."""
    out = {}
    for d in dims:
        if not src.has(d):
            continue
        values = np.asarray(src.read(d), dtype=np.float64).reshape(-1)
        if not full:
            out[d] = {"values": values.tolist()}
            continue
        attrs = src.attrs(d)
        entry = {"values": values.tolist(), "units": str(attrs.get("units", "1"))}
        for k in ("long_name", "standard_name"):
            if attrs.get(k):
                entry[k] = str(attrs[k])
        b = attrs.get("bounds")
        if isinstance(b, str) and src.has(b):
            bv = np.asarray(src.read(b), dtype=np.float64)
            if bv.shape == (values.size, 2):
                entry["bounds"] = bv.tolist()
        out[d] = entry
    return out


def compact_coord(entry: dict) -> dict:
    """A coordinate whose values are ``start + step * i`` exactly (bit for
    bit) and that has no bounds, as ``start``/``step``: the same coordinate,
    and a config (recorded in the output as YAML) of two numbers instead of
    hundreds.

    A coordinate with bounds in the file keeps its values and bounds, even
    on a regular axis: a ``start``/``step`` entry carries no bounds (the
    config's regular axes have none), and the output's ``<dim>_bounds``
    must be the file's (CF cells: ``lat_bnds`` of a CMIP grid).  The cost is
    the session's YAML dump of the recorded config, measured in
    docs/replay.md."""
    v = np.asarray(entry["values"])
    if v.size < 2 or entry.get("bounds") is not None:
        return entry
    start, step = float(v[0]), float(v[1] - v[0])
    if step == 0 or not np.array_equal(start + step * np.arange(v.size), v):
        return entry
    out = {k: val for k, val in entry.items() if k not in ("values", "bounds")}
    return {**out, "start": start, "step": step}


def _same_coords(a: dict, b: dict) -> str | None:
    """Why two ``coords:`` maps differ (first difference), or None."""
    for d in sorted(set(a) | set(b)):
        if d not in a or d not in b:
            return f"{d} has a coordinate variable in one and not in the other"
        va, vb = np.asarray(a[d]["values"]), np.asarray(b[d]["values"])
        if va.shape != vb.shape:
            return f"{d} has {va.size} points in one and {vb.size} in the other"
        if not np.allclose(va, vb, rtol=GRID_RTOL, atol=0.0):
            i = int(np.flatnonzero(~np.isclose(va, vb, rtol=GRID_RTOL, atol=0.0))[0])
            return f"{d}[{i}] is {va[i]:g} in one and {vb[i]:g} in the other"
    return None


def _span(ft: _FileTimes) -> str:
    return f"{os.path.basename(ft.path)} ({_date_text(ft.dates[0])} to {_date_text(ft.dates[-1])})"


def expand(pattern: str) -> list[str]:
    """The files a glob selects, or an InputError that says none do."""
    files = sorted(p for p in _glob.glob(os.path.expanduser(pattern), recursive=True)
                   if os.path.isfile(p))
    if not files:
        raise InputError(f"--input {pattern!r}: no file matches")
    return files


def parse_date(text: str, calendar: str, end: bool):
    """A ``--start``/``--end`` date in the series' calendar.

    ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` and ``YYYY-MM-DD[ T]HH:MM[:SS]``.
    A start is the first instant of what it names; an end excludes
    everything after what it names (``--end 1950`` keeps all of 1950, as
    xarray's ``sel(time=slice(..., "1950"))`` does): returned is the
    exclusive upper limit."""
    import cftime
    m = re.fullmatch(r"\s*(-?\d{1,4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})"
                     r"(?::(\d{2}))?)?)?)?\s*", text)
    if not m:
        raise InputError(f"{'--end' if end else '--start'} {text!r}: expected YYYY, YYYY-MM, "
                         "YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]")
    parts = [int(p) if p is not None else None for p in m.groups()]
    given = sum(p is not None for p in parts)
    y, mo, d, h, mi, s = [p if p is not None else dflt for p, dflt in
                          zip(parts, (None, 1, 1, 0, 0, 0))]
    try:
        date = cftime.datetime(y, mo, d, h, mi, s, calendar=calendar)
    except ValueError as exc:
        raise InputError(f"{'--end' if end else '--start'} {text!r}: not a date in the "
                         f"{calendar} calendar ({exc})") from None
    if not end:
        return date
    if given == 1:
        return cftime.datetime(y + 1, 1, 1, calendar=calendar)
    if given == 2:
        return cftime.datetime(y + (mo == 12), mo % 12 + 1, 1, calendar=calendar)
    step = {3: dict(days=1), 4: dict(hours=1), 5: dict(minutes=1), 6: dict(seconds=1)}[given]
    import datetime as _dt
    return date + _dt.timedelta(**step)


def _check_gaps(series: list, allow_gaps: bool) -> None:
    """Refuse a hole in the selected records (``series``: (file, index)
    pairs in order, with their times in the series' units and bounds)."""
    if allow_gaps or len(series) < 2:
        return
    times = np.array([t for _, _, t, _ in series])
    spacing = np.diff(times)
    have_bounds = all(b is not None for _, _, _, b in series)
    median = float(np.median(spacing))
    for i in range(len(series) - 1):
        (fa, ia, _, ba), (fb, ib, _, bb) = series[i], series[i + 1]
        if have_bounds:
            hole = bb[0] - ba[1]
            gap = hole > 1e-6 * max(abs(median), 1e-300)
        else:
            gap = spacing[i] > 1.5 * median
        if gap:
            where = (f"in {os.path.basename(fa.path)}" if fa is fb else
                     f"between {os.path.basename(fa.path)} and {os.path.basename(fb.path)}")
            raise InputError(
                f"gap in time {where}: nothing between {_date_text(fa.dates[ia])} and "
                f"{_date_text(fb.dates[ib])}"
                + (" (their time bounds do not meet)" if have_bounds else
                   f" ({spacing[i]:g} apart, the usual spacing is {median:g})")
                + "; replay it anyway with --allow-gaps")


def scan_file(path: str, variables, full: bool) -> tuple:
    """One file's part of a scan: its time axis, its view of each variable,
    its coordinates (values only unless ``full``: every file's are compared,
    one file per set gives the attributes) and its ``source_id``.  Files are
    independent, so the ranks share them out (:func:`insitu.replay.host`)."""
    src = open_source(path)
    try:
        ft, dims = _file_times(src, path, variables)
        vars_here = {v: _variable(src, path, v, dims[v]) for v in variables}
        coords = _coords(src, path, {d for v in vars_here.values() for d in v.dims}, full=full)
        source_id = src.global_attrs().get("source_id")
    except InputError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot read the file: {exc}") from None
    finally:
        src.close()
    return ft, vars_here, coords, source_id


def file_to_json(scanned: tuple) -> dict:
    """:func:`scan_file`'s result as plain data (floats exact in JSON)."""
    ft, vars_here, coords, source_id = scanned
    return {"path": ft.path, "kind": ft.kind, "units": ft.units, "calendar": ft.calendar,
            "values": ft.values.tolist(),
            "bounds": None if ft.bounds is None else ft.bounds.tolist(),
            "variables": {k: vars(v) for k, v in vars_here.items()},
            "coords": coords, "source_id": source_id}


def file_from_json(d: dict) -> tuple:
    """The inverse of :func:`file_to_json` (the dates decoded again: the
    scanning rank decoded them once, so this cannot fail)."""
    import cftime
    values = np.asarray(d["values"], dtype=np.float64)
    dates = list(cftime.num2date(values, d["units"], d["calendar"],
                                 only_use_cftime_datetimes=True))
    bounds = None if d["bounds"] is None else np.asarray(d["bounds"], dtype=np.float64)
    ft = _FileTimes(d["path"], d["kind"], d["units"], d["calendar"], values, dates, bounds)
    return (ft, {k: Variable(**v) for k, v in d["variables"].items()}, d["coords"],
            d["source_id"])


def scan(inputs, variables, start=None, end=None, every: int = 1,
         allow_gaps: bool = False, files=None, scanned_file=None) -> Plan:
    """Scan every ``(label, pattern)`` of ``inputs`` for ``variables``:
    order, check and select the records to replay (one rank does this).

    ``files`` lists each input's files (default: its pattern expanded) and
    ``scanned_file(path, full)`` gives :func:`scan_file`'s result or raises
    its error (default: scan_file itself); the host passes what the ranks
    scanned together.  Every check, and every message, is the same."""
    import cftime
    sets, grid_of, calendar, units = [], None, None, None
    series_times = None
    files_total = 0
    read = scanned_file or (lambda path, full: scan_file(path, variables, full))
    for i, (label, pattern) in enumerate(inputs):
        scanned = []
        for k, path in enumerate(expand(pattern) if files is None else files[i]):
            # every file's coordinate values (to compare), one file's attributes:
            # the set's first in time order is not known yet, so the first by name
            # gets them all, and the grid is then taken from it
            scanned.append(read(path, k == 0))
            if k == 0:
                full_coords = scanned[-1][2]
        files_total += len(scanned)
        scanned.sort(key=lambda s: s[0].dates[0])
        first = scanned[0]
        cal = first[0].calendar
        for ft, vars_here, coords, _ in scanned:
            if ft.calendar != cal:
                raise InputError(f"--input {pattern!r}: {os.path.basename(ft.path)} uses the "
                                 f"{ft.calendar} calendar but {os.path.basename(first[0].path)} "
                                 f"the {cal} calendar; one series needs one calendar")
            for v, var in vars_here.items():
                ref = first[1][v]
                if (var.dims, var.shape) != (ref.dims, ref.shape):
                    raise InputError(
                        f"--input {pattern!r}: shapes differ between files: {v!r} is "
                        f"{dict(zip(ref.dims, ref.shape))} per time step in "
                        f"{os.path.basename(first[0].path)} but {dict(zip(var.dims, var.shape))} "
                        f"in {os.path.basename(ft.path)}")
                if (var.dtype, var.field_dtype) != (ref.dtype, ref.field_dtype):
                    def said(x):
                        return x.dtype + (f" packed into {x.decoded}" if x.decoded else "")
                    raise InputError(f"--input {pattern!r}: {v!r} is {said(ref)} in "
                                     f"{os.path.basename(first[0].path)} but {said(var)} in "
                                     f"{os.path.basename(ft.path)}")
            why = _same_coords(first[2], coords)
            if why:
                raise InputError(f"--input {pattern!r}: the grid differs between "
                                 f"{os.path.basename(first[0].path)} and "
                                 f"{os.path.basename(ft.path)}: {why}")
        # Several sets: one grid (checked before their times: it is the first
        # thing two models' files can disagree on).
        grid = full_coords
        if grid_of is None:
            grid_of = (grid, pattern)
        else:
            why = _same_coords(grid_of[0], grid)
            if why:
                raise InputError(f"--input {grid_of[1]!r} and --input {pattern!r} have "
                                 f"different grids: {why} (regridding is not part of replay)")
        # The series: every record of every file, in the first file's units.
        if calendar is None:
            calendar, units = cal, first[0].units
        elif cal != calendar:
            raise InputError(f"--input {pattern!r} uses the {cal} calendar but the first "
                             f"--input the {calendar} calendar; the sets must share one")
        series = []
        prev = None
        for fi, (ft, *_rest) in enumerate(scanned):
            t = ft.values if ft.units == units else \
                np.asarray(cftime.date2num(ft.dates, units, cal), dtype=np.float64)
            b = ft.bounds
            if b is not None and ft.units != units:
                b = np.asarray(cftime.date2num(cftime.num2date(b, ft.units, cal), units, cal),
                               dtype=np.float64)
            d = np.diff(t)
            if (d <= 0).any():
                i = int(np.flatnonzero(d <= 0)[0])
                raise InputError(f"{ft.path}: times do not increase: record {i + 1} "
                                 f"({_date_text(ft.dates[i + 1])}) does not come after record "
                                 f"{i} ({_date_text(ft.dates[i])})")
            if prev is not None and t[0] <= prev[1]:
                raise InputError(f"--input {pattern!r}: files overlap in time: "
                                 f"{_span(prev[0])} and {_span(ft)}")
            prev = (ft, t[-1])
            series += [(ft, i, float(t[i]), None if b is None else b[i])
                       for i in range(t.size)]
        lo = parse_date(start, cal, end=False) if start else None
        hi = parse_date(end, cal, end=True) if end else None
        chosen = [r for r in series
                  if (lo is None or r[0].dates[r[1]] >= lo) and (hi is None or r[0].dates[r[1]] < hi)]
        if not chosen:
            raise InputError(f"--input {pattern!r}: no record between --start and --end (the "
                             f"series runs from {_date_text(series[0][0].dates[series[0][1]])} to "
                             f"{_date_text(series[-1][0].dates[series[-1][1]])})")
        _check_gaps(chosen, allow_gaps)
        chosen = chosen[::every]
        index = {id(s[0]): i for i, s in enumerate(scanned)}
        times = [r[2] for r in chosen]
        if series_times is None:
            series_times = (times, [_date_text(r[0].dates[r[1]]) for r in chosen], pattern)
        elif times != series_times[0]:
            n0, p0 = len(series_times[0]), series_times[2]
            raise InputError(
                f"--input {pattern!r} and --input {p0!r} replay different times ({len(times)} "
                f"records from {_date_text(chosen[0][0].dates[chosen[0][1]])} and {n0} from "
                f"{series_times[1][0]}); the sets must cover the same times")
        for v in variables:  # each file's own packing, in time order
            if first[1][v].decoded:
                first[1][v].packing = [s[1][v].packing[0] for s in scanned]
        sets.append(FileSet(pattern, label, str(first[3]) if first[3] else None,
                            [s[0].path for s in scanned], [s[0].kind for s in scanned],
                            [[index[id(r[0])], r[1]] for r in chosen], first[1]))
    for v in variables:
        shapes = {(tuple(s.variables[v].dims), tuple(s.variables[v].shape)) for s in sets}
        if len(shapes) > 1:
            a, b = sorted(shapes)[:2]
            raise InputError(f"{v!r} has different grids in different sets: "
                             f"{dict(zip(*a))} and {dict(zip(*b))}")
    return Plan(units, calendar, series_times[0], series_times[1], grid_of[0], sets, files_total)
