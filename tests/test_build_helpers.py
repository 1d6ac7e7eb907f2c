"""python -m insitu.config: one line per option, usage on bad input."""
import subprocess

import pytest

from conftest import PYTHON


def cfg(*args):
    return subprocess.run([PYTHON, "-m", "insitu.config", *args], capture_output=True, text=True)


@pytest.mark.parametrize("opt", ["--fflags", "--cflags", "--ldflags", "--libdir", "--include",
                                 "--version", "--python"])
def test_each_option_prints_one_line(opt, libinsitu):
    r = cfg(opt)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1 and r.stdout.strip()


def test_ldflags_carry_rpath_and_libraries(libinsitu):
    out = cfg("--ldflags").stdout
    assert f"-Wl,-rpath,{libinsitu.parent}" in out and "-linsitu" in out


def test_unknown_option_prints_usage_and_fails():
    r = cfg("--frobnicate")
    assert r.returncode == 1 and "usage" in r.stderr


def test_build_is_current(libinsitu):
    assert cfg("--check-build").returncode == 0
