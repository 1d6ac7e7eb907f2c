"""A small declarative validator for the YAML config.

Each node checks a value and returns it normalised (defaults filled in).  A
failure raises :class:`ConfigError` whose message starts with the key path,
for example ``analyses[2].every: expected a positive integer, got -4``.
Unknown keys are refused, because a typo that silently does nothing is the
worst outcome in a week-long run.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

REQUIRED = object()


class ConfigError(ValueError):
    """The config is invalid; the message names the key path and the value."""


def _fail(path: str, msg: str):
    raise ConfigError(f"{path or '<config>'}: {msg}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Node:
    def __init__(self, default: Any = REQUIRED, doc: str = "") -> None:
        self.default = default
        self.doc = doc

    def check(self, value: Any, path: str) -> Any:
        raise NotImplementedError


class Str(Node):
    def __init__(self, default=REQUIRED, doc="", nonempty=True):
        super().__init__(default, doc)
        self.nonempty = nonempty

    def check(self, value, path):
        if not isinstance(value, str):
            _fail(path, f"expected a string, got {_show(value)}")
        if self.nonempty and not value.strip():
            _fail(path, "expected a non-empty string")
        return value


class Name(Str):
    """A name that becomes part of HDF5/netCDF variable names.

    ``/`` would put the variables into an HDF5 group that xarray never
    shows, and HDF5 aborts the whole process on some very long names, so
    both are refused here rather than met at the first output step."""

    MAX = 100

    def check(self, value, path):
        value = super().check(value, path)
        bad = [c for c in value if c == "/" or not c.isprintable() or c.isspace()]
        if bad:
            _fail(path, f"expected a name without '/', spaces or control characters, "
                        f"got {_show(value)}")
        if len(value) > self.MAX:
            _fail(path, f"expected a name of at most {self.MAX} characters, got {len(value)}")
        return value


class Bool(Node):
    def check(self, value, path):
        if not isinstance(value, bool):
            _fail(path, f"expected true or false, got {_show(value)}")
        return value


class Int(Node):
    def __init__(self, default=REQUIRED, doc="", minimum=None):
        super().__init__(default, doc)
        self.minimum = minimum

    def check(self, value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            what = "a positive integer" if self.minimum == 1 else "an integer"
            _fail(path, f"expected {what}, got {_show(value)}")
        if self.minimum is not None and value < self.minimum:
            what = "a positive integer" if self.minimum == 1 else f"an integer >= {self.minimum}"
            _fail(path, f"expected {what}, got {value}")
        return value


class Num(Node):
    """A real number (an integer is accepted as one)."""

    def __init__(self, default=REQUIRED, doc="", minimum=None, maximum=None, open_range=False):
        super().__init__(default, doc)
        self.minimum, self.maximum, self.open = minimum, maximum, open_range

    def check(self, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, f"expected a number, got {_show(value)}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            _fail(path, f"expected a finite number, got {value}")
        lo, hi = self.minimum, self.maximum
        if self.open:
            if (lo is not None and value <= lo) or (hi is not None and value >= hi):
                _fail(path, f"expected a number strictly between {lo} and {hi}, got {value}")
        elif lo is not None and hi is not None and not lo <= value <= hi:
            _fail(path, f"expected a number in [{lo}, {hi}], got {value}")
        elif lo is not None and value < lo:
            _fail(path, f"expected a number >= {lo}, got {value}")
        elif hi is not None and value > hi:
            _fail(path, f"expected a number <= {hi}, got {value}")
        return value


class Enum(Node):
    def __init__(self, choices, default=REQUIRED, doc=""):
        super().__init__(default, doc)
        self.choices = tuple(choices)

    def check(self, value, path):
        if value not in self.choices:
            _fail(path, f"expected one of {', '.join(map(str, self.choices))}, got {_show(value)}")
        return value


class ListOf(Node):
    def __init__(self, item: Node, default=REQUIRED, doc="", nonempty=False, unique=False):
        super().__init__(default, doc)
        self.item, self.nonempty, self.unique = item, nonempty, unique

    def check(self, value, path):
        if not isinstance(value, list):
            _fail(path, f"expected a list, got {_show(value)}")
        if self.nonempty and not value:
            _fail(path, "expected a non-empty list")
        out = [self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if self.unique:
            seen = set()
            for i, v in enumerate(out):
                if v in seen:
                    _fail(f"{path}[{i}]", f"duplicate value {_show(v)}")
                seen.add(v)
        return out


class MapOf(Node):
    """A mapping from identifier-like names to values of one node type."""

    def __init__(self, item: Node, default=REQUIRED, doc=""):
        super().__init__(default, doc)
        self.item = item

    def check(self, value, path):
        if not isinstance(value, Mapping):
            _fail(path, f"expected a mapping, got {_show(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k.isidentifier():
                _fail(path, f"expected names that are identifiers, got key {_show(k)}")
            out[k] = self.item.check({} if v is None else v, f"{path}.{k}" if path else k)
        return out


class Record(Node):
    """A mapping with a fixed set of keys; unknown keys are refused."""

    def __init__(self, fields: Mapping[str, Node], default=REQUIRED, doc="",
                 check: Callable[[dict, str], None] | None = None):
        super().__init__(default, doc)
        self.fields = dict(fields)
        self.extra_check = check

    def check(self, value, path):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            _fail(path, f"expected a mapping, got {_show(value)}")
        for k in value:
            if k not in self.fields:
                known = ", ".join(sorted(self.fields))
                _fail(join(path, str(k)), f"unknown key (known keys: {known})")
        out = {}
        for k, node in self.fields.items():
            p = join(path, k)
            if k in value:
                out[k] = node.check(value[k], p)
            elif node.default is REQUIRED:
                _fail(p, "missing required key")
            else:
                out[k] = node.default
        if self.extra_check:
            self.extra_check(out, path)
        return out


class Tagged(Node):
    """A mapping whose ``kind`` key selects which :class:`Record` applies."""

    def __init__(self, records: Callable[[], Mapping[str, Record]], tag="kind", doc=""):
        super().__init__(REQUIRED, doc)
        self.records, self.tag = records, tag

    def check(self, value, path):
        if not isinstance(value, Mapping):
            _fail(path, f"expected a mapping, got {_show(value)}")
        records = self.records()
        if self.tag not in value:
            _fail(join(path, self.tag), f"missing required key (one of {', '.join(sorted(records))})")
        kind = value[self.tag]
        if not isinstance(kind, str) or kind not in records:
            _fail(join(path, self.tag), f"unknown analysis kind {_show(kind)} "
                  f"(known: {', '.join(sorted(records))})")
        body = {k: v for k, v in value.items() if k != self.tag}
        out = records[kind].check(body, path)
        out[self.tag] = kind
        return out


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
