"""Shared helpers for the benchmarks: the machine header, interleaved runs,
summaries (median and spread), tables and JSON results.

Benchmarks are plain scripts, not tests; the suite only runs their --quick
mode to check that they still work.

Why these rules (issue 12, "Honest benchmarks"):

* every report starts with the machine it ran on: the CPU model and SIMD
  flags (one machine of this kind had AVX2 only, another AVX-512), the
  core count, the MPI, HDF5, numba and numpy versions, the date and the
  command line; a figure without them cannot be checked;
* compared runs are interleaved, A B, B A, A B ... (at least 5 pairs),
  so that the drift of a shared machine hits every contender alike, and
  each round starts at the next contender, so that no contender always
  holds the same place in its round (:func:`interleave`);
* a figure is the median of its samples with their spread (min-max), and a
  comparison is the median of the per-pair ratios with theirs: never a
  best-of, which reports the luckiest sample and hides the noise.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

RESULTS = Path(os.environ.get("INSITU_BENCH_RESULTS",
                              Path(__file__).resolve().parents[2] / "bench-results"))
ROOT = Path(__file__).resolve().parents[2]

MIN_PAIRS = 5  # the fewest interleaved pairs a full (not --quick) run may use

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl")


# -- command line -------------------------------------------------------------------

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


# -- the machine header -------------------------------------------------------------

def _cpuinfo(key: str) -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(l.split(":", 1)[1].strip() for l in fh if l.startswith(key))
    except (OSError, StopIteration):
        return ""


def _mpi_library() -> str:
    """The MPI library's version line.  From mpi4py when this process has
    already initialised MPI (a benchmark running under mpiexec); otherwise
    from ``mpiexec --version``, so that a driver script does not initialise
    MPI just to print a header (a singleton MPI in the parent of mpiexec
    jobs is a needless risk)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.Get_library_version().splitlines()[0].split(",")[0].strip()
    try:
        out = subprocess.run(["mpiexec", "--version"], capture_output=True, text=True,
                             timeout=30).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no mpiexec)"


def _hdf5_version() -> str:
    """HDF5's run-time version, as h5py loads it (importing h5py does not
    initialise MPI)."""
    try:
        import h5py
        return f"{h5py.version.hdf5_version} (h5py {h5py.__version__}, " \
               f"{'parallel' if h5py.get_config().mpi else 'serial'})"
    except ImportError:
        return "not installed"


def _dist_version(name: str) -> str:
    """A package's installed version without importing it (numba's import
    alone takes a third of a second)."""
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _command_line() -> str:
    """How this report was made: the script and its arguments, under
    ``mpiexec -n N`` when MPI runs it with more than one rank."""
    argv = [os.path.relpath(sys.argv[0], ROOT) if sys.argv and sys.argv[0] else "python",
            *sys.argv[1:]]
    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", *argv])
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        cmd = f"mpiexec -n {mpi.COMM_WORLD.size} {cmd}"
    return cmd


_MACHINE: dict | None = None


def machine() -> dict:
    """What a figure depends on, gathered once per process: the CPU and its
    SIMD flags, cores, versions, the date, the command line, the load."""
    global _MACHINE
    if _MACHINE is None:
        import numpy as np
        flags = _cpuinfo("flags").split()
        simd = [f for f in SIMD_FLAGS if f in flags]
        _MACHINE = {
            "cpu": _cpuinfo("model name"), "cores": os.cpu_count(),
            "simd": " ".join(simd), "cpu_flags": " ".join(flags),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": _dist_version("numba"), "mpi4py": _dist_version("mpi4py"),
            "mpi": _mpi_library(), "hdf5": _hdf5_version(),
            "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "unset"),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": _command_line(),
            "commit": _git_commit(),
            "load": list(os.getloadavg()),
        }
    return _MACHINE


def describe_machine() -> str:
    """One line for every report: the CPU differs between machines (some lack
    AVX-512), and kernel figures depend on it."""
    m = machine()
    return f"machine: {m['cpu']}, {m['cores']} cores, SIMD: {m['simd'] or 'none found'}"


def machine_header(m: dict | None = None) -> str:
    """The lines at the top of every report (``m``: a stored ``machine()``)."""
    m = m or machine()
    load = ", ".join(f"{x:.1f}" for x in m.get("load", []))
    return "\n".join([
        f"machine: {m['cpu']}, {m['cores']} cores, SIMD: {m['simd'] or 'none found'}",
        f"versions: {m.get('mpi', '?')}; HDF5 {m.get('hdf5', '?')}; numba {m.get('numba', '?')}; "
        f"numpy {m.get('numpy', '?')}; Python {m.get('python', '?')}; "
        f"NUMBA_NUM_THREADS={m.get('numba_threads', '?')}",
        f"date: {m.get('date', '?')}; commit {m.get('commit', '?')}; "
        f"load average (1, 5, 15 min) {load}",
        f"command: {m.get('command', '?')}",
    ])


def print_header() -> None:
    """Print the machine header (at the top of a report)."""
    print(machine_header(), flush=True)


# -- interleaved runs and their summaries ----------------------------------------------

def interleave(contenders: Mapping[str, Callable[[], float]], pairs: int = MIN_PAIRS,
               on_round: Callable[[int], None] | None = None,
               rotate: bool = True) -> dict[str, list[float]]:
    """Every sample of each contender, run in turn for ``pairs`` rounds.
    Each callable returns its own figure (a time it measured, a time per
    step the model printed...); use :func:`timed` to time a call from
    outside.  The machine is shared and drifts: taking turns makes the
    drift hit every contender alike, and the per-round samples give
    per-pair ratios (:func:`compare`): ``samples[name][r]`` is always
    round ``r``'s, whatever the order within the round.

    With ``rotate`` (the default) round ``r`` starts at contender ``r mod
    n`` and goes on in the given order: A B C, B C A, C A B, A B C ...  A
    fixed order (``rotate=False``: A B C, A B C ...) puts each contender
    always in the same place of the round, and the place is not neutral:
    the first run of a round follows the previous round's last one (its
    page cache, its CPU frequency, a file it left to write back), the last
    precedes whatever the round's callback does, and a pattern in the
    machine's drift (another job that starts with a round) lands on the
    same contender every time.  Rotation gives each contender every place
    equally often over each ``n`` rounds (within one when ``pairs`` is not
    a multiple of ``n``), so a place's bias is spread over all of them
    instead of adding to one figure.  Round 0 runs in the given order, so a
    caller whose later contenders need an earlier one's output (a
    reference answer) has it from the first round on."""
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    for r, order in enumerate(round_orders(list(contenders), pairs, rotate)):
        for name in order:
            samples[name].append(float(contenders[name]()))
        if on_round is not None:
            on_round(r)
    return samples


def round_orders(names: Sequence[str], pairs: int, rotate: bool = True) -> list[list[str]]:
    """The order :func:`interleave` runs ``names`` in, round by round (for a
    report that says where each sample stood in its round)."""
    names = list(names)
    out = []
    for r in range(pairs):
        start = r % len(names) if rotate and names else 0
        out.append(names[start:] + names[:start])
    return out


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` wrapped to return its wall time in seconds."""
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run


def summarize(samples: Iterable[float]) -> dict:
    """``{"median", "min", "max", "n", "samples"}`` of the samples (the
    median of an even count is the mean of the middle two)."""
    vals = [float(v) for v in samples if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0, "samples": []}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals), "samples": vals}


def ratios(numer: Sequence[float], denom: Sequence[float]) -> list[float]:
    """The per-pair ratios numer[i] / denom[i] (pairs must line up)."""
    if len(numer) != len(denom):
        raise ValueError(f"unpaired samples: {len(numer)} against {len(denom)}")
    return [a / b for a, b in zip(numer, denom)]


def compare(a: Sequence[float], b: Sequence[float]) -> dict:
    """A against B, pair by pair: the summary of each and of the per-pair
    ratio b / a.  The median of the ratios, not the ratio of the medians:
    a pair shares the machine's state, so its ratio cancels the drift."""
    return {"a": summarize(a), "b": summarize(b), "ratio": summarize(ratios(b, a))}


def scaled(s: dict, factor: float) -> dict:
    """A summary with every value multiplied by ``factor`` (s to ms, ...)."""
    out = dict(s)
    for k in ("median", "min", "max"):
        out[k] = None if s.get(k) is None else s[k] * factor
    out["samples"] = [v * factor for v in s.get("samples", [])]
    return out


def fmt(s: dict | None, digits: int = 3) -> str:
    """``median (min-max)`` with ``digits`` significant digits; '-' if empty."""
    if not s or s.get("median") is None:
        return "-"
    g = f".{digits}g"
    sep = "-" if s["min"] >= 0 else " to "  # "-1 to -0.5", not "-1--0.5"
    return f"{s['median']:{g}} ({s['min']:{g}}{sep}{s['max']:{g}})"


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SPREAD = re.compile(rf"^\s*({_NUM})\s*\(\s*({_NUM})\s*(?:-|to|\.\.)\s*({_NUM})\s*\)\s*$")


def parse_spread(value) -> dict | None:
    """A summary back from what a benchmark stored: a summary dict (``n`` or
    ``runs`` for the count), a ``"median (min-max)"`` string, or a plain
    number (a single figure: its own spread).  None if it is none of these."""
    if isinstance(value, dict) and "median" in value:
        if value["median"] is None:
            return None
        return {"median": value["median"], "min": value.get("min", value["median"]),
                "max": value.get("max", value["median"]),
                "n": value.get("n", value.get("runs"))}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"median": float(value), "min": float(value), "max": float(value), "n": 1}
    if isinstance(value, str):
        m = _SPREAD.match(value)
        if m:
            med, lo, hi = (float(x) for x in m.groups())
            return {"median": med, "min": lo, "max": hi, "n": None}
    return None


# -- tables and results -------------------------------------------------------------

def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = ["  ".join(c.rjust(widths[c]) for c in columns),
             "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, dict) and "median" in v:
        return fmt(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def save(name: str, payload: dict) -> Path:
    """Write ``bench-results/<name>.json`` with the machine header (so that
    ``scripts/bench/report.py`` can say where every figure comes from)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    m = machine()
    payload = {"benchmark": name, "machine": m, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "command": m["command"], **payload}
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
