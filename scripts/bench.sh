#!/usr/bin/env bash
# Run the benchmarks (after installing, idempotently, with the benchmark
# extras of requirements-bench.txt): reports on stdout, JSON in
# bench-results/, then docs/performance.md regenerated from the JSON.
#
#   ./scripts/bench.sh           every benchmark (meant to stay under 5 minutes)
#   ./scripts/bench.sh --check   the fast subset that measures issue 12's
#                                targets (meant to stay under 3 minutes), then
#                                scripts/bench/targets.py: exits 1 when a target
#                                is missed or not measured
#   ./scripts/bench.sh --quick   each script's small run (what the test suite
#                                checks); writes no report
#
# Timings use 1 and 2 ranks (this machine kind has 2 cores); the memory
# benchmark also runs 4 ranks (memory per rank must stay flat).  Each line
# "bench.sh: NAME took N s" says where the time goes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=full
case "${1:-}" in
  "") ;;
  --check) MODE=check ;;
  --quick) MODE=quick ;;
  *) echo "usage: $0 [--check | --quick]" >&2; exit 2 ;;
esac
source scripts/install.sh
source scripts/env.sh
PY="$VENV/bin/python"
B=scripts/bench
# Benchmark extras (the ADIOS2 baseline), never runtime dependencies;
# skipped when this requirements file was installed already.
BENCH_STAMP="$VENV/.insitu-bench-requirements.sha"
bench_sha=$(sha256sum requirements-bench.txt | cut -d' ' -f1)
if [ "$(cat "$BENCH_STAMP" 2>/dev/null)" != "$bench_sha" ]; then
  if "$PY" -m pip install -q -r requirements-bench.txt; then
    echo "$bench_sha" > "$BENCH_STAMP"
  else
    echo "bench.sh: could not install requirements-bench.txt; time_to_answer.py will" \
         "skip the ADIOS2 baseline and print why" >&2
  fi
fi
# The revision whose histogram kernel is issue 12's "today" (targets.py).
HIST_TODAY="$("$PY" -c 'import sys; sys.path.insert(0, "scripts/bench"); import targets; print(targets.HISTOGRAM_TODAY)')"

START=$SECONDS
timed() {  # timed NAME CMD...: run one benchmark, say how long it took
  local name=$1 t0=$SECONDS
  shift
  "$@"
  echo "bench.sh: $name took $((SECONDS - t0)) s"
}
mpi() { local n=$1; shift; mpiexec -n "$n" "$PY" "$@"; }

if [ "$MODE" = check ]; then
  # Each target of issue 12 at its own measure (the scripts' defaults are
  # the issue's), nothing else.
  timed overhead      "$PY" $B/overhead.py                   # loop overhead, fixed cost
  timed collectives   mpi 2 $B/collectives.py                # MPI calls per output step
  timed handoff       "$PY" $B/handoff.py                    # moved buffer, expose, idle step
  timed startup       "$PY" $B/startup.py                    # start-up to the end of init
  timed kernels       "$PY" $B/kernels.py                    # stats kernel vs numpy.sum
  timed reprosum      "$PY" $B/reprosum.py --pairs 5         # halo views vs numpy.sum
  timed time_to_answer "$PY" $B/time_to_answer.py --ways insitu h5py
  echo "bench.sh: --check took $((SECONDS - START)) s"
  "$PY" $B/report.py
  exec "$PY" $B/targets.py
fi

Q=()
[ "$MODE" = quick ] && Q=(--quick)
timed overhead       "$PY" $B/overhead.py "${Q[@]}"       # in-situ overhead, Fortran heat model
timed time_to_answer "$PY" $B/time_to_answer.py "${Q[@]}" # against writing everything
timed handoff        "$PY" $B/handoff.py "${Q[@]}"        # handoff and idle steps (Fortran host)
timed startup        "$PY" $B/startup.py "${Q[@]}"        # start-up to init and the first step
timed kernels        "$PY" $B/kernels.py "${Q[@]}"        # statistics kernel vs numpy.sum
timed moments_onepass "$PY" $B/moments_onepass.py "${Q[@]}" # moments kernel now vs before its one-pass change
timed reprosum       "$PY" $B/reprosum.py "${Q[@]}"       # reproducible sums
if [ -f $B/histogram.py ]; then                           # histogram kernel vs today's
  timed histogram    "$PY" $B/histogram.py "${Q[@]}" --baseline "$HIST_TODAY"
fi
for n in 1 2; do
  timed "collectives -n $n" mpi "$n" $B/collectives.py "${Q[@]}"  # collectives per step
  timed "flush_cost -n $n"  mpi "$n" $B/flush_cost.py "${Q[@]}"   # flushing the output file
  timed "verify_cost -n $n" mpi "$n" $B/verify_cost.py "${Q[@]}"  # output.verify on against off
done
for n in 1 2 4; do
  timed "scaling -n $n" mpi "$n" $B/scaling.py "${Q[@]}"  # per-step cost and peak memory per rank
done
timed replay mpi 2 $B/replay.py "${Q[@]}"                 # replay of an archive vs xarray + dask
if [ -f $B/climate_kinds.py ]; then
  timed climate_kinds mpi 2 $B/climate_kinds.py "${Q[@]}" # climate analyses vs stats
fi
echo "bench.sh: all took $((SECONDS - START)) s"
if [ "$MODE" = full ]; then
  "$PY" $B/report.py
  "$PY" $B/targets.py || true  # the verdicts are in the report; --check is the gate
fi
