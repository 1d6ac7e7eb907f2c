"""What per-point analyses over time share (``spell``, ``pointwise``).

A per-point analysis keeps a state the size of this rank's slab (a run
length, running sums) that only this rank ever reads: it takes part in no
reduction and no collective, and its results are this rank's hyperslab,
written piecewise like ``coarsen`` and the trigger snapshots.  Writing the
whole field at every sample would defeat the point (the state is there so
that the field need not be stored), so it is written along an axis of its
own, ``time_<name>`` with bounds: when a window of the analysis ends, at its
write cadence, and at the end of the run.

The session already has what such an axis needs: its followers (windows,
climatologies) have an axis, are fed after each output of their source and
are finished at finalize.  So each per-point analysis comes with a
companion follower (:class:`Output`, added next to it by
:func:`insitu.analyses.build`) whose source is the analysis itself: the
analysis samples the field at its due steps (``every``), the companion
writes its rows.  No session code knows either kind.

The companion is also where the model time is known (an analysis's local
phase sees the step only): a calendar window needs the time of the sample
before the sample can be added, so ``pointwise`` adds it there, from the
view the local phase kept (the same step, so the same memory).
"""
from __future__ import annotations

import numpy as np

from .base import Analysis, Axis


class PerPoint(Analysis):
    """A sampler whose rows its :class:`Output` companion writes.

    Subclasses implement :meth:`local` (sample), :meth:`output_variables`,
    :meth:`after` (a row to write after a sample, or None) and
    :meth:`finish` (the rows at finalize)."""

    has_companion = True

    def companion(self) -> "Output":
        return Output(self)

    def results(self, record):
        return {}  # written by the companion, along its own axis

    def axis(self) -> Axis:
        return Axis(f"time_{self.name}", f"step_{self.name}",
                    long_name=f"end of each output of {self.name}", bounds=True)

    # the companion's hooks -------------------------------------------------
    def output_variables(self, axis: Axis, time_cfg: dict) -> list:
        raise NotImplementedError

    def run_began(self, step: int, time: float) -> None:
        self.first = (int(step), float(time))

    def after(self, step: int, time: float):
        return None

    def finish(self, step: int, time: float) -> list:
        return []

    # checkpoints (insitu.state) -------------------------------------------------
    #: the state arrays, by name: subclasses list them (all of the slab's shape)
    def state_arrays(self) -> dict:
        raise NotImplementedError

    def state_meta(self) -> dict:
        raise NotImplementedError

    def restore_meta(self, meta: dict) -> None:
        raise NotImplementedError

    def state(self):
        """This rank's state as pieces of global arrays, one ``(k, *global
        shape)`` array of float64 (exact for the int32 counts), written by
        each rank's hyperslab: a restart at any rank count reads back its
        own slab (insitu.state)."""
        from ..state import StateArray
        parts = self.state_arrays()
        spec = self.spec
        local = np.stack([np.asarray(a, dtype=np.float64) for a in parts.values()]) \
            if parts else np.zeros((0, *spec.shape))
        arrays = {"state": StateArray((len(parts), *spec.global_shape),
                                      ((0, *spec.offset), local), True)}
        return {**self.state_meta(), "parts": list(parts), "first": getattr(self, "first", None)}, \
            arrays

    def restore(self, meta, arrays) -> None:
        """Read this rank's hyperslab of the checkpoint's state now (the slab
        is known since bind); it becomes the state at the first sample, when
        the view's memory order is known."""
        spec = self.spec
        sel = (slice(None),) + tuple(slice(o, o + n) for o, n in zip(spec.offset, spec.shape))
        data = np.asarray(arrays["state"][sel], dtype=np.float64)
        self._restored = dict(zip(meta["parts"], data))
        if meta.get("first") is not None:
            self.first = tuple(meta["first"])
        self.restore_meta(meta)

    def _take_restored(self, targets: dict) -> None:
        """Copy restored values into the freshly allocated state arrays."""
        restored = getattr(self, "_restored", None)
        if restored:
            for name, arr in targets.items():
                if name in restored:
                    arr[...] = restored[name]
        self._restored = None


class Output(Analysis):
    """The follower that writes a :class:`PerPoint` analysis's rows along
    ``time_<name>``; it has no config entry of its own (its ``where`` is its
    analysis's)."""

    follows_source = True

    def __init__(self, sampler: PerPoint) -> None:
        self.sampler = sampler
        self.kind = sampler.kind
        # an index no config entry has, so that the session's per-analysis
        # tables never mix the two
        self.index = -1 - sampler.index
        self.cfg = {"source": sampler.name, "every": 1}
        self.rank, self.size = sampler.rank, sampler.size
        self.every = 1
        self.coords = []
        self.name = sampler.name
        self.where = sampler.where

    @property
    def fields(self):
        return ()

    def due(self, step):
        return False

    def bind(self, ctx):
        return []

    def local(self, views, record, step):
        pass

    def results(self, record):
        return {}

    def bind_window(self, source, source_vars, time_cfg=None):
        # The session looks the source up by name; another analysis may
        # share the name, so the companion always follows its own sampler.
        self.source = self.sampler
        self.axis = self.sampler.axis()
        return self.sampler.output_variables(self.axis, time_cfg or {})

    def run_began(self, step, time):
        self.sampler.run_began(step, time)

    def follow(self, step, time, values):
        return self.sampler.after(int(step), float(time))

    def finish(self, step, time):
        return self.sampler.finish(int(step), float(time))

    def state(self):
        return self.sampler.state()

    def restore(self, meta, arrays):
        self.sampler.restore(meta, arrays)
