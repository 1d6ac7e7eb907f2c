"""The background writer (issue 12, item 3; ``output.writer: background``),
under real mpiexec with timeouts:

* its file equals the inline writer's, dataset by dataset and attribute by
  attribute (minus the run's clock and command line), at 1, 2 and 3
  ranks, with several analyses, a window axis, a trigger axis, checkpoints,
  and flushes at every output step or only at finalize; and after a
  restart from a checkpoint;
* MPI initialised below ``MPI_THREAD_MULTIPLE`` is refused at init, with
  one clear error on every rank, no hang;
* a failure on the writer thread (an injected exception, a full disk)
  ends the job with one clear output error (exit status 5), no hang, and
  the file keeps every step up to the last flush that completed;
* a SIGKILL while the writer thread is inside a flush leaves a file that
  ``insitu.inspect`` opens with the rows of the last completed flush.
"""
import re

import h5py
import numpy as np
import pytest

from conftest import PYTHON, ROOT, mpirun
from test_flush_policy import CONFIG, _contents, _same

FLUSH_RUN = ROOT / "tests" / "mpi_programs" / "flush_run.py"
PROGRAM = ROOT / "tests" / "mpi_programs" / "background_run.py"
STEPS = 24
USED = "output.writer: background (durable flushes on a writer thread"

#: the flush policies compared: at every output step (many flushes in
#: flight, the queue full), and only at finalize (one big batch)
POLICIES = {"every_step": ", flush_every_steps: 1, flush_seconds: null",
            "at_finalize": ", flush_seconds: null"}


def _run(tmp_path, name, writer, output, nranks, extra=(), steps=STEPS, check=True):
    out = tmp_path / f"{name}_{writer}.h5"
    cfg = tmp_path / f"{name}_{writer}.yaml"
    cfg.write_text(CONFIG.format(out=out, output=f"{output}, writer: {writer}",
                                 when="T_max > 300"))
    r = mpirun(nranks, [PYTHON, FLUSH_RUN, "--", "--model", "heat2d", "--config", cfg,
                        "--steps", steps, "--shape", 48, 64, "--no-progress", *extra],
               timeout=240, check=check)
    assert (USED in r.stderr) == (writer == "background"), r.stderr[-2000:]
    return out, r


def _flushes(r) -> dict:
    return {int(a): int(b) for a, b in re.findall(r"FLUSHES rank (\d+) (-?\d+)", r.stdout)}


def test_writer_option_is_validated():
    from insitu.options import ConfigError, parse
    base = {"analyses": [{"kind": "stats", "field": "T"}]}
    assert parse(base)["output"]["writer"] == "inline"
    assert parse({**base, "output": {"writer": "background"}})["output"]["writer"] == "background"
    with pytest.raises(ConfigError, match=re.escape(
            "output.writer: expected one of inline, background, got 'thread'")):
        parse({**base, "output": {"writer": "thread"}})


def test_thread_level_message_names_the_setting_and_the_fix():
    from insitu.background import thread_level_problem
    assert thread_level_problem(3, 3) is None
    msg = thread_level_problem(0, 3, {0: "MPI_THREAD_SINGLE"})
    for part in ("output.writer: background needs MPI_THREAD_MULTIPLE",
                 "initialised with MPI_THREAD_SINGLE",
                 "MPI_Init_thread(MPI_THREAD_MULTIPLE, provided) instead of MPI_Init",
                 "mpi4py.rc.thread_level", "output.writer: inline"):
        assert part in msg, part


@pytest.mark.parametrize("nranks,policy", [(1, "every_step"), (2, "every_step"),
                                           (3, "every_step"), (2, "at_finalize"),
                                           (3, "at_finalize")])
def test_background_file_equals_inline_file(tmp_path, nranks, policy):
    """Every dataset and attribute (the checkpoints' state and metadata
    included) equal; the same number of durable flushes on every rank."""
    extra = ("--checkpoint-every", 8)
    a, ra = _run(tmp_path, policy, "inline", POLICIES[policy], nranks, extra)
    b, rb = _run(tmp_path, policy, "background", POLICIES[policy], nranks, extra)
    ca, cb = _contents(a), _contents(b)
    assert any(k.startswith("_insitu_state/24/") for k in ca), sorted(ca)
    assert any(k.startswith("time_warm") for k in ca) and "time_w4" in ca
    _same(ca, cb, f"{policy} at {nranks} rank(s)")
    fa, fb = _flushes(ra), _flushes(rb)
    assert fa == fb and len(fa) == nranks, (fa, fb)
    if policy == "every_step":
        assert fa[0] >= STEPS


def test_restart_with_background_writer_equals_inline(tmp_path):
    """A run checkpointed at step 16, killed, and restarted: the restart
    reads the checkpoint through the writer thread.  The restarted file
    equals the inline writer's restarted file."""
    files = {}
    for writer in ("inline", "background"):
        out = tmp_path / f"r_{writer}.h5"
        cfg = tmp_path / f"r_{writer}.yaml"
        cfg.write_text(CONFIG.format(out=out, output=", flush_seconds: null, writer: " + writer,
                                     when="T_max > 300"))
        common = [PYTHON, FLUSH_RUN, "--", "--model", "heat2d", "--config", cfg,
                  "--shape", 48, 64, "--no-progress", "--checkpoint-every", 8]
        mpirun(2, common + ["--steps", 16], timeout=240)
        r = mpirun(2, common + ["--steps", STEPS, "--restart"], timeout=240)
        assert (USED in r.stderr) == (writer == "background")
        assert "restarted from the checkpoint of step 16" in r.stderr, r.stderr[-2000:]
        files[writer] = _contents(out)
    _same(files["inline"], files["background"], "restart")
    assert files["inline"]["step"][2].tolist() == list(range(1, STEPS + 1))


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_thread_level_below_multiple_fails_at_init_on_every_rank(tmp_path, nranks):
    """MPI_Init's level (a Fortran host's MPI_Init gives single): every rank
    raises the same ConfigError from insitu.api.init; insitu.run exits with
    the config status and one line, and writes no file."""
    out = tmp_path / "o.h5"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output: {{path: {out}, writer: background}}\n"
                   "fields: {T: {dims: [y, x]}}\nanalyses: [{kind: stats, field: T}]\n")
    for level, name in (("single", "MPI_THREAD_SINGLE"), ("serialized", "MPI_THREAD_SERIALIZED")):
        mark = tmp_path / level
        mark.mkdir()
        mpirun(nranks, [PYTHON, PROGRAM, "--thread-level", level, "--api", "--mark", mark,
                        "--", cfg], timeout=120)
        for rank in range(nranks):
            said = (mark / f"init.{rank}").read_text()
            assert said.startswith("ConfigError: output.writer: background needs "
                                   "MPI_THREAD_MULTIPLE"), said
            assert f"initialised with {name}" in said
    r = mpirun(nranks, [PYTHON, PROGRAM, "--thread-level", "single", "--", "--model", "heat2d",
                        "--config", cfg, "--steps", 5, "--no-progress"],
               timeout=120, check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.count("insitu: config error: output.writer: background needs "
                          "MPI_THREAD_MULTIPLE") == 1, r.stderr[-2000:]
    assert not out.exists()
    # the same with the thread level a writer thread needs: it runs
    mpirun(nranks, [PYTHON, PROGRAM, "--thread-level", "multiple", "--", "--model", "heat2d",
                    "--config", cfg, "--steps", 5, "--no-progress"], timeout=120)
    assert h5py.File(out, "r")["time"].shape == (5,)


def _simple(tmp_path, policy=", flush_every_steps: 1"):
    out = tmp_path / "o.h5"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output: {{path: {out}, writer: background{policy}}}\n"
                   "fields: {T: {dims: [y, x]}}\nanalyses:\n  - {kind: stats, field: T}\n"
                   "  - {kind: reduce, field: T, over: [x], op: mean}\n")
    return out, cfg


def _kept(out, n, nranks):
    """The file as the readers see it: exactly steps 1..n, the values a
    finished run has at those steps."""
    from insitu.inspect import committed, describe, open_dataset
    assert committed(str(out))["time"] == n
    with h5py.File(out, "r", locking=False) as f:
        assert list(f["step"][:n]) == list(range(1, n + 1))
    for engine in ("h5netcdf", "netcdf4"):
        with open_dataset(str(out), engine=engine) as ds:
            ds.load()
            assert ds.sizes["time"] == n
            assert not ds["T_mean"].isnull().any() and not ds["T_mean_over_x"].isnull().any()
            means = ds["T_mean"].values
    assert f"time: {n} output step(s)" in describe(str(out))
    return means


@pytest.mark.parametrize("nranks,rank", [(1, 0), (2, 1), (3, 0)])
def test_exception_on_the_writer_thread_ends_the_job_clearly(tmp_path, nranks, rank):
    """A ValueError on one rank's writer thread, inside the flush of step
    6 (after the collective growth, so the other ranks' threads wait in the
    flush's agreement for it): that rank's model thread raises it at its
    next step, the job ends (exit 5) within the timeout, with one message
    naming the flush and what the file keeps: steps 1..5."""
    out, cfg = _simple(tmp_path)
    r = mpirun(nranks, [PYTHON, PROGRAM, "--fail-flush", 6, "--fail-rank", rank, "--",
                        "--model", "heat2d", "--config", cfg, "--steps", 40, "--no-progress"],
               timeout=120, check=False)
    assert r.returncode == 5, r.stderr[-3000:]
    assert (f"insitu[{rank}] CRITICAL: output error, aborting the job: the background writer "
            "failed in the flush of step 6: ValueError: injected failure at the flush of step "
            "6; steps up to 5 are in the file") in r.stderr, r.stderr[-3000:]
    _kept(out, 5, nranks)


@pytest.mark.parametrize("nranks", [1, 2])
def test_full_disk_on_the_writer_thread(tmpfs, tmp_path, nranks):
    """A real I/O error on the writer thread: the disk fills.  The message
    is the inline writer's (cause, step, what the file keeps) and says the
    writer thread failed; the file keeps the steps before."""
    disk = tmpfs("size=512k", "disk")
    out = disk / "o.h5"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output: {flush_every_steps: 1, writer: background}\n"
                   "fields: {T: {dims: [y, x]}}\nanalyses:\n  - {kind: stats, field: T}\n"
                   "  - {kind: reduce, field: T, over: [x]}\n")
    r = mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--shape", 200, 100,
                        "--steps", 2000, "--config", cfg, "--output", out],
               timeout=180, check=False)
    assert r.returncode == 5, r.stderr[-3000:]
    m = re.search(r"no space left on device while writing step (\d+) to \S+ \(\d+ bytes free\); "
                  r"steps up to (\d+) are in the file \(output.writer: background; the flush of "
                  r"step (\d+) failed on the writer thread\)", r.stderr)
    assert m, r.stderr[-3000:]
    failed, kept, flush = map(int, m.groups())
    assert kept == failed - 1 and flush == failed and kept > 10
    assert "Traceback" not in r.stderr
    from insitu.inspect import committed
    assert committed(str(out))["time"] == kept


@pytest.mark.parametrize("nranks", [1, 2])
def test_sigkill_while_the_writer_thread_flushes(tmp_path, nranks):
    """The flush of step 8 sleeps on the writer thread after writing its
    rows (before the committed count and H5Fflush); the model's thread goes
    on and every rank SIGKILLs itself after step 9.  What survives is every
    step up to the last completed durable flush, 7, and inspect opens it."""
    out, cfg = _simple(tmp_path)
    r = mpirun(nranks, [PYTHON, PROGRAM, "--slow-flush", 8, "--kill-after", 9,
                        "--mark", tmp_path, "--",
                        "--model", "heat2d", "--config", cfg, "--steps", 40, "--no-progress"],
               timeout=120, check=False)
    assert r.returncode != 0
    for rank in range(nranks):  # the kill came while the flush of step 8 slept
        assert (tmp_path / f"slow.{rank}").read_text() == "step 8"
    means = _kept(out, 7, nranks)
    ref = tmp_path / "ref.h5"
    mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                    "--steps", 9, "--no-progress", "--output", ref], timeout=120)
    with h5py.File(ref, "r") as f:
        np.testing.assert_array_equal(means, f["T_mean"][:7])


@pytest.fixture(scope="module")
def background_host(tmp_path_factory, libinsitu):
    """tests/fortran/background_host.f90, built against libinsitu."""
    from conftest import run
    d = tmp_path_factory.mktemp("background_host")
    flags = run([PYTHON, "-m", "insitu.config", "--fflags"], timeout=60).stdout.split()
    ldflags = run([PYTHON, "-m", "insitu.config", "--ldflags"], timeout=60).stdout.split()
    run(["mpif90", *flags, "-o", d / "background_host",
         ROOT / "tests" / "fortran" / "background_host.f90", *ldflags], timeout=300, cwd=d)
    return d / "background_host"


def test_fortran_host_needs_mpi_init_thread_multiple(background_host, tmp_path):
    """A Fortran host: after MPI_Init_thread(MPI_THREAD_SINGLE) (what
    MPI_Init gives) insitu_init returns an error with the message on every
    rank; after MPI_Init_thread(MPI_THREAD_MULTIPLE) the run completes on a
    Cartesian communicator and its file equals the inline writer's."""
    cfg = {}
    for writer in ("inline", "background"):
        cfg[writer] = tmp_path / f"{writer}.yaml"
        cfg[writer].write_text(
            f"output: {{path: {tmp_path / writer}.h5, flush_every_steps: 1, writer: {writer}}}\n"
            "fields: {T: {dims: [x, y]}}\nanalyses:\n"
            "  - {kind: stats, field: T}\n  - {kind: reduce, field: T, over: [x], op: sum}\n"
            "  - {kind: window, source: T, steps: 3}\n")
    r = mpirun(3, [background_host, cfg["background"], "single", 5], timeout=120, cwd=tmp_path)
    said = re.findall(r"INIT-STATUS (\d+) (\d+) (.*)", r.stdout)
    assert sorted(int(x) for x, _, _ in said) == [0, 1, 2], r.stdout
    for _, status, msg in said:
        assert status != "0" and "output.writer: background needs MPI_THREAD_MULTIPLE" in msg
        assert "initialised with MPI_THREAD_SINGLE" in msg, msg
    assert not (tmp_path / "background.h5").exists()
    for writer in ("inline", "background"):
        r = mpirun(3, [background_host, cfg[writer], "multiple", 12], timeout=120, cwd=tmp_path)
        assert r.stdout.count("DONE") == 3, r.stdout + r.stderr[-2000:]
    a, b = _contents(tmp_path / "inline.h5"), _contents(tmp_path / "background.h5")
    _same(a, b, "fortran host")
    assert a["step"][2].tolist() == list(range(1, 13))
    gx, gy = np.meshgrid(np.arange(8), np.arange(18), indexing="ij")
    t = ((7 * gx + 13 * gy + 5 * 12) % 1000 - 300).astype(np.float64)
    np.testing.assert_array_equal(b["T_sum_over_x"][2][11], t.sum(axis=0))


def test_benchmark_quick(tmp_path):
    """scripts/bench/background.py still runs (the figures are measured by
    hand: docs/output.md)."""
    import json
    from conftest import mpi_env
    r = mpirun(2, [PYTHON, ROOT / "scripts" / "bench" / "background.py", "--quick"],
               timeout=300, env=mpi_env({"INSITU_BENCH_RESULTS": str(tmp_path)}))
    assert "background/inline" in r.stdout, r.stdout
    data = json.loads((tmp_path / "background_n2.json").read_text())
    assert data["machine"]["cores"] and len(data["rows"]) == 4


def test_many_growing_window_axes_equal_inline(tmp_path):
    """The stress of tests/test_metadata_cache.py on the writer thread: 48
    windows over a scalar and a zonal mean, a flush at every one of 60
    steps, each growing many window axes, at 2 ranks: the file equals the
    inline writer's."""
    windows = "".join(f"  - {{kind: window, source: {src}, steps: {3 + i}, name: w{src}{i}, "
                      "ops: [mean, var, max]}\n" for src in ("T", "Tzon") for i in range(24))
    files = {}
    for writer in ("inline", "background"):
        out = tmp_path / f"{writer}.h5"
        cfg = tmp_path / f"{writer}.yaml"
        cfg.write_text(f"output: {{path: {out}, flush_every_steps: 1, writer: {writer}}}\n"
                       "fields: {T: {dims: [y, x]}}\nlog_level: WARNING\nanalyses:\n"
                       "  - {kind: stats, field: T}\n"
                       "  - {kind: reduce, field: T, over: [x], name: Tzon}\n" + windows)
        mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                   "--steps", 60, "--no-progress"], timeout=240)
        files[writer] = _contents(out)
    _same(files["inline"], files["background"], "48 windows")
    assert files["background"]["time_wTzon23"][1] == (60 // 26 - 1,)  # aligned windows
