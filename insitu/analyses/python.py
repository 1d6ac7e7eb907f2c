"""User analyses: a Python callable named in the config.

::

    - kind: python
      function: mypkg.diagnostics:hot_cells     # or path/to/file.py:hot_cells
      fields: [T]
      outputs:
        hot: {op: sum}                           # scalar
        tmax: {op: max, units: K}
        rows_hot: {op: sum, shape: [96]}         # an array, reduced elementwise;
                                                 # its dims: the fields' dims of
                                                 # these sizes (here y), or dims: [...]

The callable receives ``(views, meta, comm)``: the local interior views of
its fields (read-only numpy arrays, no copy; only the part inside ``region``
if one is given), their :class:`FieldSpec`
(dims, global shape, this rank's offset and shape), and a small
communicator (``rank``, ``size``).  It returns a mapping with one array per
declared output, of the declared shape; insitu combines them across ranks
with ``op`` (sum, min or max) in the step's one reduction and writes them
like the built-in results.  An exception follows ``on_error``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from .. import schema as s
from ..reduction import MAX, MIN, SUM
from . import region as rg
from .base import Analysis, AnalysisError, Variable

_KIND = {"sum": SUM, "min": MIN, "max": MAX}


@dataclass(frozen=True)
class CommInfo:
    """What a user analysis knows of the communicator."""
    rank: int
    size: int


def load(target: str, where: str):
    """The user's function; ``target`` has the form the schema checked."""
    mod_name, fn_name = target.rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            if not os.path.exists(mod_name):
                raise AnalysisError(f"{where}: file {mod_name!r} does not exist")
            spec = importlib.util.spec_from_file_location(
                "insitu_user_" + os.path.splitext(os.path.basename(mod_name))[0], mod_name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except AnalysisError:
        raise
    except Exception as exc:  # noqa: BLE001 - report any import failure
        raise AnalysisError(f"{where}: cannot import {mod_name!r}: "
                            f"{type(exc).__name__}: {exc}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise AnalysisError(f"{where}: {mod_name!r} has no callable {fn_name!r}")
    return fn


class PythonAnalysis(Analysis):
    kind = "python"
    schema = s.Record({
        "function": s.Str(doc="module:function or path/to/file.py:function"),
        "fields": s.ListOf(s.Str(), nonempty=True, unique=True),
        "name": s.Name(default=None),
        "every": s.Int(default=1, minimum=1),
        "outputs": s.MapOf(s.Record({
            "op": s.Enum(["sum", "min", "max"]),
            "shape": s.ListOf(s.Int(minimum=1), default=[]),
            "dims": s.ListOf(s.Str(), default=None, unique=True,
                             doc="names of the output's dims (default: the fields' dims "
                                 "whose sizes match the shape)"),
            "units": s.Str(default="1"),
            "long_name": s.Str(default=None),
        })),
        "region": rg.SCHEMA,
    }, check=lambda cfg, path: _check(cfg, path))

    def __init__(self, index, cfg, rank=0, size=1):
        super().__init__(index, cfg, rank, size)
        # Import at init, so a wrong path fails before the first step.
        self.fn = load(cfg["function"], f"analyses[{index}].function")

    def default_name(self):
        return self.cfg["function"].rsplit(":", 1)[1]

    @property
    def fields(self):
        return tuple(self.cfg["fields"])

    def bind(self, ctx):
        self.meta = {f: ctx.specs[f] for f in self.fields}
        self._slices = {}
        if self.cfg["region"]:
            # The callable sees only the part of each view inside the region.
            for f, spec in self.meta.items():
                box = rg.box(spec, self.cfg["region"], f"analyses[{self.index}]", ctx.coords)
                self._slices[f] = rg.local_slices(spec, box)
        self.comm = CommInfo(self.rank, self.size)
        self._slots = {}
        out = []
        for oname, o in self.cfg["outputs"].items():
            shape = tuple(o["shape"])
            n = int(np.prod(shape)) if shape else 1
            self._slots[oname] = (ctx.plan.reserve_many(_KIND[o["op"]], n), shape, n)
            dims = self._dims(oname, o, shape)
            out.append(Variable(f"{self.name}_{oname}", np.dtype(np.float64),
                                {"long_name": o["long_name"] or f"{oname} from "
                                              f"{self.cfg['function']}",
                                 "units": o["units"], "insitu_analysis": self.kind,
                                 "insitu_function": self.cfg["function"]},
                                dims=dims, shape=shape))
        return out

    def _dims(self, oname, o, shape) -> tuple:
        """The output's dim names: the config's ``dims``, or the one run of
        the fields' dims whose global sizes are the shape."""
        where = f"analyses[{self.index}].outputs.{oname}"
        if o.get("dims") is not None:
            if len(o["dims"]) != len(shape):
                raise AnalysisError(f"{where}.dims: {len(o['dims'])} names for the "
                                    f"{len(shape)} dims of shape {list(shape)}")
            return tuple(o["dims"])
        if not shape:
            return ()
        import itertools
        found = {dims for spec in self.meta.values()
                 for dims in itertools.combinations(spec.dims, len(shape))
                 if tuple(spec.global_shape[spec.dims.index(d)] for d in dims) == shape}
        if len(found) != 1:
            which = ("no dims of " if not found else "several dims of ") + \
                ", ".join(f"{f} {dict(zip(sp.dims, sp.global_shape))}"
                          for f, sp in self.meta.items())
            raise AnalysisError(f"{where}: shape {list(shape)} matches {which}; name its "
                                f"dims with 'dims: [...]'")
        return found.pop()

    def local(self, views, record, step):
        ro = {}
        for f, v in views.items():
            v = v[self._slices[f]] if f in self._slices else v.view()
            v.flags.writeable = False  # the model's memory is not the analysis's to change
            ro[f] = v
        got = self.fn(ro, self.meta, self.comm)
        if not isinstance(got, dict):
            raise AnalysisError(f"{self.where}: {self.cfg['function']} returned "
                                f"{type(got).__name__}, expected a dict of outputs")
        missing = set(self._slots) - set(got)
        extra = set(got) - set(self._slots)
        if missing or extra:
            raise AnalysisError(f"{self.where}: {self.cfg['function']} returned outputs "
                                f"{sorted(got)}, the config declares {sorted(self._slots)}")
        for oname, (start, shape, n) in self._slots.items():
            a = np.asarray(got[oname], dtype=np.float64)
            if a.shape != shape:
                raise AnalysisError(f"{self.where}: output {oname!r} has shape {a.shape}, "
                                    f"the config declares {shape}")
            record[start:start + n] = a.ravel()

    def results(self, record):
        out = {}
        for oname, (start, shape, n) in self._slots.items():
            v = record[start:start + n]
            out[f"{self.name}_{oname}"] = v.reshape(shape).copy() if shape else float(v[0])
        return out


def _check(cfg, path):
    """The shape of ``function`` and ``outputs``, at config time."""
    target = cfg["function"]
    mod, _, fn = target.rpartition(":")
    if not mod or not fn.isidentifier():
        raise s.ConfigError(f"{path}.function: expected 'module:function' or "
                            f"'file.py:function', got {target!r}")
    if not cfg["outputs"]:
        raise s.ConfigError(f"{path}.outputs: declare at least one output")
