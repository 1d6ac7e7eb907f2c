"""Review 7 (16977c5): libinsitu passes ``moved`` (any exposed address
changed since Python last bound) to _insitu_py_step, and cabi.bind_moved
runs only then.  Under mpiexec (tests/test_mpi_suite.py, 1-4 ranks),
through ctypes as a C host calls it (tests/mpi/test_cabi.py's pattern):

* exposes during idle steps (which return in C), ending on the address
  Python bound last (A, B, A) or on another one;
* a bind that fails (cabi's _insitu_forget_moved): the next step binds
  again and reads the buffer exposed, not the one before;
* a second session in the same process exposing the address the first
  one bound: the new session's slot is bound.
"""
import ctypes
import sys
from pathlib import Path

import numpy as np
import yaml

from insitu import api
from insitu.fields import FieldSlot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cabi import OK, REAL64, _i64  # noqa: E402


def _open(lib, comm, shared_dir, name, every):
    path = shared_dir / f"{name}.yaml"
    if comm.rank == 0:
        path.write_text(yaml.safe_dump({
            "output": {"path": str(shared_dir / f"{name}.h5"), "overwrite": True},
            "log_level": "ERROR", "on_error": "abort",
            "analyses": [{"kind": "stats", "field": "T", "every": every, "name": "a",
                          "stats": ["sum", "max"]}]}))
    comm.Barrier()
    assert lib.insitu_init(comm.py2f(), str(path).encode()) == OK, lib.insitu_last_error()
    n = 5
    rc = lib.insitu_declare_field(b"T", REAL64, 1, _i64([n * comm.size]), _i64([n * comm.rank]),
                                  _i64([n]), _i64([0]), _i64([0]), 0)
    assert rc == OK, lib.insitu_last_error()


def _expose(lib, a):
    assert lib.insitu_expose(b"T", a.ctypes.data, REAL64, 1, _i64(a.shape)) == OK, \
        lib.insitu_last_error()


def _total(comm, value):
    return comm.allreduce(5 * value)


def test_exposes_between_idle_steps(lib, comm, shared_dir):
    _open(lib, comm, shared_dir, "r7idle", every=4)
    try:
        a, b, c = (np.full(5, 1.0 + comm.rank), np.full(5, 20.0 + comm.rank),
                   np.full(5, 300.0 + comm.rank))
        slot = api.session().slots["T"]
        _expose(lib, a)
        for step in range(1, 5):
            assert lib.insitu_step(step, float(step)) == OK, lib.insitu_last_error()
        assert api.session().last_results["a_sum"] == _total(comm, a[0])
        # A, then B during idle steps, then A again: Python bound A last
        a[:] = 2.0 + comm.rank
        for step, buf in zip(range(5, 9), (b, b, a, a)):
            _expose(lib, buf)
            assert lib.insitu_step(step, float(step)) == OK, lib.insitu_last_error()
        assert np.shares_memory(slot.view, a)
        assert api.session().last_results["a_sum"] == _total(comm, a[0])
        # ... and ending on another buffer than the one bound last
        for step, buf in zip(range(9, 13), (b, a, c, c)):
            _expose(lib, buf)
            assert lib.insitu_step(step, float(step)) == OK, lib.insitu_last_error()
        assert np.shares_memory(slot.view, c)
        assert api.session().last_results["a_sum"] == _total(comm, c[0])
    finally:
        assert lib.insitu_finalize() == OK, lib.insitu_last_error()


def test_a_failed_bind_is_bound_again_at_the_next_step(lib, comm, shared_dir, monkeypatch):
    _open(lib, comm, shared_dir, "r7bind", every=1)
    try:
        a, b = np.full(5, 1.0 + comm.rank), np.full(5, 40.0 + comm.rank)
        _expose(lib, a)
        assert lib.insitu_step(1, 1.0) == OK, lib.insitu_last_error()
        real = FieldSlot.bind_address
        failed = []

        def once(self, address, wrap):
            if not failed:
                failed.append(address)
                raise OSError("simulated: this bind fails once")
            return real(self, address, wrap)

        monkeypatch.setattr(FieldSlot, "bind_address", once)
        _expose(lib, b)
        rc = lib.insitu_step(2, 2.0)     # every rank fails the same way, before any collective
        assert rc != OK and b"simulated" in lib.insitu_last_error()
        assert failed
        assert lib.insitu_step(3, 3.0) == OK, lib.insitu_last_error()
        slot = api.session().slots["T"]
        assert np.shares_memory(slot.view, b), "the step after a failed bind read the old buffer"
        assert api.session().last_results["a_sum"] == _total(comm, b[0])
    finally:
        assert lib.insitu_finalize() == OK, lib.insitu_last_error()


def test_a_second_session_binds_the_address_the_first_one_bound(lib, comm, shared_dir):
    a = np.full(5, 3.0 + comm.rank)
    for k in range(2):
        _open(lib, comm, shared_dir, f"r7again{k}", every=1)
        try:
            a[:] = 3.0 + 10 * k + comm.rank
            _expose(lib, a)
            assert lib.insitu_step(1, 1.0) == OK, lib.insitu_last_error()
            assert np.shares_memory(api.session().slots["T"].view, a)
            assert api.session().last_results["a_sum"] == _total(comm, a[0])
        finally:
            assert lib.insitu_finalize() == OK, lib.insitu_last_error()
