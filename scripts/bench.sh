#!/usr/bin/env bash
# Run the benchmarks (after installing, idempotently); tables on stdout,
# JSON in bench-results/.  Time with 1 and 2 ranks: this machine has 2 cores.
#   ./scripts/bench.sh [--quick]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/install.sh
source scripts/env.sh
for n in 1 2; do
  mpiexec -n "$n" "$VENV/bin/python" scripts/bench/flush_cost.py "$@"
done
"$VENV/bin/python" scripts/bench/reprosum.py "$@"
