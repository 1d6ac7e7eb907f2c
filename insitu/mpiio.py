"""Safe MPI-IO defaults for Open MPI versions whose ompio loses data.

Open MPI's own MPI-IO component (ompio) does "data sieving": to write a
file region with small gaps it reads the whole span, fills in its bytes and
writes the span back.  Without a file lock that read-modify-write can
overwrite bytes another process wrote in between, and the cells read back
as fill, with no error (open-mpi/ompi#12718, "Corrupted data using parallel
hdf5").  Upstream fixed it by turning range locking on by default
(``fs_ufs_lock_algorithm=3``) in PRs #12756 (main), #12759 (v5.0.x, released
in 5.0.6) and #12760 (v4.1.x, merged in August 2024; 4.1.7 is the first
v4.1.x release after it).  Write data sieving arrived with the 4.1 series,
so 4.0.x and older do not have this bug.  We could not read 4.1.7's release
notes from here, so the v4.1.x bound is the first release after the merge,
not a documented one.

insitu writes distributed results with independent I/O, which avoids the
collective path where the loss was seen (see :mod:`insitu.writer`).  This
module is the defence in depth: on an affected version, and only if the user
has chosen none of the relevant MCA settings, it defaults
``OMPI_MCA_fs_ufs_lock_algorithm=3``.  MCA parameters are read at
``MPI_Init``, so :func:`apply_defaults` must run before ``mpi4py.MPI`` is
imported.  See docs/mpiio.md.
"""
from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import re
import subprocess
from typing import Mapping, MutableMapping, Optional

log = logging.getLogger("insitu")

#: The setting insitu defaults on an affected Open MPI: lock only the ranges
#: written, which is what the fixed releases do by default.
LOCK_SETTING = {"OMPI_MCA_fs_ufs_lock_algorithm": "3"}

#: If the user set any of these, they chose their MPI-IO path: leave it alone.
USER_CHOICES = ("OMPI_MCA_io", "OMPI_MCA_fs_ufs_lock_algorithm", "OMPI_MCA_fcoll",
                "OMPI_MCA_fbtl_posix_write_datasieving")

_VERSION = re.compile(r"Open MPI v(\d+)\.(\d+)\.(\d+)")


def open_mpi_version(library_version: str) -> Optional[tuple[int, int, int]]:
    """(major, minor, release) from an ``MPI_Get_library_version`` or
    ``ompi_info --version`` string, or None if it is not Open MPI."""
    m = _VERSION.search(library_version or "")
    return tuple(int(g) for g in m.groups()) if m else None


def affected(library_version: str) -> bool:
    """Whether this MPI library has ompio's unlocked data sieving by default
    (Open MPI 4.1.0-4.1.6 and 5.0.0-5.0.5).

    A distribution may have backported the fix without changing the version;
    that cannot be seen here, and the lock setting is harmless there."""
    v = open_mpi_version(library_version)
    if v is None:
        return False
    return (4, 1, 0) <= v < (4, 1, 7) or (5, 0, 0) <= v < (5, 0, 6)


def mca_defaults(library_version: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The MCA settings to add to ``environ`` (pure: nothing is changed).

    Empty unless the library is an affected Open MPI and the user has set
    none of :data:`USER_CHOICES` (an explicit choice, romio included, wins)."""
    if not affected(library_version):
        return {}
    if any(k in environ for k in USER_CHOICES):
        return {}
    return dict(LOCK_SETTING)


def _libmpi_path() -> Optional[str]:
    """The libmpi that mpi4py's extension links, found without importing it
    (importing ``mpi4py.MPI`` calls ``MPI_Init``)."""
    spec = importlib.util.find_spec("mpi4py.MPI")
    if spec is None or not spec.origin:
        return None
    try:
        out = subprocess.run(["ldd", spec.origin], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"libmpi\.so[.\d]* => (\S+)", out)
    return m.group(1) if m else None


def library_version() -> str:
    """``MPI_Get_library_version`` of the MPI that mpi4py will use, before
    ``MPI_Init``: the MPI standard allows that call before initialisation.

    Falls back to ``ompi_info --version`` from PATH, then to ""."""
    path = _libmpi_path()
    if path:
        try:
            # RTLD_GLOBAL, as mpi4py itself loads Open MPI's libmpi: its
            # plugins need libmpi's symbols in the global scope.
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            buf = ctypes.create_string_buffer(8192)  # >= MPI_MAX_LIBRARY_VERSION_STRING
            n = ctypes.c_int(0)
            if lib.MPI_Get_library_version(buf, ctypes.byref(n)) == 0:
                return buf.value.decode(errors="replace")
        except (OSError, AttributeError):
            pass
    try:
        return subprocess.run(["ompi_info", "--version"], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def apply_defaults(environ: Optional[MutableMapping[str, str]] = None,
                   version: Optional[str] = None) -> dict[str, str]:
    """Add :func:`mca_defaults` to ``environ`` (default ``os.environ``) and
    return what was added.  Call it before ``from mpi4py import MPI``."""
    environ = os.environ if environ is None else environ
    if any(k in environ for k in USER_CHOICES):
        return {}  # the user chose: skip even looking up the version
    added = mca_defaults(library_version() if version is None else version, environ)
    environ.update(added)
    if added:
        log.debug("affected Open MPI (open-mpi/ompi#12718): defaulting %s", added)
    return added
