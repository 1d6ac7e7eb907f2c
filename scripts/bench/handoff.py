"""Handoff and start-up cost from the Fortran host, slabs of 1e2 to 1e8 values.

``python scripts/bench/handoff.py [--quick]`` builds ``handoff.f90`` against
libinsitu and runs it on 1 rank per size (a fresh process each time, with a
warm numba cache after the first).  Reported per size:

* init_s: ``insitu_init`` (embedded interpreter, imports, parallel file open);
* first_step_s: the first due step (binding, numba cache load, first write);
* expose_us: one ``insitu_expose`` (C only: records the pointer);
* step_us: one ``insitu_step`` that is not due (one crossing into Python);
* swap_step_us: expose of the other buffer + step (the view is rebuilt).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import quick_flag, save, table  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build(workdir: str) -> str:
    py = sys.executable
    flags = subprocess.run([py, "-m", "insitu.config", "--fflags"], capture_output=True,
                           text=True, check=True).stdout.split()
    ldflags = subprocess.run([py, "-m", "insitu.config", "--ldflags"], capture_output=True,
                             text=True, check=True).stdout.split()
    exe = os.path.join(workdir, "handoff")
    subprocess.run(["mpif90", "-O2", *flags, "-o", exe, os.path.join(HERE, "handoff.f90"),
                    *ldflags], check=True)
    return exe


def main() -> int:
    quick = quick_flag(__doc__)
    work = tempfile.mkdtemp(prefix="insitu-handoff-")
    exe = build(work)
    cfg = os.path.join(work, "handoff.yaml")
    with open(cfg, "w") as fh:
        fh.write(f"output: {{path: {work}/handoff.h5, overwrite: true}}\n"
                 "log_level: WARNING\n"
                 "analyses: [{kind: stats, field: T, every: 1000000000}]\n")
    sizes = [100, 10**4] if quick else [100, 10**3, 10**4, 10**5, 10**6, 10**7, 10**8]
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    rows = []
    for n in [sizes[0]] + sizes:  # the first run warms the numba cache
        iters = 20000 if n <= 10**6 else 2000
        if quick:
            iters = 200
        out = subprocess.run(["mpiexec", "-n", "1", exe, cfg, str(n), str(iters)],
                             capture_output=True, text=True, env=env, timeout=600)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
        if line is None:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
        f = line.split()[1:]
        rows.append({"values": int(f[0]), "init_s": float(f[1]), "declare_s": float(f[2]),
                     "first_step_s": float(f[3]), "expose_us": float(f[4]),
                     "step_us": float(f[5]), "swap_step_us": float(f[6])})
    rows = rows[1:]
    print("handoff from a Fortran host, 1 rank (warm numba cache)")
    print(table(rows, ["values", "init_s", "declare_s", "first_step_s", "expose_us", "step_us",
                       "swap_step_us"]))
    print(f"wrote {save('handoff', {'rows': rows, 'quick': quick})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
