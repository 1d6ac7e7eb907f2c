"""Python stand-in models: MPI-decomposed toys that drive insitu exactly as a
Fortran host does, through :mod:`insitu.api`.

Each model class has ``declare(api)``, ``advance()``, ``expose(api)`` and a
``time`` attribute, plus ``DEFAULT_CONFIG`` (YAML text) for runs without
``--config``.  Each module also has a serial numpy ``reference`` that the
tests compare insitu's results with.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

BUILTIN = {"heat2d": "insitu.models.heat2d:Heat2D", "life": "insitu.models.life:Life",
           "latlon": "insitu.models.latlon:LatLon"}


def resolve(name: str):
    """A model class from a built-in name, ``module:Class`` or ``file.py:Class``."""
    target = BUILTIN.get(name, name)
    if ":" not in target:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(BUILTIN)}, "
                         "'module:Class' or 'path/to/file.py:Class'")
    mod_name, cls_name = target.rsplit(":", 1)
    if mod_name.endswith(".py"):
        if not os.path.exists(mod_name):
            raise ValueError(f"model file {mod_name!r} does not exist")
        spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(mod_name))[0], mod_name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(mod_name)
    try:
        return getattr(module, cls_name)
    except AttributeError:
        raise ValueError(f"model {name!r}: {mod_name} has no {cls_name}") from None
