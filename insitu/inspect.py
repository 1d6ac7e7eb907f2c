"""Summarise an insitu output file: ``python -m insitu.inspect OUT.h5``.

Prints the variables with their dimensions and units, the time range and
step count, the provenance (ranks, decomposition, versions, start and end),
recorded errors and trigger firings, and the last value of each variable;
``--config`` adds the config the run used, ``--plot DIR`` writes a PNG per
result (:mod:`insitu.plots`).  It reads without file locking, so it works on
a file still being written and on one left by a killed run.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def describe(path: str) -> str:
    import h5py
    lines = []
    with h5py.File(path, "r", locking=False) as f:
        a = f.attrs
        n = f["time"].shape[0] if "time" in f else 0
        lines.append(f"{path}")
        lines.append(f"  {a.get('source', 'insitu output')}")
        if n:
            t, s = f["time"][...], f["step"][...]
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
            if name in ("time", "step") or ds.is_scale or ds.ndim == 0 or \
                    not ds.dims[0].keys() or \
                    [s.name for s in ds.dims[0].values()] != ["/time"]:
                continue  # coordinates, and variables not along time
            lines.append(f"    {name:<22} ({', '.join(_dims(ds))}) {ds.dtype} "
                         f"[{ds.attrs.get('units', '')}]{_last(ds)}")
    return "\n".join(lines)


def _last(ds) -> str:
    """The last output step's value, or its range for a multi-dimensional result."""
    if not ds.shape or ds.shape[0] == 0:
        return ""
    last = np.asarray(ds[-1])
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
