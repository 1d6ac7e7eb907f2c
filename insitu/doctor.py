"""Check an installation: ``python -m insitu.doctor [--host PROGRAM] [--output DIR]``.

Each check prints OK, WARN or FAIL with what to do about it; the exit
status is 1 if any check failed.  Checks:

1. the interpreter has a shared libpython (cffi embedding needs one);
2. libinsitu exists and its rpath points at that libpython's directory;
3. the embedded interpreter starts and imports numpy, mpi4py, h5py, numba
   (run in a child process through libinsitu itself);
4. mpi4py's MPI library is the one the host model links (the
   ``MPI_Get_library_version`` strings, the host's read from a tiny program
   built with the same ``mpicc``, or from ``--host PROGRAM``'s libmpi);
5. h5py was built with parallel HDF5 (``mpio``);
6. numba's thread count under MPI (``NUMBA_NUM_THREADS``);
7. the output directory is writable;
8. MPI-IO: an Open MPI whose ompio can lose data (open-mpi/ompi#12718)
   without the lock setting or romio selected;
9. the MPI family (Open MPI, MPICH, Intel MPI, MVAPICH, Cray MPICH), its
   version, and the launcher this process runs under, with the size it
   announced (:mod:`insitu.launcher`);
10. which MPI library mpi4py, h5py, libinsitu's Fortran module and the host
    model (``--host``) each link: a warning when they differ (two MPIs in
    one process: ranks that each see size 1, or a crash in the first
    collective).

The compiler used for the probes is ``$MPICC``, else the one of mpi4py's
MPI family (``mpicc.openmpi``, ``mpicc.mpich``) where Debian installs both,
else ``mpicc``: with MPICH beside Open MPI, ``mpicc`` is Open MPI's.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

OK, WARN, FAIL = "OK", "WARN", "FAIL"


def check_libpython():
    libdir = sysconfig.get_config_var("LIBDIR")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return FAIL, (f"{sys.executable} has no shared libpython; libinsitu embeds Python "
                      "and needs one. Fix: use a Python built with --enable-shared "
                      "(Debian: apt-get install libpython3.11-dev; pyenv: "
                      "PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install)")
    name = sysconfig.get_config_var("LDLIBRARY")
    return OK, f"shared libpython {os.path.join(libdir, name)}"


def check_rpath():
    from . import config
    lib = config.library()
    if not os.path.exists(lib):
        return FAIL, f"{lib} is missing. Fix: pip install -e . (or ./scripts/test.sh)"
    libdir = sysconfig.get_config_var("LIBDIR")
    try:
        out = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout
    except FileNotFoundError:
        out = open(lib, "rb").read().decode("latin-1")
    paths = re.findall(r"\[([^\]]*)\]", out) if "RUNPATH" in out or "RPATH" in out else []
    found = any(libdir in p for p in paths) or libdir in out
    if not found:
        return FAIL, (f"libinsitu's rpath does not include {libdir}: the loader may pick "
                      "another libpython of the same name. Fix: rebuild with this "
                      "interpreter (pip install -e .)")
    return OK, f"libinsitu rpath includes {libdir}"


def _mpicc() -> str | None:
    """The C compiler wrapper of mpi4py's MPI (see the module docstring)."""
    if os.environ.get("MPICC"):
        return os.environ["MPICC"]
    from .launcher import mpi_family
    family = mpi_family(_mpi4py_library()).name
    own = {"Open MPI": "mpicc.openmpi", "MPICH": "mpicc.mpich"}.get(family)
    return (own and shutil.which(own)) or shutil.which("mpicc")


def check_embedded():
    """Start the embedded interpreter through libinsitu in a C host and import."""
    from . import config
    lib = config.library()
    mpicc = _mpicc()
    if not os.path.exists(lib) or mpicc is None:
        return FAIL, "cannot test: libinsitu or mpicc is missing"
    src = r"""
#include <mpi.h>
#include <stdio.h>
#include <insitu.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rc = insitu_init(MPI_Comm_c2f(MPI_COMM_WORLD), "/nonexistent/doctor.yaml");
    /* a readable config error proves Python started and imported insitu */
    printf("STATUS %d %s\n", rc, insitu_last_error());
    MPI_Finalize();
    return 0;
}
"""
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(c, "w") as fh:
            fh.write(src)
        flags = [f"-I{config.INCDIR}", f"-L{config.LIBDIR}", f"-Wl,-rpath,{config.LIBDIR}"]
        r = subprocess.run([mpicc, c, "-o", exe, *flags, "-linsitu"], capture_output=True,
                           text=True)
        if r.returncode:
            return FAIL, f"could not build a test host: {r.stderr.strip()[:300]}"
        r = subprocess.run([exe], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1"))
    m = re.search(r"STATUS (\d+) (.*)", r.stdout)
    if not m:
        return FAIL, f"the test host failed: {(r.stdout + r.stderr).strip()[-300:]}"
    if m.group(1) == "2":
        return FAIL, ("the embedded interpreter did not start or could not import insitu: "
                      f"{m.group(2)} Fix: check $INSITU_PYTHON (now "
                      f"{os.environ.get('INSITU_PYTHON', 'unset')}) and that "
                      f"{config.build_info().get('python')} has numpy, mpi4py, h5py, numba")
    if "doctor.yaml" not in m.group(2):
        return FAIL, f"unexpected answer from the embedded interpreter: {m.group(2)}"
    code = ("import numpy, mpi4py, h5py, numba; print(numpy.__version__, mpi4py.__version__, "
            "h5py.__version__, numba.__version__)")
    py = config.build_info().get("python") or sys.executable
    v = subprocess.run([os.environ.get("INSITU_PYTHON") or py, "-c", code],
                       capture_output=True, text=True)
    if v.returncode:
        return FAIL, f"the embedded interpreter cannot import its packages: {v.stderr[-300:]}"
    return OK, f"embedded Python starts through libinsitu; numpy/mpi4py/h5py/numba {v.stdout.strip()}"


def _mpi4py_library():
    from mpi4py import MPI
    return MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()


def check_mpi(host=None):
    mine = _mpi4py_library()
    if host:
        out = subprocess.run(["ldd", host], capture_output=True, text=True).stdout
        libs = re.findall(r"(libmpi[^ ]*) => ([^ ]+)", out)
        if not libs:
            return FAIL, f"{host} does not link an MPI library (ldd shows none)"
        import mpi4py.MPI as M
        m4 = subprocess.run(["ldd", M.__file__], capture_output=True, text=True).stdout
        mine_libs = dict(re.findall(r"(libmpi\.so[^ ]*) => ([^ ]+)", m4))
        host_libs = dict(libs)
        shared = set(mine_libs) & set(host_libs)
        if not shared or any(os.path.realpath(mine_libs[k]) != os.path.realpath(host_libs[k])
                             for k in shared):
            return FAIL, (f"{host} links {host_libs}, mpi4py links {mine_libs}. Fix: rebuild "
                          "mpi4py with the host's mpicc (MPICC=... pip install --no-binary "
                          "mpi4py mpi4py), and install only one MPI")
        return OK, f"{host} and mpi4py link the same libmpi"
    mpicc = _mpicc()
    if mpicc is None:
        return WARN, f"no mpicc to compare with; mpi4py uses {mine}"
    src = ('#include <mpi.h>\n#include <stdio.h>\nint main(int c,char**v){char s[8192];int n;'
           'MPI_Init(&c,&v);MPI_Get_library_version(s,&n);printf("%s",s);MPI_Finalize();}\n')
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "v.c"), "w") as fh:
            fh.write(src)
        subprocess.run([mpicc, "v.c", "-o", "v"], cwd=tmp, check=True)
        host = subprocess.run([os.path.join(tmp, "v")], capture_output=True, text=True).stdout
    host = host.replace("\x00", "").splitlines()[0].strip() if host else ""
    if host != mine:
        return FAIL, (f"{mpicc} builds against '{host}' but mpi4py uses '{mine}'. Fix: rebuild "
                      "mpi4py with that compiler (MPICC=... pip install --no-binary mpi4py), "
                      "or build the model with the compiler of mpi4py's MPI (docs/mpich.md)")
    return OK, f"{os.path.basename(mpicc)} and mpi4py use the same MPI: {mine}"


def check_h5py():
    import h5py
    if not h5py.get_config().mpi:
        return FAIL, ("h5py has no parallel HDF5. Fix: CC=mpicc HDF5_MPI=ON "
                      "HDF5_PKGCONFIG_NAME=hdf5-openmpi pip install --no-binary=h5py "
                      "--no-build-isolation h5py (see README)")
    return OK, f"h5py {h5py.__version__} with mpio, HDF5 {h5py.version.hdf5_version}"


def check_numba():
    n = os.environ.get("NUMBA_NUM_THREADS")
    if n is None:
        return WARN, ("NUMBA_NUM_THREADS is not set: under MPI each rank would start a thread "
                      "pool the size of the node. Fix: export NUMBA_NUM_THREADS=1 (or cores "
                      "per rank); insitu.run sets 1 by default")
    return OK, f"NUMBA_NUM_THREADS={n}"


def check_output(directory):
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        return FAIL, f"output directory {directory} does not exist. Fix: mkdir -p {directory}"
    try:
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return FAIL, f"cannot write in {directory}: {exc.strerror}. Fix: choose output.path elsewhere"
    return OK, f"{directory} is writable"


def check_mpiio(library=None, environ=None):
    """Warn on an Open MPI whose ompio loses cells without a lock
    (open-mpi/ompi#12718) unless this environment avoids the bug.

    A warning, not a failure: insitu's own distributed writes are
    independent and were not seen to lose data, but other collective MPI-IO
    in the same job (the model's own output) is exposed.  Safe choices are
    romio, range or whole-file locking, or no write data sieving."""
    from .mpiio import affected
    library = _mpi4py_library() if library is None else library
    env = os.environ if environ is None else environ
    if not affected(library):
        return OK, f"{library.split(',')[0]}: not affected by open-mpi/ompi#12718"
    io = env.get("OMPI_MCA_io", "")
    if ("romio" in io or "^ompio" in io
            or env.get("OMPI_MCA_fs_ufs_lock_algorithm") in ("2", "3")
            or env.get("OMPI_MCA_fbtl_posix_write_datasieving") in ("0", "false")):
        return OK, f"{library.split(',')[0]} with a safe MPI-IO setting in the environment"
    return WARN, (f"{library.split(',')[0]}: ompio's data sieving writes without a lock and "
                  "can silently lose cells in collective MPI-IO writes (open-mpi/ompi#12718, "
                  "fixed in 4.1.7 and 5.0.6). Fix: export OMPI_MCA_fs_ufs_lock_algorithm=3 "
                  "(or OMPI_MCA_io=romio321) in the job script; python -m insitu.run and "
                  "scripts/env.sh set it for you. See docs/mpiio.md")


def check_family(environ=None):
    """Name the MPI family, its version and the launcher (never fails: it
    informs; a launch of the wrong size is refused by insitu itself)."""
    from .launcher import detect, mpi_family
    family = mpi_family(_mpi4py_library())
    launch = detect(environ)
    started = f", {launch.size} process(es) ({launch.variable})" if launch.size else ""
    if family.name == "unknown":
        return WARN, (f"mpi4py's MPI library is not one insitu knows ({family.version}); "
                      f"launcher: {launch.name}{started}")
    return OK, (f"{family} (mpi4py); launcher: {launch.name}{started}; under Slurm use "
                f"srun {family.srun_option()}")


_LIBMPI = re.compile(r"\b(libmpi\.so[.\d]*|libmpich\.so[.\d]*|libmpi_ibm\.so[.\d]*|"
                     r"libmpi_cray\.so[.\d]*|libmpi_intel\.so[.\d]*) => (\S+)")


def linked_mpi(path: str) -> str | None:
    """The MPI C library ``path`` loads (after symlinks), from ``ldd``, or None."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    m = _LIBMPI.search(out)
    return os.path.realpath(m.group(2)) if m else None


def compare_links(linked: dict) -> tuple[str, str]:
    """``linked`` maps a component to the MPI library it loads (None: none,
    or unknown).  OK when every component that links one links the same."""
    found = {k: v for k, v in linked.items() if v}
    if not found:
        return WARN, "no component links an MPI library that ldd can see"
    libs = sorted(set(found.values()))
    listing = "; ".join(f"{k}: {v}" for k, v in found.items())
    if len(libs) > 1:
        return WARN, (f"two MPI libraries in one process ({listing}): ranks may each see size "
                      "1, or crash in the first collective. Fix: build every component with "
                      "the same MPI (mpi4py: MPICC=..., h5py: CC=... HDF5_PKGCONFIG_NAME=..., "
                      "the model: that MPI's mpif90); docs/mpich.md")
    return OK, f"{', '.join(found)} all link {libs[0]}"


def check_links(host=None):
    import h5py._conv
    import mpi4py.MPI
    from . import config
    linked = {"mpi4py": linked_mpi(mpi4py.MPI.__file__),
              "h5py": linked_mpi(h5py._conv.__file__)}
    fortran = os.path.join(config.LIBDIR, "libinsitu_fortran.so")
    if os.path.exists(fortran):
        linked["libinsitu_fortran"] = linked_mpi(fortran)
    if host:
        linked[f"host {os.path.basename(host)}"] = linked_mpi(host)
    return compare_links(linked)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m insitu.doctor", description=__doc__.splitlines()[0])
    p.add_argument("--host", help="the host model's executable, to compare its libmpi")
    p.add_argument("--output", default=".", help="the output directory to check (default .)")
    args = p.parse_args(argv)
    checks = [("shared libpython", check_libpython), ("libinsitu rpath", check_rpath),
              ("embedded interpreter", check_embedded), ("MPI library", lambda: check_mpi(args.host)),
              ("parallel HDF5", check_h5py), ("numba threads", check_numba),
              ("output directory", lambda: check_output(args.output)),
              ("MPI-IO", check_mpiio), ("MPI family", check_family),
              ("MPI libraries linked", lambda: check_links(args.host))]
    failed = 0
    for name, fn in checks:
        try:
            status, msg = fn()
        except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
            status, msg = FAIL, f"{type(exc).__name__}: {exc}"
        failed += status == FAIL
        print(f"[{status:4}] {name}: {msg}")
    print("insitu doctor: " + ("all checks passed" if not failed else f"{failed} check(s) failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
