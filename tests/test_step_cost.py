"""INSITU_STEP_COST: each rank writes its due steps' wall and CPU seconds
at finalize (insitu/step_cost.py, read by scripts/bench/overhead.py), one
entry per due step and none for the steps where nothing was due."""
import json

import numpy as np

from insitu import api
from insitu.comm import FakeWorld


def _run(comm):
    api.init(comm, {"output": {"path": "unused.h5"},
                    "analyses": [{"kind": "stats", "field": "T", "every": 3}]})
    try:
        api.declare_field("T", np.float64, (8,), (4 * comm.rank,), (4,))
        api.expose("T", np.arange(4.0))
        for step in range(1, 11):  # due at 3, 6, 9 (and step 1 binds)
            api.step(step, float(step))
    finally:
        api.finalize()


def test_step_cost_files_hold_one_entry_per_due_step(tmp_path, monkeypatch):
    monkeypatch.setenv("INSITU_STEP_COST", str(tmp_path / "cost"))
    FakeWorld(2).run(_run)
    for rank in (0, 1):
        data = json.loads((tmp_path / f"cost.{rank}").read_text())
        assert data["rank"] == rank
        assert len(data["wall_s"]) == len(data["cpu_s"]) == 3
        assert all(w > 0 for w in data["wall_s"]) and all(c >= 0 for c in data["cpu_s"])


def test_no_file_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("INSITU_STEP_COST", raising=False)
    monkeypatch.chdir(tmp_path)
    FakeWorld(2).run(_run)
    assert not list(tmp_path.iterdir())
