"""The stand-in models' own restart file, as a real model keeps one.

``insitu.run --checkpoint-every K`` has the model save its state every K
steps next to insitu's checkpoint, and ``--restart`` reload it
(docs/restart.md).  Each field is stored as its global array, every rank
writing the hyperslab of its interior (independent writes, no gather), so a
restart may use another rank count.  The file is written under a temporary
name, synced and renamed: a model killed while saving keeps the previous
restart file whole.
"""
from __future__ import annotations

import os

import numpy as np


def save(comm, path: str, fields: dict, step: int, time: float) -> None:
    """Write ``fields`` (name -> (interior, offset, global_shape)) and the
    step and time to ``path`` (collective over ``comm``)."""
    import h5py
    tmp = f"{path}.tmp"
    with h5py.File(tmp, "w", driver="mpio", comm=comm) as f:
        for name, (interior, offset, global_shape) in fields.items():
            ds = f.create_dataset(name, shape=tuple(global_shape), dtype=interior.dtype)
            sel = tuple(slice(o, o + n) for o, n in zip(offset, interior.shape))
            ds[sel] = np.ascontiguousarray(interior)
        f.attrs["step"] = int(step)
        f.attrs["time"] = float(time)
    comm.Barrier()
    if comm.Get_rank() == 0:
        from ..state import replace_durably
        replace_durably(tmp, path)
    comm.Barrier()


def load(path: str, boxes: dict) -> tuple[dict, int, float]:
    """This rank's interior of each field (name -> (offset, shape)), and the
    step and time saved; read-only, each rank on its own."""
    import h5py
    if not os.path.exists(path):
        raise ValueError(f"--restart: the model restart file {path} does not exist (it is "
                         "written by a run with --checkpoint-every)")
    out = {}
    with h5py.File(path, "r") as f:
        for name, (offset, shape) in boxes.items():
            out[name] = f[name][tuple(slice(o, o + n) for o, n in zip(offset, shape))]
        return out, int(f.attrs["step"]), float(f.attrs["time"])


class HaloFieldRestart:
    """``save_restart``/``load_restart`` for a stand-in whose state is one
    field with a one-cell halo, double-buffered (``buffers``, ``current``)
    on a :class:`~insitu.models.grid.Grid2D`, plus its step and time; the
    field is named by ``RESTART_FIELD``.  Heat2D and Life are such models."""

    RESTART_FIELD: str

    def save_restart(self, path: str) -> None:
        """Write the model's restart file (collective)."""
        g = self.grid
        interior = self.buffers[self.current][1:-1, 1:-1]
        save(self.comm, path, {self.RESTART_FIELD: (interior, g.offset, g.global_shape)},
             self.step, self.time)

    def load_restart(self, path: str) -> int:
        """Go on from the model's restart file: the interior, step and time
        (any rank count may have written it); returns the step."""
        g = self.grid
        got, self.step, self.time = load(path, {self.RESTART_FIELD: (g.offset, g.shape)})
        self.current = 0
        self.buffers[0][1:-1, 1:-1] = got[self.RESTART_FIELD]
        return self.step
