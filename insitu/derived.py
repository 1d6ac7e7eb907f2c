"""Derived fields: pointwise expressions over declared fields.

Config::

    derived:
      speed: sqrt(u**2 + v**2)
      T_celsius: T - 273.15

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


def parse(name: str, text: str) -> tuple[ast.Expression, list[str]]:
    """Check ``text``; return its AST and the field names it reads."""
    return check_expression(text, f"derived.{name}", FUNCTIONS, boolean=False)


CONDITION_FUNCTIONS = {"abs": np.abs, "isnan": np.isnan, "isfinite": np.isfinite}


def check_expression(text: str, where: str, functions: dict,
                     boolean: bool) -> tuple[ast.Expression, list[str]]:
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
    if not names:
        raise ConfigError(f"{where}: the expression reads no "
                          f"{'result' if boolean else 'field'} ({text!r})")
    return tree, names


class DerivedField:
    """One derived field bound to this rank's inputs."""

    def __init__(self, name: str, text: str, tree, inputs: list[str],
                 specs: dict[str, FieldSpec]) -> None:
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

    def view(self, views_of, step: int) -> np.ndarray:
        """The value at ``step`` (evaluated once per step)."""
        if self.step != step:
            env = {n: views_of(n) for n in self.inputs}
            with np.errstate(all="ignore"):  # NaN/Inf are counted by the analyses
                value = eval(self.code, {"__builtins__": {}, **FUNCTIONS}, env)  # noqa: S307
            self.buffer[...] = value
            self.step = step
        return self.buffer
