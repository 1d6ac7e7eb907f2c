"""Config fuzzing (issue 11): mutated example configs either run or end with
a config error, one line, never a crash of another kind, a hang, or a file
left behind.

300 mutations run in-process on fake ranks (fast); 30 more run under real
mpiexec through ``python -m insitu.run``, where the exit status, stderr and
the output file are checked.  The mutations are seeded, so a failure is
reproducible: its message prints the mutated config.
"""
import copy
import random

import numpy as np
import pytest
import yaml

from conftest import PYTHON, ROOT, mpirun
from insitu import api
from insitu.comm import FakeWorld
from insitu.options import ConfigError

EXAMPLES = [ROOT / "examples" / n for n in ("heat2d.yaml", "heat2d_analyses.yaml", "life.yaml",
                                             "heat2d_reproducible.yaml")]
VALUES = [-4, -1, 0, 1, 2, 7, 3.5, 1e6, "1e6", "x", "T", "nope", "", None, True, [], {}, [1, 2],
          [[0, 1]], {"a": 1}, {"y": [0, 4]}, "T - T.mean(x)", "__import__('os')", "a/b",
          "a" * 120, float("nan"), ["mean", "max"], {"kind": "stats"}]
KINDS = ["stats", "histogram", "reduce", "coarsen", "probe", "window", "python", "fault", "x"]
SHAPE = (24, 32)  # (y, x): coarsen 8x8 tiles it at 1 and 2 ranks


def _paths(node, prefix=()):
    """Every (path, value) in a nested config."""
    out = [(prefix, node)]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _set(cfg, path, value):
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _delete(cfg, path):
    node = cfg
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


def mutate(cfg, rng):
    cfg = copy.deepcopy(cfg)
    paths = [p for p, _ in _paths(cfg) if p]
    for _ in range(rng.choice([1, 1, 2, 3])):
        path = rng.choice(paths)
        op = rng.randrange(5)
        try:
            if op == 0:
                _delete(cfg, path)
            elif op == 1:
                _set(cfg, path, copy.deepcopy(rng.choice(VALUES)))
            elif op == 2 and isinstance(cfg.get("analyses"), list) and cfg["analyses"]:
                a = rng.choice(cfg["analyses"])
                if isinstance(a, dict):
                    a["kind"] = rng.choice(KINDS)
            elif op == 3:
                node = cfg
                for p in path[:-1]:
                    node = node[p]
                if isinstance(node, dict):
                    node[rng.choice(["evry", "bins", "name", "extra", "stats"])] = \
                        copy.deepcopy(rng.choice(VALUES))
            elif op == 4 and isinstance(cfg.get("analyses"), list) and cfg["analyses"]:
                cfg["analyses"].append(copy.deepcopy(rng.choice(cfg["analyses"])))
        except (KeyError, IndexError, TypeError):
            pass  # the path went away with an earlier mutation
        paths = [p for p, _ in _paths(cfg) if p] or [("analyses",)]
    return cfg


def _base_configs():
    out = []
    for p in EXAMPLES:
        cfg = yaml.safe_load(p.read_text())
        cfg.pop("output", None)
        out.append(cfg)
    return out


def drive(comm, cfg):
    """Declare T and area (y, x) on an uneven row split and step 6 times."""
    rows = np.array_split(np.arange(SHAPE[0]), comm.size)[comm.rank]
    api.init(comm, cfg)
    try:
        j, i = np.meshgrid(rows, np.arange(SHAPE[1]), indexing="ij")
        for name in ("T", "area"):
            api.declare_field(name, np.float64, SHAPE, (int(rows[0]), 0), j.shape)
        area = np.cos(np.deg2rad(-60 + 5.0 * j))
        api.expose("area", np.ascontiguousarray(area))
        for step in range(1, 7):
            api.expose("T", np.ascontiguousarray(280.0 + 0.1 * i + 0.3 * j + step * 3.0))
            api.step(step, float(step))
    finally:
        api.finalize()


def _mutations(n, seed):
    rng = random.Random(seed)
    bases = _base_configs()
    return [mutate(rng.choice(bases), rng) for _ in range(n)]


def test_300_mutated_configs_run_or_fail_as_config_errors():
    outcomes = {"ran": 0, "config error": 0}
    for k, cfg in enumerate(_mutations(300, seed=11)):
        try:
            FakeWorld(2, timeout=30).run(drive, cfg)
            outcomes["ran"] += 1
        except ConfigError as exc:
            assert "\n" not in str(exc).strip(), str(exc)  # one line
            outcomes["config error"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            if type(exc).__name__ in ("InjectedFault",) or "aborted with code 3" in str(exc):
                outcomes["ran"] += 1  # a fault analysis the mutation kept: on_error at work
                continue
            pytest.fail(f"mutation {k}: {type(exc).__name__}: {exc}\n"
                        f"{yaml.safe_dump(cfg, sort_keys=False)}")
    assert outcomes["ran"] >= 20 and outcomes["config error"] >= 100, outcomes


@pytest.mark.parametrize("k", range(30))
def test_mutated_configs_under_mpi(k, tmp_path):
    cfg = _mutations(30, seed=29)[k]
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp_path / "m.h5"
    r = mpirun(2, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--shape", *SHAPE,
                   "--steps", 6, "--config", path, "--output", out], timeout=120, check=False)
    said = yaml.safe_dump(cfg, sort_keys=False)
    assert r.returncode in (0, 2, 3), f"exit {r.returncode}\n{said}\n{r.stderr[-3000:]}"
    if r.returncode == 2:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("insitu:")]
        assert len(lines) == 1 and "Traceback" not in r.stderr, f"{said}\n{r.stderr[-3000:]}"
        assert not out.exists(), f"a config error left a file\n{said}"
    elif r.returncode == 0:
        assert out.exists()
    else:  # 3: an analysis raised under on_error: abort (a mutated fault analysis)
        assert "fault" in said, f"{said}\n{r.stderr[-3000:]}"
