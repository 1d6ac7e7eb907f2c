"""User analyses used by the tests (named in configs as file.py:function)."""
import numpy as np


def hot_cells(views, meta, comm):
    T = views["T"]
    spec = meta["T"]
    rows = np.zeros(spec.global_shape[0])
    rows[spec.offset[0]:spec.offset[0] + T.shape[0]] = (T > 290.0).sum(axis=1)
    # A rank whose slab misses a region gets an empty view: max needs a default.
    return {"hot": (T > 290.0).sum(), "tmax": T.max() if T.size else -np.inf, "rows": rows,
            "ranks": 1.0 if comm.rank == comm.size - 1 else 0.0}


def wrong_shape(views, meta, comm):
    return {"x": np.zeros(3)}


def not_a_dict(views, meta, comm):
    return 42.0


def writes_model_memory(views, meta, comm):
    views["T"][...] = 0.0
    return {"x": 0.0}


def calls_sys_exit(views, meta, comm):
    import sys
    if comm.rank == comm.size - 1:
        sys.exit(3)
    return {"x": 0.0}
