"""A user analysis for insitu (kind: python), used by examples/*analyses.yaml.

insitu calls ``hot_cells(views, meta, comm)`` on every rank with the local
interior views of the fields named in the config (read-only, no copy), their
specs (dims, global shape, this rank's offset and shape) and the rank and
size.  It returns one array per output declared in the config; insitu
combines them across ranks with the declared op and writes them.
"""
import numpy as np

THRESHOLD = 300.0


def hot_cells(views, meta, comm):
    T = views["T"]
    return {"count": np.count_nonzero(T > THRESHOLD),   # op: sum
            "warmest": T.max() if T.size else -np.inf}   # op: max
