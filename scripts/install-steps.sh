# The build steps shared by scripts/install.sh (.venv, Open MPI) and
# scripts/install-mpich.sh (.venv-mpich, MPICH): sourced by both, so that a
# fix to one step (a version pin, a check that a build links the right MPI,
# the shared-libpython test) reaches both venvs.  Every step checks first and
# does nothing when its work is done, which keeps both installs idempotent.
#
# The caller sets LOG_PREFIX (the tag of its log lines) before using these;
# the steps take the venv, the compiler wrapper and the library to expect as
# arguments, so nothing here knows which MPI it builds for.

# The wheels built from source, the same for both MPIs.
MPI4PY_VERSION=4.1.2
H5PY_VERSION=3.16.0

log() { printf '[%s] %s\n' "${LOG_PREFIX:-install}" "$*" >&2; }

_apt_install() {
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# apt_ensure PACKAGE...: install those of the packages not installed yet.
apt_ensure() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    _apt_install "${missing[@]}"
  else
    log "apt: all packages present"
  fi
}

# base_python_ensure BASEPY: Debian's own python3 needs python3-venv for
# venvs, and python3-dev for the headers and libpython3.11.so that the
# libinsitu build links against.
base_python_ensure() {
  local basepy="$1" need=()
  "$basepy" -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
  "$basepy" -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" 2>/dev/null \
    || need+=(python3-dev)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt: installing ${need[*]} for $basepy"
    _apt_install "${need[@]}"
  fi
}

# venv_ensure VENV BASEPY: the venv, created when absent; refused (exit 1)
# when its Python has no shared libpython, which cffi embedding needs.
venv_ensure() {
  local venv="$1" basepy="$2" py="$1/bin/python"
  if [ ! -x "$py" ]; then
    log "venv: creating $venv with $($basepy --version)"
    "$basepy" -m venv "$venv"
    "$py" -m pip install -q --upgrade pip
  else
    log "venv: $venv exists"
  fi
  if [ "$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')" != "1" ]; then
    log "ERROR: $("$py" -c 'import sys; print(sys.executable)') has no shared libpython;"
    log "       libinsitu needs one (Debian: apt-get install libpython3.11-dev; pyenv: --enable-shared)."
    exit 1
  fi
}

# requirements_ensure VENV REQUIREMENTS: pip install -r, skipped while the
# file's hash matches the one stamped in the venv at its last install.
requirements_ensure() {
  local venv="$1" req="$2" stamp="$1/.insitu-requirements.sha" sha
  sha=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sha" ]; then
    log "pip: installing $(basename "$req")"
    "$venv/bin/python" -m pip install -q -r "$req"
    echo "$sha" > "$stamp"
  else
    log "pip: $(basename "$req") already installed"
  fi
}

# mpi4py_ensure PY LIBRARY MPICC [PIP_CACHE]: mpi4py $MPI4PY_VERSION built
# from source with MPICC, unless the installed one is that version and its
# MPI.Get_library_version() names LIBRARY ("Open MPI", "MPICH").  pip
# caches a --no-binary build by version only, so the second MPI's builds
# pass a PIP_CACHE of their own, and reinstall over the first MPI's wheel.
mpi4py_ensure() {
  local py="$1" library="$2" mpicc="$3" cache="${4:-}"
  if "$py" - "$MPI4PY_VERSION" "$library" 2>/dev/null <<'PYEOF'
import sys
import mpi4py
assert mpi4py.__version__ == sys.argv[1]
from mpi4py import MPI
sys.exit(0 if sys.argv[2] in MPI.Get_library_version() else 1)
PYEOF
  then
    log "mpi4py: $MPI4PY_VERSION built against $library"
  elif [ -n "$cache" ]; then
    log "mpi4py: building $MPI4PY_VERSION against $library (about 2 minutes, or seconds from the cache $cache)"
    PIP_CACHE_DIR="$cache" MPICC="$mpicc" \
      "$py" -m pip install -q --force-reinstall --no-deps --no-binary=mpi4py --no-build-isolation \
      "mpi4py==$MPI4PY_VERSION"
  else
    log "mpi4py: building $MPI4PY_VERSION from source against $library (about 2 minutes)"
    MPICC="$mpicc" "$py" -m pip install -q --no-binary=mpi4py --no-build-isolation "mpi4py==$MPI4PY_VERSION"
  fi
}

# h5py_ensure PY CC HDF5_PKGCONFIG [HDF5_LIBRARY PIP_CACHE]: h5py
# $H5PY_VERSION built from source against the parallel HDF5 of pkg-config
# name HDF5_PKGCONFIG, unless the installed one is that version with mpio
# (and, given HDF5_LIBRARY, links a library of that name: both HDF5s give
# mpio, only the link tells them apart).  PIP_CACHE as for mpi4py.
h5py_ensure() {
  local py="$1" cc="$2" pkgconfig="$3" library="${4:-}" cache="${5:-}"
  if "$py" - "$H5PY_VERSION" "$library" 2>/dev/null <<'PYEOF'
import subprocess
import sys
import h5py
ok = h5py.__version__ == sys.argv[1] and h5py.get_config().mpi
if ok and sys.argv[2]:
    import h5py._conv as m
    ok = sys.argv[2] in subprocess.run(["ldd", m.__file__], capture_output=True, text=True).stdout
sys.exit(0 if ok else 1)
PYEOF
  then
    log "h5py: $H5PY_VERSION with mpio${library:+ ($library)}"
  elif [ -n "$cache" ]; then
    log "h5py: building $H5PY_VERSION against $pkgconfig (about 2 minutes, or seconds from the cache)"
    PIP_CACHE_DIR="$cache" CC="$cc" HDF5_MPI=ON HDF5_PKGCONFIG_NAME="$pkgconfig" H5PY_SETUP_REQUIRES=0 \
      "$py" -m pip install -q --force-reinstall --no-deps --no-binary=h5py --no-build-isolation \
      "h5py==$H5PY_VERSION"
  else
    log "h5py: building $H5PY_VERSION from source against parallel HDF5 (about 2 minutes)"
    CC="$cc" HDF5_MPI=ON HDF5_PKGCONFIG_NAME="$pkgconfig" H5PY_SETUP_REQUIRES=0 \
      "$py" -m pip install -q --no-binary=h5py --no-build-isolation "h5py==$H5PY_VERSION"
  fi
}
