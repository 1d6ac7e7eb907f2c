"""Build libinsitu.so (cffi embedding) and the Fortran module over it.

Run by ``setup.py`` (``pip install -e .``) or by hand::

    python fortran_shim/build_libinsitu.py OUTDIR

OUTDIR receives::

    libinsitu.so          C ABI of insitu.h, embeds Python
    libinsitu_fortran.so  the Fortran module's procedures (needs mpif90)
    include/insitu.h      the header
    include/insitu.mod    the Fortran module
    build-info.json       what was built with what

libinsitu gets an rpath to the libpython it was built against (without it
the loader may pick another libpython of the same soname), and the path of
the building interpreter is baked in as the embedded program name, so the
embedded interpreter finds this venv's site-packages.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("insitu.h", "libinsitu.c", "insitu.f90", "build_libinsitu.py")

EMBEDDING_API = """
    int _insitu_py_init(int fcomm, const char *config_path, int64_t restart_step);
    int _insitu_py_declare(const char *name, int dtype, int ndim,
                           const int64_t *global_shape, const int64_t *offset,
                           const int64_t *local_shape, const int64_t *halo_lo,
                           const int64_t *halo_hi, int order);
    int _insitu_py_step(int64_t step, double time, int moved);
    int _insitu_py_checkpoint(int64_t step);
    int _insitu_py_finalize(void);
"""

# C helpers the Python side calls through `lib`.
CDEF = """
    void _insitu_set_error(const char *msg);
    void _insitu_set_rank(int rank);
    int _insitu_field_count(void);
    int _insitu_moved(int *index, uintptr_t *address);
    void _insitu_forget_moved(void);
    void _insitu_set_cadence(const int64_t *periods, int n);
    int _insitu_take_idle(int64_t *step, double *time);
"""

INIT_CODE = """
from _libinsitu import ffi, lib
import insitu.cabi
insitu.cabi.install(ffi, lib)
"""


def sources_digest() -> str:
    import hashlib
    h = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(HERE, name), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def build_c(outdir: str, python: str) -> str:
    libdir = sysconfig.get_config_var("LIBDIR")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise SystemExit(f"{sys.executable} has no shared libpython; libinsitu needs one")
    ffi = cffi.FFI()
    ffi.embedding_api(EMBEDDING_API)
    ffi.cdef(CDEF)
    with open(os.path.join(HERE, "libinsitu.c")) as fh:
        csrc = fh.read()
    # The embedding_api prototypes must be visible before libinsitu.c uses them.
    prelude = EMBEDDING_API.replace("    int ", "CFFI_DLLEXPORT int ")
    ffi.set_source(
        "_libinsitu", csrc.replace('#include "insitu.h"', '#include "insitu.h"\n' + prelude),
        include_dirs=[HERE],
        define_macros=[("INSITU_DEFAULT_PYTHON", json.dumps(python))],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
        extra_link_args=[f"-Wl,-rpath,{libdir}"],
        library_dirs=[libdir],
        py_limited_api=False,
    )
    ffi.embedding_init_code(INIT_CODE)
    with tempfile.TemporaryDirectory() as tmp:
        built = ffi.compile(tmpdir=tmp, target="libinsitu.so", verbose=False)
        dest = os.path.join(outdir, "libinsitu.so")
        shutil.copy2(built, dest + ".tmp")
        os.replace(dest + ".tmp", dest)
    return dest


def build_fortran(outdir: str) -> str | None:
    fc = os.environ.get("INSITU_FC") or shutil.which("mpif90")
    if not fc:
        print("build_libinsitu: no mpif90 found; skipping the Fortran module", file=sys.stderr)
        return None
    incdir = os.path.join(outdir, "include")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([fc, "-O2", "-fPIC", "-shared", "-J", tmp,
                        os.path.join(HERE, "insitu.f90"),
                        "-o", os.path.join(tmp, "libinsitu_fortran.so"),
                        f"-L{outdir}", "-linsitu", f"-Wl,-rpath,{outdir}"], check=True)
        shutil.copy2(os.path.join(tmp, "insitu.mod"), os.path.join(incdir, "insitu.mod"))
        shutil.copy2(os.path.join(tmp, "libinsitu_fortran.so"),
                     os.path.join(outdir, "libinsitu_fortran.so"))
    return fc


def write_pkgconfig(outdir: str) -> str:
    """insitu.pc, so that ``pkg-config --cflags --libs insitu`` works with
    ``PKG_CONFIG_PATH=$(python -m insitu.config --libdir)/pkgconfig``."""
    sys.path.insert(0, os.path.dirname(HERE))
    try:
        from insitu import __version__
    finally:
        sys.path.pop(0)
    os.makedirs(os.path.join(outdir, "pkgconfig"), exist_ok=True)
    path = os.path.join(outdir, "pkgconfig", "insitu.pc")
    with open(path, "w") as fh:
        fh.write(f"""prefix={outdir}
libdir=${{prefix}}
includedir=${{prefix}}/include

Name: insitu
Description: In-situ analysis of MPI simulations: the C ABI of libinsitu
Version: {__version__}
Cflags: -I${{includedir}}
Libs: -L${{libdir}} -Wl,-rpath,${{libdir}} -linsitu
""")
    return path


def build(outdir: str, python: str | None = None) -> dict:
    outdir = os.path.abspath(outdir)
    os.makedirs(os.path.join(outdir, "include"), exist_ok=True)
    python = python or sys.executable
    shutil.copy2(os.path.join(HERE, "insitu.h"), os.path.join(outdir, "include", "insitu.h"))
    build_c(outdir, python)
    fc = build_fortran(outdir)
    write_pkgconfig(outdir)
    info = {"python": python, "libpython_dir": sysconfig.get_config_var("LIBDIR"),
            "fortran_compiler": fc, "sources_sha256": sources_digest()}
    with open(os.path.join(outdir, "build-info.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    return info


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} OUTDIR")
    print(json.dumps(build(sys.argv[1]), indent=1))
