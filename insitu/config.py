"""Where libinsitu lives, for other builds: ``python -m insitu.config --OPTION``.

Like ``python -m mpi4py --prefix``, each option prints one line, so a
Makefile can say::

    FFLAGS  += $(shell $(PYTHON) -m insitu.config --fflags)
    LDFLAGS += $(shell $(PYTHON) -m insitu.config --ldflags)

or, with pkg-config::

    PKG_CONFIG_PATH=$(python -m insitu.config --pkgconfig) pkg-config --cflags --libs insitu

(The YAML run config is handled by :mod:`insitu.options`.)
"""
from __future__ import annotations

import json
import os
import sys

LIBDIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib")
INCDIR = os.path.join(LIBDIR, "include")
SHIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fortran_shim")


def build_info() -> dict:
    try:
        with open(os.path.join(LIBDIR, "build-info.json")) as fh:
            return json.load(fh)
    except OSError:
        return {}


def library() -> str:
    """Path of libinsitu.so."""
    return os.path.join(LIBDIR, "libinsitu.so")


def build_is_current() -> bool:
    """True when libinsitu exists and was built from the current shim sources."""
    info = build_info()
    if not info or not os.path.exists(library()):
        return False
    if not os.path.isdir(SHIM):  # an installed (non-editable) copy: trust it
        return True
    sys.path.insert(0, SHIM)
    try:
        import build_libinsitu
        return info.get("sources_sha256") == build_libinsitu.sources_digest()
    finally:
        sys.path.remove(SHIM)


def _ldflags() -> str:
    libs = "-linsitu"
    if os.path.exists(os.path.join(LIBDIR, "libinsitu_fortran.so")):
        libs = "-linsitu_fortran -linsitu"
    return f"-L{LIBDIR} -Wl,-rpath,{LIBDIR} {libs}"


def _version() -> str:
    from . import __version__
    return __version__


OPTIONS = {
    "--fflags": ("compiler flags for Fortran (module directory)", lambda: f"-I{INCDIR}"),
    "--cflags": ("compiler flags for C (include directory)", lambda: f"-I{INCDIR}"),
    "--ldflags": ("linker flags (-L, rpath, -linsitu_fortran -linsitu)", _ldflags),
    "--libdir": ("directory holding libinsitu.so", lambda: LIBDIR),
    "--include": ("directory holding insitu.h and insitu.mod", lambda: INCDIR),
    "--version": ("insitu version", _version),
    "--python": ("the interpreter libinsitu embeds", lambda: build_info().get("python", "")),
    "--pkgconfig": ("directory holding insitu.pc (for PKG_CONFIG_PATH)",
                    lambda: os.path.join(LIBDIR, "pkgconfig")),
}


def usage() -> str:
    lines = ["usage: python -m insitu.config OPTION", "", "options:"]
    lines += [f"  {k:<14} {v[0]}" for k, v in OPTIONS.items()]
    lines += [f"  {'--check-build':<14} exit 0 if libinsitu is built from the current sources"]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["-h"], ["--help"]):
        print(usage())
        return 0
    if argv == ["--check-build"]:
        return 0 if build_is_current() else 1
    if len(argv) != 1 or argv[0] not in OPTIONS:
        print(usage(), file=sys.stderr)
        return 1
    if argv[0] not in ("--version",) and not os.path.exists(library()):
        print(f"insitu.config: libinsitu is not built ({library()} is missing); "
              "run ./scripts/test.sh or pip install -e .", file=sys.stderr)
        return 1
    print(OPTIONS[argv[0]][1]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
