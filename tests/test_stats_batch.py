"""Results formed in batches and kept packed (issue 12): a run of ``stats``
analyses forms its statistics in one compiled call
(``insitu.analyses.stats.StatsBatch``, ``insitu.kernels.finish``), the step's
results are a ``StepValues`` of parts, and the writer keeps a batch's two
arrays as they are (``insitu.step_values``, ``H5Writer.append``).

What must hold: the same names, in the same order, with the same types and
bits as each analysis's own results (``Stats.results``), on empty fields and
regions, ``n <= ddof``, weights that sum to zero, NaN and Inf, float32 and
float64, Fortran halo views, with other kinds between the stats and twins
of one analysis; and the file written from packs is bit-equal to the file
written from Python values, through the inline and the background writer.
"""
import math
import struct

import numpy as np
import pytest
from mpi4py import MPI

from insitu import api
from insitu import session as session_mod
from insitu.analyses.stats import Stats, StatsBatch
from insitu.comm import FakeWorld, MPIComm
from insitu.step_values import Pack, PackLayout, RowValues, StepValues

from conftest import h5_datasets

NY, NX = 8, 12

FIELDS = {"T": {"units": "K", "dims": ["y", "x"]}, "S": {"dims": ["y", "x"]},
          "I": {"dims": ["y", "x"]}, "W": {"dims": ["y", "x"]}}
COORDS = {"y": {"start": -70.0, "step": 20.0, "units": "degrees_north",
                "standard_name": "latitude"}}

ANALYSES = [
    {"kind": "stats", "field": "T", "name": "a"},
    {"kind": "stats", "field": "T", "name": "twin"},  # a's numbers under other names
    {"kind": "stats", "field": "T", "name": "sample", "ddof": 1,
     "stats": ["var", "std", "mean", "count"]},
    {"kind": "stats", "field": "T", "name": "one", "ddof": 1,  # 1 value: n <= ddof
     "region": {"x": [3, 4], "y": [2, 3]}},
    {"kind": "exceedance", "field": "T", "threshold": 285.0, "op": "gt"},  # not batched
    {"kind": "stats", "field": "S", "name": "s32", "stats": ["inf_count", "nan_count",
                                                             "min", "max", "sum"]},
    {"kind": "stats", "field": "T", "name": "cos", "stats": ["mean", "std", "var"],
     "weights": {"dim": "y", "values": "coslat"}},
    {"kind": "stats", "field": "T", "name": "wf", "weights": "W"},  # W is 0 at some steps
    {"kind": "stats", "field": "T", "name": "ext", "stats": ["max", "argmax"]},  # not batched
    {"kind": "stats", "field": "I", "name": "int"},  # integer: not batched
    {"kind": "stats", "field": "T", "name": "box", "stats": ["mean", "min", "max", "count"],
     "region": {"x": [0, 5], "y": [5, 8]}},
]


def _fields(step, rng):
    """T (float64, Fortran order, 1-cell halos), S (float32), I (int32),
    W (weights): NaN/Inf at some steps, T all NaN at step 3 (n == 0), W all
    zero at step 4 (weights summing to zero)."""
    t = rng.normal(280.0, 8.0, (NY, NX))
    if step == 2:
        t[1, 2], t[4, 4] = np.nan, np.inf
    if step == 3:
        t[:] = np.nan
    s = rng.normal(0.0, 1e3, (NY, NX)).astype(np.float32)
    if step % 2:
        s[0, 0], s[1, 1] = -np.inf, np.nan
    w = np.zeros((NY, NX)) if step == 4 else rng.uniform(0.0, 2.0, (NY, NX))
    return t, s, rng.integers(-1000, 1000, (NY, NX)).astype(np.int32), w


def _declare_and_expose(comm, step, rng, keep):
    """This rank's slabs of the fields (rows split between ranks, unevenly
    at 3 ranks), exposed; T as a Fortran halo view.  ``keep`` holds the
    arrays alive."""
    t, s, i, w = _fields(step, rng)
    bounds = np.linspace(0, NY, comm.size + 1).astype(int)
    lo, hi = bounds[comm.rank], bounds[comm.rank + 1]
    n = hi - lo
    if step == 1:
        api.declare_field("T", np.float64, (NY, NX), (lo, 0), (n + 2, NX + 2), (1, 1), (1, 1),
                          "F")
        for name, dtype in (("S", np.float32), ("I", np.int32), ("W", np.float64)):
            api.declare_field(name, dtype, (NY, NX), (lo, 0), (n, NX))
    th = np.full((n + 2, NX + 2), -1e300, order="F")
    th[1:-1, 1:-1] = t[lo:hi]
    keep[:] = [th, s[lo:hi].copy(), i[lo:hi].copy(), w[lo:hi].copy()]
    for name, a in zip("TSIW", keep):
        api.expose(name, a)


def _bits(v):
    """A value's type and bits.  A weighted mean or var was a numpy float64
    (a subclass of float, read from the record) in an analysis's own
    results, and is a float in a batch's: the same number."""
    kind = float if type(v) is np.float64 else type(v)
    return (kind, struct.pack("<d", v) if isinstance(v, float) else v)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_batched_results_are_each_analysis_s_own(size):
    """After every step, the StepValues' dict equals, name by name in the
    same order, type and bits, each due analysis's own results formed from
    the same combined record; and the record's batches are what is
    expected (a run of stats between other kinds, not the argmax, not the
    integer field)."""
    cfg = {"output": {"path": "unused.h5"}, "log_level": "WARNING", "fields": FIELDS,
           "coords": COORDS, "analyses": [dict(a, every=1) for a in ANALYSES]}

    def run(comm):
        api.init(comm, cfg)
        try:
            s = api.session()
            rng = np.random.default_rng(7)
            keep = []
            out = []
            for step in range(1, 6):
                _declare_and_expose(comm, step, rng, keep)
                got = s.step(step, float(step), results=False)
                assert type(got) is StepValues
                due, runners = s._due_at(step)[0], s._due_at(step)[6]
                # twin and sample share a's local pass: their own slots are
                # not filled, their results are formed from a's slots
                assert [(r.name, [f.name for f in fs]) for r, fs in runners][:2] == \
                    [("a", ["twin", "sample"]), ("one", [])]
                for r, fs in runners:
                    for f in fs:
                        f.borrow(r, s.plan.record)  # what the failure path does
                want = {}
                for a in due:
                    want.update(a.results(s.plan.record))
                d = got.as_dict()
                assert list(d) == list(want)
                assert [_bits(v) for v in d.values()] == [_bits(v) for v in want.values()]
                assert s.last_results is d  # made once, kept
                out.append(d)
            kinds = [type(p) for p in s._due_at(1)[5]]
            return out, kinds
        finally:
            api.finalize()

    results = FakeWorld(size).run(run)
    values, kinds = results[0]
    # a run of 4 stats, the exceedance, a run of 3 stats, argmax, the
    # integer field's stats, the last stats on its own
    assert [k is StatsBatch for k in kinds] == [True, False, True, False, False, True]
    for other, _ in results[1:]:  # every rank holds the same results
        assert [[_bits(v) for v in d.values()] for d in other] == \
            [[_bits(v) for v in d.values()] for d in values]
    # and they are right: step 3 has no finite T (n == 0), step 4 zero weights
    assert values[2]["a_count"] == 0 and math.isnan(values[2]["a_mean"])
    assert math.isnan(values[2]["a_min"]) and math.isnan(values[2]["sample_var"])
    assert values[0]["one_count"] == 1 and math.isnan(values[0]["one_std"])
    assert math.isnan(values[3]["wf_mean"]) and math.isnan(values[3]["wf_std"])
    assert values[1]["a_nan_count"] == 1 and values[1]["a_inf_count"] == 1
    t = _fields(1, np.random.default_rng(7))[0]
    assert values[0]["sample_var"] == pytest.approx(np.var(t, ddof=1), rel=1e-13)
    assert values[0]["a_sum"] == pytest.approx(t.sum(), rel=1e-14)
    assert values[0]["twin_std"] == values[0]["a_std"] == pytest.approx(t.std(), rel=1e-13)


def _unbatched(due, runners=()):
    """The session's producers as they were before batches: each analysis's
    own result pairs (a dict in the step's values)."""
    return tuple(getattr(a, "result_items", None) or a.results for a in due)


def _alone(due):
    """Every due analysis runs its own local pass, as before shared ones."""
    return tuple((a, ()) for a in due)


def _write(path, batched, monkeypatch, writer="inline", results=False):
    """One run of every analysis (cadences 1 and 2) into ``path``, on a real
    MPI communicator of this process; packs or Python values."""
    with monkeypatch.context() as m:
        if not batched:
            m.setattr(session_mod, "_producers", _unbatched)
            m.setattr(session_mod, "_runners", _alone)
        cfg = {"output": {"path": str(path), "overwrite": True, "writer": writer},
               "log_level": "WARNING", "fields": FIELDS, "coords": COORDS,
               "analyses": [dict(a, every=1 + i % 2) for i, a in enumerate(ANALYSES)]}
        api.init(MPIComm(MPI.COMM_WORLD.Dup(), owned=True), cfg)
        try:
            s = api.session()
            rng = np.random.default_rng(11)
            keep = []
            for step in range(1, 8):
                _declare_and_expose(s.comm, step, rng, keep)
                s.step(step, float(step), results=results)
        finally:
            api.finalize()
    return h5_datasets(path)


@pytest.mark.parametrize("writer", ["inline", "background"])
def test_the_file_from_packs_is_the_file_from_python_values(tmp_path, monkeypatch, writer):
    packed = _write(tmp_path / "packed.h5", True, monkeypatch, writer)
    plain = _write(tmp_path / "plain.h5", False, monkeypatch, writer)
    python_route = _write(tmp_path / "route.h5", True, monkeypatch, writer, results=True)
    assert sorted(packed) == sorted(plain) == sorted(python_route)
    assert "a_mean" in packed and "wf_std" in packed and "ext_argmax" in packed
    for name in plain:
        assert packed[name].dtype == plain[name].dtype, name
        assert packed[name].tobytes() == plain[name].tobytes(), name
        assert python_route[name].tobytes() == plain[name].tobytes(), name


def test_a_pack_that_does_not_fit_the_variables_is_kept_as_python_values(tmp_path,
                                                                         monkeypatch):
    """A pack whose names are not all scalar variables of its kind (here:
    a layout that says count is a float) is not kept as arrays: the writer
    keeps its Python values, converted as any value is."""
    from insitu import h5io
    seen = []
    real = h5io.H5Writer._pack_fits

    def fits(self, axis, layout):
        ok = real(self, axis, layout)
        seen.append(ok)
        return ok

    monkeypatch.setattr(h5io.H5Writer, "_pack_fits", fits)
    real_init = StatsBatch.__init__

    def lying_init(self, analyses, sources=None):  # every output claimed to be a float
        real_init(self, analyses, sources)
        lay = self.layout
        self.layout = PackLayout(lay.names, tuple(range(len(lay.names))),
                                 lay.floats + lay.ints, 0)

    packed = _write(tmp_path / "packed.h5", True, monkeypatch)
    monkeypatch.setattr(StatsBatch, "__init__", lying_init)
    monkeypatch.setattr(StatsBatch, "__call__", lambda self, record: Pack(
        self.layout, np.arange(self.layout.floats, dtype=np.float64),
        np.empty(0, dtype=np.int64)))
    seen.clear()
    lied = _write(tmp_path / "lied.h5", True, monkeypatch)
    assert False in seen  # a layout with an int output called a float was refused
    # the lying pack's values went through the writer's converters: the
    # counts are int64 variables holding the pack's float positions
    assert lied["a_count"].dtype == packed["a_count"].dtype == np.int64
    assert lied["a_count"][0] == 0 and lied["a_sum"][0] == 1.0


def test_step_values_read_as_a_dict_made_once():
    lay = PackLayout(("m", "n"), (0, 1), 1, 1)
    p = Pack(lay, np.array([2.5]), np.array([7]))
    v = StepValues([{"x": 1.0}, p, {"y": [1, 2]}])
    d = v.as_dict()
    assert d == {"x": 1.0, "m": 2.5, "n": 7} | {"y": [1, 2]}
    assert list(d) == ["x", "m", "n", "y"]
    assert type(d["m"]) is float and type(d["n"]) is int
    assert v.as_dict() is d and v["n"] == 7 and len(v) == 4 and dict(v) == d
    row = RowValues({"x": 1.0}, (p,))
    assert row.get("x") == 1.0 and row.get("m") == 2.5 and row.get("n") == 7
    assert row.get("zz") is None and p.get("zz", 3) == 3
    assert lay.dtype_of("m") == np.float64 and lay.dtype_of("n") == np.int64


def test_only_batchable_stats_are_batched():
    assert Stats.batch_results is not None
    cfg = {"output": {"path": "unused.h5"}, "log_level": "WARNING", "fields": FIELDS,
           "coords": COORDS, "reproducible": True,
           "analyses": [{"kind": "stats", "field": "T", "name": "exact", "every": 1},
                        {"kind": "stats", "field": "T", "name": "mm", "every": 1,
                         "stats": ["min", "max"]}]}

    def run(comm):
        api.init(comm, cfg)
        try:
            rng = np.random.default_rng(3)
            keep = []
            _declare_and_expose(comm, 1, rng, keep)
            s = api.session()
            s.step(1, 1.0)
            return [(a.name, a.batchable) for a in s.analyses], \
                [type(p).__name__ for p in s._due_at(1)[5]]
        finally:
            api.finalize()

    batchable, producers = FakeWorld(1).run(run)[0]
    # the exact reproducible sum is formed in Python: not batched
    assert batchable == [("exact", False), ("mm", True)]
    assert producers == ["method", "StatsBatch"]


@pytest.mark.parametrize("size", [1, 2])
@pytest.mark.parametrize("failing", ["a", "one"])
def test_a_shared_local_pass_fails_for_all_who_share_it_and_only_them(size, failing,
                                                                      monkeypatch):
    """on_error: skip.  When the analysis whose local pass twin and sample
    share fails (on rank 0 only), the three are skipped and disabled
    together, as they would have failed alike; when another analysis fails,
    twin and sample still get a's numbers (their slots borrowed from a's on
    the failure path), right against numpy."""
    real = Stats.local

    def local(self, views, record, step):
        if self.name == failing and step == 2 and api.session().comm.rank == 0:
            raise RuntimeError(f"injected in {self.name}")
        return real(self, views, record, step)

    monkeypatch.setattr(Stats, "local", local)
    cfg = {"output": {"path": "unused.h5"}, "log_level": "ERROR", "fields": FIELDS,
           "coords": COORDS, "on_error": "skip",
           "analyses": [dict(a, every=1) for a in ANALYSES]}

    def run(comm):
        api.init(comm, cfg)
        try:
            s = api.session()
            rng = np.random.default_rng(5)
            keep, out = [], []
            for step in range(1, 4):
                _declare_and_expose(comm, step, rng, keep)
                out.append(dict(s.step(step, float(step))))
            return out, sorted(s.analyses[i].name for i in s.disabled)
        finally:
            api.finalize()

    results = FakeWorld(size).run(run)
    out, disabled = results[0]
    rng = np.random.default_rng(5)
    fields = [_fields(step, rng) for step in range(1, 4)]
    if failing == "a":
        assert disabled == ["a", "sample", "twin"]
        for step in (2, 3):
            assert not any(k.startswith(("a_", "twin_", "sample_")) for k in out[step - 1])
        assert out[1]["one_count"] == 1  # the others went on
    else:
        assert disabled == ["one"]
        for step in (1, 2, 3):
            t = fields[step - 1][0]
            fin = t[np.isfinite(t)]
            got = out[step - 1]
            assert got["twin_count"] == got["a_count"] == fin.size
            if fin.size:
                assert got["twin_mean"] == got["a_mean"] == pytest.approx(fin.mean(),
                                                                          rel=1e-14)
                assert got["sample_var"] == pytest.approx(np.var(fin, ddof=1), rel=1e-13)
        assert "one_count" not in out[1] and "one_count" in out[0]
    for other, d in results[1:]:
        assert d == disabled
