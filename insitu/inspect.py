"""Summarise an insitu output file: ``python -m insitu.inspect OUT.h5``.

Prints the variables with their dimensions and units, the time range and
step count, the provenance (ranks, decomposition, versions, start and end),
recorded errors and trigger firings, and the last value of each variable;
``--config`` adds the config the run used, ``--plot DIR`` writes a PNG per
result (:mod:`insitu.plots`).  It reads without file locking, so it works on
a file still being written and on one left by a killed run, and it reads
only the rows the writer committed (:func:`insitu.layout.committed_rows`):
a growing axis is preallocated, and rows past the last durable flush are
fill or uncommitted (docs/output.md).  :func:`open_dataset` gives xarray the
same view.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def committed(path: str) -> dict[str, int]:
    """The committed rows of each growing axis (``time``, each window's and
    trigger's) of the file at ``path``."""
    import h5py
    from .layout import committed_rows
    with h5py.File(path, "r", locking=False) as f:
        return committed_rows(f)


def open_dataset(path: str, engine: str = "h5netcdf", **kwargs):
    """``xarray.open_dataset`` cut to the committed rows of every growing
    axis: the same as a plain open for a finalized file (whose axes have
    exact sizes), and the way to read a file that a run is still writing or
    that a killed run left behind."""
    import xarray as xr
    rows = committed(path)
    ds = xr.open_dataset(path, engine=engine, **kwargs)
    return ds.isel({a: slice(0, n) for a, n in rows.items() if a in ds.dims})


def describe(path: str) -> str:
    import h5py

    from .layout import axis_of, committed_rows
    lines = []
    with h5py.File(path, "r", locking=False) as f:
        a = f.attrs
        rows = committed_rows(f)
        n = rows.get("time", 0)
        lines.append(f"{path}")
        lines.append(f"  {a.get('source', 'insitu output')}")
        if "time" in f and f["time"].shape[0] > n:
            lines.append(f"  committed: {n} of {f['time'].shape[0]} preallocated time rows "
                         "(the rest are fill or were written after the last durable flush)")
        if n:
            t, s = f["time"][:n], f["step"][:n]
            units = f["time"].attrs.get("units", "")
            lines.append(f"  time: {n} output step(s), steps {s[0]}..{s[-1]}, "
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
        if "insitu_versions" in a:
            v = json.loads(a["insitu_versions"])
            lines.append("  versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
        lines.append("  variables:")
        for name, ds in f.items():
            if name in ("time", "step") or not isinstance(ds, h5py.Dataset) or ds.is_scale \
                    or axis_of(ds) != "time":
                continue  # coordinates, the insitu group, and variables not along time
            lines.append(f"    {name:<22} ({', '.join(_dims(ds))}) {ds.dtype} "
                         f"[{ds.attrs.get('units', '')}]{_last(ds, n)}")
    return "\n".join(lines)


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
    args = p.parse_args(argv)
    try:
        print(describe(args.path))
        if args.config:
            import h5py
            with h5py.File(args.path, "r", locking=False) as f:
                print("  config:")
                print("\n".join("    " + l for l in str(f.attrs.get("insitu_config", ""))
                                 .splitlines()))
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
