#!/usr/bin/env bash
# Install everything (idempotent) and run the whole suite, serial and MPI.
#   ./scripts/test.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/install.sh
source scripts/env.sh
# Every test has a timeout (pytest-timeout); the MPI tests also time out their
# mpiexec, so a deadlock fails instead of hanging CI.
exec "$VENV/bin/python" -m pytest -ra --timeout=600 tests "$@"
