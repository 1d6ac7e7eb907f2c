"""Field names for replayed variables.

* ``--input NAME=GLOB`` names its field ``NAME``, or ``NAME_<variable>``
  when several ``--variable``\\ s are replayed;
* an unnamed set is named ``<variable>_<source_id>``, from the files'
  ``source_id`` attribute (CMIP's model name), made an identifier:
  ``ta`` from GISS-E2-1-G is ``ta_GISS_E2_1_G``.

Derived fields and analyses refer to these names (``ens: (g + h) / 2``),
so a clash is refused rather than resolved silently.
"""
from __future__ import annotations

import re

from .sources import InputError

#: names the output already uses for its own axes
RESERVED = {"time", "step", "nv"}


def identifier(text: str) -> str:
    """``text`` with every character that cannot be in a Python identifier
    replaced by ``_`` (and a leading ``_`` before a digit)."""
    out = re.sub(r"\W", "_", text.strip(), flags=re.ASCII)
    return f"_{out}" if not out or out[0].isdigit() else out


def split_input(text: str) -> tuple[str | None, str]:
    """``NAME=GLOB`` -> ``(NAME, GLOB)``; a plain glob -> ``(None, GLOB)``.
    Only an identifier before the first ``=`` names the set, so a path that
    holds ``=`` elsewhere stays a path."""
    name, sep, rest = text.partition("=")
    if sep and name.isidentifier():
        return name, rest
    return None, text


def field_names(sets, variables, dims) -> list[tuple[str, int, str]]:
    """``(field name, set index, variable)`` for every set and variable.

    ``sets`` are the plan's file sets (``label``, ``source_id``, ``pattern``),
    ``dims`` every dimension name, which a field may not take."""
    out, seen = [], {}
    for i, s in enumerate(sets):
        for v in variables:
            if s.label:
                name = s.label if len(variables) == 1 else f"{s.label}_{v}"
            else:
                if not s.source_id:
                    raise InputError(f"--input {s.pattern!r}: the files have no source_id "
                                     "attribute to name the field after; name it with "
                                     "--input NAME=GLOB")
                name = identifier(f"{v}_{s.source_id}")
            if name in seen:
                raise InputError(f"--input {s.pattern!r} and --input {seen[name]!r} would both "
                                 f"give a field named {name!r}; name them with --input NAME=GLOB")
            if name in RESERVED or name in dims:
                raise InputError(f"--input {s.pattern!r}: the field name {name!r} is taken by "
                                 "a dimension or the time axis; choose another with "
                                 "--input NAME=GLOB")
            seen[name] = s.pattern
            out.append((name, i, v))
    return out
