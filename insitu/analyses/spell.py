"""Spells: per-point run lengths of consecutive samples past a threshold.

::

    - {kind: spell, field: T, threshold: 300.0}                # x > 300 (op: gt)
    - {kind: spell, field: T, threshold: 273.15, op: le, every: 24, write_every: 30}

At each of its due steps (``every``: the *samples*) every point of the
field updates two run lengths, in samples:

``<name>_current``  the samples in the spell that includes the latest one
                    (0 if the latest sample is not past the threshold)
``<name>_max``      the longest spell so far, ended or not: a heat-wave
                    duration index with ``op: gt`` on a daily maximum

``op`` is ``gt`` (``x > threshold``, the default), ``ge``, ``lt`` or
``le``.  **A NaN ends a spell**: ``NaN > t`` is False, so a missing value
is a sample that is not past the threshold (a gap in a heat wave splits
it, as numpy's comparison on the whole series does).  +-Inf compare as
numbers.

Both are int32 fields of the field's dims, written along ``time_<name>``
(with bounds: the first sample's time and the row's) every ``write_every``
samples, if given, and at the end of the run (unless the last sample was
just written), each rank its own hyperslab; ``<name>_samples`` is the
samples seen by each row.  The state stays on the rank that owns each
point: no collective, one pass over the slab (:mod:`insitu.kernels.perpoint`).
To express a length in time, multiply by ``every`` times the model's step.
"""
from __future__ import annotations

import numpy as np

from .. import schema as s
from ..kernels import perpoint as kp
from .base import Piece, Variable, common_keys
from .perpoint import PerPoint
from .window import Row

_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


class Spell(PerPoint):
    kind = "spell"
    schema = s.Record({
        **common_keys(),
        "threshold": s.Num(doc="the threshold, in the field's units"),
        "op": s.Enum(tuple(kp.OPS), default="gt",
                     doc="gt: x > threshold (default), ge, lt or le"),
        "write_every": s.Int(default=None, minimum=1,
                             doc="write the run lengths every this many samples (and at the "
                                 "end); default: at the end only"),
    })

    def default_name(self):
        t = f"{self.cfg['threshold']:g}".replace("-", "m").replace(".", "p").replace("+", "")
        return f"{self.cfg['field']}_spell_{self.cfg['op']}_{t}"

    def bind(self, ctx):
        self.spec = ctx.specs[self.cfg["field"]]
        self.meta = ctx.meta(self.spec.name)
        self._state = None
        self.samples = 0
        self.written = 0
        self.started = None
        self.last_time = None
        return []  # the companion's variables, along time_<name>

    def output_variables(self, axis, time_cfg):
        spec, c = self.spec, self.cfg
        label = self.meta.get("long_name") or spec.name
        cond = f"{spec.name} {_SIGNS[c['op']]} {c['threshold']:g}"
        common = {"units": "1", "insitu_analysis": self.kind, "insitu_field": spec.name,
                  "insitu_threshold": float(c["threshold"]), "insitu_op": c["op"],
                  "insitu_sample_every_steps": int(self.every),
                  "comment": f"consecutive samples (every {self.every} model step(s)) of "
                             f"{label} with {cond}; a NaN ends a spell"}
        dims, shape = spec.dims, spec.global_shape
        return [
            Variable(f"{self.name}_current", np.dtype(np.int32),
                     {**common, "long_name": f"length of the current spell of {cond}"},
                     dims=dims, shape=shape, distributed=True, axis=axis.name),
            Variable(f"{self.name}_max", np.dtype(np.int32),
                     {**common, "long_name": f"longest spell of {cond}",
                      "cell_methods": f"{axis.name}: maximum"},
                     dims=dims, shape=shape, distributed=True, axis=axis.name),
            Variable(f"{self.name}_samples", np.dtype(np.int32),
                     {"long_name": f"samples of {spec.name} seen by {self.name}", "units": "1",
                      "insitu_analysis": self.kind}, axis=axis.name),
        ]

    def local(self, views, record, step):
        v = views[self.cfg["field"]]
        if self._state is None:
            # Allocated at the first sample, in the view's memory order (the
            # kernel walks both contiguously).
            self._order = kp.memory_order(v)
            self.cur, self._cur4 = kp.state_like(v, np.int32, 0, self._order)
            self.mx, self._mx4 = kp.state_like(v, np.int32, 0, self._order)
            self._state = True
            self._take_restored({"current": self.cur, "max": self.mx})
        kp.spell_update(kp.kernel_view(v, self._order), self.cfg["threshold"],
                        self.cfg["op"], self._cur4, self._mx4)
        self.samples += 1

    def _row(self, time):
        start = self.spec.offset
        values = {f"{self.name}_current": Piece(start, self.cur.copy()),
                  f"{self.name}_max": Piece(start, self.mx.copy()),
                  f"{self.name}_samples": np.int32(self.samples)}
        self.written = self.samples
        return Row(values, (self.started, time), time)

    def after(self, step, time):
        if self.started is None:
            self.started = time
        self.last_time = time
        w = self.cfg["write_every"]
        if w is not None and self.samples % w == 0 and self.samples > self.written:
            return self._row(time)
        return None

    def finish(self, step, time):
        if self.samples > self.written and (self._state is not None or self.samples):
            self._ensure_state()
            return [self._row(self.last_time)]
        return []

    def _ensure_state(self):
        """A restart that ends before its first sample still writes the
        restored state (in C order: no view has said its order)."""
        if self._state is None:
            z = np.zeros(self.spec.shape, dtype=np.int32)
            self.cur, self.mx = z, z.copy()
            self._take_restored({"current": self.cur, "max": self.mx})
            self._state = True

    # checkpoints (insitu.state)
    def state_arrays(self):
        if self._state is None:
            r = getattr(self, "_restored", None) or {}
            z = np.zeros(self.spec.shape)
            return {"current": r.get("current", z), "max": r.get("max", z)}
        return {"current": self.cur, "max": self.mx}

    def state_meta(self):
        return {"samples": self.samples, "written": self.written, "started": self.started,
                "last_time": self.last_time}

    def restore_meta(self, meta):
        self.samples, self.written = int(meta["samples"]), int(meta["written"])
        self.started, self.last_time = meta["started"], meta["last_time"]
