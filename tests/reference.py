"""The analyses again, done after the fact with numpy on the whole field.

``expected(analysis_cfg, field, dims)`` returns {variable: value} for one
step, so an output file can be checked against its own config.
"""
from __future__ import annotations

import numpy as np

from insitu.analyses import REGISTRY


def _finite(a):
    return a[np.isfinite(a)]


def _index_range(r, d, n, coords):
    if isinstance(r, dict):
        c = coords[d]
        values = c["start"] + c["step"] * np.arange(n)
        inside = np.flatnonzero((values >= min(r["from"], r["to"])) &
                                (values <= max(r["from"], r["to"])))
        return slice(inside[0], inside[-1] + 1)
    return slice(*r)


def derive(cfg: dict, fields: dict, dims: tuple) -> dict:
    """Add the config's derived fields (the ones this checker understands)."""
    out = dict(fields)
    for name, text in (cfg.get("derived") or {}).items():
        if text == "T - T.mean(x)":
            out[name] = out["T"] - np.nanmean(out["T"], axis=dims.index("x"), keepdims=True)
        elif text == "T - 273.15":
            out[name] = out["T"] - 273.15
    return out


def expected(a: dict, f, dims: tuple, fields=None, coords=None) -> dict:
    from types import SimpleNamespace
    kind = a["kind"]
    name = a.get("name") or REGISTRY[kind].default_name(SimpleNamespace(cfg=a))
    fields = fields or {}
    if kind == "python":  # examples/python/diagnostics.py:hot_cells
        T = fields["T"]
        return {f"{name}_count": int((T > 300.0).sum()), f"{name}_warmest": T.max()}
    if kind == "stats":
        w = fields.get(a["weights"]) if a.get("weights") else None
        if a.get("region"):
            sl = tuple(_index_range(a["region"][d], d, n, coords) if d in a["region"]
                       else slice(None) for d, n in zip(dims, f.shape))
            f = f[sl]
        x = _finite(f)
        vals = {"count": x.size, "sum": x.sum(), "mean": x.mean(), "min": x.min(),
                "max": x.max(), "std": x.std(), "var": x.var(),
                "nan_count": int(np.isnan(f).sum()), "inf_count": int(np.isinf(f).sum())}
        if w is not None:
            ok = np.isfinite(f)
            m = np.average(f[ok], weights=w[ok])
            vals["mean"] = m
            vals["var"] = np.average((f[ok] - m) ** 2, weights=w[ok])
            vals["std"] = np.sqrt(vals["var"])
        stats = a.get("stats") or ["count", "sum", "mean", "min", "max", "std", "nan_count",
                                   "inf_count"]
        return {f"{name}_{s}": vals[s] for s in stats}
    if kind == "histogram":
        lo, hi = a["range"]
        x = _finite(f)
        counts, edges = np.histogram(x, bins=a["bins"], range=(lo, hi))
        out = {name: counts, f"{name}_below": int((x < lo).sum()),
               f"{name}_above": int((f[~np.isnan(f)] > hi).sum())}
        if a.get("quantiles"):
            out[f"{name}_quantile"] = _quantile_bins(x, a["quantiles"], edges)
        return out
    if kind == "reduce":
        axes = tuple(dims.index(d) for d in a["over"])
        g = np.where(np.isfinite(f), f, np.nan)
        op = a.get("op", "mean")
        return {name: {"mean": np.nanmean, "sum": np.nansum, "min": np.nanmin,
                       "max": np.nanmax}[op](g, axis=axes)}
    if kind == "coarsen":
        fac = [a["factors"].get(d, 1) for d in dims]
        shape = []
        for n, k in zip(f.shape, fac):
            shape += [n // k, k]
        g = np.where(np.isfinite(f), f, np.nan).reshape(shape)
        return {name: np.nanmean(g, axis=tuple(range(1, 2 * f.ndim, 2)))}
    if kind == "probe":
        return {name: np.array([f[tuple(p)] for p in a["points"]])}
    return {}


def _quantile_bins(x, qs, edges):
    """For each quantile, the span of the bins that hold the order statistics
    it lies between (numpy's definition, positions (n - 1) q): a quantile
    taken from bin counts must fall inside it.  One bin width of tolerance
    around np.quantile would also accept an answer from the neighbouring
    bin."""
    s = np.sort(x)
    lo, hi = [], []
    for q in qs:
        pos = (s.size - 1) * q
        a, b = s[int(np.floor(pos))], s[int(np.ceil(pos))]
        ia = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, edges.size - 2)
        ib = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, edges.size - 2)
        lo.append(edges[ia])
        hi.append(edges[ib + 1])
    return (np.array(lo), np.array(hi))


def _compare(got, want, var, step):
    import pytest
    if isinstance(want, tuple):  # quantiles: the bins that must hold them
        lo, hi = want
        assert np.all((lo <= got) & (got <= hi)), (var, step, got, lo, hi)
    elif np.ndim(want):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=var)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (var, step)


def check_file(ds, cfg: dict, fields_by_step: dict, dims: tuple, extra=None,
               first_step: int = 1) -> int:
    """Compare every variable of every analysis, window and trigger in
    ``cfg`` at every step in the file with numpy; return how many values
    were compared.  ``extra``: fields that do not change (cell areas);
    ``first_step``: the first step the model handed over."""
    from types import SimpleNamespace
    n = 0
    coords = cfg.get("coords") or {}
    per_step = {}
    for i, step in enumerate(ds["step"].values):
        step = int(step)
        fields = derive(cfg, {"T": fields_by_step[step], **(extra or {})}, dims)
        per_step[step] = {}
        for a in cfg["analyses"]:
            if a["kind"] in ("window", "fault") or step % a.get("every", 1):
                continue
            f = fields.get(a.get("field"))
            key = a.get("name") or REGISTRY[a["kind"]].default_name(SimpleNamespace(cfg=a))
            for var, want in expected(a, f, dims, fields, coords).items():
                _compare(ds[var].values[i], want, var, step)
                per_step[step].setdefault(key, {})[var] = want
                n += 1
    for a in cfg["analyses"]:
        if a["kind"] != "window":
            continue
        w = a.get("name") or REGISTRY["window"].default_name(SimpleNamespace(cfg=a))
        src = next(b for b in cfg["analyses"] if b["kind"] != "window" and (
            b.get("name") or REGISTRY[b["kind"]].default_name(SimpleNamespace(cfg=b)))
            == a["source"])
        # The window rule (README, "Time windows"), written out independently:
        # window k is the model steps [kL, (k+1)L), L = N * every; it is
        # written at step (k+1)L, when the model reaches its end, and only if
        # the run covered it from its start (the run's first step <= kL).
        every = src.get("every", 1)
        L = a["steps"] * every
        steps = [s for s in sorted(per_step) if s % every == 0]
        last = max(fields_by_step)
        groups = [[s for s in steps if k * L <= s < (k + 1) * L]
                  for k in range(last // L + 1)]
        groups = [g for k, g in enumerate(groups)
                  if first_step <= k * L and (k + 1) * L <= last]
        assert all(len(g) == a["steps"] for g in groups)
        assert list(ds[f"step_{w}"].values) == [g[0] + L for g in groups]
        for k, g in enumerate(groups):
            for var in per_step[g[0]][a["source"]]:
                stack = np.array([per_step[s][a["source"]][var] for s in g], dtype=np.float64)
                for op in a.get("ops", ["mean"]):
                    want = {"mean": stack.mean(0), "max": stack.max(0), "min": stack.min(0),
                            "var": stack.var(0)}[op]
                    _compare(ds[f"{var}_{w}_{op}"].values[k], want, var, g)
                    n += 1
    for t in cfg.get("triggers") or []:
        # The trigger's own condition, evaluated here on the numpy results of
        # each step (not a copy of one example's condition).
        fired = []
        for s in sorted(per_step):
            env = {var: float(want) for res in per_step[s].values()
                   for var, want in res.items()
                   if not isinstance(want, tuple) and np.ndim(want) == 0}
            try:
                hit = eval(t["when"], {"__builtins__": {}, "abs": abs, "isnan": np.isnan,  # noqa: S307
                                       "isfinite": np.isfinite}, env)
            except NameError:  # a result the config does not compute at this step
                continue
            if hit:
                fired.append(s)
        fired = fired[:t.get("max_snapshots", 10)]
        assert list(ds[f"step_{t['name']}"].values) == fired
        for k, s in enumerate(fired):
            # rtol, not equality: a Fortran host's libm may differ from numpy's
            # in the last bit of the initial state
            np.testing.assert_allclose(ds[f"{t['name']}_T"].values[k], fields_by_step[s],
                                       rtol=1e-13)
            n += 1
    return n
