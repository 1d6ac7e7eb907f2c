"""In-situ overhead on the Fortran heat model, about 1e6 cells per rank.

``python scripts/bench/overhead.py [--quick]`` builds examples/fortran with
its Makefile and runs it on 1 and 2 ranks (1000x1000 cells per rank): with insitu off (``--no-insitu``), with the standard
statistics (8 per field) every step, and every 10 steps (flushing the file
after every output step, the default, and after every 10th).  The model prints
its own wall time per step (MPI_Wtime around the time loop, after a
warm-up of 10 steps).  The best of 5 runs of 500 steps, modes interleaved
across the repeats.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import quick_flag, save, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    quick = quick_flag(__doc__)
    work = tempfile.mkdtemp(prefix="insitu-overhead-")
    for f in ("heat2d.f90", "Makefile"):
        shutil.copy(os.path.join(ROOT, "examples", "fortran", f), work)
    subprocess.run(["make", "-s", "-C", work, f"PYTHON={sys.executable}", "heat2d"], check=True)
    steps, side, repeat = (20, 200, 1) if quick else (500, 1000, 5)
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    modes = (("off", None, 1), ("every step", 1, 1), ("every 10 steps", 10, 1),
             ("every 10 steps, flush_every 10", 10, 10))
    rows = []
    for nranks in (1, 2):
        nx, ny = side * nranks, side
        cmds = {}
        for label, every, flush in modes:
            cfg = os.path.join(work, f"o{every}_{flush}.yaml")
            with open(cfg, "w") as fh:
                fh.write(f"output: {{path: {work}/o{every}.h5, overwrite: true, "
                         f"flush_every: {flush}}}\n"
                         f"log_level: WARNING\nanalyses: [{{kind: stats, field: T, every: "
                         f"{every or 1}}}]\n")
            cmds[label] = (["mpiexec", "-n", str(nranks), os.path.join(work, "heat2d"), cfg,
                            str(nx), str(ny), str(steps)] + (["--no-insitu"] if every is None
                                                             else []))
        best = {label: float("inf") for label in cmds}
        for _ in range(repeat):  # modes interleaved, so drift hits them all alike
            for label, cmd in cmds.items():
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900,
                                     cwd=work)
                m = re.search(r"([0-9.]+) s/step", out.stdout)
                if not m:
                    print(out.stdout, out.stderr, file=sys.stderr)
                    return 1
                best[label] = min(best[label], float(m.group(1)))
        base = best["off"]
        for label, t in best.items():
            rows.append({"ranks": nranks, "cells_per_rank": side * side, "insitu": label,
                         "ms_per_step": t * 1e3, "overhead_pct": 100.0 * (t - base) / base})
    print(f"in-situ overhead, Fortran heat2d, {steps} steps")
    print(table(rows, ["ranks", "cells_per_rank", "insitu", "ms_per_step", "overhead_pct"]))
    print(f"wrote {save('overhead', {'rows': rows, 'quick': quick})}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
