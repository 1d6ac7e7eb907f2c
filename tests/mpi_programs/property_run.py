"""Property test of insitu's results (issue 10, "The property test"), run
under a real ``mpiexec``:

    mpiexec -n 3 python tests/mpi_programs/property_run.py --examples 50 [--slow]

Rank 0 runs hypothesis (``derandomize=True``, no database, no deadline).
Each drawn example -- a field recipe, a decomposition and an analysis
config -- is broadcast to every rank; the ranks run it through
``insitu.api`` (``init``/``declare_field``/``expose``/``step``/``finalize``,
the real parallel HDF5 writer), then rank 0 reads the file back with xarray
(h5netcdf) and compares every output with a serial reference computed here,
on the whole field, with numpy and exact arithmetic (``fractions.Fraction``).
Nothing of insitu is used for the truth: the slabs are split here, the bins,
sums, means, variances, block means, reductions, derived fields, windows and
trigger firings are recomputed from their documented rules (README,
"Analyses", "Derived fields", "Triggers").

One mpiexec job runs many examples; the other ranks follow rank 0 in a loop
(``bcast`` of the next example, or of STOP), so hypothesis's generation and
shrinking happen on one rank only and every rank always runs the same
example.  A failing example is shrunk and printed as the YAML config and the
field recipe (and the decomposition); ``--replay FILE`` runs one printed
example again.

Tolerances (documented in tests/test_property.py's docstring too):

* exact: counts (count, nan_count, inf_count, histogram bins, below, above),
  min and max of declared fields, trigger steps, snapshots of declared
  fields, and for integer (int32) fields the sum and mean of ``stats``,
  ``reduce`` and ``coarsen`` (the exact sum, rounded once / divided once);
* otherwise ``|got - exact| <= 1e-12 * scale`` where ``scale`` is the
  natural magnitude of the quantity's condition: ``sum(|x|)`` for a sum,
  ``max(|x|)`` for a mean, the exact variance itself for ``var`` (so data
  at an offset of 1e12 x their spread must keep the variance to 1e-12
  relative), and ``var``'s bound for ``std`` (``|a-b| <= |a^2-b^2| / b``);
* derived fields that hold a reduction (``u - u.mean(x)``) are compared with
  their reduction terms correctly rounded; the per-element uncertainty that
  insitu's own (1e-12-accurate) terms may add is propagated to every result
  computed from them (``E`` below) and added to the tolerance; a histogram of
  such a field whose value lies within ``E`` of a bin edge is checked on its
  totals only;
* histogram quantiles are checked against the piecewise-linear CDF of the
  file's own counts (README: "interpolated linearly inside the bin that
  holds them"), to 1e-12 of the range; the counts themselves are checked
  exactly against the truth.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time as _time
import traceback
from fractions import Fraction
from pathlib import Path

import numpy as np
import yaml

RTOL = float(os.environ.get("INSITU_PROPERTY_RTOL", "1e-12"))  # a self-test may shrink it
EPS = 2.0 ** -52
DIMS = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}
ALL_STATS = ["count", "sum", "mean", "min", "max", "std", "var", "nan_count", "inf_count"]
DEFAULT_STATS = [s for s in ALL_STATS if s != "var"]  # README: the default list

#: Confirmed bugs whose trigger is excluded from the generated space (or from
#: the one comparison it breaks), so that CI stays green until they are fixed.
#: Each entry names the bug; the report lists them.  Never loosen a tolerance
#: instead.  Set INSITU_PROPERTY_NO_KNOWN=1 to run with no exclusion.
KNOWN: dict[str, str] = {
}

if os.environ.get("INSITU_PROPERTY_NO_KNOWN"):
    KNOWN = {}


def known(key: str) -> bool:
    return key in KNOWN


# ---------------------------------------------------------------------------
# The example: a field recipe, a decomposition, a config.  Plain data, so it
# prints as YAML and replays from it.
# ---------------------------------------------------------------------------
class Example(dict):
    def __repr__(self) -> str:  # how hypothesis prints a (shrunk) failing example
        return "\n# save from here as ex.yaml; rerun: property_run.py --replay ex.yaml\n" + dump(self)


def dump(ex) -> str:
    return yaml.safe_dump({"field_recipe": ex["recipe"], "decomposition": ex["decomp"],
                           "config": ex["config"], "steps": ex["steps"],
                           "dt": ex.get("dt", 1.0), "first": ex.get("first", 1)},
                          sort_keys=False, default_flow_style=None, width=100)


def make_field(recipe: dict, step: int) -> np.ndarray:
    """The whole field at ``step`` (a pure function of the recipe)."""
    shape = tuple(recipe["shape"])
    n = int(np.prod(shape))
    rng = np.random.default_rng([recipe["seed"], step])
    pat = recipe["pattern"]
    if pat == "uniform":
        p = rng.uniform(-1.0, 1.0, n)
    elif pat == "ints":
        p = rng.integers(-50, 51, n).astype(np.float64)
    elif pat == "binary":
        p = rng.integers(0, 2, n).astype(np.float64)
    elif pat == "ramp":
        p = np.linspace(-1.0, 1.0, n) * (1.0 + 0.25 * step)
    elif pat == "wide":  # magnitudes from 2**-90 to 1, both signs
        p = rng.choice([-1.0, 1.0], n) * 2.0 ** rng.uniform(-90.0, 0.0, n)
    elif pat == "extremes":  # int32 only: the ends of the type's range, 0, and 2
        ends = [-2 ** 31, -2 ** 31 + 1, -2 ** 31 + 2, 2 ** 31 - 1, 0, 2]  # -2**31+1: NC_FILL_INT
        vals = rng.choice(np.array(ends, dtype=np.int64), n)
        return vals.astype(np.int32).reshape(shape)
    else:  # constant
        p = np.zeros(n)
    spread = float(recipe["spread"])
    offset = float(recipe["offset_factor"]) * spread
    vals = offset + spread * p
    dt = recipe["dtype"]
    if dt == "int32":
        vals = np.clip(np.rint(vals), -2 ** 31 + 1, 2 ** 31 - 1).astype(np.int32)
    else:
        vals = vals.astype(dt)
        for idx, kind, when in recipe["specials"]:
            if when is None or when == step:
                vals[idx % n] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
        if step in recipe["all_nan_steps"]:
            vals[:] = np.nan
    return vals.reshape(shape)


def slab(decomp: dict, rank: int):
    """This rank's (offset, shape): C-order rank in the grid of parts, split
    here (not with insitu's decomposition helpers)."""
    sizes = decomp["sizes"]  # per dim, the sizes of its parts
    grid = [len(s) for s in sizes]
    coords = np.unravel_index(rank, grid)
    off = tuple(int(sum(s[:c])) for s, c in zip(sizes, coords))
    shp = tuple(int(s[c]) for s, c in zip(sizes, coords))
    return off, shp


# ---------------------------------------------------------------------------
# Derived-field expression trees: ("u",), ("ref", name), ("red", src, op, dims),
# ("sub", a, b), ("add", a, b), ("mul", a, c), ("abs", a)
# ---------------------------------------------------------------------------
def render(t) -> str:
    k = t[0]
    if k == "ref":
        return t[1]
    if k == "red":
        return f"{t[1]}.{t[2]}({', '.join(t[3])})"
    if k == "sub":
        return f"{render(t[1])} - {render(t[2])}"
    if k == "add":
        return f"{render(t[1])} + {render(t[2])}"
    if k == "mul":
        return f"{render(t[1])} * {t[2]!r}"
    if k == "abs":
        return f"abs({render(t[1])})"
    raise ValueError(t)


def _finite_lines(a: np.ndarray, axes):
    """``a`` with ``axes`` moved last and flattened: (kept shape, rows)."""
    axes = sorted(axes)
    kept = [i for i in range(a.ndim) if i not in axes]
    b = np.transpose(a, kept + axes)
    kshape = tuple(a.shape[i] for i in kept)
    return kshape, b.reshape(int(np.prod(kshape)) if kshape else 1, -1)


def _scaled_ints(xs):
    """Finite floats as Python ints times 2**emin, exactly (frexp: x = m 2**e)."""
    x = np.asarray(xs, dtype=np.float64).ravel()
    m, e = np.frexp(x)
    M = (m * 2.0 ** 53).astype(np.int64)  # exact: |m| < 1 has 53 bits
    e = e.astype(np.int64) - 53
    emin = int(e.min()) if e.size else 0
    return [int(a) << int(b) for a, b in zip(M, e - emin)], emin


def _scale(n: int, emin: int) -> Fraction:
    return Fraction(n * 2 ** emin) if emin >= 0 else Fraction(n, 2 ** -emin)


def fsum(xs) -> Fraction:
    """The exact sum of finite floats (Python integers, no rounding)."""
    ints, emin = _scaled_ints(xs)
    return _scale(sum(ints), emin)


def reduce_exact(a: np.ndarray, E: np.ndarray, axes, op: str, integer=False):
    """Correctly rounded reduction of the finite values of ``a`` over
    ``axes``: (values over the kept axes, their tolerance)."""
    kshape, rows = _finite_lines(a, axes)
    _, erows = _finite_lines(E, axes)
    out = np.full(rows.shape[0], np.nan)
    tol = np.zeros(rows.shape[0])
    for i, (row, er) in enumerate(zip(rows, erows)):
        ok = np.isfinite(row.astype(np.float64))
        x = row[ok].astype(np.float64)
        e = er[ok]
        if x.size == 0:
            continue
        if op in ("sum", "mean"):
            s = fsum(x)
            out[i] = float(s) if op == "sum" else float(s / x.size)
            if op == "sum":
                tol[i] = 0.0 if integer else RTOL * float(np.abs(x).sum()) + float(e.sum())
            else:
                tol[i] = 0.0 if integer else RTOL * float(np.abs(x).max()) + float(e.max())
        else:
            out[i] = x.min() if op == "min" else x.max()
            tol[i] = float(e.max())
    return out.reshape(kshape), tol.reshape(kshape)


def evaluate(tree, env: dict, errs: dict, dims):
    """The derived field's value on the whole field, numpy semantics as in
    insitu's own evaluation, with correctly rounded reduction terms; and the
    per-element bound E of how far insitu's value may be from it."""
    k = tree[0]
    if k == "ref":
        return env[tree[1]], errs[tree[1]]
    if k == "red":
        src, op, rdims = tree[1], tree[2], tree[3]
        a, E = env[src], errs[src]
        axes = [dims.index(d) for d in rdims]
        v, tol = reduce_exact(a, E, axes, op)
        for ax in sorted(axes):
            v = np.expand_dims(v, ax)
            tol = np.expand_dims(tol, ax)
        return v, tol
    if k in ("sub", "add"):
        (a, ea), (b, eb) = evaluate(tree[1], env, errs, dims), evaluate(tree[2], env, errs, dims)
        with np.errstate(all="ignore"):
            r = a - b if k == "sub" else a + b
        e = ea + eb
        e = np.where(e > 0, e + 2 * EPS * np.abs(np.where(np.isfinite(r), r, 0.0)), 0.0)
        return r, np.broadcast_to(e, np.shape(r))
    if k == "mul":
        a, ea = evaluate(tree[1], env, errs, dims)
        with np.errstate(all="ignore"):
            r = a * tree[2]
        e = abs(tree[2]) * ea
        e = np.where(e > 0, e + 2 * EPS * np.abs(np.where(np.isfinite(r), r, 0.0)), 0.0)
        return r, np.broadcast_to(e, np.shape(r))
    if k == "abs":
        a, ea = evaluate(tree[1], env, errs, dims)
        return np.abs(a), ea
    raise ValueError(tree)


# ---------------------------------------------------------------------------
# Hypothesis strategies
# ---------------------------------------------------------------------------
def strategies(nworld: int):
    from hypothesis import strategies as st

    @st.composite
    def example(draw):
        # active ranks: mostly all; else the last ranks idle (insitu refuses an
        # empty slab, so an idle rank is one outside the communicator given to
        # insitu.init: the world is split, as a model with I/O ranks would)
        m = draw(st.sampled_from([nworld] * 3 + list(range(1, nworld))))
        ndim = draw(st.sampled_from([2, 1, 3]))
        grids = [g for g in itertools.product(range(1, m + 1), repeat=ndim)
                 if int(np.prod(g)) == m]
        grid = draw(st.sampled_from(grids))
        limit = {1: 40, 2: 12, 3: 6}[ndim]
        # long rows now and then: the kernels take 4 x 32 lanes at a time
        # and blocks of 8192 elements, paths that short rows never reach
        long = draw(st.sampled_from([None, None, None, "long", "long", "block"])) \
            if ndim <= 2 else None
        sizes = []
        for d, p in enumerate(grid):
            b = draw(st.sampled_from([1, 2, 1, 3]))
            if long and d == ndim - 1:
                choices = [127, 128, 129, 256, 300] if long == "long" else [8191, 8193]
                sizes.append([draw(st.sampled_from(choices)) for _ in range(p)])
                continue
            kmax = max(1, (limit if not long else 3) // (b * p))
            sizes.append([b * draw(st.integers(1, kmax)) for _ in range(p)])
        shape = [sum(s) for s in sizes]
        dims = list(DIMS[ndim])
        dtype = draw(st.sampled_from(["float64", "float32", "int32"]))
        order = draw(st.sampled_from(["C", "F"]))
        halo = [draw(st.integers(0, 2)), draw(st.integers(0, 1))]  # [low side, high side]
        n = int(np.prod(shape))
        if dtype == "int32":
            pattern = draw(st.sampled_from(["uniform", "ints", "binary", "constant", "ramp",
                                            "extremes", "extremes"]))
            spread = draw(st.sampled_from([1.0, 1000.0, 1.0e6]))
            factors = [f for f in [0.0, 1.0, -1.0, 1e3, -1e3, 1e6, 2e9]
                       if abs(f * spread) + spread < 2 ** 31 - 1]
            offset_factor = draw(st.sampled_from(factors))
            specials, all_nan = [], []
        else:
            pattern = draw(st.sampled_from(["uniform", "ints", "binary", "constant", "ramp",
                                            "wide"]))
            spread = draw(st.sampled_from([1.0, 1e-3, 1e3, 1e-30, 1e8]))
            offset_factor = draw(st.sampled_from(
                [0.0, 1.0, -1.0, 1e3, 1e6, -1e9, 1e12, -1e12]))
            specials = draw(st.lists(st.tuples(
                st.integers(0, n - 1), st.sampled_from(["nan", "inf", "-inf"]),
                st.one_of(st.none(), st.integers(1, 5))), max_size=4))
            specials = [list(s) for s in specials]
            all_nan = draw(st.lists(st.integers(1, 5), max_size=1))
        steps = draw(st.integers(2, 5))
        dt = draw(st.sampled_from([1.0, 0.25]))
        # the first step handed over: 0 covers the windows that start at 0;
        # 1 (a model counting from 1) leaves them partial, not written
        first = draw(st.sampled_from([0, 1]))
        recipe = {"dtype": dtype, "shape": shape, "pattern": pattern, "spread": spread,
                  "offset_factor": offset_factor, "seed": draw(st.integers(0, 2 ** 16)),
                  "specials": specials, "all_nan_steps": all_nan}
        decomp = {"ranks": m, "world": nworld, "sizes": sizes, "order": order, "halo": halo}

        # derived fields
        derived, trees = {}, {}
        if ndim >= 2 and draw(st.booleans()):
            d1 = draw(st.sampled_from(dims))
            op1 = draw(st.sampled_from(["mean", "mean", "sum", "min", "max"]))
            trees["da"] = ("sub", ("ref", "u"), ("red", "u", op1, [d1]))
            if draw(st.sampled_from([True, True, False])):
                d2 = draw(st.sampled_from([d for d in dims if d != d1] or dims))
                op2 = draw(st.sampled_from(["mean", "mean", "max"]))
                trees["db"] = ("sub", ("ref", "da"), ("red", "da", op2, [d2]))
        if draw(st.booleans()):
            c = draw(st.sampled_from([0.5, 2.0, -3.0]))
            trees["dp"] = ("mul", ("ref", "u"), c)
        if ndim >= 2 and draw(st.booleans()):
            rd = draw(st.lists(st.sampled_from(dims), min_size=1, max_size=ndim - 1,
                               unique=True))
            trees["dq"] = ("add", ("abs", ("ref", "u")),
                           ("red", "u", draw(st.sampled_from(["max", "min", "mean"])), rd))
        for k, t in trees.items():
            derived[k] = render(t)
        fields = ["u"] + list(trees)

        def centre_scale(f):
            off = offset_factor * spread
            if f in ("da", "db"):
                return 0.0, spread
            if f == "dp":
                return trees["dp"][2] * off, abs(trees["dp"][2]) * spread
            if f == "dq":
                return abs(off), spread
            return off, spread

        coords = {}
        for d in dims:
            if draw(st.sampled_from([False, True])):
                coords[d] = {"start": draw(st.sampled_from([0.0, -89.5, 10.25])),
                             "step": draw(st.sampled_from([1.5, -2.0, 0.1])), "units": "m"}

        def region():
            if not draw(st.booleans()):
                return None
            out = {}
            for d, nd in zip(dims, shape):
                if draw(st.booleans()):
                    lo = draw(st.integers(0, nd - 1))
                    hi = draw(st.integers(lo + 1, nd))
                    how = draw(st.sampled_from(["index", "coord", "coord-mid"])) \
                        if d in coords else "index"
                    if how == "index":
                        out[d] = [lo, hi]
                    else:  # {from, to}: a closed range of coordinate values
                        c0, h_ = coords[d]["start"], coords[d]["step"]
                        a_, b_ = (lo, hi - 1) if how == "coord" else (lo - 0.5, hi - 0.5)
                        ends = [c0 + h_ * a_, c0 + h_ * b_]
                        if draw(st.booleans()):
                            ends.reverse()
                        out[d] = {"from": ends[0], "to": ends[1]}
            return out or None

        analyses = []
        kinds = draw(st.lists(st.sampled_from(
            ["stats", "reduce", "histogram", "coarsen", "probe", "python", "skip"]), min_size=1,
            max_size=4))
        for i, kind in enumerate(kinds):
            a = {"kind": kind, "name": f"a{i}", "field": draw(st.sampled_from(fields)),
                 "every": draw(st.sampled_from([1, 1, 2, 3]))}
            if kind == "stats":
                a["stats"] = list(ALL_STATS)
                ddof = draw(st.sampled_from([None, 0, 1]))
                if ddof is not None:
                    a["ddof"] = ddof
                if ddof != 1:  # issue 16: where the extremes are (no new draw)
                    a["stats"] += ["argmax", "argmin"]
                r = region()
                if r:
                    a["region"] = r
                if not ddof and draw(st.booleans()):
                    # 1-D weights along one dim (README: weights: {dim, values});
                    # cos(latitude) where the dim has coords
                    wd = draw(st.sampled_from(dims))
                    nd = shape[dims.index(wd)]
                    lat = (coords[wd]["start"] + coords[wd]["step"] * np.arange(nd)
                           if wd in coords else None)
                    # coslat: latitudes in degrees; beyond +-90 the weights would be
                    # negative, which insitu rightly refuses
                    if lat is not None and np.all(np.abs(lat) <= 90) and draw(st.booleans()):
                        a["weights"] = {"dim": wd, "values": "coslat"}
                    else:
                        a["weights"] = {"dim": wd, "values": [
                            draw(st.sampled_from([1.0, 0.0, 0.5, 2.0, 3.25]))
                            for _ in range(nd)]}
            elif kind == "reduce":
                if ndim == 1:
                    a = {**a, "kind": "stats", "stats": list(ALL_STATS)}
                else:
                    a["over"] = draw(st.lists(st.sampled_from(dims), min_size=1,
                                              max_size=ndim - 1, unique=True))
                    a["op"] = draw(st.sampled_from(["mean", "sum", "min", "max"]))
            elif kind == "histogram":
                c, s = centre_scale(a["field"])
                x0 = draw(st.sampled_from([-1.5, -1.0, -0.5, 0.0]))
                x1 = draw(st.sampled_from([0.0, 0.25, 1.0, 1.5]))
                if x1 <= x0:
                    x1 = x0 + 1.0
                lo, hi = float(c + s * x0), float(c + s * x1)
                while not lo < hi:
                    hi = float(np.nextafter(np.nextafter(hi, np.inf), np.inf))
                a["bins"] = draw(st.integers(1, 8))
                a["range"] = [lo, hi]
                a["quantiles"] = draw(st.lists(st.sampled_from(
                    [0.05, 0.25, 0.5, 0.75, 0.95, 0.999]), max_size=3, unique=True))
                if a["quantiles"] and draw(st.booleans()):
                    # exact quantiles (docs/analyses.md): the values of the
                    # quantiles' bins are kept from one output step to the
                    # next, so the data changing between steps exercises
                    # both the predicted bins and the extra pass
                    a["quantile_method"] = "exact"
                r = region()
                if r:
                    a["region"] = r
            elif kind == "python":
                # a user analysis (README "User analyses"): local sums, counts,
                # minima and maxima of the finite values, combined by insitu
                a["fields"] = [a["field"]]
                del a["field"]
                r = region()
                if r or draw(st.booleans()):
                    a["function"] = USER_FILE + ":user_scalars"
                    a["outputs"] = {"s": {"op": "sum"}, "n": {"op": "sum"},
                                    "lo": {"op": "min"}, "hi": {"op": "max"}}
                    if r:
                        a["region"] = r
                else:
                    a["function"] = USER_FILE + ":user_rows"
                    a["outputs"] = {"rows": {"op": "sum", "shape": [shape[-1]],
                                             "dims": [dims[-1]]},
                                    "top": {"op": "max", "shape": [shape[-1]],
                                            "dims": [dims[-1]]}}
            elif kind == "skip":
                # README "on_error: skip": a failing analysis is disabled on
                # every rank, its variables hold fill (NaN) from its failing
                # step on, the error goes into insitu_errors, the rest runs on
                a["kind"] = "python"
                a["fields"] = [a.pop("field")]
                a["function"] = USER_FILE + ":" + draw(st.sampled_from(sorted(FAILS)))
                a["outputs"] = {"s": {"op": "sum"}}
            elif kind == "probe":
                a["points"] = [[draw(st.integers(0, nd - 1)) for nd in shape]
                               for _ in range(draw(st.integers(1, 3)))]
            elif kind == "coarsen":
                chosen = draw(st.lists(st.sampled_from(dims), min_size=1, unique=True))
                fac = {}
                for d in chosen:
                    g = math.gcd(*sizes[dims.index(d)])
                    fac[d] = draw(st.sampled_from([f for f in range(1, g + 1) if g % f == 0]))
                a["factors"] = fac
            analyses.append(a)
        if draw(st.booleans()) and any(a.get("function", "").split(":")[-1] not in FAILS
                                       for a in analyses):
            srcs = [a["name"] for a in analyses  # not one that fails on purpose
                    if a.get("function", "").split(":")[-1] not in FAILS]
            src = draw(st.sampled_from(srcs or [analyses[0]["name"]]))
            length = (("steps", draw(st.integers(1, 3))) if draw(st.booleans()) else
                      ("period", draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))))
            analyses.append({"kind": "window", "name": "w0", "source": src,
                             length[0]: length[1],
                             "ops": draw(st.lists(st.sampled_from(["mean", "min", "max", "var"]),
                                                  min_size=1, unique=True))})
            ddof = draw(st.sampled_from([None, 0, 1]))
            if ddof is not None:
                analyses[-1]["ddof"] = ddof
        triggers = []
        if draw(st.booleans()):
            analyses.append({"kind": "stats", "name": "trig", "field": "u",
                             "stats": ["max", "nan_count", "count"]})
            maxima = []
            for t in range(first, steps + 1):
                f = make_field(recipe, t).astype(np.float64)
                f = f[np.isfinite(f)]
                if f.size:
                    maxima.append(float(f.max()))
            thr = draw(st.sampled_from(sorted(set(maxima)) or [0.0]))
            form = draw(st.sampled_from(["max", "max_nan", "count"]))
            when = {"max": f"trig_max > {thr!r}",
                    "max_nan": f"trig_max >= {thr!r} and trig_nan_count == 0",
                    "count": f"trig_count >= {n - 1}"}[form]
            triggers.append({"name": "t0", "when": when,
                             "fields": draw(st.lists(st.sampled_from(fields), min_size=1,
                                                     unique=True)),
                             "max_snapshots": draw(st.integers(1, 3))})
        if (recipe["seed"] * 2654435761) % 2 ** 32 >> 20 & 1:   # about half the examples
            analyses.append(exceedance_of(recipe, dims, first))
        config = {"fields": {"u": {"dims": dims}}, "analyses": analyses,
                  "log_level": "ERROR"}
        # reproducible sums (README "Reproducible sums"); refused with a
        # derived mean or sum term, so only drawn without one
        sums = any(t[2] in ("mean", "sum") for t in walk_terms(trees))
        if not sums and draw(st.sampled_from([False, False, True])):
            config["reproducible"] = True
        if any(a.get("function", "").split(":")[-1] in FAILS for a in analyses):
            config["on_error"] = "skip"
        if derived:
            config["derived"] = derived
        if coords:
            config["coords"] = coords
        if triggers:
            config["triggers"] = triggers
        return Example(recipe=recipe, decomp=decomp, config=config, steps=steps, dt=dt,
                       first=first, trees={k: list_tree(t) for k, t in trees.items()})

    return example()


#: the user analyses below, as a config names them (paths from the repo root)
USER_FILE = "tests/mpi_programs/property_run.py"


def exceedance_of(recipe, dims, first):
    """kind: exceedance (issue 16), chosen from the seed after every draw, so
    the examples drawn before it stayed the same: the threshold is a value
    the field holds at its first step (equality tells gt from ge), the
    comparison and the weights (none, or given values along the last dim,
    zeros among them) follow the seed."""
    h = (recipe["seed"] * 2654435761) % 2 ** 32 >> 8   # the seed's bits, mixed
    u = make_field(recipe, first).astype(np.float64)
    v = np.sort(u[np.isfinite(u)])
    a = {"kind": "exceedance", "name": "x0", "field": "u",
         "threshold": float(v[v.size // 2]) if v.size else 0.0,
         "op": ["gt", "ge", "lt", "le"][h % 4],
         "every": 1 + (h >> 2) % 2}
    if (h >> 3) % 2:
        n = recipe["shape"][-1]
        a["weights"] = {"dim": dims[-1], "values": [[1.0, 0.0, 2.5, 0.5][i % 4]
                                                    for i in range(n)]}
    return a


def exceedance_truth(x, a):
    """(count, fraction) of the finite values past the threshold, exactly;
    with weights, the fraction of the summed weights (NaN where the finite
    values' weights sum to 0)."""
    f = x.astype(np.float64)
    thr = a["threshold"]
    hit = {"gt": f > thr, "ge": f >= thr, "lt": f < thr, "le": f <= thr}[a["op"]]
    ok = np.isfinite(f)
    count = int((ok & hit).sum())
    if a.get("weights"):
        w = np.broadcast_to(np.asarray(a["weights"]["values"], dtype=np.float64), f.shape)
        total = fsum(w[ok])
        part = fsum(w[ok & hit])
    else:
        total, part = Fraction(int(ok.sum())), Fraction(count)
    return count, (float(part / total) if total > 0 else np.nan)


def argext_truth(x, E, sl, which):
    """(global flat index, tolerance of the value there) of the largest
    (``argmax``) or smallest finite value of ``x[sl]``, ties to the lowest
    index; (NaN, 0) when there is none."""
    f = np.full(x.shape, np.nan)
    f[sl] = x[sl].astype(np.float64)
    f[~np.isfinite(f)] = np.nan
    if np.all(np.isnan(f)):
        return np.nan, 0.0
    k = int(np.nanargmax(f) if which == "argmax" else np.nanargmin(f))
    e = np.broadcast_to(E, x.shape)[sl]
    return k, float(e.max()) if e.size else 0.0


def user_scalars(views, meta, comm):
    """kind: python -- sum, count, min and max of the local finite values."""
    x = np.asarray(next(iter(views.values())), dtype=np.float64)
    x = x[np.isfinite(x)]
    return {"s": np.array(x.sum()), "n": np.array(float(x.size)),
            "lo": np.array(x.min() if x.size else np.inf),
            "hi": np.array(x.max() if x.size else -np.inf)}


_CALLS = {"n": 0}


def _failing(rank_of, call):
    def fn(views, meta, comm):
        """kind: python under on_error: skip -- the sum of the finite values,
        but raises at its ``call``-th call on one rank (the module is loaded
        afresh by each session, so the count starts at each example)."""
        _CALLS["n"] += 1
        if _CALLS["n"] == call and comm.rank == rank_of(comm.size):
            raise RuntimeError(f"planned failure at call {call} on rank {comm.rank}")
        x = np.asarray(next(iter(views.values())), dtype=np.float64)
        return {"s": np.array(x[np.isfinite(x)].sum())}
    return fn


user_fails_first_1 = _failing(lambda size: 0, 1)
user_fails_last_2 = _failing(lambda size: size - 1, 2)
FAILS = {"user_fails_first_1": 1, "user_fails_last_2": 2}


def user_rows(views, meta, comm):
    """kind: python -- per index of the last dim, the sum and the max of the
    finite values, placed at this rank's offset in a global-size array."""
    name, v = next(iter(views.items()))
    spec = meta[name]
    x = np.asarray(v, dtype=np.float64).reshape(-1, v.shape[-1])
    ok = np.isfinite(x)
    n, o = spec.global_shape[-1], spec.offset[-1]
    rows, top = np.zeros(n), np.full(n, -np.inf)
    rows[o:o + x.shape[1]] = np.where(ok, x, 0.0).sum(axis=0)
    top[o:o + x.shape[1]] = np.where(ok, x, -np.inf).max(axis=0)
    return {"rows": rows, "top": top}


def walk_terms(trees):
    """Every ("red", ...) node of the derived trees."""
    out = []

    def go(t):
        if isinstance(t, tuple):
            if t and t[0] == "red":
                out.append(t)
            for x in t[1:]:
                go(x)
    for t in trees.values():
        go(t)
    return out


def list_tree(t):
    return [list_tree(x) if isinstance(x, tuple) else x for x in t]


def tuple_tree(t):
    return tuple(tuple_tree(x) if isinstance(x, list) and x and isinstance(x[0], str)
                 and x[0] in ("ref", "red", "sub", "add", "mul", "abs") else x for x in t)


# ---------------------------------------------------------------------------
# Running an example on every rank
# ---------------------------------------------------------------------------
def run_example(ex, world, path: str):
    """Collective over ``world``: the active ranks run insitu; returns the
    error text (the same on every rank) or None."""
    from insitu import api
    decomp = ex["decomp"]
    m = decomp["ranks"]
    rank = world.rank
    sub = world.Split(0 if rank < m else MPI_UNDEFINED(), rank)
    err = None
    if rank < m:
        try:
            off, shp = slab(decomp, sub.rank)
            recipe = ex["recipe"]
            hl, hh = decomp["halo"]
            order = decomp["order"]
            local = tuple(n + hl + hh for n in shp)
            dtype = np.dtype(recipe["dtype"])
            garbage = {"f": np.nan, "i": -7}[dtype.kind]
            buf = np.full(local, garbage, dtype=dtype, order=order)
            inner = tuple(slice(hl, hl + n) for n in shp)
            cfg = json.loads(json.dumps(ex["config"]))
            cfg["output"] = {"path": path, "overwrite": True}
            api.init(sub, cfg)
            try:
                api.declare_field("u", dtype, recipe["shape"], off, local,
                                  [hl] * len(shp), [hh] * len(shp), order)
                for t in range(ex.get("first", 1), ex["steps"] + 1):
                    g = make_field(recipe, t)
                    buf[inner] = g[tuple(slice(o, o + n) for o, n in zip(off, shp))]
                    api.expose("u", buf)
                    api.step(t, t * ex.get("dt", 1.0))
            finally:
                api.finalize()
        except BaseException as exc:  # noqa: BLE001 - reported as the example failing
            err = f"rank {rank}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            api._session = None
        sub.Free()
    errs = world.allgather(err)
    errs = [e for e in errs if e]
    return errs[0] if errs else None


def MPI_UNDEFINED():
    from mpi4py import MPI
    return MPI.UNDEFINED


# ---------------------------------------------------------------------------
# The truth and the comparison (rank 0)
# ---------------------------------------------------------------------------
class Mismatch(AssertionError):
    pass


class Checker:
    def __init__(self, ex):
        self.ex = ex
        self.problems = []

    def fail(self, msg):
        self.problems.append(msg)

    def close(self, what, got, want, tol, exact=False):
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), want.shape)
        if got.shape != want.shape:
            self.fail(f"{what}: shape {got.shape}, expected {want.shape}")
            return
        gn, wn = np.isnan(got), np.isnan(want)
        bad = gn != wn
        both = ~gn & ~wn
        with np.errstate(invalid="ignore"):
            if exact:
                bad |= both & (got != want)
            else:
                diff = np.abs(got - want)
                bad |= both & ~(diff <= tol) & (got != want)
        if bad.any():
            i = np.argwhere(bad)[0] if bad.ndim else ()
            i = tuple(i)
            self.fail(f"{what}{list(i) if i else ''}: got {got[i]!r}, expected {want[i]!r}"
                      f" (tolerance {'exact' if exact else repr(float(tol[i]))}; "
                      f"{int(bad.sum())} of {bad.size} wrong)")


def var_exact(x: np.ndarray, ddof: int = 0):
    """The exact variance: (sum x^2 - (sum x)^2 / n) / (n - ddof), in integers."""
    ints, emin = _scaled_ints(x)
    n = len(ints)
    s = sum(ints)
    q = sum(i * i for i in ints)
    return _scale(n * q - s * s, 2 * emin) / (n * (n - ddof))


def stats_truth(x: np.ndarray, E: np.ndarray, integer: bool, ddof: int = 0):
    """Reference stats of values ``x`` (original dtype) with per-element
    uncertainty ``E``: {stat: (value, tol, exact)}."""
    f = x.astype(np.float64).ravel()
    e = np.broadcast_to(E, x.shape).ravel()
    ok = np.isfinite(f)
    v, ev = f[ok], e[ok]
    n = v.size
    out = {"count": (n, 0, True), "nan_count": (int(np.isnan(f).sum()), 0, True),
           "inf_count": (int(np.isinf(f).sum()), 0, True)}
    if n == 0:
        # README: "count 0 and sum 0 (as numpy.nansum ...), and NaN for mean,
        # min, max, std and var"
        for k in ("mean", "min", "max", "std", "var"):
            out[k] = (np.nan, 0, True)
        out["sum"] = (0.0, 0, True)
        return out
    s = fsum(v)
    amax = float(np.abs(v).max())
    emax = float(ev.max())
    out["sum"] = (float(s), RTOL * float(np.abs(v).sum()) + float(ev.sum()),
                  integer and emax == 0)
    out["mean"] = (float(s / n), RTOL * amax + emax, integer and emax == 0)
    out["min"] = (float(v.min()), emax, emax == 0)
    out["max"] = (float(v.max()), emax, emax == 0)
    if n <= ddof:
        out["var"] = out["std"] = (np.nan, 0, True)
        return out
    V = var_exact(v, ddof)
    Vf = float(V)
    sd = math.sqrt(Vf)
    vtol = RTOL * Vf + 2 * sd * emax + emax * emax
    out["var"] = (Vf, vtol, False)
    out["std"] = (sd, (vtol / sd) if sd > 0 else math.sqrt(vtol), False)
    return out


def weighted_truth(x, E, dims, wcfg, sl, coords):
    """README: with weights, mean, std and var are weighted (population
    values), over the finite values; NaN where the weights sum to 0."""
    d = wcfg["dim"]
    ax = dims.index(d)
    n = x.shape[ax]
    if wcfg["values"] == "coslat":
        c = coords[d]
        w1 = np.cos(np.deg2rad(c["start"] + c["step"] * np.arange(n)))
    else:
        w1 = np.asarray(wcfg["values"], dtype=np.float64)
    shape = [1] * x.ndim
    shape[ax] = n
    w = np.broadcast_to(w1.reshape(shape), x.shape)[sl].ravel()
    f = x[sl].astype(np.float64).ravel()
    e = np.broadcast_to(E, x.shape)[sl].ravel()
    ok = np.isfinite(f) & (w > 0)
    f, w, e = f[ok], w[ok], e[ok]
    if f.size == 0:
        return {k: (np.nan, 0, True) for k in ("mean", "var", "std")}
    wi, we = _scaled_ints(w)
    xi, xe = _scaled_ints(f)
    W = sum(wi)
    S = sum(a * b for a, b in zip(wi, xi))
    Q = sum(a * b * b for a, b in zip(wi, xi))
    mean = _scale(S, xe) / W            # the 2**we cancel
    V = (_scale(Q, 2 * xe) - mean * _scale(S, xe)) / W
    Vf = float(V)
    emax = float(e.max())
    amax = float(np.abs(f).max())
    sd = math.sqrt(Vf)
    vtol = RTOL * Vf + 2 * sd * emax + emax * emax
    return {"mean": (float(mean), RTOL * amax + emax, False),
            "var": (Vf, vtol, False),
            "std": (sd, (vtol / sd) if sd > 0 else math.sqrt(vtol), False)}


def box_slices(shape, dims, region, coords=None):
    """The region's slices: [start, stop) indices, or {from, to}, the points
    whose coordinate start + step * i lies in the closed range."""
    out = []
    for d, n in zip(dims, shape):
        r = (region or {}).get(d)
        if r is None:
            out.append(slice(0, n))
        elif isinstance(r, dict):
            c = coords[d]
            lo, hi = min(r["from"], r["to"]), max(r["from"], r["to"])
            inside = [i for i in range(n) if lo <= c["start"] + c["step"] * i <= hi]
            out.append(slice(inside[0], inside[-1] + 1))
        else:
            out.append(slice(*r))
    return tuple(out)


def hist_truth(x, E, edges):
    """Counts by the documented rule (README, "Histogram quantiles"): bin k
    holds edges[k] <= x < edges[k+1] (the last bin also x == hi);
    ``_below`` counts values below the range (-Inf included), ``_above``
    values above it (+Inf included); NaN is skipped.
    Returns (counts, below, above, ambiguous)."""
    f = x.astype(np.float64).ravel()
    e = np.broadcast_to(E, x.shape).ravel()
    lo, hi = edges[0], edges[-1]
    nb = len(edges) - 1
    keep = ~np.isnan(f)
    f, e = f[keep], e[keep]
    fin = np.isfinite(f)
    ambiguous = int(np.sum(fin & (e > 0) & (np.min(np.abs(
        np.where(fin, f, 0.0)[:, None] - edges[None, :]), axis=1) <= e))) if f.size else 0
    below = int(np.sum(f < lo))
    above = int(np.sum(f > hi))
    inside = f[(f >= lo) & (f <= hi)]
    k = np.searchsorted(edges, inside, side="right") - 1
    k[inside == hi] = nb - 1
    counts = np.bincount(k, minlength=nb).astype(np.int64)
    return counts, below, above, ambiguous


def quantile_interval(counts, below, above, edges, target: Fraction):
    """The x where the histogram's piecewise-linear CDF reaches ``target``
    (a closed interval), or None where the quantile is NaN by the rule."""
    incount = int(sum(counts))
    if below + incount + above == 0 or target < below or target > below + incount:
        return None
    lo_x = hi_x = None
    cum = Fraction(below)
    for k, c in enumerate(counts):
        e0, e1 = Fraction(float(edges[k])), Fraction(float(edges[k + 1]))
        nxt = cum + int(c)
        if cum <= target <= nxt:
            if c > 0:
                xs = [e0 + (target - cum) / int(c) * (e1 - e0)]
            else:
                xs = [e0, e1]
            for xv in xs:
                lo_x = xv if lo_x is None else min(lo_x, xv)
                hi_x = xv if hi_x is None else max(hi_x, xv)
        cum = nxt
    return (float(lo_x), float(hi_x)) if lo_x is not None else None


def check_example(ex, path: str) -> list[str]:
    import xarray as xr
    chk = Checker(ex)
    recipe, cfg = ex["recipe"], ex["config"]
    dims = cfg["fields"]["u"]["dims"]
    steps = ex["steps"]
    integer = recipe["dtype"] == "int32"
    trees = {k: tuple_tree(v) for k, v in ex["trees"].items()}
    # per step: the fields' values and uncertainties
    env_by_step = {}
    first = ex.get("first", 1)
    for t in range(first, steps + 1):
        u = make_field(recipe, t)
        env, errs = {"u": u}, {"u": np.zeros(u.shape)}
        for name, tree in trees.items():
            v, e = evaluate(tree, env, errs, dims)
            buf = np.empty(u.shape)
            buf[...] = v
            env[name], errs[name] = buf, np.broadcast_to(e, u.shape).copy()
        env_by_step[t] = (env, errs)
    analyses = [a for a in cfg["analyses"] if a["kind"] != "window"]
    due = {a["name"]: [t for t in range(first, steps + 1) if t % a.get("every", 1) == 0]
           for a in analyses}
    active = {}
    for a in analyses:  # an analysis disabled by on_error: skip is due no more
        k = FAILS.get(a.get("function", "").split(":")[-1])
        active[a["name"]] = due[a["name"]][:k] if k else due[a["name"]]
    rows = sorted({t for a in analyses for t in active[a["name"]]})
    with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as ds:
        ds.load()
    file_steps = [int(s) for s in ds["step"].values]
    if file_steps != rows:
        chk.fail(f"output steps {file_steps}, expected {rows}")
        return chk.problems
    dt = ex.get("dt", 1.0)
    if not np.array_equal(ds["time"].values, np.array(rows, dtype=float) * dt):
        chk.fail(f"time {ds['time'].values.tolist()}, expected steps {rows} x {dt}")
    row_of = {t: i for i, t in enumerate(rows)}

    def series(var, t):
        return ds[var].values[row_of[t]]

    for a in analyses:
        name, fname = a["name"], a.get("field") or a["fields"][0]
        fint = integer and fname == "u"
        for t in rows:
            env, errs = env_by_step[t]
            x, E = env[fname], errs[fname]
            where = f"step {t}, {a['kind']} {name} of {fname}"
            if t not in due[name]:
                # not due: fill values (NaN once decoded) in every variable
                for v in ds.data_vars:
                    if v == name or v.startswith(name + "_"):
                        if ds[v].dims[:1] == ("time",) and not np.all(np.isnan(
                                np.asarray(series(v, t), dtype=float))):
                            chk.fail(f"{where}: {v} holds {series(v, t)!r} at a step where "
                                     "the analysis is not due (expected fill)")
                continue
            if a["kind"] == "stats":
                sl = box_slices(x.shape, dims, a.get("region"), cfg.get("coords"))
                truth = stats_truth(x[sl], E[sl], fint, a.get("ddof", 0))
                if a.get("weights"):
                    truth.update(weighted_truth(x, E, dims, a["weights"], sl,
                                                cfg.get("coords")))
                if cfg.get("reproducible") and not fint and truth["count"][0] > 0 and \
                        np.all(E[sl] == 0):
                    # README: "equal to the exact sum of the finite values rounded
                    # once ... Values smaller than 2**-99 times the field's max are
                    # rounded away": exact when there is no such value
                    fv = x[sl].astype(np.float64)
                    fv = np.abs(fv[np.isfinite(fv)])
                    nz = fv[fv > 0]
                    if nz.size == 0 or nz.min() >= 2.0 ** -99 * nz.max():
                        truth["sum"] = (truth["sum"][0], 0, True)
                for st_ in a.get("stats", DEFAULT_STATS):
                    if st_ in ("argmax", "argmin"):
                        check_argext(chk, where, name, st_, series, t, x, E, sl, dims,
                                     cfg.get("coords") or {})
                        continue
                    want, tol, exact = truth[st_]
                    chk.close(f"{where}: {name}_{st_}", series(f"{name}_{st_}", t), want,
                              tol, exact)
            elif a["kind"] == "exceedance":
                count, frac = exceedance_truth(x, a)
                chk.close(f"{where}: {name}_count", series(f"{name}_count", t), count, 0,
                          exact=True)
                chk.close(f"{where}: {name}_fraction", series(f"{name}_fraction", t), frac,
                          0 if not a.get("weights") else RTOL * abs(frac),
                          exact=not a.get("weights"))
            elif a["kind"] == "reduce":
                axes = [dims.index(d) for d in a["over"]]
                want, tol = reduce_exact(x, E, axes, a["op"], integer=fint)
                if a["op"] in ("min", "max"):
                    chk.close(f"{where}: {name}", series(name, t), want, tol,
                              exact=bool(np.all(tol == 0)))
                else:
                    chk.close(f"{where}: {name}", series(name, t), want, tol,
                              exact=fint)
                kept = [d for d in dims if d not in a["over"]]
                if list(ds[name].dims[1:]) != kept:
                    chk.fail(f"{name}: dims {ds[name].dims}, expected (time, {kept})")
            elif a["kind"] == "python" and a["function"].split(":")[-1] in FAILS:
                k = FAILS[a["function"].split(":")[-1]]
                fail_step = due[name][k - 1] if len(due[name]) >= k else None
                v = x.astype(np.float64).ravel()
                v = v[np.isfinite(v)]
                e = np.broadcast_to(E, x.shape).ravel()[np.isfinite(x.astype(np.float64).ravel())]
                if fail_step is not None and t >= fail_step:
                    want, tl = np.nan, 0.0
                else:
                    want, tl = float(fsum(v)), RTOL * float(np.abs(v).sum()) + float(e.sum())
                chk.close(f"{where}: {name}_s (on_error: skip, failing at step {fail_step})",
                          series(f"{name}_s", t), want, tl)
                continue
            elif a["kind"] == "python":
                f = a["fields"][0]
                x, E = env[f], errs[f]
                if "region" in a or a["function"].endswith("user_scalars"):
                    sl = box_slices(x.shape, dims, a.get("region"), cfg.get("coords"))
                    v = x[sl].astype(np.float64).ravel()
                    e = np.broadcast_to(E, x.shape)[sl].ravel()
                    ok = np.isfinite(v)
                    v, e = v[ok], e[ok]
                    emax = float(e.max()) if e.size else 0.0
                    want = {"s": (float(fsum(v)), RTOL * float(np.abs(v).sum()) + float(e.sum())),
                            "n": (v.size, 0.0),
                            "lo": (v.min() if v.size else np.inf, emax),
                            "hi": (v.max() if v.size else -np.inf, emax)}
                    for o, (w_, tl) in want.items():
                        chk.close(f"{where}: {name}_{o}", series(f"{name}_{o}", t), w_, tl,
                                  exact=tl == 0)
                else:
                    ax = tuple(range(x.ndim - 1))
                    prow, rtol_ = reduce_exact(x, E, ax, "sum") if ax else (
                        np.where(np.isfinite(x), x, 0.0).astype(np.float64), E)
                    xf = x.astype(np.float64)
                    finite = np.isfinite(xf)
                    prow = np.where(np.isnan(prow), 0.0, prow)  # an empty sum is 0 here
                    top = np.where(finite, xf, -np.inf).max(axis=ax) if ax else \
                        np.where(finite, xf, -np.inf)
                    ttol = np.where(finite, E, 0.0).max(axis=ax) if ax else E
                    chk.close(f"{where}: {name}_rows", series(f"{name}_rows", t), prow, rtol_)
                    chk.close(f"{where}: {name}_top", series(f"{name}_top", t), top, ttol,
                              exact=bool(np.all(ttol == 0)))
                continue
            elif a["kind"] == "probe":
                # README: the value at each point (global indices), NaN and Inf kept
                pts = [tuple(p_) for p_ in a["points"]]
                want = np.array([x[p_] for p_ in pts], dtype=np.float64)
                tol = np.array([E[p_] for p_ in pts])
                chk.close(f"{where}: {name}", series(name, t), want, tol,
                          exact=bool(np.all(tol == 0)))
                for k, d in enumerate(dims):
                    chk.close(f"{name}: coordinate {name}_{d}", ds[f"{name}_{d}"].values,
                              np.array([p_[k] for p_ in pts]), 0, exact=True)
            elif a["kind"] == "coarsen":
                fac = [a["factors"].get(d, 1) for d in dims]
                want, tol = coarsen_truth(x, E, fac, fint)
                chk.close(f"{where}: {name}", series(name, t), want, tol, exact=fint)
                for d, f_ in zip(dims, fac):
                    if f_ > 1:
                        cd = f"{d}_c{f_}"
                        nc = x.shape[dims.index(d)] // f_
                        want_c = f_ * np.arange(nc) + (f_ - 1) / 2.0
                        c = cfg.get("coords", {}).get(d)
                        if c:
                            want_c = c["start"] + c["step"] * want_c
                        chk.close(f"{name}: coordinate {cd}", ds[cd].values, want_c,
                                  RTOL * np.abs(want_c))
            elif a["kind"] == "histogram":
                sl = box_slices(x.shape, dims, a.get("region"), cfg.get("coords"))
                lo, hi = a["range"]
                edges = np.linspace(lo, hi, a["bins"] + 1)
                fb = ds[f"{name}_bin_bounds"].values
                if not (np.array_equal(fb[:, 0], edges[:-1]) and
                        np.array_equal(fb[:, 1], edges[1:])):
                    chk.fail(f"{name}_bin_bounds {fb.tolist()} are not linspace({lo!r}, "
                             f"{hi!r}, {a['bins'] + 1})")
                counts, below, above, amb = hist_truth(x[sl], E[sl], edges)
                got_c = series(name, t)
                got_b, got_a = series(f"{name}_below", t), series(f"{name}_above", t)
                if amb == 0:
                    chk.close(f"{where}: {name}", got_c, counts, 0, exact=True)
                    chk.close(f"{where}: {name}_below", got_b, below, 0, exact=True)
                    chk.close(f"{where}: {name}_above", got_a, above, 0, exact=True)
                else:
                    tot = counts.sum() + below + above
                    chk.close(f"{where}: total of {name} (+below+above, {amb} values "
                              "within E of an edge)", np.sum(got_c) + got_b + got_a, tot, 0,
                              exact=True)
                if a.get("quantiles") and a.get("quantile_method") == "exact":
                    # numpy.quantile(..., method="inverted_cdf") over the
                    # non-NaN values, +-Inf included: equal, not close
                    gq = series(f"{name}_quantile", t)
                    vals = np.asarray(x[sl]).ravel()
                    vals = vals[~np.isnan(vals)] if vals.dtype.kind == "f" else vals
                    for qi, q in enumerate(a["quantiles"]):
                        g = float(gq[qi])
                        if vals.size == 0:
                            okq = math.isnan(g)
                            want = float("nan")
                        else:
                            want = float(np.quantile(vals, q, method="inverted_cdf"))
                            okq = g == want
                        if not okq:
                            chk.fail(f"{where}: {name}_quantile[{q}] = {g!r} (exact), "
                                     f"expected {want!r} = numpy.quantile(..., "
                                     f"method='inverted_cdf') of {vals.size} values")
                elif a.get("quantiles"):
                    gq = series(f"{name}_quantile", t)
                    gc = np.asarray(got_c, dtype=np.float64)
                    if np.all(np.isfinite(gc)) and np.isfinite(got_b) and np.isfinite(got_a):
                        gc = gc.astype(np.int64)
                        gb, ga = int(got_b), int(got_a)
                        total = gb + int(gc.sum()) + ga
                        width = max(abs(lo), abs(hi), hi - lo)
                        for qi, q in enumerate(a["quantiles"]):
                            cands = [quantile_interval(gc, gb, ga, edges, Fraction(q) * total),
                                     quantile_interval(gc, gb, ga, edges,
                                                       Fraction(float(q * total)))]
                            g = float(gq[qi])
                            okq = False
                            for c in cands:
                                if c is None:
                                    okq |= math.isnan(g)
                                elif not math.isnan(g):
                                    okq |= c[0] - RTOL * width <= g <= c[1] + RTOL * width
                            if not okq:
                                chk.fail(f"{where}: {name}_quantile[{q}] = {g!r}, expected "
                                         f"{cands} (counts {gc.tolist()}, below {gb}, "
                                         f"above {ga}, edges {edges.tolist()})")
    fails = [(a, due[a["name"]][FAILS[a["function"].split(":")[-1]] - 1]) for a in analyses
             if a.get("function", "").split(":")[-1] in FAILS
             and len(due[a["name"]]) >= FAILS[a["function"].split(":")[-1]]]
    errors = json.loads(ds.attrs.get("insitu_errors", "[]"))
    got = sorted((e.get("step"), e.get("analysis")) for e in errors)
    if [g[0] for g in got] != sorted(st_ for _, st_ in fails):
        chk.fail(f"insitu_errors {got}, expected failures at steps "
                 f"{sorted(st_ for _, st_ in fails)}")
    for a in cfg["analyses"]:
        if a["kind"] == "window":
            check_window(chk, ds, a, cfg, due, row_of, dt, first, steps)
    for trig in cfg.get("triggers", []):
        check_trigger(chk, ds, trig, rows, row_of, env_by_step, recipe["dtype"], dt)
    return chk.problems


def check_argext(chk, where, name, which, series, t, x, E, sl, dims, coords):
    """argmax/argmin (issue 16): the lowest global index of the extreme, and
    its coordinates.  For a derived field whose values carry an uncertainty
    E, the value at the written index must be the extreme within E."""
    want, emax = argext_truth(x, E, sl, which)
    got = np.asarray(series(f"{name}_{which}", t), dtype=np.float64)
    if emax == 0 or np.isnan(want):
        chk.close(f"{where}: {name}_{which}", got, want, 0, exact=True)
    elif not (np.isfinite(got) and 0 <= got < x.size):
        chk.fail(f"{where}: {name}_{which} is {got!r}, not an index of the field")
        return
    else:
        f = x.astype(np.float64).ravel()
        best = f.ravel()[int(want)]
        chk.close(f"{where}: the value at {name}_{which}", f[int(got)], best, 2 * emax)
        want = float(got)
    at = np.unravel_index(int(want), x.shape) if np.isfinite(want) else [np.nan] * x.ndim
    for d, i in zip(dims, at):
        c = coords.get(d)
        wc = i if c is None or np.isnan(i) else c["start"] + c["step"] * i
        chk.close(f"{where}: {name}_{which}_{d}", series(f"{name}_{which}_{d}", t), wc,
                  0 if c is None else RTOL * abs(wc), exact=c is None)


def coarsen_truth(x, E, fac, integer):
    shape = x.shape
    cshape = tuple(n // f for n, f in zip(shape, fac))
    want = np.full(cshape, np.nan)
    tol = np.zeros(cshape)
    for idx in itertools.product(*[range(c) for c in cshape]):
        sl = tuple(slice(i * f, (i + 1) * f) for i, f in zip(idx, fac))
        b = x[sl].astype(np.float64).ravel()
        e = np.broadcast_to(E[sl], x[sl].shape).ravel()
        ok = np.isfinite(b)
        if b.size == 1:  # a block of one cell: its value
            want[idx] = b[0] if ok[0] else np.nan
            tol[idx] = e[0] if ok[0] else 0.0
        elif ok.any():
            want[idx] = float(fsum(b[ok]) / int(ok.sum()))
            tol[idx] = 0.0 if integer else RTOL * float(np.abs(b[ok]).max()) + float(e[ok].max())
    return want, tol


def source_vars(ds, src_name, kind, src=None):
    if kind == "python":
        return [f"{src_name}_{o}" for o in src["outputs"]]
    if kind == "stats":
        return [v for v in ds.data_vars if v.startswith(src_name + "_")
                and v[len(src_name) + 1:] in ALL_STATS]
    if kind == "histogram":
        return [src_name, f"{src_name}_below", f"{src_name}_above"] + (
            [f"{src_name}_quantile"] if f"{src_name}_quantile" in ds else [])
    return [src_name]


def check_window(chk, ds, w, cfg, due, row_of, dt, first, last):
    """Windows aggregate the source's results as written: their truth is the
    exact mean/min/max/var (with its ddof) of the file's own source values
    over each group.  The rule (README, "Time windows"), written out here in
    exact arithmetic: windows are left-closed, right-open and aligned to 0;
    ``steps: N`` is the steps ``[kL, (k+1)L)`` with ``L = N * every``, bounded
    by the times of its two ends; ``period: P`` is the times ``[kP, (k+1)P)``.
    A window is written when the model reaches its end, and only if the run
    (steps ``first..last``, time ``t * dt``) covered it from start to end."""
    src = next(a for a in cfg["analyses"] if a["name"] == w["source"])
    s_steps = due[src["name"]]
    wn = w["name"]
    got_steps = [int(s) for s in ds[f"step_{wn}"].values] if f"step_{wn}" in ds else []
    Dt = Fraction(dt)
    if w.get("steps"):
        L = w["steps"] * src.get("every", 1)
        ks = [k for k in range(last // L + 1) if first <= k * L and (k + 1) * L <= last]
        groups = [[t for t in s_steps if k * L <= t < (k + 1) * L] for k in ks]
        want_b = [[float(k * L * Dt), float((k + 1) * L * Dt)] for k in ks]
        want_steps = [(k + 1) * L for k in ks]
    else:
        P = Fraction(w["period"])
        ks = [k for k in range(int(last * Dt / P) + 1)
              if first * Dt <= k * P and (k + 1) * P <= last * Dt]
        groups = [[t for t in s_steps if k * P <= t * Dt < (k + 1) * P] for k in ks]
        keep = [i for i, g in enumerate(groups) if g]  # a period may hold no output
        ks, groups = [ks[i] for i in keep], [groups[i] for i in keep]
        want_b = [[float(k * P), float((k + 1) * P)] for k in ks]
        # written at the first output at or after its end, else at the last step
        want_steps = [next((t for t in s_steps if t * Dt >= (k + 1) * P), last) for k in ks]
    if got_steps != want_steps:
        chk.fail(f"window {wn}: written at steps {got_steps}, expected {want_steps} "
                 f"(source outputs at steps {s_steps}, run {first}..{last}, dt {dt})")
        return
    got_b = ds[f"time_{wn}_bounds"].values if f"time_{wn}_bounds" in ds else np.zeros((0, 2))
    if len(got_b) != len(groups):
        chk.fail(f"window {wn}: {len(got_b)} windows with bounds {np.asarray(got_b).tolist()}, "
                 f"expected {len(groups)}: {want_b} (source outputs at steps {s_steps}, "
                 f"dt {dt})")
        return
    if groups:
        chk.close(f"window {wn}: time_{wn}_bounds", got_b, np.array(want_b), 0, exact=True)
        chk.close(f"window {wn}: time_{wn} (the end of each window)", ds[f"time_{wn}"].values,
                  np.array(want_b)[:, 1], 0, exact=True)
    for v in source_vars(ds, src["name"], src["kind"], src):
        data = np.asarray(ds[v].values, dtype=np.float64)
        for gi, g in enumerate(groups):
            x = np.stack([data[row_of[t]] for t in g])  # (k, ...)
            for op in w["ops"]:
                out = f"{v}_{wn}_{op}"
                got = np.asarray(ds[out].values[gi], dtype=np.float64)
                want = np.full(x.shape[1:], np.nan)
                tol = np.zeros(x.shape[1:])
                for idx in np.ndindex(*x.shape[1:]):
                    col = x[(slice(None),) + idx]
                    col = col[np.isfinite(col)]
                    if col.size == 0:
                        continue
                    if op == "mean":
                        want[idx] = float(fsum(col) / col.size)
                        tol[idx] = RTOL * float(np.abs(col).max())
                    elif op == "min":
                        want[idx] = col.min()
                    elif op == "max":
                        want[idx] = col.max()
                    elif col.size > w.get("ddof", 0):
                        V = float(var_exact(col, w.get("ddof", 0)))
                        want[idx] = V
                        tol[idx] = RTOL * V
                chk.close(f"window {wn} ending at step {g[-1]}: {out}", got, want, tol,
                          exact=op in ("min", "max"))


def check_trigger(chk, ds, trig, rows, row_of, env_by_step, udtype, dt):
    """The condition, evaluated on the file's own values at each output step,
    fires until max_snapshots; each snapshot holds the field at that step."""
    tn = trig["name"]
    fired = []
    for t in rows:
        if len(fired) >= trig["max_snapshots"]:
            break
        env = {v: float(ds[v].values[row_of[t]]) for v in ("trig_max", "trig_nan_count",
                                                             "trig_count") if v in ds}
        with np.errstate(all="ignore"):
            if eval(trig["when"], {"__builtins__": {}}, env):  # noqa: S307
                fired.append(t)
    got = [int(s) for s in ds[f"step_{tn}"].values] if f"step_{tn}" in ds else []
    if got != fired:
        chk.fail(f"trigger {tn} ({trig['when']}): fired at steps {got}, expected {fired}")
        return
    if fired:
        chk.close(f"trigger {tn}: time_{tn}", ds[f"time_{tn}"].values,
                  np.array(fired, dtype=float) * dt, 0, exact=True)
    # README: the reason (step, time, condition, values) goes into insitu_triggers
    events = [e for e in json.loads(ds.attrs.get("insitu_triggers", "[]"))
              if e.get("trigger") == tn]
    if [e.get("step") for e in events] != fired or \
            [e.get("time") for e in events] != [t * dt for t in fired] or \
            any(e.get("when") != trig["when"] for e in events):
        chk.fail(f"trigger {tn}: insitu_triggers holds {events}, expected steps {fired}")
    for e in events:
        t = e.get("step")
        for v, x in (e.get("values") or {}).items():
            if t in row_of and v in ds:
                chk.close(f"trigger {tn}: insitu_triggers value {v} at step {t}", x,
                          float(ds[v].values[row_of[t]]), 0, exact=True)
    for i, t in enumerate(fired):
        env, errs = env_by_step[t]
        for f in trig["fields"]:
            want_dt = np.dtype(udtype if f == "u" else "float64")  # derived: float64
            if ds[f"{tn}_{f}"].encoding.get("dtype", ds[f"{tn}_{f}"].dtype) != want_dt:
                chk.fail(f"trigger {tn}: {tn}_{f} stored as "
                         f"{ds[f'{tn}_{f}'].encoding.get('dtype')}, expected {want_dt}")
            snap = np.asarray(ds[f"{tn}_{f}"].values[i], dtype=np.float64)
            want = env[f].astype(np.float64)
            tol = errs[f]
            chk.close(f"trigger {tn} snapshot of {f} at step {t}", snap, want, tol,
                      exact=bool(np.all(tol == 0)))


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=50)
    p.add_argument("--last", default=None, help="file to hold the example being run")
    p.add_argument("--replay", default=None, help="run one example from a YAML file")
    p.add_argument("--seed", type=int, default=None,
                   help="explore with this random seed instead of the derandomized sequence")
    args = p.parse_args(argv)
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    rank = world.rank
    tmp = tempfile.mkdtemp(prefix="insitu-prop-") if rank == 0 else None
    tmp = world.bcast(tmp, root=0)
    path = os.path.join(tmp, "out.h5")
    stats = {"examples": 0, "seconds": 0.0}

    def one(ex):
        """Collective: run ``ex`` everywhere, check on rank 0; the verdict
        (None or a message) is returned on rank 0."""
        world.bcast(("RUN", dict(ex)), root=0)
        return _run_and_check(ex, world, path)

    if rank != 0:
        while True:
            cmd, ex = world.bcast(None, root=0)
            if cmd == "STOP":
                break
            _run_and_check(Example(ex), world, path)
        return 0

    status = 0
    t0 = _time.time()
    try:
        if args.replay:
            doc = yaml.safe_load(Path(args.replay).read_text())
            ex = replay_example(doc)
            msg = one(ex)
            print(dump(ex))
            print("PASS" if msg is None else f"FAIL\n{msg}")
            status = 0 if msg is None else 1
        else:
            from hypothesis import HealthCheck, Phase, given, settings
            nworld = world.size

            from hypothesis import seed as hseed

            @settings(max_examples=args.examples, derandomize=args.seed is None, database=None,
                      deadline=None, suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      print_blob=False, report_multiple_bugs=False)
            @given(strategies(nworld))
            def prop(ex):  # noqa: D401 - the property
                if args.last:
                    Path(args.last).write_text(dump(ex))
                stats["examples"] += 1
                tally(stats, ex)
                msg = one(ex)
                if msg is not None:
                    raise Mismatch(msg)

            if args.seed is not None:
                prop = hseed(args.seed)(prop)
            prop()
    except Mismatch as exc:
        status = 1
        notes = "\n".join(getattr(exc, "__notes__", []))
        print(f"PROPERTY FAILED at {world.size} rank(s):\n{exc}\n{notes}", flush=True)
    except BaseException:
        status = 1
        traceback.print_exc()
    finally:
        world.bcast(("STOP", None), root=0)
    dt = _time.time() - t0
    print(f"property: {stats['examples']} examples at {world.size} rank(s) in {dt:.1f} s; "
          f"exclusions: {sorted(KNOWN) or 'none'}", flush=True)
    print("coverage: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())
                                   if k not in ("examples", "seconds")), flush=True)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return status


def tally(stats, ex):
    """What the examples covered (printed at the end)."""
    cfg, rec, dec = ex["config"], ex["recipe"], ex["decomp"]
    keys = [f"dtype={rec['dtype']}", f"ndim={len(rec['shape'])}"]
    keys += [f"kind={a['kind']}" for a in cfg["analyses"]]
    keys += [f"derived={k}" for k in cfg.get("derived", {})]
    if max(sum(x) for x in dec["sizes"][-1:]) >= 128:
        keys.append("rows>=128")
    if dec["ranks"] < dec["world"]:
        keys.append("idle-rank")
    if any(len(set(s)) > 1 for s in dec["sizes"]):
        keys.append("uneven")
    if rec["specials"] or rec["all_nan_steps"]:
        keys.append("nan/inf")
    if abs(rec["offset_factor"]) >= 1e9:
        keys.append("offset>=1e9*spread")
    if cfg.get("triggers"):
        keys.append("trigger")
    if cfg.get("reproducible"):
        keys.append("reproducible")
    if cfg.get("on_error") == "skip":
        keys.append("on_error-skip")
    if any(a.get("weights") for a in cfg["analyses"]):
        keys.append("weights")
    if any(a.get("quantile_method") == "exact" for a in cfg["analyses"]):
        keys.append("exact-quantiles")
    if rec["pattern"] == "extremes" and any("u" in t["fields"] for t in cfg.get("triggers", [])):
        keys.append("int32-extremes-snapshot")
    if any(a.get("period") for a in cfg["analyses"]):
        keys.append("window-period")
    if any(isinstance(r, dict) for a in cfg["analyses"] for r in (a.get("region") or {}).values()):
        keys.append("coordinate-region")
    if any(a.get("region") for a in cfg["analyses"]):
        keys.append("region")
    if any("argmax" in a.get("stats", []) for a in cfg["analyses"]):
        keys.append("argmax")
    if any(a["kind"] == "exceedance" and a.get("weights") for a in cfg["analyses"]):
        keys.append("exceedance-weights")
    for k in set(keys):
        stats[k] = stats.get(k, 0) + 1


def replay_example(doc) -> Example:
    """An example from its printed YAML (derived trees re-parsed from the
    config's expressions is not needed: they are printed in 'trees')."""
    ex = Example(recipe=doc["field_recipe"], decomp=doc["decomposition"],
                 config=doc["config"], steps=doc["steps"], dt=doc.get("dt", 1.0),
                 first=doc.get("first", 1),
                 trees=doc.get("trees") or trees_from_config(doc["config"]))
    return ex


def trees_from_config(cfg) -> dict:
    """Re-parse derived expressions of the forms the strategy writes."""
    import ast
    out = {}

    def conv(node):
        if isinstance(node, ast.Name):
            return ["ref", node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Add)):
            return ["sub" if isinstance(node.op, ast.Sub) else "add", conv(node.left),
                    conv(node.right)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return ["mul", conv(node.left), ast.literal_eval(node.right)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return ["mul", conv(node.operand), -1.0]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "abs":
            return ["abs", conv(node.args[0])]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return ["red", node.func.value.id, node.func.attr, [a.id for a in node.args]]
        raise ValueError(f"cannot replay the expression {ast.unparse(node)}")

    for name, text in (cfg.get("derived") or {}).items():
        out[name] = conv(ast.parse(text, mode="eval").body)
    return out


def _run_and_check(ex, world, path):
    err = run_example(ex, world, path)
    if world.rank != 0:
        return None
    if err is not None:
        return f"insitu raised:\n{err}"
    try:
        problems = check_example(ex, path)
    except Exception:  # noqa: BLE001 - a crash in the check is a failure to report
        return "the check raised:\n" + traceback.format_exc()
    if problems:
        return "\n".join(problems[:12]) + (f"\n... {len(problems) - 12} more"
                                           if len(problems) > 12 else "")
    return None


if __name__ == "__main__":
    sys.exit(main())
