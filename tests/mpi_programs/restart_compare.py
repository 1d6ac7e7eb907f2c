"""Compare a restarted run's output file with an uninterrupted reference.

``python tests/mpi_programs/restart_compare.py REF OUT [--rel 1e-12]
[--ignore-attr NAME ...]``: every variable (data, dtype, shape) and every
attribute of every object, except timestamps and what describes the launch
(command, ranks, decomposition), must equal the reference.  Integers,
times, steps and bounds exactly; floats bitwise, or to ``--rel`` relative
when given (sums that a different decomposition adds in another order); a
window's variance ``<v>_var`` then to what samples within ``--rel`` allow,
``rel * var + 2 rel |mean| std`` from its ``<v>_mean``.
The checkpoints group (``/_insitu_state``) is the restarted run's own.
Prints one line per difference; exits 1 if there are any.
"""
from __future__ import annotations

import argparse
import sys

import h5py
import numpy as np

#: attributes that say when or how a run was launched, not what it computed
VOLATILE = {"insitu_started", "insitu_finished", "history", "insitu_command",
            "insitu_ranks", "insitu_decomposition", "DIMENSION_LIST", "REFERENCE_LIST"}


def _same_attr(a, b) -> bool:
    """Equal values of the same type; NaN equals NaN (bitwise)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return a.tolist() == b.tolist()
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def compare(ref_path: str, out_path: str, rel: float = 0.0, ignore=(), exact=()) -> list[str]:
    problems = []
    skip = VOLATILE | set(ignore)
    with h5py.File(ref_path, "r") as ref, h5py.File(out_path, "r") as out:
        def visit(name, obj):
            if name.startswith("_insitu_state"):
                return
            if name not in out:
                problems.append(f"{name}: missing")
                return
            other = out[name]
            for k in obj.attrs:
                if k in skip:
                    continue
                if k not in other.attrs:
                    problems.append(f"{name}@{k}: missing")
                elif not _same_attr(obj.attrs[k], other.attrs[k]):
                    problems.append(f"{name}@{k}: {obj.attrs[k]!r} != {other.attrs[k]!r}")
            if isinstance(obj, h5py.Dataset):
                a, b = obj[()], other[()]
                if obj.shape != other.shape or obj.dtype != other.dtype:
                    problems.append(f"{name}: shape/dtype {obj.shape} {obj.dtype} != "
                                    f"{other.shape} {other.dtype}")
                    return
                if a.dtype.kind == "f" and rel and name not in exact \
                        and name not in ("time", "step") \
                        and not name.startswith(("time", "step")):
                    atol = 0.0
                    mean = name[:-4] + "_mean" if name.endswith("_var") else None
                    if mean is not None and mean in ref:
                        # A variance of samples each within rel of the
                        # reference's is within 2 rel |mean| std (+ rel var):
                        # a series at an offset (a global sum) amplifies it.
                        m = np.abs(ref[mean][()])
                        atol = np.nan_to_num(2 * rel * m * np.sqrt(np.abs(a)))
                    ok = np.isclose(a, b, rtol=rel, atol=atol, equal_nan=True)
                    if not ok.all():
                        i = np.flatnonzero(~ok.ravel())[0]
                        problems.append(f"{name}: {int((~ok).sum())} value(s) differ beyond "
                                        f"{rel:g}, first {a.ravel()[i]!r} != {b.ravel()[i]!r}")
                elif np.asarray(a).tobytes() != np.asarray(b).tobytes():
                    problems.append(f"{name}: not bitwise equal")
        ref.visititems(visit)
        for k in ref.attrs:
            if k not in skip and not _same_attr(ref.attrs[k], out.attrs.get(k)):
                problems.append(f"/@{k}: differs: {str(ref.attrs[k])[:200]!r} != "
                                f"{str(out.attrs.get(k))[:200]!r}")
        out.visit(lambda n: None if n.startswith("_insitu_state") or n in ref
                  else problems.append(f"{n}: not in the reference"))
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("ref")
    p.add_argument("out")
    p.add_argument("--rel", type=float, default=0.0)
    p.add_argument("--ignore-attr", action="append", default=[])
    p.add_argument("--exact", action="append", default=[],
                   help="a variable that must be bitwise equal even with --rel")
    a = p.parse_args(argv)
    problems = compare(a.ref, a.out, a.rel, a.ignore_attr, a.exact)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
