#!/usr/bin/env bash
# The MPICH-family venv, .venv-mpich, beside the Open MPI one: sourced by
# `scripts/install.sh --mpi mpich` (docs/mpich.md).  Idempotent; every step
# is skipped when done.  Steps 1-3 are the functions of
# scripts/install-steps.sh that install.sh uses for .venv, given MPICH's names.
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
MPICH_PIP_CACHE="${INSITU_MPICH_PIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/insitu-pip-mpich}"
APT_PACKAGES=(mpich libmpich-dev libhdf5-mpich-dev hdf5-tools gfortran pkg-config make gcc)

LOG_PREFIX="install mpich"
source "$ROOT/scripts/install-steps.sh"   # log, apt_ensure, venv_ensure, ... and the pins

# 1. apt ---------------------------------------------------------------------
apt_ensure "${APT_PACKAGES[@]}"
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
base_python_ensure "$BASEPY"
venv_ensure "$VENV" "$BASEPY"
requirements_ensure "$VENV" "$ROOT/requirements.txt"

# 3. mpi4py and h5py against MPICH, with their own wheel cache ----------------
mpi4py_ensure "$PY" MPICH mpicc.mpich "$MPICH_PIP_CACHE"
h5py_ensure "$PY" mpicc.mpich hdf5-mpich libhdf5_mpich "$MPICH_PIP_CACHE"

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
