"""Summarise an insitu output file: ``python -m insitu.inspect OUT.h5``.

Prints the provenance (ranks, decomposition, versions, start and end), the
time range and step count, recorded errors and trigger firings, and every
output (time series, windows, trigger snapshots) grouped by the analysis
that wrote it, with its dims and shape, units, cadence and last value; a
run that did not finish is flagged at the top.  ``--config`` adds the
config the run used, ``--plot DIR`` writes a PNG per result
(:mod:`insitu.plots`), ``--follow`` prints new rows as they land
(:mod:`insitu.follow`).  Everything is read through :mod:`insitu.reader`:
without file locking, only the rows the writer committed, with a bounded
retry, so it works on a file still being written and on one left by a
killed run (docs/output.md, docs/live.md).  :func:`open_dataset` gives
xarray the same view.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

import numpy as np


# The committed-row reading lives in insitu.reader (one reader for inspect,
# --follow and the live viewer); these names stay for existing callers.
from . import reader  # noqa: E402
from .reader import committed, open_dataset  # noqa: E402,F401


def describe(path: str) -> str:
    """The summary, read in one open through :func:`insitu.reader.retry`
    (a run may be writing the file)."""
    return reader.retry(path, lambda f: _describe(path, f))


def _describe(path: str, f) -> str:
    a = f.attrs
    rows = reader.committed_rows(f)
    n = rows.get("time", 0)
    finished = "insitu_finished" in a
    lines = [f"{path}", f"  {a.get('source', 'insitu output')}"]
    if not finished:
        lines.append(f"  NOT FINISHED: the run is still running, or was killed or failed "
                     f"before finalize; showing the {n} time row(s) committed by its last "
                     "durable flush")
    if "time" in f and f["time"].shape[0] > n:
        lines.append(f"  committed: {n} of {f['time'].shape[0]} time rows (the run died "
                     "inside a durable flush; the rows past the count are not used)")
    steps = f["step"][:n] if "step" in f else np.arange(n)
    if n:
        t = f["time"][:n]
        units = f["time"].attrs.get("units", "")
        lines.append(f"  time: {n} output step(s), steps {steps[0]}..{steps[-1]}, "
                     f"time {t[0]:g}..{t[-1]:g} {units}")
    else:
        lines.append("  time: no output steps")
    lines.append(f"  ranks: {a.get('insitu_ranks', '?')}  host: {a.get('insitu_host', '?')}")
    lines.append(f"  started: {a.get('insitu_started', '?')}  "
                 f"finished: {a.get('insitu_finished', 'no (still running or killed)')}")
    if "insitu_decomposition" in a:
        for name, d in json.loads(a["insitu_decomposition"]).items():
            shapes = ", ".join("x".join(map(str, s)) for s in d["shapes"])
            lines.append(f"  field {name}: {d['dtype']} {tuple(d['global_shape'])} "
                         f"dims {tuple(d['dims'])}, slabs per rank: {shapes}")
    for e in json.loads(a.get("insitu_errors", "[]")):
        lines.append(f"  ERROR at step {e['step']}: {e['analysis']} failed on "
                     f"{e['ranks_failed']} rank(s), first rank {e['first_rank']}: {e['error']}")
    for e in json.loads(a.get("insitu_triggers", "[]")):
        lines.append(f"  trigger {e['trigger']} fired at step {e['step']} "
                     f"(time {e['time']:g}): {e['when']} with {e['values']}")
    from .state import GROUP, list_checkpoints
    if GROUP in f:
        for c in list_checkpoints(f):  # issue 13: what a restart can go on from
            held = ", ".join(f"{k} {v}" for k, v in c["rows"].items())
            lines.append(f"  checkpoint at step {c['step']} (time {c['time']}): rows {held}"
                         + ("" if c["complete"] else " INCOMPLETE, not usable"))
    else:
        lines.append("  checkpoints: none")
    if "insitu_versions" in a:
        v = json.loads(a["insitu_versions"])
        lines.append("  versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    lines.append("  outputs, by analysis:")
    lines.extend(_outputs(f, rows))
    return "\n".join(lines)


def _group(ds, var) -> tuple:
    """What tells one analysis's outputs from another's: its kind, field,
    axis, region and function (two stats of T over different regions are
    two analyses)."""
    a = ds.attrs
    if var.axis != "time":  # a window's, climatology's or trigger's own axis: one analysis
        return (var.kind or "other", "", var.axis, "", "", "")
    weights = re.search(r"\(weighted by ([^)]*)\)", str(a.get("cell_methods", "")))
    return (var.kind or "other", var.field, var.axis, str(a.get("insitu_region", "")),
            str(a.get("insitu_function", "")), weights.group(1) if weights else "")


def _title(key, rows: dict, members: list, f) -> str:
    kind, field, axis, region, function, weights = key
    n = rows.get(axis, 0)
    fields = sorted({v.field for v in members if v.field})
    if kind == "trigger":
        when = f[members[0].name].attrs.get("insitu_trigger", "")
        names = ", ".join(v.name for v in members)
        what = f"trigger {axis[len('time_'):]}: snapshots ({names}) when {when}"
    elif kind in ("window", "climatology"):
        what = f"{kind} {axis[len('time_'):]} of {', '.join(fields)}"
    else:
        what = f"{kind} of {field}" if field else kind
        if function:
            what += f" ({function})"
    if region:
        what += f", region {region}"
    if weights:
        what += f", weighted by {weights}"
    return f"    {what} [along {axis}, {n} committed row(s)]"


def _cadence(ds, steps, n: int, kind: str) -> str:
    """How often an output is written, from the rows themselves: the step
    spacing of the committed rows where it is not fill (an analysis not due
    at an output step leaves fill there).  Windows and trigger snapshots
    have their own axes: a row per window, a row per firing."""
    if kind == "trigger":
        return "on each firing"
    if kind in ("window", "climatology"):
        return "one row per window"
    if n == 0:
        return "no rows yet"
    s = np.asarray(steps)[:n][reader.written(ds, slice(0, n))]
    if s.size < 2:
        return f"{s.size} row(s) written"
    gaps = np.unique(np.diff(s))
    return f"every {gaps[0]} steps" if gaps.size == 1 else \
        f"every {int(np.median(np.diff(s)))} steps (irregular: {', '.join(map(str, gaps[:4]))})"


def _outputs(f, rows: dict) -> list[str]:
    """The listing: every result (time series, windows, trigger snapshots),
    grouped by the analysis that wrote it, each with its dims and shape,
    dtype, units and the last committed value."""
    variables = reader.catalogue(f)
    groups: dict = {}
    for name, var in variables.items():
        groups.setdefault(_group(f[name], var), []).append(var)
    lines = []
    for key, members in groups.items():
        axis = key[2]
        n = rows.get(axis, 0)
        step_name = "step" if axis == "time" else "step" + axis[len("time"):]
        steps = f[step_name][:n] if step_name in f else np.arange(n)
        lines.append(_title(key, rows, members, f) + f" {_cadence(f[members[0].name], steps, n, key[0])}")
        for var in members:
            dims = ", ".join([var.axis] + [f"{d}={s}" for d, s in zip(var.dims[1:], var.shape)])
            lines.append(f"      {var.name:<22} ({dims}) {var.dtype} [{var.units}]"
                         f"{_last(f[var.name], n)}")
    if not lines:
        lines.append("    (none yet)")
    return lines


def _last(ds, n: int) -> str:
    """The value at the last committed output step (row ``n - 1``), or its
    range for a multi-dimensional result."""
    if not ds.shape or n == 0:
        return ""
    last = np.asarray(ds[n - 1])
    if last.size == 1:
        return f"  last={last.item():.10g}"
    if last.dtype.kind == "f" and np.isnan(last).all():
        return "  last: all NaN"
    return f"  last: {np.nanmin(last):.6g}..{np.nanmax(last):.6g}"


def _dims(ds) -> list[str]:
    out = []
    for dim in ds.dims:
        names = [s.name.lstrip("/") for s in dim.values()] if len(dim) else []
        out.append(names[0] if names else "?")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m insitu.inspect", description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--config", action="store_true", help="also print the run's config")
    p.add_argument("--plot", metavar="DIR", help="write a PNG figure per result into DIR")
    p.add_argument("--step", type=int, default=-1,
                   help="output index for maps and histograms (default: the last)")
    p.add_argument("--follow", action="store_true",
                   help="print new rows as they land, like tail -f, until the run finishes "
                        "or Ctrl-C (a finished file: print every row and exit)")
    p.add_argument("--var", action="append", metavar="NAME",
                   help="with --follow: a variable to print (repeat; default: the first "
                        "scalars along time)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="with --follow: seconds between polls of the file (default 1)")
    p.add_argument("--idle", type=float, default=None,
                   help="with --follow: stop after this many seconds without a new row "
                        "(default: never, for a run that was killed)")
    args = p.parse_args(argv)
    if args.follow:
        from .follow import follow
        from .log import setup
        setup(0)
        try:
            return follow(args.path, args.var, interval=args.interval, idle=args.idle)
        except KeyboardInterrupt:
            return 0
        except (OSError, KeyError, ValueError) as exc:
            print(f"insitu.inspect: cannot follow {args.path}: {exc}", file=sys.stderr)
            return 1
    try:
        print(describe(args.path))
        if args.config:
            cfg = reader.retry(args.path, lambda f: str(f.attrs.get("insitu_config", "")))
            print("  config:")
            print("\n".join("    " + line for line in cfg.splitlines()))
        if args.plot:
            from .plots import plot_file
            files = plot_file(args.path, args.plot, args.step)
            print(f"  wrote {len(files)} figure(s) to {args.plot}")
    except (OSError, KeyError) as exc:
        print(f"insitu.inspect: cannot read {args.path}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
