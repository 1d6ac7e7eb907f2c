"""A config that cannot run fails cleanly: one line from rank 0, exit
status 2 on every rank, no traceback, no MPI_Abort, and no output file left
behind (issue 11).  Each case is run under real mpiexec at 2 ranks through
``python -m insitu.run``; the heat stand-in declares T (24 x 20, dims y, x).
"""
import pytest

from conftest import PYTHON, mpirun

STATS = "  - {kind: stats, field: T}\n"
CASES = {
    # schema and parser: once crashes (TypeError, IndexError) or accepted
    "window without a length": STATS + "  - {kind: window, source: T}\n",
    "window with steps and period": STATS + "  - {kind: window, source: T, steps: 2, period: 3}\n",
    "window period 0": STATS + "  - {kind: window, source: T, period: 0}\n",
    "python function without a colon":
        "  - {kind: python, function: nocolon, fields: [T], outputs: {a: {op: sum}}}\n",
    "python without outputs": "  - {kind: python, function: 'm:f', fields: [T], outputs: {}}\n",
    "python module that cannot be imported":
        "  - {kind: python, function: 'no_such_mod_xyz:f', fields: [T], outputs: {a: {op: sum}}}\n",
    "kind given as a mapping": "  - {kind: {a: 1}, field: T}\n",
    "reversed histogram range": "  - {kind: histogram, field: T, bins: 4, range: [1, 0]}\n",
    "name with a slash": "  - {kind: stats, field: T, name: a/b}\n",
    "300-character name": "  - {kind: stats, field: T, name: " + "a" * 300 + "}\n",
    # found against the declared fields, before the file is created
    "undeclared field": "  - {kind: stats, field: Q}\n",
    "region out of range": "  - {kind: stats, field: T, region: {y: [0, 99]}}\n",
    "probe out of range": "  - {kind: probe, field: T, points: [[0, 40]]}\n",
    "coarsen factor": "  - {kind: coarsen, field: T, factors: {x: 7}}\n",
    "wrong number of probe indices": "  - {kind: probe, field: T, points: [[1]]}\n",
    "unknown window source": STATS + "  - {kind: window, source: nope, steps: 2}\n",
}
HEADS = {
    "bad time units": ("time: {units: days since garbage}\n", STATS),
    "unknown calendar": ("time: {units: days since 2000-01-01, calendar: martian}\n", STATS),
    "a typo in fields:": ("fields: {Tx: {units: K}}\n", STATS),
    "dims of the wrong length": ("fields: {T: {dims: [y]}}\n", STATS),
}


def _run(tmp_path, text, output=None, extra=()):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = output or tmp_path / "out.h5"
    r = mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--shape", 24, 20,
                   "--steps", 3, "--config", cfg, "--output", out, *extra],
               timeout=90, check=False)
    return r, out


def _assert_clean(r, out, words):
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("insitu:")]
    assert r.returncode == 2, r.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("insitu: config error: "), r.stderr[-3000:]
    for bad in ("Traceback", "MPI_ABORT", "CRITICAL", " ERROR"):
        assert bad not in r.stderr, r.stderr[-3000:]
    for w in words:
        assert w in lines[0], lines[0]
    assert not out.exists(), "a run that failed on its config left a file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_analysis_is_one_line_and_exit_2(case, tmp_path):
    r, out = _run(tmp_path, "fields: {T: {dims: [y, x]}}\nanalyses:\n" + CASES[case])
    _assert_clean(r, out, ["analyses["] if "undeclared" not in case else ["'Q'"])


@pytest.mark.parametrize("case", sorted(HEADS))
def test_bad_config_sections_are_one_line_and_exit_2(case, tmp_path):
    head, body = HEADS[case]
    r, out = _run(tmp_path, head + "analyses:\n" + body)
    _assert_clean(r, out, [head.split(":")[0]])


@pytest.mark.parametrize("where", ["missing directory", "a directory", "/dev/null",
                                   "a 300-character file name"])
def test_bad_output_paths_fail_at_init(where, tmp_path):
    path = {"missing directory": tmp_path / "no" / "such" / "dir" / "o.h5",
            "a directory": tmp_path,
            "/dev/null": "/dev/null",
            "a 300-character file name": tmp_path / ("o" * 300 + ".h5")}[where]
    from pathlib import Path
    r, _ = _run(tmp_path, "analyses:\n" + STATS, output=path, extra=["--overwrite"])
    _assert_clean(r, tmp_path / "never.h5", ["output"])
    if where == "/dev/null":
        assert Path("/dev/null").exists() and not Path("/dev/null").is_file()


def test_read_only_output_directory_fails_at_init(tmp_path, tmpfs):
    """As root, os.access says a read-only mount is writable; insitu probes
    the directory by creating a file, so it still fails at init."""
    mnt = tmpfs("ro,size=64k", "ro")
    r, _ = _run(tmp_path, "analyses:\n" + STATS, output=mnt / "o.h5")
    _assert_clean(r, mnt / "o.h5", ["output directory", "not writable"])
