"""Issue 12's performance targets (and issue 14's replay targets), in one table,
and the check against them.

``python scripts/bench/targets.py [--results DIR] [--all]``: reads the JSON
results the benchmarks wrote (``bench-results/`` unless ``--results`` or
``$INSITU_BENCH_RESULTS`` says otherwise), prints each target with the
measured median, its spread (min-max) and the number of samples, and
exits 1 unless every checked target is met.  ``./scripts/bench.sh --check``
runs the fast subset of benchmarks first, then this.

A target is **met** when the median of each of its cases meets the bound
(the spread is printed so that a median that only just passes can be seen
for what it is), **missed** when any case's median does not, and **not
measured** when no result holds it: no JSON, a JSON without the rows (a
benchmark that does not exist yet, or an older format), a ``--quick`` run
(a check that a script runs, not a measurement), or fewer samples than the
target needs.  Not measured is not passing: the check fails on it too.

The numbers are the issue's (its table and its "Done when"); the histogram's
3x is an item of its build list, reported here but not part of the check
(``checked=False``): it needs the kernel of a past revision to compare with.
Issue 14's replay targets are reported but not checked either: the replay
benchmark is not in ``bench.sh --check``'s fast subset (it generates a
1.4 GB archive once, and runs in about a minute).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MIN_PAIRS, RESULTS, fmt, parse_spread, summarize  # noqa: E402

# The revision whose histogram kernel is "today's" in issue 12 (the last
# commit before the kernel work).
HISTOGRAM_TODAY = "76845b7"

MET, MISSED, NOT_MEASURED = "met", "MISSED", "not measured"


@dataclass
class Case:
    """One measured figure of a target: its label and summary (median, min,
    max, n), or a reason it is missing."""
    label: str
    summary: dict | None = None
    why_missing: str = ""
    source: str = ""  # the JSON, its date and the machine's load then
    note: str = ""    # printed with the figure (what bounds it), never judged


@dataclass(frozen=True)
class Target:
    key: str
    measure: str          # what is measured, in the words
    op: str               # "<=" or ">="
    limit: float
    unit: str
    command: str          # how to measure it
    extract: Callable[[dict], list[Case]] = field(repr=False)
    min_samples: int = MIN_PAIRS
    checked: bool = True  # part of bench.sh --check

    def bound(self) -> str:
        return f"{self.op} {self.limit:g} {self.unit}".strip()

    def meets(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit


@dataclass
class Verdict:
    target: Target
    status: str
    cases: list[Case]
    note: str = ""


# -- reading the results -----------------------------------------------------------

def load_results(folder: Path) -> dict[str, dict]:
    """Every ``*.json`` of ``folder`` by benchmark name (the file's stem)."""
    out = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            out[path.stem] = {"error": f"unreadable: {e}"}
    return out


def _result(results: dict, name: str) -> tuple[dict | None, str]:
    """The named result if it is a measurement, else None and why."""
    r = results.get(name)
    if r is None:
        return None, f"no {name}.json (run the benchmark)"
    if "error" in r:
        return None, f"{name}.json {r['error']}"
    if r.get("quick"):
        return None, f"{name}.json is a --quick run, not a measurement"
    return r, ""


def _source(name: str, r: dict) -> str:
    m = r.get("machine") or {}
    load = m.get("load")
    when = m.get("date") or r.get("when", "?")
    return f"{name}.json, {when}" + (f", load {load[0]:.1f}" if load else "")


def _rows(r: dict) -> list[dict]:
    rows = list(r.get("rows") or [])
    if "row" in r:
        rows.append(r["row"])
    return rows


def _pick(results, name, match: Callable[[dict], bool], value: Callable[[dict], object],
          label: Callable[[dict], str], expect: list[str] | None = None) -> list[Case]:
    """Cases from the rows of ``name`` that ``match``; ``expect``: labels
    that must be there (a missing one is a case with its reason)."""
    r, why = _result(results, name)
    if r is None:
        return [Case(lbl, None, why) for lbl in (expect or ["-"])]
    cases = [Case(label(row), parse_spread(value(row)), source=_source(name, r))
             for row in _rows(r) if match(row)]
    for c in cases:
        if c.summary is None:
            c.why_missing = f"{name}.json holds no figure for it"
        elif c.summary.get("n") is None and isinstance(r.get("pairs"), int):
            c.summary["n"] = r["pairs"]  # a "median (min-max)" string: the run's rounds
    have = {c.label for c in cases}
    for lbl in expect or []:
        if lbl not in have:
            cases.append(Case(lbl, None, f"{name}.json has no such row"))
    if not cases:
        cases.append(Case("-", None, f"{name}.json has no such rows"))
    return cases


# -- the extractors, one per benchmark's JSON --------------------------------------

def _overhead(metric: str, analyses: int):
    def extract(results):
        def match(row):
            return (row.get("ranks") == 2 and row.get("analyses") == analyses
                    and row.get("cells_per_rank") == 10**6 and row.get("steps") == 2000
                    and row.get("every") == 10)
        label = f"2 ranks, {analyses} " + ("analysis" if analyses == 1 else "analyses")
        return _pick(results, "overhead", match, lambda row: row.get(metric),
                     lambda row: label, [label])
    return extract


def _collectives(results):
    """MPI calls per output step, every call counted: insitu's and those
    libhdf5 makes from C (the resize broadcasts), as a PMPI-level count
    (``mpi_calls_per_step``) sees them.  insitu's own count of its
    collectives (``collectives_per_step``) cannot see HDF5's, so it does
    not measure this target: the case is "not measured", with that reason."""
    r, why = _result(results, "collectives_n2")
    expect = [f"2 ranks, {k} {'analysis' if k == 1 else 'analyses'}" for k in (1, 10, 50)]
    if r is not None and not any("mpi_calls_per_step" in row for row in _rows(r)):
        return [Case(lbl, None, "collectives_n2.json counts insitu's own collectives only "
                     "(collectives_per_step); the target counts HDF5's MPI calls too "
                     "(a PMPI count, mpi_calls_per_step)") for lbl in expect]
    return _pick(results, "collectives_n2", lambda row: row.get("analyses") in (1, 10, 50),
                 lambda row: row.get("mpi_calls_per_step"),
                 lambda row: expect[(1, 10, 50).index(row["analyses"])], expect)


def _handoff(host: str, metric: str, ranks=None, values=None):
    def extract(results):
        def match(row):
            return (row.get("host") == host and row.get("metric") == metric
                    and (ranks is None or row.get("ranks") in ranks)
                    and (values is None or row.get("values") in values))
        return _pick(results, "handoff", match, lambda row: row.get("this"),
                     lambda row: f"{row.get('ranks')} rank(s), {row.get('values')} values")
    return extract


def _startup(results):
    return _pick(results, "startup",
                 lambda row: row.get("metric") == "init_s" and row.get("ranks") == 2,
                 lambda row: row.get("this"), lambda row: f"{row.get('host')} host, 2 ranks",
                 ["python host, 2 ranks", "fortran host, 2 ranks"])


def _kernels(results):
    beyond_cache = 2**28  # 256 MiB: out of every cache of this machine kind
    return _pick(results, "kernels",
                 lambda row: row.get("bytes", 0) >= beyond_cache,
                 lambda row: row.get("new_of_sum"),
                 lambda row: f"{row.get('dtype')}, {row.get('bytes', 0) // 2**20} MiB",
                 ["float32, 256 MiB", "float64, 256 MiB"])


def _reprosum(results):
    return _pick(results, "reprosum", lambda row: row.get("layout") == "halo view",
                 lambda row: row.get("new_ratio"), lambda row: f"{row.get('values'):.0e} values")


def _histogram(results):
    r, why = _result(results, "histogram")
    if r is not None and r.get("baseline") != HISTOGRAM_TODAY:
        return [Case("-", None, f"histogram.json was not run with --baseline {HISTOGRAM_TODAY}"
                                f" (it has {r.get('baseline')})")]
    return _pick(results, "histogram", lambda row: True, lambda row: row.get("speedup"),
                 lambda row: f"{row.get('dtype')}, {row.get('values')} values, {row.get('data')}")


def _time_to_answer(results):
    """Issue 12's heat case only (2 ranks, 1e6 cells per rank, 2000 steps,
    stats every 10), as ``time_to_answer.py --full`` runs it; the default
    run's smaller sweep is another measurement.  From
    ``time_to_answer_full.json``, or from ``time_to_answer.json`` when a
    run there holds the case."""
    label = "2 ranks, 1e6 cells per rank, 2000 steps, every 10, vs h5py + xarray"

    def match(row):
        return (row.get("way") == "h5py + xarray" and row.get("ranks") == 2
                and row.get("cells_per_rank") == 10**6 and row.get("steps") == 2000
                and row.get("every") == 10)
    why = []
    for name in ("time_to_answer_full", "time_to_answer"):
        cases = _pick(results, name, match, lambda row: row.get("vs_insitu"),
                      lambda row: label, [label])
        if any(c.summary is not None for c in cases):
            for c in cases:
                c.note = _time_to_answer_bound(results[name], match)
            return cases
        why += [c.why_missing for c in cases]
    return [Case(label, None, "; ".join(why) + " (the case is time_to_answer.py --full)")]


def _time_to_answer_bound(result: dict, match: Callable[[dict], bool]) -> str:
    """Why the ratio is what it is, from the same run: the baseline's time
    over the model-only run's (per round) is the most any insitu could
    reach, and each way's time beyond the model.  Printed beside the
    figure; the target and its verdict do not change."""
    base = next((r for r in _rows(result) if match(r)), {})
    key = {k: base.get(k) for k in ("ranks", "cells_per_rank", "steps", "every")}

    def way(name):
        return next((r for r in _rows(result) if r.get("way") == name
                     and all(r.get(k) == v for k, v in key.items())), {})
    ins, floor = way("insitu"), way("model only")
    bound = parse_spread(base.get("bound_vs_model"))
    if bound is None:
        # a result written before the bound was stored: the same per-round
        # ratio from the rows' samples (in round order), when they pair up
        tot = (base.get("total_s") or {}).get("samples") or []
        flo = (floor.get("total_s") or {}).get("samples") or []
        if tot and len(tot) == len(flo) and all(flo):
            bound = parse_spread(summarize([a / b for a, b in zip(tot, flo)]))
    if bound is None:
        return ("no bound: the run has no model-only way (time_to_answer.py runs it "
                "since the bound was added)")
    beyond_ins = parse_spread(ins.get("beyond_model_s"))
    beyond_base = parse_spread(base.get("beyond_model_s"))
    return (f"at most {fmt(bound)} x for an insitu that cost nothing (the baseline's "
            f"time over the model alone's, per round); time beyond the model: insitu "
            f"{fmt(beyond_ins)} s, h5py + xarray {fmt(beyond_base)} s")


def _replay(comparison: str):
    """A per-round ratio of ``scripts/bench/replay.py`` at 2 ranks (its
    ``comparisons``: the median of the per-round ratios, their spread)."""
    label = "2 ranks, 12 files (709 MB)"

    def extract(results):
        r, why = _result(results, "replay_n2")
        if r is None:
            return [Case(label, None, why)]
        found = [c for c in r.get("comparisons") or [] if c.get("comparison") == comparison]
        if not found:
            return [Case(label, None, "replay_n2.json has no per-round ratios (an older "
                                      "format: rerun the benchmark)")]
        return [Case(label, parse_spread(found[0].get("per_round")),
                     source=_source("replay_n2", r))]
    return extract


def _replay_memory(results):
    """Each rank's peak RSS replaying 24 files minus replaying 12."""
    r, why = _result(results, "replay_n2")
    if r is None:
        return [Case("2 ranks, 12 -> 24 files", None, why)]
    mem = {m.get("files"): m.get("peak_rss_MiB_per_rank") for m in r.get("memory") or []}
    if not (mem.get(12) and mem.get(24)):
        return [Case("2 ranks, 12 -> 24 files", None,
                     "replay_n2.json has no peak memory at 12 and 24 files")]
    return [Case(f"rank {k}, 12 -> 24 files", parse_spread(b - a),
                 source=_source("replay_n2", r))
            for k, (a, b) in enumerate(zip(mem[12], mem[24]))]


TARGETS: list[Target] = [
    Target("loop_overhead", "Fortran heat example, 1000x1000 cells per rank, 2 ranks, 2000 "
           "steps, stats every 10 steps: the loop's time per step vs --no-insitu",
           "<=", 5.0, "% slower", ".venv/bin/python scripts/bench/overhead.py",
           _overhead("loop_overhead_pct", 1)),
    Target("loop_overhead_10", "the same with 10 scalar analyses due on the same steps",
           "<=", 5.0, "% slower", ".venv/bin/python scripts/bench/overhead.py",
           _overhead("loop_overhead_pct", 10)),
    Target("fixed_cost", "the same run: fixed cost (start-up, init, finalize) = extra wall "
           "time minus extra loop time", "<=", 1.0, "s",
           ".venv/bin/python scripts/bench/overhead.py", _overhead("fixed_cost_s", 1)),
    Target("fixed_cost_10", "the same with 10 scalar analyses", "<=", 1.0, "s",
           ".venv/bin/python scripts/bench/overhead.py", _overhead("fixed_cost_s", 10)),
    Target("mpi_calls", "MPI calls per output step with 1, 10 and 50 scalar analyses",
           "<=", 2, "calls", "mpiexec -n 2 .venv/bin/python scripts/bench/collectives.py",
           _collectives, min_samples=1),
    Target("moved_buffer", "handoff of a field whose buffer moved since the last step "
           "(C route, per field)", "<=", 1.0, "us",
           ".venv/bin/python scripts/bench/handoff.py",
           _handoff("cbind", "bind_moved_us_per_field")),
    Target("expose_python", "expose from a Python host, a moved array", "<=", 1.0, "us",
           ".venv/bin/python scripts/bench/handoff.py",
           _handoff("python", "expose_moved_us")),
    Target("idle_step", "a step where nothing is due, end to end (Fortran host)", "<=", 5.0,
           "us", ".venv/bin/python scripts/bench/handoff.py",
           _handoff("fortran", "idle_step_us")),
    Target("kernel_bandwidth", "one-pass stats kernel, bandwidth vs numpy.sum out of cache",
           ">=", 0.70, "of numpy.sum",
           "NUMBA_NUM_THREADS=1 .venv/bin/python scripts/bench/kernels.py", _kernels),
    Target("reprosum", "reproducible sum on a halo view vs the plain sum", "<=", 2.0, "x",
           "NUMBA_NUM_THREADS=1 .venv/bin/python scripts/bench/reprosum.py", _reprosum),
    Target("startup", "start-up to end of init at 2 ranks, warm cache", "<=", 1.0, "s",
           ".venv/bin/python scripts/bench/startup.py", _startup),
    Target("time_to_answer", "time to answer vs writing every field and reducing with "
           "xarray afterwards, whole process", ">=", 10.0, "x",
           ".venv/bin/python scripts/bench/time_to_answer.py --full", _time_to_answer),
    Target("replay_xarray", "issue 14: replay of a CMIP-like archive vs "
           "xarray.open_mfdataset + dask, the same means (xarray's time / replay's, per "
           "round)", ">=", 3.0, "x", "mpiexec -n 2 .venv/bin/python scripts/bench/replay.py",
           _replay("xarray+dask / replay"), checked=False),
    Target("replay_read", "issue 14: the same replay vs the warm read alone (h5py reading "
           "every slab once; replay's time / the read's, per round)", "<=", 1.5, "x",
           "mpiexec -n 2 .venv/bin/python scripts/bench/replay.py", _replay("replay / read"),
           checked=False),
    # 4 MiB: the allocator's noise; anything kept per file (a record's slab is
    # 2.5 MB a rank, an open file's metadata cache about 1 MB) would grow
    # by tens of MiB over 12 more files
    Target("replay_memory", "issue 14: memory per rank flat in the number of files (peak "
           "RSS growth from 12 to 24 files)", "<=", 4.0, "MiB",
           "mpiexec -n 2 .venv/bin/python scripts/bench/replay.py", _replay_memory,
           min_samples=1, checked=False),
    Target("histogram", f"histogram kernel vs today's ({HISTOGRAM_TODAY})", ">=", 3.0, "x",
           f"NUMBA_NUM_THREADS=1 .venv/bin/python scripts/bench/histogram.py "
           f"--baseline {HISTOGRAM_TODAY}", _histogram, checked=False),
]


# -- the verdicts --------------------------------------------------------------------

def evaluate(results: dict, targets: list[Target] = TARGETS) -> list[Verdict]:
    verdicts = []
    for t in targets:
        cases = t.extract(results)
        for c in cases:
            if c.summary is not None and c.summary.get("n") is not None \
                    and c.summary["n"] < t.min_samples:
                c.why_missing = f"{c.summary['n']} sample(s), fewer than {t.min_samples}"
                c.summary = None
        measured = [c for c in cases if c.summary is not None]
        if not measured:
            status = NOT_MEASURED
        elif any(not t.meets(c.summary["median"]) for c in measured):
            status = MISSED
        elif len(measured) < len(cases):
            status = NOT_MEASURED  # partly measured: not a pass
        else:
            status = MET
        verdicts.append(Verdict(t, status, cases))
    return verdicts


def case_status(t: Target, c: Case) -> str:
    if c.summary is None:
        return NOT_MEASURED
    return MET if t.meets(c.summary["median"]) else MISSED


def fmt_summary(s: dict | None) -> str:
    if not s:
        return "-"
    n = f", n={s['n']}" if s.get("n") else ""
    return fmt(s)[:-1] + n + ")"


def render_text(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        t = v.target
        tag = "" if t.checked else " [reported, not checked]"
        lines.append(f"[{v.status}] {t.key}: {t.measure}; target {t.bound()}{tag}")
        for c in v.cases:
            if c.summary is None:
                lines.append(f"    {c.label}: not measured ({c.why_missing})")
            else:
                lines.append(f"    {c.label}: median (min-max) {fmt_summary(c.summary)} "
                             f"{t.unit}: {case_status(t, c)}")
            if c.note:
                lines.append(f"      {c.note}")
        lines.append(f"    command: {t.command}")
    return "\n".join(lines)


def render_markdown(verdicts: list[Verdict]) -> str:
    lines = ["| target | bound | case | median (min-max, n) | status | from |",
             "|---|---|---|---|---|---|"]
    for v in verdicts:
        t = v.target
        name = t.measure + ("" if t.checked else " (reported, not checked)")
        for i, c in enumerate(v.cases):
            first = i == 0
            figure = fmt_summary(c.summary) if c.summary else f"not measured: {c.why_missing}"
            if c.summary and c.note:
                figure += f"; {c.note}"
            lines.append(f"| {name if first else ''} | {t.bound() if first else ''} | "
                         f"{c.label} | {figure} | {case_status(t, c)} | {c.source} |")
    return "\n".join(lines)


def check(verdicts: list[Verdict]) -> int:
    """0 when every checked target is met, else 1."""
    return 0 if all(v.status == MET for v in verdicts if v.target.checked) else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="the JSON results' folder")
    args = p.parse_args(argv)
    verdicts = evaluate(load_results(args.results))
    print(f"issue 12's and 14's targets, from {args.results}:")
    print(render_text(verdicts))
    checked = [v for v in verdicts if v.target.checked]
    counts = {s: sum(v.status == s for v in checked) for s in (MET, MISSED, NOT_MEASURED)}
    status = check(verdicts)
    print(f"{counts[MET]} met, {counts[MISSED]} missed, {counts[NOT_MEASURED]} not measured "
          f"of {len(checked)} checked targets: {'PASS' if status == 0 else 'FAIL'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
