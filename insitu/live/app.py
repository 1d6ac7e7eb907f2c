"""The live view's Bokeh document: one panel per output kind, updated as
rows land.

Every poll (a periodic callback, ``interval`` seconds) makes one read of
the file through :func:`insitu.reader.retry`: the committed rows, the
file's attributes and only what changed: the new rows of every scalar time
series (streamed into the plot's data source, never re-sent whole), the
row of the map and the histogram on show, the windows' new rows.  A file
that does not exist yet, or is mid-update, shows as waiting; a poll that
fails after the reader's bounded retry is reported in the status line and
tried again at the next poll.  The file is only ever opened read-only.

Panels (each shown only when the file has such outputs):

* status: the run's progress (committed rows, last step and time,
  started/finished), its errors and trigger firings (from the attributes);
* time series of scalars along ``time``, several per plot, chosen with a
  multi-select; trigger firings are vertical marks on the time axis;
* a map: the latest (or, with the slider, an earlier) row of a snapshot,
  coarse field (an image) or reduction (a profile);
* a histogram: the latest row as bars over the bin centres;
* windows: each window variable per window, drawn across its bounds.

Models carry names (``series_<var>``, ``status`` ...) so that a browser test
can find them (``Bokeh.documents[0].get_model_by_name``).
"""
from __future__ import annotations

import html
import logging
import os

import numpy as np

from .. import reader

log = logging.getLogger("insitu.live")

#: scalar series drawn at first: means and extremes of the first field
DEFAULT_SERIES = 4
#: rows searched back for the latest row a map or histogram was written at
LOOK_BACK = 256
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def _finite(a) -> np.ndarray:
    """Float values with the fill shown as a gap (NaN), for plotting."""
    a = np.asarray(a)
    return a.astype(float) if a.dtype.kind == "f" else np.where(a <= -2**62, np.nan, a).astype(float)


class LiveView:
    """The document's state and its poll."""

    def __init__(self, doc, path: str, interval: float = 1.0) -> None:
        from bokeh.layouts import column
        from bokeh.models import Div
        self.doc, self.path, self.interval = doc, str(path), interval
        self.status = Div(name="status", text=self._waiting_text(), width=1000)
        self.root = column(self.status, name="root", sizing_mode="stretch_width")
        self.built = False
        self.counts: dict[str, int] = {}     # rows streamed per series axis
        self.marked: set = set()             # trigger firings drawn
        self.polls = 0
        doc.title = f"insitu live: {os.path.basename(self.path)}"
        doc.add_root(self.root)
        doc.add_periodic_callback(self.poll, int(interval * 1000))
        self.poll()

    # -- reading ---------------------------------------------------------
    def _waiting_text(self) -> str:
        return (f"<b>{html.escape(self.path)}</b>: waiting for the file to appear "
                "(the run has not created it yet)")

    def _read(self, f) -> dict:
        """Everything one poll needs, in one open (the caller retries)."""
        rows = reader.committed_rows(f)
        out = {"rows": rows, "attrs": {k: reader._text(v) for k, v in f.attrs.items()}}
        if not self.built:
            out["catalogue"] = reader.catalogue(f)
            out["time_units"] = str(reader._text(f["time"].attrs.get("units", ""))) \
                if "time" in f else ""
            for dim in self._needed_coords(out["catalogue"]):
                if dim in f:
                    out.setdefault("coords", {})[dim] = f[dim][...]
        cat = out.get("catalogue", getattr(self, "catalogue", {}))
        # new rows of every scalar along time, and of every window axis
        new = {}
        for axis in {v.axis for v in cat.values() if v.scalar and v.kind != "trigger"}:
            n = rows.get(axis, 0)
            lo = min(self.counts.get(axis, 0), n)
            if n > lo:
                names = [v.name for v in cat.values() if v.axis == axis and v.scalar]
                part = {"time": f[axis][lo:n]}
                bounds = f[axis].attrs.get("bounds") or f[axis].attrs.get("climatology")
                if bounds is not None and reader._text(bounds) in f:
                    b = f[reader._text(bounds)][lo:n]
                    part["lo"], part["hi"] = b[:, 0], b[:, 1]
                for name in names:
                    part[name] = f[name][lo:n]
                new[axis] = (n, part)
        out["new"] = new
        # the row on show of the map and the histogram (the latest by default)
        for key in ("map", "hist"):
            name = getattr(self, f"{key}_var", None)
            if name and name in cat:
                n = rows.get(cat[name].axis, 0)
                if n:
                    k = self._row_for(key, n, f[name])
                    out[key] = (name, n, k, f[name][k], float(f[cat[name].axis][k]))
        return out

    def _row_for(self, key: str, n: int, ds) -> int:
        """The row to show: the slider's, or the latest row the output was
        written at (an analysis not due at an output step leaves fill
        there: a coarse field every 10 steps is fill at 9 rows of 10)."""
        slider = getattr(self, "slider", None)
        if key == "map" and slider is not None and not self.follow_latest:
            return int(min(max(slider.value, 0), n - 1))
        lo = max(0, n - LOOK_BACK)
        hits = np.flatnonzero(reader.written(ds, slice(lo, n)))
        return lo + int(hits[-1]) if hits.size else n - 1

    @staticmethod
    def _needed_coords(cat) -> set:
        return {d for v in cat.values() for d in v.dims[1:]}

    def poll(self) -> None:
        self.polls += 1
        try:
            data = reader.retry(self.path, self._read)
        except FileNotFoundError:
            self.status.text = self._waiting_text()
            return
        except OSError as exc:  # ReaderError after the bounded retry: next poll
            self.status.text = (f"<b>{html.escape(self.path)}</b>: cannot read it now "
                                f"({html.escape(str(exc))}); trying again")
            return
        if not self.built:
            if "time" not in data["rows"]:
                self.status.text = self._waiting_text()
                return
            self._build(data)
        self._update(data)

    # -- building ----------------------------------------------------------
    def _build(self, data) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import MultiChoice, Select, Slider
        from bokeh.plotting import figure
        self.catalogue = cat = data["catalogue"]
        self.coords = data.get("coords", {})
        units = data["time_units"]
        xlabel = f"time [{units}]" if units else "time"
        panels = []
        # time series of scalars
        scalars = [v.name for v in cat.values() if v.axis == "time" and v.scalar]
        self.series = {}
        if scalars:
            first = sorted((n for n in scalars if n.rsplit("_", 1)[-1] in ("mean", "min", "max")),
                           key=lambda n: (len(n), n))  # T_max before T_anomaly_max
            shown = first[:DEFAULT_SERIES] or scalars[:DEFAULT_SERIES]
            fig = figure(name="series", title="time series", height=320,
                         sizing_mode="stretch_width", x_axis_label=xlabel)
            from bokeh.models import ColumnDataSource
            for i, name in enumerate(scalars):
                src = ColumnDataSource({"x": [], "y": []}, name=f"series_{name}")
                r = fig.line("x", "y", source=src, color=PALETTE[i % len(PALETTE)],
                             legend_label=f"{name} [{cat[name].units}]", line_width=2)
                r.visible = name in shown
                self.series[name] = (src, r)
            fig.legend.location = "top_left"
            fig.legend.click_policy = "hide"
            # the axes and the legend follow the chosen variables only: a sum
            # in the millions would otherwise flatten every mean
            fig.y_range.only_visible = True
            fig.x_range.only_visible = True
            for item in fig.legend.items:
                item.visible = item.renderers[0].visible
            self.series_fig = fig
            choose = MultiChoice(name="series_choice", title="variables", value=shown,
                                 options=scalars, sizing_mode="stretch_width")
            choose.on_change("value", lambda attr, old, new: self._choose(new))
            panels.append(column(choose, fig, sizing_mode="stretch_width"))
        # maps: coarse fields, snapshots, reductions (one or two dims per row)
        maps = [v.name for v in cat.values() if len(v.shape) in (1, 2) and v.kind != "histogram"
                and v.kind not in ("probe", "window", "climatology")]
        self.map_var = maps[0] if maps else None
        if maps:
            from bokeh.models import ColumnDataSource
            self.map_select = Select(name="map_choice", title="map", value=maps[0], options=maps)
            self.map_select.on_change("value", lambda attr, old, new: self._set_map(new))
            self.slider = Slider(name="map_slider", title="row (latest while at the end)",
                                 start=0, end=1, value=0, step=1, sizing_mode="stretch_width")
            self.follow_latest = True
            self.slider.on_change("value_throttled", lambda attr, old, new: self._slide(new))
            self.map_fig = figure(name="map", title="", height=360, sizing_mode="stretch_width")
            self.image_src = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []},
                                              name="map_image")
            self.image = self.map_fig.image(image="image", x="x", y="y", dw="dw", dh="dh",
                                            source=self.image_src, palette="Viridis256")
            self.profile_src = ColumnDataSource({"x": [], "y": []}, name="map_profile")
            self.profile = self.map_fig.line("x", "y", source=self.profile_src, line_width=2)
            panels.append(column(row(self.map_select, sizing_mode="stretch_width"), self.slider,
                                 self.map_fig, sizing_mode="stretch_width"))
        # histograms
        hists = [v.name for v in cat.values() if v.kind == "histogram" and len(v.shape) == 1
                 and v.dims[1] in self.coords and "bin" in v.dims[1]]
        self.hist_var = hists[0] if hists else None
        if hists:
            from bokeh.models import ColumnDataSource
            self.hist_select = Select(name="hist_choice", title="histogram", value=hists[0],
                                      options=hists)
            self.hist_select.on_change("value", lambda a, o, n: setattr(self, "hist_var", n))
            self.hist_fig = figure(name="histogram", title="", height=300,
                                   sizing_mode="stretch_width")
            self.hist_src = ColumnDataSource({"left": [], "right": [], "top": []},
                                             name="hist_bars")
            self.hist_fig.quad(left="left", right="right", top="top", bottom=0,
                               source=self.hist_src, alpha=0.7)
            panels.append(column(self.hist_select, self.hist_fig, sizing_mode="stretch_width"))
        # windows: each variable per window, across its bounds
        windows = sorted({v.axis for v in cat.values() if v.kind in ("window", "climatology")
                          and v.scalar})
        self.window_srcs = {}
        if windows:
            from bokeh.models import ColumnDataSource
            wfig = figure(name="windows", title="windows (each across its bounds)", height=300,
                          sizing_mode="stretch_width", x_axis_label=xlabel)
            i = 0
            for axis in windows:
                for v in cat.values():
                    # windows of means and extremes, as ``<source>_<window>_<op>``
                    suffix = axis[len("time"):]
                    source = v.name.rsplit("_", 1)[0]
                    if v.axis == axis and v.scalar and v.kind in ("window", "climatology") \
                            and v.field and source.endswith(suffix) \
                            and source[:-len(suffix)].rsplit("_", 1)[-1] in ("mean", "max", "min"):
                        src = ColumnDataSource({"lo": [], "hi": [], "y": []},
                                               name=f"window_{v.name}")
                        wfig.segment(x0="lo", x1="hi", y0="y", y1="y", source=src, line_width=3,
                                     color=PALETTE[i % len(PALETTE)],
                                     legend_label=f"{v.name} [{v.units}]")
                        self.window_srcs[v.name] = (axis, src)
                        i += 1
            if self.window_srcs:
                wfig.legend.click_policy = "hide"
                wfig.legend.location = "top_left"
                wfig.y_range.only_visible = True
                panels.append(wfig)
        self.root.children = [self.status] + panels
        self.built = True

    def _choose(self, names) -> None:
        for name, (_, r) in self.series.items():
            r.visible = name in names
        for item in self.series_fig.legend.items:
            item.visible = item.renderers[0].visible

    def _set_map(self, name) -> None:
        self.map_var = name
        self.follow_latest = True
        self.poll()

    def _slide(self, value) -> None:
        self.follow_latest = value >= self.slider.end
        self.poll()

    # -- updating ----------------------------------------------------------
    def _update(self, data) -> None:
        rows, attrs = data["rows"], data["attrs"]
        for axis, (n, part) in data["new"].items():
            self.counts[axis] = n
            if axis == "time":
                for name, (src, _) in self.series.items():
                    if name in part:
                        src.stream({"x": part["time"].astype(float), "y": _finite(part[name])})
            for name, (wax, src) in self.window_srcs.items():
                if wax == axis and name in part and "lo" in part:
                    src.stream({"lo": part["lo"], "hi": part["hi"], "y": _finite(part[name])})
        self._mark_triggers(attrs)
        if "map" in data:
            self._draw_map(*data["map"])
        if "hist" in data:
            self._draw_hist(*data["hist"])
        self.status.text = self._status_text(rows, attrs)

    def _mark_triggers(self, attrs) -> None:
        from bokeh.models import Span
        if not self.series:
            return
        for e in reader._json(attrs.get("insitu_triggers"), []):
            key = (e.get("trigger"), e.get("step"))
            if key in self.marked:
                continue
            self.marked.add(key)
            self.series_fig.add_layout(Span(location=float(e["time"]), dimension="height",
                                            line_color="red", line_dash="dashed", line_alpha=0.6,
                                            name=f"trigger_{e.get('trigger')}_{e.get('step')}"))

    def _draw_map(self, name, n, k, values, t) -> None:
        var = self.catalogue[name]
        self.slider.end = max(1, n - 1)
        if self.follow_latest:
            self.slider.value = n - 1
        self.map_fig.title.text = f"{name} [{var.units}] at time {t:g} (row {k + 1} of {n})"
        a = _finite(values)
        if a.ndim == 2:
            # image: first dim along y (rows), second along x, as the dims say
            self.image_src.data = {"image": [np.ma.filled(np.ma.masked_invalid(a), np.nan)],
                                   "x": [0], "y": [0], "dw": [a.shape[1]], "dh": [a.shape[0]]}
            self.profile_src.data = {"x": [], "y": []}
            self.map_fig.xaxis.axis_label = var.dims[2] if len(var.dims) > 2 else ""
            self.map_fig.yaxis.axis_label = var.dims[1]
        else:
            x = self.coords.get(var.dims[1], np.arange(a.size))
            self.profile_src.data = {"x": np.asarray(x, float), "y": a}
            self.image_src.data = {"image": [], "x": [], "y": [], "dw": [], "dh": []}
            self.map_fig.xaxis.axis_label = var.dims[1]
            self.map_fig.yaxis.axis_label = f"{name} [{var.units}]"

    def _draw_hist(self, name, n, k, values, t) -> None:
        var = self.catalogue[name]
        centres = np.asarray(self.coords[var.dims[1]], float)
        width = float(np.diff(centres).mean()) if centres.size > 1 else 1.0
        self.hist_src.data = {"left": centres - width / 2, "right": centres + width / 2,
                              "top": _finite(values)}
        self.hist_fig.title.text = f"{name} at time {t:g} (row {k + 1} of {n})"

    def _status_text(self, rows, attrs) -> str:
        n = rows.get("time", 0)
        state = (f"finished {attrs['insitu_finished']}" if "insitu_finished" in attrs
                 else "running (or stopped before finalize)")
        last = ""
        if self.series and n:
            src = next(iter(self.series.values()))[0]
            if len(src.data["x"]):
                last = f", last time {src.data['x'][-1]:g}"
        parts = [f"<b>{html.escape(self.path)}</b>: {html.escape(state)}; "
                 f"<span id='rows'>{n}</span> committed output step(s){last}; "
                 f"{attrs.get('insitu_ranks', '?')} rank(s), started "
                 f"{html.escape(str(attrs.get('insitu_started', '?')))}"]
        errors = reader._json(attrs.get("insitu_errors"), [])
        for e in errors[-5:]:
            parts.append(f"<span style='color:#b00'>ERROR at step {e.get('step')}: "
                         f"{html.escape(str(e.get('analysis')))}: "
                         f"{html.escape(str(e.get('error')))}</span>")
        fired = reader._json(attrs.get("insitu_triggers"), [])
        if fired:
            parts.append(f"{len(fired)} trigger firing(s), the last: "
                         f"{html.escape(str(fired[-1].get('trigger')))} at step "
                         f"{fired[-1].get('step')} (red dashed marks)")
        return "<br>".join(parts)


def make_document(doc, path: str, interval: float = 1.0) -> LiveView:
    """The Bokeh application's entry: one :class:`LiveView` per browser
    session, each with its own poll."""
    return LiveView(doc, path, interval)
