"""Derived fields: expressions over declared fields.

Config::

    derived:
      speed: sqrt(u**2 + v**2)
      T_celsius: T - 273.15
      T_anomaly: T - T.mean(x)        # minus the zonal mean

A term ``F.mean(d1, ...)`` (or ``sum``, ``min``, ``max``) reduces field ``F``
over the named dims, skipping non-finite values, and broadcasts the result
back over the slab.  It is combined across ranks like a ``reduce`` analysis:
only among the ranks that share the kept dims, in a pre-phase before the
analyses that read the derived field, with one sub-communicator reduction
per decomposition structure.

A derived field can be the input of any analysis, like a declared one.  It
is evaluated on the local interior views (no halos, no communication) at
most once per step, only when an analysis due at that step uses it, into a
buffer allocated once.  Its inputs must be declared fields (or earlier
derived fields) with the same dims and the same decomposition.

Expressions are parsed with :mod:`ast` and only numbers, field names,
arithmetic, comparisons and the functions in :data:`FUNCTIONS` are allowed,
so a config cannot run arbitrary code.
"""
from __future__ import annotations

import ast

import numpy as np

from .fields import FieldError, FieldSpec
from .schema import ConfigError

FUNCTIONS = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10, "abs": np.abs,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "arctan2": np.arctan2, "tanh": np.tanh,
    "minimum": np.minimum, "maximum": np.maximum, "where": np.where, "clip": np.clip,
    "isfinite": np.isfinite,
}
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.USub,
        ast.UAdd, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.BitAnd, ast.BitOr,
        ast.Invert)


REDUCERS = ("mean", "sum", "min", "max")


class _Terms(ast.NodeTransformer):
    """Replace ``F.op(dims)`` by a name bound to the reduced, broadcast array."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.terms: list[tuple[str, str, tuple[str, ...]]] = []

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id == "climatology":
            # climatology("file.h5", "variable"): a term read from a file
            # (insitu/climatology_file.py), replaced by a name like a reduction
            if node.keywords or len(node.args) != 2 or not all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
                raise ConfigError(f"{self.where}: {ast.unparse(node)}: expected "
                                  "climatology(\"file.h5\", \"variable\") with two strings")
            term = (node.args[0].value, "climatology", (node.args[1].value,))
            if term not in self.terms:
                self.terms.append(term)
            return ast.copy_location(ast.Name(id=f"__r{self.terms.index(term)}",
                                              ctx=ast.Load()), node)
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            if f.attr not in REDUCERS:
                raise ConfigError(f"{self.where}: {f.value.id}.{f.attr}() is not a reduction "
                                  f"(use one of {', '.join(REDUCERS)})")
            if not node.args or node.keywords or \
                    not all(isinstance(a, ast.Name) for a in node.args):
                raise ConfigError(f"{self.where}: {ast.unparse(node)} needs dimension names, "
                                  f"e.g. {f.value.id}.{f.attr}(x)")
            term = (f.value.id, f.attr, tuple(a.id for a in node.args))
            if term not in self.terms:
                self.terms.append(term)
            return ast.copy_location(ast.Name(id=f"__r{self.terms.index(term)}",
                                              ctx=ast.Load()), node)
        return node


def parse(name: str, text: str):
    """Check ``text``; return its AST (reductions replaced by ``__rK`` names),
    the field names it reads, and its reduction terms ``(field, op, dims)``."""
    where = f"derived.{name}"
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{where}: not a valid expression: {exc.msg} in {text!r}") from None
    t = _Terms(where)
    tree = ast.fix_missing_locations(t.visit(tree))
    _, names = check_expression(ast.unparse(tree), where, FUNCTIONS, boolean=False,
                                reduced=len(t.terms))
    names = [n for n in names if not n.startswith("__r")]
    for f, op, _ in t.terms:
        if op != "climatology" and f not in names:
            names.append(f)
    return tree, names, t.terms


CONDITION_FUNCTIONS = {"abs": np.abs, "isnan": np.isnan, "isfinite": np.isfinite}


def check_expression(text: str, where: str, functions: dict, boolean: bool,
                     reduced: int = 0) -> tuple[ast.Expression, list[str]]:
    """Parse ``text`` and allow only numbers, names, arithmetic, comparisons,
    calls of ``functions`` (and ``and``/``or``/``not`` if ``boolean``)."""
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Load, *_OPS)
    if boolean:
        allowed += (ast.BoolOp, ast.And, ast.Or, ast.Not)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{where}: not a valid expression: {exc.msg} in {text!r}") from None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in functions and node.id not in names:
                names.append(node.id)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in functions:
                what = ast.unparse(node.func)
                raise ConfigError(f"{where}: function {what!r} is not allowed (allowed: "
                                  f"{', '.join(sorted(functions))})")
            if node.keywords:
                raise ConfigError(f"{where}: keyword arguments are not allowed")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ConfigError(f"{where}: only numeric constants are allowed, "
                                  f"got {node.value!r}")
        elif not isinstance(node, allowed):
            raise ConfigError(f"{where}: {type(node).__name__} is not allowed in an "
                              f"expression ({text!r})")
    if not names or (all(n.startswith("__r") for n in names) and not reduced):
        raise ConfigError(f"{where}: the expression reads no "
                          f"{'result' if boolean else 'field'} ({text!r})")
    return tree, names


class DerivedField:
    """One derived field bound to this rank's inputs."""

    def __init__(self, name: str, text: str, tree, inputs: list[str],
                 specs: dict[str, FieldSpec], terms=(), group=None) -> None:
        missing = [n for n in inputs if n not in specs]
        if missing:
            raise FieldError(f"derived.{name}: {', '.join(map(repr, missing))} is not a "
                             f"declared field (declared: {', '.join(specs) or 'none'})")
        first = specs[inputs[0]]
        for n in inputs[1:]:
            s = specs[n]
            if s.dims != first.dims or s.global_shape != first.global_shape or \
                    s.offset != first.offset or s.shape != first.shape:
                raise FieldError(f"derived.{name}: {n!r} and {inputs[0]!r} differ in dims, "
                                 "shape or decomposition; a pointwise expression needs them "
                                 "to match")
        self.name, self.text, self.inputs = name, text, inputs
        self.code = compile(tree, f"<derived {name}>", "eval")
        self.spec = FieldSpec(name, np.dtype(np.float64), first.global_shape, first.offset,
                              first.shape, (0,) * first.ndim, (0,) * first.ndim, "C",
                              first.dims)
        self.buffer = np.empty(first.shape, dtype=np.float64)
        self.step = None
        self.terms = []      # the reductions, combined by the session
        self.climatologies = []
        self._names = []     # (__rK, term) in the expression's order
        for f, op, dims in terms:
            if op == "climatology":
                from .climatology_file import ClimatologyTerm
                t = ClimatologyTerm(name, f, dims[0], self.spec)
                self.climatologies.append(t)
            else:
                t = ReductionTerm(name, f, op, dims, specs[f], group)
                self.terms.append(t)
            self._names.append((f"__r{len(self._names)}", t))

    def view(self, views_of, step: int, time: float = None, time_cfg: dict = None) -> np.ndarray:
        """The value at ``step`` (evaluated once per step).  ``time`` and
        ``time_cfg`` (the model time and the config's ``time:``) are needed
        by ``climatology(...)`` terms only (the session passes them)."""
        if self.step != step:
            env = {n: views_of(n) for n in self.inputs}
            if self.climatologies and time is None:
                raise FieldError(f"derived.{self.name}: climatology() needs the model time "
                                 f"of step {step}, and none was given")
            for k, t in self._names:
                if isinstance(t, ReductionTerm):
                    env[k] = t.value()
                else:
                    if t.periods is None:
                        t.bind_time(time_cfg or {})
                    env[k] = t.value(time)
            with np.errstate(all="ignore"):  # NaN/Inf are counted by the analyses
                value = eval(self.code, {"__builtins__": {}, **FUNCTIONS}, env)  # noqa: S307
            self.buffer[...] = value
            self.step = step
        return self.buffer


class ReductionTerm:
    """``F.op(dims)`` inside a derived field: a local partial, combined in
    its ReduceGroup's plan, read back broadcast over the slab."""

    def __init__(self, derived: str, field: str, op: str, dims, spec: FieldSpec, group):
        from .reduction import MAX, MIN, SUM
        where = f"derived.{derived}"
        for d in dims:
            if d not in spec.dims:
                raise FieldError(f"{where}: {field!r} has no dimension {d!r} "
                                 f"(its dims: {', '.join(spec.dims)})")
        kept = tuple(d for d in spec.dims if d not in dims)
        if not kept:
            raise FieldError(f"{where}: {field}.{op}({', '.join(dims)}) reduces every "
                             "dimension; a global value needs kind: stats")
        self.field, self.op = field, op
        self.axes = tuple(spec.dims.index(d) for d in dims)
        self.group = group(field, kept, where)
        self.kshape = tuple(spec.shape[spec.dims.index(d)] for d in kept)
        self.n = int(np.prod(self.kshape))
        plan = self.group.plan
        if op in ("mean", "sum"):
            self.a = plan.reserve_many(SUM, self.n)
            self.c = plan.reserve_many(SUM, self.n)
        else:
            self.a = plan.reserve_many(MIN if op == "min" else MAX, self.n)

    def local(self, view: np.ndarray) -> None:
        from .kernels.reduce import reduce_axes
        rec = self.group.plan.record
        vals, counts = reduce_axes(view, self.axes,
                                   "sum" if self.op in ("mean", "sum") else self.op)
        rec[self.a:self.a + self.n] = vals.ravel()
        if counts is not None:
            rec[self.c:self.c + self.n] = counts.ravel()

    def value(self) -> np.ndarray:
        rec = self.group.plan.record
        a = rec[self.a:self.a + self.n]
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.op in ("mean", "sum"):
                c = rec[self.c:self.c + self.n]
                v = a / c if self.op == "mean" else a.copy()
                v[c == 0] = np.nan
            else:
                v = np.where(np.isinf(a), np.nan, a)
        v = v.reshape(self.kshape)
        for ax in sorted(self.axes):
            v = np.expand_dims(v, ax)
        return v
