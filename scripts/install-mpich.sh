#!/usr/bin/env bash
# The MPICH-family venv, .venv-mpich, beside the Open MPI one: sourced by
# `scripts/install.sh --mpi mpich` (docs/mpich.md).  Idempotent; every step
# is skipped when done.
#
#   1. apt: mpich, libmpich-dev, libhdf5-mpich-dev (Debian gives them priority
#      40 against Open MPI's 50, so mpicc, mpiexec and libmpi.so stay Open
#      MPI's; checked after the install, and refused if they moved)
#   2. a venv at .venv-mpich, the pinned wheels of requirements.txt
#   3. mpi4py and h5py built from source with mpicc.mpich and hdf5-mpich.
#      pip caches a --no-binary build by the package's version only, so an
#      Open MPI build in ~/.cache/pip would be reused here (and the reverse):
#      these two builds get their own cache, ~/.cache/insitu-pip-mpich, which
#      keeps a second fresh venv as fast as the Open MPI one (seconds)
#   4. insitu itself: .venv-mpich/insitu-src holds links to the sources and
#      its own insitu/_lib, where libinsitu and the Fortran module are built
#      with mpif90.mpich; `pip install -e .` would build into the work tree's
#      insitu/_lib, which belongs to .venv.  A .pth file puts insitu-src on
#      the venv's path.  Run with PYTHONSAFEPATH=1 (scripts/env.sh does, for
#      INSITU_MPI=mpich) so that a run from the work tree does not import the
#      work tree's insitu, whose _lib is Open MPI's.
set -euo pipefail

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
VENV="$ROOT/.venv-mpich"
PY="$VENV/bin/python"
MPI4PY_VERSION=4.1.2
H5PY_VERSION=3.16.0
MPICH_PIP_CACHE="${INSITU_MPICH_PIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/insitu-pip-mpich}"
APT_PACKAGES=(mpich libmpich-dev libhdf5-mpich-dev hdf5-tools gfortran pkg-config make gcc)

log() { printf '[install mpich] %s\n' "$*" >&2; }

# 1. apt ---------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt: all packages present"
fi
# The generic names must stay Open MPI's when Open MPI is installed.
if [ -e /usr/bin/mpicc.openmpi ]; then
  for name in mpicc mpiexec mpif90; do
    if [ "$(readlink -f "/usr/bin/$name")" = "$(readlink -f "/usr/bin/$name.mpich")" ]; then
      log "ERROR: /usr/bin/$name is MPICH's: the alternatives were switched. Open MPI's"
      log "       venv (.venv) would build or run against MPICH. Fix:"
      log "       update-alternatives --auto mpi; update-alternatives --auto mpirun"
      exit 1
    fi
  done
fi

# 2. venv and pinned requirements --------------------------------------------
BASEPY="${INSITU_BASE_PYTHON:-python3}"
if [ ! -x "$PY" ]; then
  log "venv: creating $VENV with $($BASEPY --version)"
  "$BASEPY" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
else
  log "venv: $VENV exists"
fi
if [ "$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')" != "1" ]; then
  log "ERROR: $PY has no shared libpython; libinsitu needs one (see install.sh)."
  exit 1
fi
REQ_STAMP="$VENV/.insitu-requirements.sha"
req_sha=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$req_sha" ]; then
  log "pip: installing requirements.txt"
  "$PY" -m pip install -q -r "$ROOT/requirements.txt"
  echo "$req_sha" > "$REQ_STAMP"
else
  log "pip: requirements.txt already installed"
fi

# 3. mpi4py and h5py against MPICH, with their own wheel cache ----------------
if ! "$PY" - <<PYEOF 2>/dev/null
import mpi4py, sys
assert mpi4py.__version__ == "$MPI4PY_VERSION"
from mpi4py import MPI
sys.exit(0 if "MPICH" in MPI.Get_library_version() else 1)
PYEOF
then
  log "mpi4py: building $MPI4PY_VERSION against MPICH (about 2 minutes, or seconds from the cache $MPICH_PIP_CACHE)"
  PIP_CACHE_DIR="$MPICH_PIP_CACHE" MPICC=mpicc.mpich \
    "$PY" -m pip install -q --force-reinstall --no-deps --no-binary=mpi4py --no-build-isolation \
    "mpi4py==$MPI4PY_VERSION"
else
  log "mpi4py: $MPI4PY_VERSION built against MPICH"
fi
if ! "$PY" - <<PYEOF 2>/dev/null
import h5py, sys
ok = h5py.__version__ == "$H5PY_VERSION" and h5py.get_config().mpi
import subprocess, h5py._conv as m
libs = subprocess.run(["ldd", m.__file__], capture_output=True, text=True).stdout
sys.exit(0 if ok and "libhdf5_mpich" in libs else 1)
PYEOF
then
  log "h5py: building $H5PY_VERSION against MPICH's parallel HDF5 (about 2 minutes, or seconds from the cache)"
  PIP_CACHE_DIR="$MPICH_PIP_CACHE" CC=mpicc.mpich HDF5_MPI=ON HDF5_PKGCONFIG_NAME=hdf5-mpich \
    H5PY_SETUP_REQUIRES=0 \
    "$PY" -m pip install -q --force-reinstall --no-deps --no-binary=h5py --no-build-isolation \
    "h5py==$H5PY_VERSION"
else
  log "h5py: $H5PY_VERSION with mpio over MPICH"
fi

# 4. insitu from the work tree, libinsitu built with mpif90.mpich ------------
SRC="$VENV/insitu-src"
mkdir -p "$SRC/insitu/_lib"
# Links to every source entry but _lib (and caches); stale links go.
for link in "$SRC"/insitu/* "$SRC"/insitu/.[!.]*; do
  [ -L "$link" ] && [ ! -e "$link" ] && rm -f "$link"
done
for entry in "$ROOT"/insitu/*; do
  name="$(basename "$entry")"
  case "$name" in _lib|__pycache__) continue ;; esac
  [ -L "$SRC/insitu/$name" ] || ln -s "$entry" "$SRC/insitu/$name"
done
[ -L "$SRC/fortran_shim" ] || ln -s "$ROOT/fortran_shim" "$SRC/fortran_shim"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$SRC" > "$SITE/insitu-mpich-src.pth"
if ! (cd / && PYTHONSAFEPATH=1 "$PY" -m insitu.config --check-build >/dev/null 2>&1) \
    || [ "$(cd / && PYTHONSAFEPATH=1 "$PY" -c 'from insitu import config; print(config.build_info().get("fortran_compiler"))')" != "$(command -v mpif90.mpich)" ]; then
  log "insitu: building libinsitu and the Fortran module with mpif90.mpich into $SRC/insitu/_lib"
  (cd / && INSITU_FC="$(command -v mpif90.mpich)" PYTHONSAFEPATH=1 \
    "$PY" "$ROOT/fortran_shim/build_libinsitu.py" "$SRC/insitu/_lib" >/dev/null)
else
  log "insitu: libinsitu for MPICH up to date"
fi
log "ready: $(cd / && PYTHONSAFEPATH=1 "$PY" -c 'import insitu, mpi4py, h5py; from mpi4py import MPI; print("insitu from", insitu.__file__, "mpi4py", mpi4py.__version__, MPI.Get_library_version().splitlines()[0], "h5py", h5py.__version__)' 2>/dev/null || echo 'insitu not importable yet')"
