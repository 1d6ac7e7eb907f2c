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
MPI4PY_VERSION=4.1.2
H5PY_VERSION=3.16.0
APT_PACKAGES=(openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools netcdf-bin gfortran pkg-config make gcc)

log() { printf '[install] %s\n' "$*" >&2; }

# 1. apt ---------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# MPICH beside Open MPI is fine (.venv-mpich) while the alternatives stay Open
# MPI's; a switched mpicc/mpiexec/libmpi.so builds or runs against the wrong one.
if [ -e /usr/bin/mpicc ] && [ "$(readlink -f /usr/bin/mpicc)" != "$(readlink -f /usr/bin/mpicc.openmpi 2>/dev/null)" ]; then
  log "WARNING: mpicc is not Open MPI's ($(readlink -f /usr/bin/mpicc)); the alternatives were switched."
  log "         Fix: update-alternatives --auto mpi; update-alternatives --auto mpirun (docs/mpich.md)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt: all packages present"
fi

# 2. venv --------------------------------------------------------------------
BASEPY="${INSITU_BASE_PYTHON:-python3}"
# Debian's own python3 needs python3-venv for venvs, and python3-dev for the
# headers and libpython3.11.so that the libinsitu build links against.
need_py=()
"$BASEPY" -c "import venv, ensurepip" 2>/dev/null || need_py+=(python3-venv)
"$BASEPY" -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" 2>/dev/null \
  || need_py+=(python3-dev)
if [ ${#need_py[@]} -gt 0 ]; then
  log "apt: installing ${need_py[*]} for $BASEPY"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_py[@]}" >/dev/null
fi
if [ ! -x "$PY" ]; then
  log "venv: creating $VENV with $($BASEPY --version)"
  "$BASEPY" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
else
  log "venv: $VENV exists"
fi
# cffi embedding needs a shared libpython.
if [ "$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')" != "1" ]; then
  log "ERROR: $("$PY" -c 'import sys; print(sys.executable)') has no shared libpython;"
  log "       libinsitu needs one (Debian: apt-get install libpython3.11-dev; pyenv: --enable-shared)."
  exit 1
fi

# 3. pinned requirements -----------------------------------------------------
REQ_STAMP="$VENV/.insitu-requirements.sha"
req_sha=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$req_sha" ]; then
  log "pip: installing requirements.txt"
  "$PY" -m pip install -q -r "$ROOT/requirements.txt"
  echo "$req_sha" > "$REQ_STAMP"
else
  log "pip: requirements.txt already installed"
fi

# 4. mpi4py against Open MPI -------------------------------------------------
if ! "$PY" - <<PYEOF 2>/dev/null
import mpi4py, sys
assert mpi4py.__version__ == "$MPI4PY_VERSION"
from mpi4py import MPI
sys.exit(0 if "Open MPI" in MPI.Get_library_version() else 1)
PYEOF
then
  log "mpi4py: building $MPI4PY_VERSION from source against Open MPI (about 2 minutes)"
  MPICC=mpicc.openmpi "$PY" -m pip install -q --no-binary=mpi4py --no-build-isolation "mpi4py==$MPI4PY_VERSION"
else
  log "mpi4py: $MPI4PY_VERSION built against Open MPI"
fi

# 5. h5py with parallel HDF5 -------------------------------------------------
if ! "$PY" -c "import h5py, sys; sys.exit(0 if h5py.__version__ == '$H5PY_VERSION' and h5py.get_config().mpi else 1)" 2>/dev/null; then
  log "h5py: building $H5PY_VERSION from source against parallel HDF5 (about 2 minutes)"
  CC=mpicc.openmpi HDF5_MPI=ON HDF5_PKGCONFIG_NAME=hdf5-openmpi H5PY_SETUP_REQUIRES=0 \
    "$PY" -m pip install -q --no-binary=h5py --no-build-isolation "h5py==$H5PY_VERSION"
else
  log "h5py: $H5PY_VERSION with mpio"
fi

# 6. this project (builds libinsitu.so and the Fortran module) ---------------
if ! "$PY" -m insitu.config --check-build >/dev/null 2>&1; then
  log "insitu: pip install -e . (builds libinsitu)"
  "$PY" -m pip install -q --no-build-isolation --no-deps -e "$ROOT"
else
  log "insitu: installed and libinsitu up to date"
fi
export PATH="$VENV/bin:$PATH"
log "ready: $("$PY" -c 'import insitu, mpi4py, h5py, numba; print("insitu", insitu.__version__, "mpi4py", mpi4py.__version__, "h5py", h5py.__version__, "numba", numba.__version__)' 2>/dev/null || echo 'insitu not importable yet')"
