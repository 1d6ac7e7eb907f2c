#!/usr/bin/env bash
# Run every benchmark (after installing, idempotently): tables on stdout, JSON
# in bench-results/.  Timings use 1 and 2 ranks (this machine has 2 cores);
# the memory benchmark also runs 4 ranks (memory per rank must stay flat).
#   ./scripts/bench.sh [--quick]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/install.sh
source scripts/env.sh
PY="$VENV/bin/python"
B=scripts/bench
"$PY" $B/handoff.py "$@"                      # 1 handoff and 7 start-up (Fortran host)
"$PY" $B/kernels.py "$@"                      # 2 statistics kernel vs numpy and bandwidth
for n in 1 2; do
  mpiexec -n "$n" "$PY" $B/collectives.py "$@" # 3 collectives per step
done
"$PY" $B/overhead.py "$@"                     # 4 in-situ overhead, Fortran heat model
for n in 1 2; do
  mpiexec -n "$n" "$PY" $B/time_to_answer.py "$@"   # 5 against writing everything
done
"$PY" $B/reprosum.py "$@"                     # 6 reproducible sums
for n in 1 2; do
  mpiexec -n "$n" "$PY" $B/flush_cost.py "$@"  # flushing the output file
done
for n in 1 2; do
  mpiexec -n "$n" "$PY" $B/verify_cost.py "$@" # output.verify on against off
done
for n in 1 2 4; do
  mpiexec -n "$n" "$PY" $B/scaling.py "$@"     # 8 per-step cost and peak memory per rank
done
