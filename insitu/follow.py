"""``python -m insitu.inspect OUT.h5 --follow``: new rows as they land, like
``tail -f``.

Each committed output step prints one line: the step, the time and the
chosen variables' values, in aligned columns (a header names them, with
their units).  It polls the committed-row index (:mod:`insitu.reader`)
every ``interval`` seconds, re-opening the file each time, and prints only
committed rows, so a line is never a torn row.  It ends by itself when the
file says the run finished (``insitu_finished``) and every row is printed,
on Ctrl-C, or after ``idle`` seconds without a new row (for a run that
was killed and will never finish).  On a finished file it prints
everything and exits; on a file that does not exist yet it waits for it.
"""
from __future__ import annotations

import logging
import sys
import time

import numpy as np

from . import reader

log = logging.getLogger("insitu.follow")

#: scalar variables shown when none is chosen: enough for a terminal line
DEFAULT_COLUMNS = 6
WIDTH = 14


def choose(variables: dict, wanted: list[str] | None) -> list[str]:
    """The variables to print: the ``wanted`` ones (each must lie along
    ``time``), or the first :data:`DEFAULT_COLUMNS` scalars along ``time``."""
    along = {n: v for n, v in variables.items() if v.axis == "time"}
    if wanted:
        bad = [n for n in wanted if n not in along]
        if bad:
            raise ValueError(f"no variable {', '.join(bad)} along time; choose from "
                             f"{', '.join(along) or '(none yet)'}")
        return wanted
    scalars = [n for n, v in along.items() if v.scalar]
    # what a scientist watches first: means and extremes, then the rest
    first = [n for n in scalars if n.rsplit("_", 1)[-1] in ("mean", "min", "max", "std")]
    return (first + [n for n in scalars if n not in first])[:DEFAULT_COLUMNS]


def _cell(value) -> str:
    a = np.asarray(value)
    if a.size == 1:
        x = a.item()
        if isinstance(x, float) and np.isnan(x):
            return "nan"
        return f"{x:.7g}" if isinstance(x, float) else str(x)
    if a.dtype.kind == "f" and np.isnan(a).all():
        return "all NaN"
    return f"{np.nanmin(a):.4g}..{np.nanmax(a):.4g}"


def header(path: str, names: list[str], variables: dict, time_units: str) -> str:
    """Three lines: the file and the time's units, the column names, and
    each column's units (names and units are cut to the column width)."""
    cols = [f"{'step':>10}", f"{'time':>{WIDTH}}"] + \
           [f"{n[:WIDTH]:>{WIDTH}}" for n in names]
    units = [f"{'':>10}", f"{'':>{WIDTH}}"] + \
            [f"{'[' + variables[n].units[:WIDTH - 2] + ']':>{WIDTH}}" for n in names]
    return (f"# {path}: time in {time_units or 'model units'}\n" + " ".join(cols) + "\n"
            + " ".join(units))


def line(step, t, values: list) -> str:
    return " ".join([f"{int(step):>10}", f"{float(t):>{WIDTH}.7g}"] +
                    [f"{_cell(v):>{WIDTH}}" for v in values])


def follow(path: str, names: list[str] | None = None, interval: float = 1.0,
           idle: float | None = None, out=None, wait: float | None = None) -> int:
    """Print the committed rows of ``names`` (or the default columns) as
    they land; return 0 when the run finished, 1 when ``idle`` or ``wait``
    ran out first."""
    out = out or sys.stdout
    if not reader.wait_for(path, timeout=wait, poll=min(interval, 0.5)):
        log.error("%s: no output file after %s s", path, wait)
        return 1
    snap = reader.snapshot(path)
    columns = choose(snap.variables, names)
    units = reader.retry(path, lambda f: str(reader._text(f["time"].attrs.get("units", ""))))
    print(header(path, columns, snap.variables, units), file=out, flush=True)
    printed, last_new = 0, time.monotonic()
    while True:
        n, rows = reader.read_rows(path, "time", columns, start=printed)
        for i in range(len(rows["step"])):
            print(line(rows["step"][i], rows["time"][i], [rows[c][i] for c in columns]),
                  file=out)
        if n > printed:
            out.flush()
            printed, last_new = n, time.monotonic()
        # the finished flag is set by finalize after its last flush: a file
        # that says it finished holds every row, so one more read ends it
        if reader.snapshot(path, variables=False).finished:
            n, rows = reader.read_rows(path, "time", columns, start=printed)
            for i in range(len(rows["step"])):
                print(line(rows["step"][i], rows["time"][i], [rows[c][i] for c in columns]),
                      file=out)
            out.flush()
            return 0
        if idle is not None and time.monotonic() - last_new > idle:
            log.warning("%s: no new row for %g s and the run did not finish; stopping", path, idle)
            return 1
        time.sleep(interval)
