"""Regenerate ``docs/performance.md`` from the benchmarks' JSON results.

``python scripts/bench/report.py [--results DIR] [--output docs/performance.md]``

Every figure in the page comes from a JSON file in ``bench-results/``
(``$INSITU_BENCH_RESULTS``): the targets table (``targets.py``'s verdicts),
then one section per benchmark with the machine it ran on (CPU, SIMD flags,
cores, versions, date, load), the exact command, the benchmark's own
description (its docstring's first paragraph) and a table generated from
its rows, every timing as median (min-max) over interleaved rounds.
Nothing in it is typed by hand except the notes at the end, which hold no
figures.  A ``--quick`` result is listed as such: it only shows that a
script runs.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, ROOT, fmt, machine_header, parse_spread  # noqa: E402
from targets import check, evaluate, load_results, render_markdown  # noqa: E402

BENCH = Path(__file__).resolve().parent

# Sections in this order; results of other benchmarks follow, by name.
ORDER = ["overhead", "time_to_answer", "time_to_answer_full", "time_to_answer_sweep",
         "collectives", "flush_cost", "handoff", "startup",
         "kernels", "moments_onepass", "reprosum", "histogram", "verify_cost", "scaling", "replay",
         "climate_kinds"]

# Keys of a row that hold raw samples or bulky detail, not table cells.
SKIP_KEYS = {"raw_s", "samples", "per_rank_MiB"}

NOTES = """\
## Notes (hand-written; no figures)

* Every figure above is generated from `bench-results/*.json` by
  `scripts/bench/report.py`; rerun `./scripts/bench.sh` (everything) or
  `./scripts/bench.sh --check` (the fast subset and the targets) and then
  this script, never edit the tables by hand.
* Figures are medians over interleaved rounds (A B A B ..., at least 5)
  with their spread (min-max); a comparison is the median of per-round
  ratios. Never a best-of: it reports the luckiest sample and hides the
  noise.
* Machines of this kind differ: one had AVX2 only, another AVX-512. Each
  section names the CPU and SIMD flags it ran on; compare figures across
  sections only when those match.
* The machine is shared. The load average printed with each section says
  how busy it was; interleaving makes the drift hit every contender alike,
  but absolute times on a loaded machine are slower than on an idle one.
"""


def script_of(name: str) -> Path:
    """The script that wrote ``<name>.json`` (``collectives_n2`` ->
    ``collectives.py``)."""
    stem = re.sub(r"_n\d+$", "", name)
    while "_" in stem and not (BENCH / f"{stem}.py").exists():
        stem = stem.rsplit("_", 1)[0]  # scaling_sweep -> scaling
    return BENCH / f"{stem}.py"


def description(name: str) -> str:
    """The first paragraph of the benchmark's docstring after its title, as
    the benchmark itself says what it measures."""
    path = script_of(name)
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    paras = [p.strip() for p in doc.split("\n\n") if p.strip()]
    title = paras[0].replace("\n", " ") if paras else ""
    body = paras[1].replace("\n", " ") if len(paras) > 1 else ""
    return f"{title} {body}".strip()


def cell(v) -> str:
    if isinstance(v, dict):
        s = parse_spread(v)
        return "" if s is None else fmt(s)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v)
    return "" if v is None else str(v).replace("|", "\\|")


def rows_of(result: dict) -> list[dict]:
    """The rows of a result: a list of dicts, or a mapping of such lists
    (one per group, e.g. per rank count); anything else is not a table."""
    raw = result.get("rows") or []
    if isinstance(raw, dict):
        raw = [r for group in raw.values() if isinstance(group, list) for r in group]
    rows = [r for r in raw if isinstance(r, dict)]
    if isinstance(result.get("row"), dict):
        rows.append(result["row"])
    if isinstance(result.get("idle"), dict):
        rows.append(result["idle"])
    return rows


def table(rows: list[dict]) -> str:
    cols: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k in SKIP_KEYS or k in cols:
                continue
            if isinstance(v, dict) and parse_spread(v) is None:
                continue  # a nested mapping that is not a figure
            cols.append(k)
    if not cols:
        return "(no rows)"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def extras(result: dict) -> list[str]:
    """Scalar fields beside the rows worth a line (ratios, flags)."""
    skip = {"benchmark", "machine", "when", "command", "rows", "row", "idle", "quick",
            "machine_line", "samples"}
    out = []
    for k, v in result.items():
        if k in skip or v is None or v == "":
            continue
        if isinstance(v, dict) and parse_spread(v) is None:
            flat = {kk: vv for kk, vv in v.items() if not isinstance(vv, (dict, list))}
            if flat:
                out.append(f"{k}: " + ", ".join(f"{kk} {cell(vv)}" for kk, vv in flat.items()))
            continue
        if isinstance(v, list) and v and isinstance(v[0], (dict, list)):
            continue
        out.append(f"{k}: {cell(v)}")
    return out


def section(name: str, result: dict) -> str:
    m = result.get("machine") or {}
    lines = [f"## {name}", ""]
    desc = description(name)
    if desc:
        lines += [desc, ""]
    if result.get("quick"):
        lines += ["**A `--quick` run: it shows that the script works; its figures are not "
                  "measurements.**", ""]
    if "date" in m:
        lines += ["```", machine_header(m), "```", ""]
    else:  # an older result, written before the header existed
        lines += [f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, SIMD "
                  f"{m.get('simd', '?')}; written {result.get('when', '?')}; command not "
                  "recorded (an older result).", ""]
    rows = rows_of(result)
    lines += [table(rows) if rows else "(no rows)", ""]
    for key, more_rows in result.items():  # further tables beside the rows
        if key != "rows" and isinstance(more_rows, list) and more_rows \
                and all(isinstance(r, dict) for r in more_rows):
            lines += [f"`{key}`:", "", table(more_rows), ""]
    more = extras(result)
    if more:
        lines += [f"- {x}" for x in more] + [""]
    return "\n".join(lines)


def render(results: dict) -> str:
    verdicts = evaluate(results)
    names = sorted(results, key=lambda n: (
        ORDER.index(re.sub(r"_n\d+$", "", n)) if re.sub(r"_n\d+$", "", n) in ORDER
        else len(ORDER), n))
    status = "all checked targets met" if check(verdicts) == 0 else \
        "some checked targets missed or not measured"
    out = ["# Performance", "",
           "Generated by `scripts/bench/report.py` from `bench-results/*.json`; do not edit "
           "by hand (the notes at the end are the only hand-written part, and hold no "
           "figures). Regenerate with `./scripts/bench.sh` (every benchmark) or "
           "`./scripts/bench.sh --check` (the fast subset and the targets).", "",
           "## Targets (issues 12 and 14)", "",
           f"Verdict: **{status}**. A target is met when the median of each case meets "
           "the bound; a case without a measurement is not a pass. The command for each "
           "figure is given in the benchmark's section below.", "",
           render_markdown(verdicts), ""]
    for name in names:
        out.append(section(name, results[name]))
    out.append(NOTES)
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    args = p.parse_args(argv)
    results = load_results(args.results)
    if not results:
        print(f"no results in {args.results}: run ./scripts/bench.sh first", file=sys.stderr)
        return 1
    args.output.write_text(render(results))
    print(f"wrote {args.output} from {len(results)} result(s) in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
