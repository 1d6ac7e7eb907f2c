#!/usr/bin/env bash
# Install everything insitu needs, idempotently. Sourced by demo.sh and test.sh.
#   ./scripts/install.sh [--mpi openmpi|mpich]
#
# Steps, each skipped when already done:
#   1. apt: Open MPI, Debian's parallel HDF5 for Open MPI, hdf5-tools, gfortran
#   2. a venv at .venv
#   3. pinned pure-Python/binary wheels from requirements.txt
#   4. mpi4py built from source against Open MPI
#   5. h5py built from source against parallel HDF5 (h5py.get_config().mpi)
#   6. pip install -e . of this project, which builds libinsitu.so
# Steps 1-5 are functions of scripts/install-steps.sh, which
# scripts/install-mpich.sh uses too: one place for the pins and the checks.
#
# --mpi mpich (or INSITU_MPI=mpich) builds a second venv, .venv-mpich, against
# Debian's MPICH and its parallel HDF5 instead, beside the Open MPI one
# (scripts/install-mpich.sh; docs/mpich.md).  The default is openmpi.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${BASH_SOURCE[0]}" = "$0" ]; then   # run, not sourced: parse our own option
  while [ $# -gt 0 ]; do
    case "$1" in
      --mpi) INSITU_MPI="${2:?--mpi needs openmpi or mpich}"; shift 2 ;;
      --mpi=*) INSITU_MPI="${1#--mpi=}"; shift ;;
      *) printf '[install] unknown option %s (usage: install.sh [--mpi openmpi|mpich])\n' "$1" >&2; exit 2 ;;
    esac
  done
fi
case "${INSITU_MPI:=openmpi}" in
  openmpi) ;;
  mpich) source "$ROOT/scripts/install-mpich.sh"; return 0 2>/dev/null || exit 0 ;;
  *) printf '[install] --mpi %s: expected openmpi or mpich\n' "$INSITU_MPI" >&2; exit 2 ;;
esac
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
APT_PACKAGES=(openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools netcdf-bin gfortran pkg-config make gcc)
# Optional apt packages (tools beside the core build, e.g. a browser for the
# plot tests): append them to APT_PACKAGES here, one line with its reason.

LOG_PREFIX=install
source "$ROOT/scripts/install-steps.sh"   # log, apt_ensure, venv_ensure, ... and the pins

# 1. apt ---------------------------------------------------------------------
# MPICH beside Open MPI is fine (.venv-mpich) while the alternatives stay Open
# MPI's; a switched mpicc/mpiexec/libmpi.so builds or runs against the wrong one.
if [ -e /usr/bin/mpicc ] && [ "$(readlink -f /usr/bin/mpicc)" != "$(readlink -f /usr/bin/mpicc.openmpi 2>/dev/null)" ]; then
  log "WARNING: mpicc is not Open MPI's ($(readlink -f /usr/bin/mpicc)); the alternatives were switched."
  log "         Fix: update-alternatives --auto mpi; update-alternatives --auto mpirun (docs/mpich.md)"
fi
apt_ensure "${APT_PACKAGES[@]}"
# The live view's browser test (tests/test_live.py): Debian's chromium and its
# driver, best effort: where they cannot be installed that test is skipped,
# saying why, and the rest of the install goes on.
BROWSER_PACKAGES=(chromium chromium-driver)
( apt_ensure "${BROWSER_PACKAGES[@]}" ) \
  || log "WARNING: could not install ${BROWSER_PACKAGES[*]}: tests/test_live.py's browser test will be skipped"

# 2. venv --------------------------------------------------------------------
BASEPY="${INSITU_BASE_PYTHON:-python3}"
base_python_ensure "$BASEPY"
venv_ensure "$VENV" "$BASEPY"

# 3. pinned requirements -----------------------------------------------------
requirements_ensure "$VENV" "$ROOT/requirements.txt"

# 4. mpi4py against Open MPI -------------------------------------------------
mpi4py_ensure "$PY" "Open MPI" mpicc.openmpi

# 5. h5py with parallel HDF5 -------------------------------------------------
h5py_ensure "$PY" mpicc.openmpi hdf5-openmpi

# 6. this project (builds libinsitu.so and the Fortran module) ---------------
if ! "$PY" -m insitu.config --check-build >/dev/null 2>&1; then
  log "insitu: pip install -e . (builds libinsitu)"
  "$PY" -m pip install -q --no-build-isolation --no-deps -e "$ROOT"
else
  log "insitu: installed and libinsitu up to date"
fi
export PATH="$VENV/bin:$PATH"
log "ready: $("$PY" -c 'import insitu, mpi4py, h5py, numba; print("insitu", insitu.__version__, "mpi4py", mpi4py.__version__, "h5py", h5py.__version__, "numba", numba.__version__)' 2>/dev/null || echo 'insitu not importable yet')"
