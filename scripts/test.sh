#!/usr/bin/env bash
# Install everything (idempotent) and run the whole suite, serial and MPI.
#   ./scripts/test.sh [pytest args...]
#   ./scripts/test.sh --mpi mpich [pytest args...]
#
# --mpi mpich builds .venv-mpich (scripts/install.sh --mpi mpich) and runs
# tests/test_mpich.py: the MPI suite (tests/mpi) under MPICH's mpiexec at 1
# and 2 ranks (MPICH 4.0 busy-polls: more ranks than cores make every
# collective take milliseconds), the same data as Open MPI from the Python
# stand-in and the Fortran model, srun --mpi=pmi2 and the guard under the
# wrong --mpi, doctor, and the alternatives still Open MPI's (docs/mpich.md).
# .ci/run runs both.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MPI_CHOICE=openmpi
case "${1:-}" in
  --mpi) MPI_CHOICE="${2:?--mpi needs openmpi or mpich}"; shift 2 ;;
  --mpi=*) MPI_CHOICE="${1#--mpi=}"; shift ;;
esac
INSITU_MPI=openmpi source scripts/install.sh  # .venv: the driver, and the Open MPI side
source scripts/env.sh
# Every test has a timeout (pytest-timeout); the MPI tests also time out their
# mpiexec, so a deadlock fails instead of hanging CI.
case "$MPI_CHOICE" in
  openmpi) exec "$VENV/bin/python" -m pytest -ra --timeout=600 tests "$@" ;;
  mpich)
    # The driver is .venv's pytest; the ranks run .venv-mpich's Python.
    DRIVER="$VENV/bin/python"
    INSITU_MPI=mpich source scripts/install.sh
    export INSITU_MPICH_SUITE=1
    exec "$DRIVER" -m pytest -ra --timeout=900 tests/test_mpich.py "$@" ;;
  *) echo "test.sh: --mpi $MPI_CHOICE: expected openmpi or mpich" >&2; exit 2 ;;
esac
