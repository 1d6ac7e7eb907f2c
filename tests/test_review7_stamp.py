"""Review 7 (16977c5): Session._stamp resets the record and writes the
step check through a memoryview and struct.pack_into.  It must give the
bytes the old np.copyto + slice assignment gave, for every argument a
call can carry (negative, 0, 2**32 edges, +-2**63 edges), leave the rest
of the message the record lives in (3215d10: [n, codes, record]) alone,
and follow a plan whose record object is replaced.
"""
import math

import numpy as np

from insitu import api
from insitu.comm import FakeWorld

ARGS = [0, 1, -1, 7, -7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, -2**32,
        -2**32 - 1, 12345678901234, -12345678901234, 2**53 + 1, 2**62,
        2**63 - 1, -2**63, -2**63 + 1]


def _old_stamp(plan, call, kind, arg, clock):
    """What 1b9caaf did: plan.reset() then one slice assignment."""
    record = plan.identity.copy()
    hi, lo = arg >> 32, arg & 0xFFFFFFFF
    record[call] = (clock, kind, hi, lo, kind, hi, lo)
    return record


def _body(comm):
    cfg = {"fields": {"f": {"units": "K", "dims": ["x"]}},
           "analyses": [{"kind": "stats", "field": "f", "stats": ["mean", "max"]},
                        {"kind": "stats", "field": "f", "name": "r", "stats": ["sum"],
                         "region": {"x": [2, 6]}}],
           "output": {"overwrite": True}}
    s = api.init(comm, cfg)
    try:
        api.declare_field("f", np.float64, (8,), (0,), (8,))
        api.expose("f", np.arange(8.0))
        api.step(1, 0.0)
        plan = s.plan
        message = getattr(plan, "message", None)
        head = None if message is None else message[:len(message) - len(plan.record)].copy()
        bad = []
        for kind in (1, 2, 3, 4):
            for arg in ARGS:
                for clock in (-math.inf, 0.0, 1.5e9, np.float64(3.25)):
                    plan.record[:] = 12.5  # garbage the reset must clear
                    got = s._stamp(kind, arg, clock)
                    ref = _old_stamp(plan, s._call, kind, arg, clock)
                    if got is not plan.record or got.tobytes() != ref.tobytes():
                        bad.append((kind, arg, clock))
                    # and the verdict reads the call back as agreed
                    assert s._verdict(got, kind, arg) == clock
        if message is not None:
            assert message[:len(head)].tobytes() == head.tobytes(), "header overwritten"
        # a plan whose record is replaced (a new message buffer): the next
        # stamp writes into the new record, never the old one
        old = plan.record
        before = old.copy()
        plan.record = np.full_like(old, 99.0)
        got = s._stamp(2, 5, 0.0)
        assert got is plan.record
        assert got.tobytes() == _old_stamp(plan, s._call, 2, 5, 0.0).tobytes()
        assert old.tobytes() == before.tobytes()
        plan.record = old
        return bad
    finally:
        api.finalize()


def test_stamp_equals_the_old_reset_and_assignment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad in FakeWorld(1).run(_body):
        assert bad == []
