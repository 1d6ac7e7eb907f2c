"""python -m insitu.doctor: every check passes here, and each fails, with a
fix, on a setup broken on purpose where that is practical."""
import shutil
import subprocess

from conftest import PYTHON, ROOT, mpi_env, run


def doctor(*args, env=None):
    return subprocess.run([PYTHON, "-m", "insitu.doctor", *args], capture_output=True,
                          text=True, env=env or mpi_env(), timeout=300, cwd=ROOT)


def test_a_healthy_install_passes(libinsitu, tmp_path):
    r = doctor("--output", str(tmp_path))
    assert r.returncode == 0, r.stdout
    for check in ("shared libpython", "libinsitu rpath", "embedded interpreter", "MPI library",
                  "parallel HDF5", "numba threads", "output directory"):
        assert f"[OK  ] {check}" in r.stdout, r.stdout


def test_broken_embedded_interpreter_is_reported(libinsitu, tmp_path):
    r = doctor(env=mpi_env({"INSITU_PYTHON": str(tmp_path / "no" / "python")}))
    assert r.returncode == 1
    assert "[FAIL] embedded interpreter" in r.stdout and "INSITU_PYTHON" in r.stdout


def test_missing_output_directory_is_reported(tmp_path):
    r = doctor("--output", str(tmp_path / "missing"))
    assert r.returncode == 1 and "[FAIL] output directory" in r.stdout and "mkdir -p" in r.stdout


def test_numba_threads_unset_is_a_warning():
    env = mpi_env()
    env.pop("NUMBA_NUM_THREADS")
    r = doctor(env=env)
    assert "[WARN] numba threads" in r.stdout and "export NUMBA_NUM_THREADS=1" in r.stdout


def test_host_without_mpi_is_reported():
    r = doctor("--host", shutil.which("ls"))
    assert r.returncode == 1 and "[FAIL] MPI library" in r.stdout and "does not link" in r.stdout


def test_host_with_the_same_mpi_passes(libinsitu, tmp_path):
    for f in ("heat2d.f90", "Makefile"):
        shutil.copy(ROOT / "examples" / "fortran" / f, tmp_path)
    run(["make", "-s", "-C", tmp_path, f"PYTHON={PYTHON}", "heat2d"], timeout=300)
    r = doctor("--host", str(tmp_path / "heat2d"))
    assert "[OK  ] MPI library" in r.stdout, r.stdout


def test_library_without_rpath_is_reported(libinsitu, tmp_path, monkeypatch):
    """A copy of libinsitu with its RUNPATH emptied stands in for a bad build."""
    from insitu import config, doctor as doc
    bad = tmp_path / "libinsitu.so"
    data = libinsitu.read_bytes()
    import sysconfig
    target = sysconfig.get_config_var("LIBDIR").encode()
    assert target in data
    bad.write_bytes(data.replace(target, b"/" * len(target)))
    monkeypatch.setattr(config, "library", lambda: str(bad))
    status, msg = doc.check_rpath()
    assert status == doc.FAIL and "rebuild" in msg


def test_mpiio_warns_on_an_affected_open_mpi_without_a_safe_setting():
    """open-mpi/ompi#12718: a warning naming the bug and the fix, unless the
    lock setting or romio is chosen; other MPIs and fixed versions pass."""
    from insitu import doctor as doc
    v414 = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4"
    status, msg = doc.check_mpiio(v414, {})
    assert status == doc.WARN and "12718" in msg and "OMPI_MCA_fs_ufs_lock_algorithm=3" in msg
    assert doc.check_mpiio(v414, {"OMPI_MCA_fs_ufs_lock_algorithm": "1"})[0] == doc.WARN
    for safe in ({"OMPI_MCA_fs_ufs_lock_algorithm": "3"}, {"OMPI_MCA_io": "romio321"},
                 {"OMPI_MCA_io": "^ompio"}):
        assert doc.check_mpiio(v414, safe)[0] == doc.OK, safe
    for fixed in ("Open MPI v4.1.7, package: Open MPI", "Open MPI v5.0.6, package: Open MPI",
                  "Open MPI v4.0.7, package: Open MPI", "MPICH Version: 4.0.2"):
        assert doc.check_mpiio(fixed, {})[0] == doc.OK, fixed
    assert doc.check_mpiio("Open MPI v5.0.5, package: Open MPI", {})[0] == doc.WARN
