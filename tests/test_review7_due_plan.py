"""Review 7 (16977c5): what a bound session runs at a step, kept by
``step % lcm(periods)`` (Session._step_plan / _by_residue), must follow
on_error: skip disabling an analysis mid-run.

A disabled analysis must never run again.  The plan kept for a residue
before the disabling must not be reused after it, whichever of
_step_plan and _due_at notices the new count of disabled analyses first.
"""
import numpy as np
import pytest

from insitu import api
from insitu.analyses.fault import Fault
from insitu.comm import FakeWorld


def _cfg(fault_every, stats_every, at_step):
    return {"fields": {"f": {"units": "K"}},
            "analyses": [
                {"kind": "stats", "field": "f", "every": stats_every, "stats": ["mean"],
                 "name": "a"},
                {"kind": "fault", "field": "f", "every": fault_every, "at_step": at_step,
                 "ranks": "all"}],
            "on_error": "skip", "output": {"overwrite": True}}


def _drive(comm, cfg, steps, calls):
    s = api.init(comm, cfg)
    try:
        n = 8 // comm.size
        api.declare_field("f", np.float64, (8,), (n * comm.rank,), (n,))
        a = np.arange(n, dtype=np.float64)
        out = {}
        for step in range(1, steps + 1):
            api.expose("f", a)
            out[step] = api.step(step, float(step))
        return out, dict(s.disabled)
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("fault_every,stats_every", [(3, 2), (2, 3), (4, 6)])
def test_disabled_analysis_never_runs_again(monkeypatch, tmp_path, nranks, fault_every,
                                            stats_every):
    """Fails at 16977c5: the fault analysis (disabled at its first due
    step) runs again at the next step with the same residue, from the plan
    kept before it was disabled (its local is called again at step
    at + lcm)."""
    monkeypatch.chdir(tmp_path)
    calls = []
    real = Fault.local

    def counting(self, views, record, step):
        calls.append((self.rank, step))
        return real(self, views, record, step)

    monkeypatch.setattr(Fault, "local", counting)
    at = fault_every
    lcm = np.lcm(fault_every, stats_every)
    steps = int(at + 3 * lcm)
    outs = FakeWorld(nranks, timeout=20).run(_drive, _cfg(fault_every, stats_every, at),
                                            steps, calls)
    for out, disabled in outs:
        assert list(disabled.values()) == [at]
    late = sorted({s for _, s in calls if s != at})
    assert late == [], f"the disabled fault analysis ran again at steps {late}"
    # and the stats analysis still runs at each of its steps, and only then
    for out, _ in outs:
        stats_steps = [s for s, r in out.items() if any(k.startswith("a") for k in r)]
        assert stats_steps == [s for s in range(1, steps + 1) if s % stats_every == 0]


def _drive_steps(comm, steps):
    cfg = {"fields": {"f": {"units": "K"}},
           "analyses": [{"kind": "stats", "field": "f", "every": 2, "stats": ["sum"], "name": "a"},
                        {"kind": "stats", "field": "f", "every": 3, "stats": ["max"], "name": "b"}],
           "output": {"overwrite": True}}
    api.init(comm, cfg)
    try:
        n = 6 // comm.size
        api.declare_field("f", np.float64, (6,), (n * comm.rank,), (n,))
        a = np.zeros(n)
        out = []
        for step in steps:
            a[:] = step % 1000
            api.expose("f", a)
            out.append(api.step(step, 0.0))
        return out
    finally:
        api.finalize()


@pytest.mark.parametrize("nranks", [1, 3])
def test_due_by_residue_for_negative_zero_and_huge_steps(tmp_path, monkeypatch, nranks):
    """What runs at a step is ``step % every == 0`` (Python's modulo) for
    each analysis, whatever the step: negative, 0, near +-2**63, after the
    plans kept by step % lcm were made at other steps with the same
    residues."""
    monkeypatch.chdir(tmp_path)
    top, bottom = 2**63 - 1, -2**63
    steps = ([1] + list(range(-7, 8)) + list(range(top - 7, top + 1))
             + list(range(bottom, bottom + 8)) + list(range(-7, 8)))
    for out in FakeWorld(nranks, timeout=30).run(_drive_steps, steps):
        for step, res in zip(steps, out):
            want = {k for k, e in (("a_sum", 2), ("b_max", 3)) if step % e == 0}
            assert set(res) == want, step
            if "a_sum" in res:
                assert res["a_sum"] == 6 * (step % 1000)
