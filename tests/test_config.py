"""Config validation: each malformed config gets its own clear message."""
import pytest

from insitu.options import ConfigError, load, parse

GOOD = {"analyses": [{"kind": "stats", "field": "T"}]}

BAD = [
    # (config, expected message fragment)
    (None, "the config is empty"),
    ([1, 2], "<config>: expected a mapping"),
    ({}, "analyses: missing required key"),
    ({"analyses": []}, "analyses: expected a non-empty list"),
    ({"analyses": "stats"}, "analyses: expected a list"),
    ({"analyses": [{"field": "T"}]}, "analyses[0].kind: missing required key"),
    ({"analyses": [{"kind": "histo", "field": "T"}]}, "unknown analysis kind 'histo'"),
    ({"analyses": [{"kind": "stats"}]}, "analyses[0].field: missing required key"),
    ({"analyses": [{"kind": "stats", "field": "T", "every": -4}]},
     "analyses[0].every: expected a positive integer, got -4"),
    ({"analyses": [{"kind": "stats", "field": "T", "every": "10"}]},
     "analyses[0].every: expected a positive integer, got '10'"),
    ({"analyses": [{"kind": "stats", "field": "T", "every": True}]},
     "analyses[0].every: expected a positive integer, got True"),
    ({"analyses": [{"kind": "stats", "field": "T", "stats": ["mean", "median"]}]},
     "analyses[0].stats[1]: expected one of"),
    ({"analyses": [{"kind": "stats", "field": "T", "stats": ["mean", "mean"]}]},
     "analyses[0].stats[1]: duplicate value 'mean'"),
    ({"analyses": [{"kind": "stats", "field": "T", "evry": 3}]},
     "analyses[0].evry: unknown key"),
    ({"analyses": [{"kind": "stats", "field": "T"}, {"kind": "stats", "field": "T"}]},
     "duplicate stats analysis name 'T'"),
    ({**GOOD, "outptu": {}}, "outptu: unknown key"),
    ({**GOOD, "output": {"path": 3}}, "output.path: expected a string, got 3"),
    ({**GOOD, "output": {"overwrite": "yes"}}, "output.overwrite: expected true or false"),
    ({**GOOD, "output": {"flush_every": 0}}, "output.flush_every: expected a positive integer, got 0"),
    ({**GOOD, "output": {"flush_every_steps": 0}},
     "output.flush_every_steps: expected a positive integer, got 0"),
    ({**GOOD, "output": {"mpi_info": {"romio_cb_write": True}}},
     "output.mpi_info.romio_cb_write: expected a string or an integer, got True"),
    ({**GOOD, "fields": ["T"]}, "fields: expected a mapping"),
    ({**GOOD, "fields": {"T": {"unit": "K"}}}, "fields.T.unit: unknown key"),
    ({**GOOD, "fields": {"2T": {}}}, "expected names that are identifiers"),
    ({**GOOD, "fields": {"T": {"dims": ["x", "x"]}}}, "fields.T.dims[1]: duplicate value 'x'"),
    ({**GOOD, "on_error": "ignore"}, "on_error: expected one of abort"),
    ({**GOOD, "time": {"units": ""}}, "time.units: expected a non-empty string"),
    ({**GOOD, "derived": {"s": "sqrt(u**2 +"}}, "derived.s: not a valid expression"),
    ({**GOOD, "derived": {"s": "__import__('os')"}}, "derived.s: function '__import__' is not allowed"),
    ({**GOOD, "derived": {"s": "T.mean()"}}, "derived.s: T.mean() needs dimension names"),
    ({**GOOD, "derived": {"s": "T.std(x)"}}, "derived.s: T.std() is not a reduction"),
    ({**GOOD, "derived": {"s": "T + 'K'"}}, "derived.s: only numeric constants are allowed"),
    ({**GOOD, "derived": {"s": "[T for T in u]"}}, "derived.s: ListComp is not allowed"),
    ({**GOOD, "derived": {"s": "2 + 3"}}, "derived.s: the expression reads no field"),
    ({**GOOD, "derived": {"s": 3}}, "derived.s: expected a string, got 3"),
    ({"analyses": [{"kind": "histogram", "field": "T", "bins": 0, "range": [0, 1]}]},
     "analyses[0].bins: expected a positive integer, got 0"),
    ({"analyses": [{"kind": "histogram", "field": "T", "bins": 4, "range": [0, "x"]}]},
     "analyses[0].range[1]: expected a number, got 'x'"),
    ({"analyses": [{"kind": "histogram", "field": "T", "bins": 4, "range": [0, 1],
                    "quantiles": [1.5]}]},
     "analyses[0].quantiles[0]: expected a number strictly between 0.0 and 1.0, got 1.5"),
    ({"analyses": [{"kind": "coarsen", "field": "T", "factors": {"x": 0}}]},
     "analyses[0].factors.x: expected a positive integer, got 0"),
    ({"analyses": [{"kind": "reduce", "field": "T", "over": []}]},
     "analyses[0].over: expected a non-empty list"),
    ({"analyses": [{"kind": "reduce", "field": "T", "over": ["x"], "op": "median"}]},
     "analyses[0].op: expected one of mean, sum, min, max"),
    ({"analyses": [{"kind": "probe", "field": "T", "points": [[-1, 2]]}]},
     "analyses[0].points[0][0]: expected an integer >= 0, got -1"),
    ({"analyses": [{"kind": "stats", "field": "T", "region": {"x": [3, 5, 7]}}]},
     "analyses[0].region.x: expected [start, stop], got [3, 5, 7]"),
    ({"analyses": [{"kind": "stats", "field": "T", "region": {"x": [3, -1]}}]},
     "analyses[0].region.x[1]: expected an integer >= 0, got -1"),
    ({"analyses": [{"kind": "stats", "field": "T", "weights": {"dim": "y", "values": [1, -2]}}]},
     "analyses[0].weights.values[1]: expected a number >= 0.0, got -2.0"),
    ({"analyses": [{"kind": "stats", "field": "T", "weights": {"dim": "y"}}]},
     "analyses[0].weights.values: missing required key"),
    ({"analyses": [{"kind": "stats", "field": "T", "weights": 3}]},
     "analyses[0].weights: expected a field name or {dim, values}, got 3"),
]


@pytest.mark.parametrize("cfg,message", BAD, ids=[m for _, m in BAD])
def test_bad_config_names_path_and_value(cfg, message):
    with pytest.raises(ConfigError) as err:
        parse(cfg)
    assert message in str(err.value)


def test_each_bad_config_has_its_own_message():
    messages = []
    for cfg, _ in BAD:
        with pytest.raises(ConfigError) as err:
            parse(cfg)
        messages.append(str(err.value))
    assert len(set(messages)) == len(messages)


def test_defaults_are_filled():
    cfg = parse(GOOD)
    assert cfg["output"] == {"path": "insitu.h5", "overwrite": False, "flush_seconds": 10.0,
                             "flush_every_steps": None, "flush_every": None,
                             "verify": False, "restart": False, "keep_checkpoints": 2,
                             "writer": "inline", "mpi_info": None}
    assert cfg["analyses"][0]["every"] == 1
    assert cfg["on_error"] == "abort"


def test_load_reports_file_and_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("analyses: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)


def test_example_configs_are_valid():
    from conftest import ROOT
    for path in (ROOT / "examples").rglob("*.yaml"):
        load(path)


def test_yaml_numbers_with_exponents_are_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads 1e6 and 1.0e6 as strings; a number must
    never silently become a string (issue 10)."""
    from insitu.options import load
    p = tmp_path / "c.yaml"
    p.write_text("analyses:\n  - {kind: histogram, field: T, bins: 10, range: [-1e6, 1.0e6]}\n"
                 "  - {kind: window, source: T_hist, period: 2.5e3}\n")
    cfg = load(p)
    assert cfg["analyses"][0]["range"] == [-1e6, 1e6]
    assert cfg["analyses"][1]["period"] == 2500.0
    p.write_text("output: {path: 1e6}\nanalyses: [{kind: stats, field: T}]\n")
    with pytest.raises(ConfigError, match="output.path: expected a string, got 1000000.0"):
        load(p)
