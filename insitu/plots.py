"""Figures for ``python -m insitu.inspect OUT.h5 --plot DIR``.

One PNG per result, chosen by what the result is (its ``insitu_analysis``
attribute and its dimensions):

* scalar series (stats, user outputs, windows): a time series;
* a profile along one dimension over time (reduce): a Hovmoller diagram;
* a 2-D field (coarsen, trigger snapshots): an image at the last, or a
  chosen, time;
* a histogram: bars at that time;
* probes: one line per point.

Files are read through :mod:`insitu.reader` (read-only, without file
locking, committed rows only), so a file still being written, or left by a
killed run, can be plotted.  Coordinates, bounds and step numbers are never
plotted: they are not results (:func:`insitu.reader.catalogue`).
"""
from __future__ import annotations

import os

import numpy as np


def _time_axis(f, ds):
    scale = [s.name.lstrip("/") for s in ds.dims[0].values()] if len(ds.dims[0]) else []
    name = scale[0] if scale else "time"
    t = f[name][...] if name in f else np.arange(ds.shape[0])
    return name, t, f[name].attrs.get("units", "") if name in f else ""


def _dim_name(ds, i):
    names = [s.name.lstrip("/") for s in ds.dims[i].values()] if len(ds.dims[i]) else []
    return names[0] if names else f"dim_{i}"


def _label(ds, name):
    units = ds.attrs.get("units", "")
    return f"{ds.attrs.get('long_name', name)}" + (f" [{units}]" if units not in ("", "1") else "")


def plot_file(path: str, outdir: str, step_index: int = -1) -> list[str]:
    """Write the figures for ``path`` into ``outdir``; return their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    written = []

    def save(fig, name):
        p = os.path.join(outdir, f"{name}.png")
        fig.savefig(p, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(p)

    from . import reader
    with reader.open_file(path) as f:
        rows = reader.committed_rows(f)  # a running or killed run's axes are preallocated
        # Only results: coordinates (step numbers), bounds and time are not,
        # and a plot of them (a series of step numbers, a Hovmoller of time
        # bounds) only misleads (reader.catalogue leaves them out).
        for name in reader.catalogue(f):
            ds = f[name]
            kind = ds.attrs.get("insitu_analysis", "")
            tname, t, tunits = _time_axis(f, ds)
            n = min(rows.get(tname, ds.shape[0]), ds.shape[0])
            if n == 0:
                continue
            t, data = t[:n], ds[:n]
            k = step_index if -data.shape[0] <= step_index < data.shape[0] else -1
            if ds.ndim == 1:
                fig, ax = plt.subplots(figsize=(6, 3))
                ax.plot(t, data, marker="." if data.size < 50 else None)
                ax.set_xlabel(f"{tname} [{tunits}]" if tunits else tname)
                ax.set_ylabel(_label(ds, name))
                ax.set_title(name)
                save(fig, f"series_{name}")
            elif ds.ndim == 2 and kind == "histogram":
                centres = f[_dim_name(ds, 1)][...]
                fig, ax = plt.subplots(figsize=(6, 3))
                width = np.diff(centres).mean() if centres.size > 1 else 1.0
                ax.bar(centres, data[k], width=width)
                ax.set_xlabel(_dim_name(ds, 1))
                ax.set_ylabel("count")
                ax.set_title(f"{name} at {tname} = {t[k]:g}")
                save(fig, f"histogram_{name}")
            elif ds.ndim == 2 and kind == "probe":
                fig, ax = plt.subplots(figsize=(6, 3))
                for p in range(data.shape[1]):
                    ax.plot(t, data[:, p], label=f"point {p}")
                ax.legend(fontsize="small")
                ax.set_xlabel(tname)
                ax.set_ylabel(_label(ds, name))
                ax.set_title(name)
                save(fig, f"probe_{name}")
            elif ds.ndim == 2:
                dim = _dim_name(ds, 1)
                y = f[dim][...] if dim in f else np.arange(data.shape[1])
                fig, ax = plt.subplots(figsize=(6, 4))
                m = ax.pcolormesh(y, t, np.ma.masked_invalid(data), shading="auto")
                fig.colorbar(m, ax=ax, label=_label(ds, name))
                ax.set_xlabel(dim)
                ax.set_ylabel(tname)
                ax.set_title(f"{name} (Hovmoller)")
                save(fig, f"hovmoller_{name}")
            elif ds.ndim == 3:
                d1, d2 = _dim_name(ds, 1), _dim_name(ds, 2)
                fig, ax = plt.subplots(figsize=(6, 4))
                m = ax.imshow(np.ma.masked_invalid(data[k]).T, origin="lower", aspect="auto")
                fig.colorbar(m, ax=ax, label=_label(ds, name))
                ax.set_xlabel(d1)
                ax.set_ylabel(d2)
                ax.set_title(f"{name} at {tname} = {t[k]:g}")
                save(fig, f"map_{name}")
    return written
