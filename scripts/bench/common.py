"""Shared helpers for the benchmarks: timing, tables, JSON results.

Benchmarks are plain scripts, not tests; the suite only runs their --quick
mode to check that they still work.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(os.environ.get("INSITU_BENCH_RESULTS",
                              Path(__file__).resolve().parents[2] / "bench-results"))


def best(fn, repeat: int) -> float:
    """The shortest of ``repeat`` timings of ``fn()``, in seconds."""
    import numpy as np
    t = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def quick_flag(doc: str) -> bool:
    """Parse the one option every benchmark takes: --quick (the suite's check)."""
    import argparse
    p = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true", help="a small run, to check it works")
    return p.parse_args().quick


def shared_tmpdir(comm, prefix: str) -> str:
    """A scratch directory named by rank 0 and broadcast to all ranks."""
    import tempfile
    return comm.bcast(tempfile.mkdtemp(prefix=prefix) if comm.rank == 0 else None)


def machine() -> dict:
    import numpy as np
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = []
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next(l.split(":", 1)[1].split() for l in fh if l.startswith("flags"))
    except (OSError, StopIteration):
        pass
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                        "avx512vl") if f in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "simd": " ".join(simd), "cpu_flags": " ".join(flags)}


def describe_machine() -> str:
    """One line for every report: the CPU differs between machines (some lack
    AVX-512), and kernel figures depend on it."""
    m = machine()
    return f"machine: {m['cpu']}, {m['cores']} cores, SIMD: {m['simd'] or 'none found'}"


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = ["  ".join(c.rjust(widths[c]) for c in columns),
             "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(),
               "when": time.strftime("%Y-%m-%dT%H:%M:%S"), **payload}
    path.write_text(json.dumps(payload, indent=1))
    return path


def time_steps(comm, api, steps: int) -> tuple[float, float]:
    """Seconds per ``api.step`` over ``steps`` steps after the first (which
    defines the variables and loads the kernels), each started together
    after a barrier: ``(this rank's mean, the slowest rank's mean)``."""
    import numpy as np
    from mpi4py import MPI
    api.step(1, 0.0)
    times = np.empty(steps)
    for s in range(steps):
        comm.Barrier()
        t0 = time.perf_counter()
        api.step(s + 2, float(s + 2))
        times[s] = time.perf_counter() - t0
    mean = float(times.mean())
    return mean, comm.allreduce(mean, op=MPI.MAX)
