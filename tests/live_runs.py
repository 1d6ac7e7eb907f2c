"""Helpers for the tests that watch a run while it runs (issue 15):
a config with every output kind and a small flush cadence, and a
background ``mpiexec`` job that is always killed, with its whole session,
when the test ends (a hang or a failed assertion never leaves ranks
running)."""
from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager

import pytest

from conftest import PYTHON, kill_session, mpi_env

#: every output kind the live view and --follow show: scalars every step, a
#: distributed reduction, a histogram, a coarse field, a window (own axis
#: with bounds) and trigger snapshots; flush_every_steps 20 so that rows are
#: committed, and the axes grow (metadata changes), while readers read
CONFIG = """
output: {{path: {out}, overwrite: true, flush_every_steps: {flush}, flush_seconds: null}}
time: {{units: "seconds since 2000-01-01", calendar: standard}}
fields: {{T: {{units: K, long_name: temperature, dims: [y, x]}}}}
analyses:
  - {{kind: stats, field: T, every: 1}}
  - {{kind: reduce, field: T, over: [x], op: mean, every: 2}}
  - {{kind: histogram, field: T, every: 5, bins: 12, range: [270, 330]}}
  - {{kind: coarsen, field: T, factors: {{y: 8, x: 8}}, every: 10}}
  - {{kind: window, source: T, steps: 50, ops: [mean, max]}}
triggers:
  - {{name: warm, when: "T_max > 300", fields: [T], max_snapshots: 3}}
"""


def write_config(tmp_path, out, flush: int = 20):
    cfg = tmp_path / "live.yaml"
    cfg.write_text(CONFIG.format(out=out, flush=flush))
    return cfg


def run_args(cfg, steps: int, shape=(96, 128)) -> list:
    return [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
            "--steps", steps, "--shape", *shape, "--no-progress"]


@contextmanager
def background(cmd, env=None, stdout=subprocess.PIPE):
    """Start ``cmd`` in its own session; on leaving, kill the session (every
    rank) if it is still running."""
    proc = subprocess.Popen([str(c) for c in cmd], env=env or mpi_env(), stdout=stdout,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_session(proc.pid)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid)


def finish(proc, timeout: float, what: str) -> tuple[str, str]:
    """Wait for ``proc``; fail the test (the caller's ``background`` kills
    it) when it takes longer than ``timeout`` or exits non-zero."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} still running after {timeout} s (a hang?)")
    if proc.returncode != 0:
        pytest.fail(f"{what} exited {proc.returncode}\n--- stdout\n{(out or '')[-4000:]}\n"
                    f"--- stderr\n{(err or '')[-4000:]}")
    return out, err


def wait_until(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
