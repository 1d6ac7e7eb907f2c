"""The analyses again, done after the fact with numpy on the whole field.

``expected(analysis_cfg, field, dims)`` returns {variable: value} for one
step, so an output file can be checked against its own config.
"""
from __future__ import annotations

import numpy as np

from insitu.analyses import REGISTRY


def _finite(a):
    return a[np.isfinite(a)]


def expected(a: dict, f: np.ndarray, dims: tuple) -> dict:
    from types import SimpleNamespace
    kind = a["kind"]
    name = a.get("name") or REGISTRY[kind].default_name(SimpleNamespace(cfg=a))
    if kind == "stats":
        if a.get("region"):
            f = f[tuple(slice(*a["region"].get(d, [0, n])) for d, n in zip(dims, f.shape))]
        x = _finite(f)
        vals = {"count": x.size, "sum": x.sum(), "mean": x.mean(), "min": x.min(),
                "max": x.max(), "std": x.std(), "var": x.var(),
                "nan_count": int(np.isnan(f).sum()), "inf_count": int(np.isinf(f).sum())}
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
            out[f"{name}_quantile"] = (np.quantile(x, a["quantiles"]), edges[1] - edges[0])
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


def check_file(ds, cfg: dict, fields_by_step: dict, dims: tuple, field: str = "T") -> int:
    """Compare every variable of every analysis in ``cfg`` at every step in
    the file with numpy; return how many values were compared."""
    import pytest
    n = 0
    for i, step in enumerate(ds["step"].values):
        f = fields_by_step[int(step)]
        for a in cfg["analyses"]:
            if a["field"] != field or int(step) % a.get("every", 1):
                continue
            for var, want in expected(a, f, dims).items():
                got = ds[var].values[i]
                if isinstance(want, tuple):  # quantiles: (values, resolution)
                    np.testing.assert_allclose(got, want[0], rtol=0, atol=want[1], err_msg=var)
                elif np.ndim(want):
                    np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=var)
                else:
                    assert got == pytest.approx(want, rel=1e-12), (var, step)
                n += 1
    return n
