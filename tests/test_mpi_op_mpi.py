"""The whole chain with the compiled record operation (insitu.mpi_op)
against the Python callback op: the heat stand-in under real mpiexec at 2,
3 and 4 ranks on a grid that splits unevenly, with a config whose records
hold every slot kind (stats with regions and weights, extremes with
argmax/argmin, exceedances, a histogram with exact quantiles, reductions
over x and over y, whose group sub-communicators have plans of their own,
and a derived field), once with ``INSITU_RECORD_OP=compiled`` and once with
``python``: every dataset of the two files the same bit for bit.
(tests/mpi/test_mpi_op_ranks.py checks the op itself on every rank.)"""
import numpy as np
import pytest

from conftest import PYTHON, h5_datasets, mpi_env, mpirun

CONFIG = """\
fields: {T: {dims: [y, x]}, area: {dims: [y, x]}}
coords:
  y: {start: -89.0, step: 4.9, units: degrees_north, standard_name: latitude}
  x: {start: 0.0, step: 6.8, units: degrees_east, standard_name: longitude}
derived:
  T_anomaly: T - T.mean(x)
analyses:
  - {kind: stats, field: T, every: 2}
  - {kind: stats, field: T, name: box, region: {y: [5, 30], x: [10, 40]},
     stats: [count, mean, min, max], every: 2}
  - {kind: stats, field: T, name: wstats, weights: area, stats: [mean, std], every: 2}
  - {kind: stats, field: T, name: trop, region: {y: {from: -30.0, to: 30.0}},
     stats: [count, mean, max], every: 2}
  - {kind: stats, field: T, name: ext, stats: [min, max, argmax, argmin], every: 2}
  - {kind: exceedance, field: T, threshold: 285.0, op: gt, every: 2}
  - {kind: exceedance, field: T, name: cold, threshold: 275.0, op: lt, weights: area, every: 2}
  - {kind: histogram, field: T, bins: 16, range: [270, 330], quantiles: [0.1, 0.5],
     quantile_method: exact, every: 2}
  - {kind: reduce, field: T, over: [x], op: mean, every: 2}
  - {kind: reduce, field: T, over: [y], op: max, every: 2}
  - {kind: stats, field: T_anomaly, stats: [min, max, std], every: 2}
"""


@pytest.mark.parametrize("nranks", [2, 3, 4])
def test_compiled_and_python_record_ops_write_the_same_bits(tmp_path, nranks):
    cfg = tmp_path / "every_kind.yaml"
    cfg.write_text(CONFIG)
    files = {}
    for record_op in ("compiled", "python"):
        out = tmp_path / f"{record_op}.h5"
        mpirun(nranks, [PYTHON, "-m", "insitu.run", "--model", "heat2d", "--config", cfg,
                        "--steps", 12, "--shape", 37, 53, "--output", out, "--no-progress"],
               timeout=240, env=mpi_env({"INSITU_RECORD_OP": record_op}))
        files[record_op] = h5_datasets(out)
    compiled, python = files["compiled"], files["python"]
    assert compiled.keys() == python.keys()
    differ = [k for k in compiled if compiled[k].tobytes() != python[k].tobytes()]
    assert not differ, {k: (compiled[k].ravel()[:4], python[k].ravel()[:4]) for k in differ}
    names = " ".join(compiled)
    for want in ("T_mean", "box_", "wstats", "ext_argmax", "cold", "T_anomaly", "quantile"):
        assert want in names, (want, sorted(compiled))
    assert any(np.issubdtype(v.dtype, np.floating) and v.size > 1 for v in compiled.values())
