"""Review 7: the row kernels read halo views as padded rows (kernels/rows.py,
kernels.moments._c_rows, kernels.extremes, kernels.weighted.Prepared):
the description's last row runs past the view, up to a row's padding
beyond it.  The kernels must never read there.

Each field here is placed so that its last byte is the last byte before
a page the process may not read (mmap, then mprotect PROT_NONE through
ctypes), and viewed with no high halo on its slow axes, so that the
padded description's last row ends past the allocation: a kernel that
reads one value (or one vector) past a row's real length dies with
SIGSEGV.  The checks run in a child process, so that such a death is a
failed test naming the layout that reached it (the child prints each
layout before running it), never a crashed pytest.  The results are
compared with numpy on the same values, which also proves the view was
read at all.
"""
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(r'''
    import ctypes, itertools, mmap, sys
    import numpy as np
    from insitu.kernels import moments as km
    from insitu.kernels.extremes import arg_extremes
    from insitu.kernels import weighted as kw
    from insitu.kernels import histogram as kh

    PAGE = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    keep = []

    def guarded(shape, dtype, order):
        """An array whose memory ends where an unreadable page begins."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        npages = -(-nbytes // PAGE) + 1
        m = mmap.mmap(-1, npages * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        if libc.mprotect(base + (npages - 1) * PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
        keep.append(m)
        a = np.ndarray(shape, dtype, buffer=m, offset=(npages - 1) * PAGE - nbytes,
                       order=order)
        return a

    rng = np.random.default_rng(7)
    checked = 0
    mode = sys.argv[1]
    if mode == "session":
        # the analyses' own paths (Prepared, padded rows made per view,
        # weights as a field) in a 1-rank session on guarded arrays
        from insitu import api
        from insitu.comm import FakeWorld
        cfg = {"fields": {"T": {"units": "K", "dims": ["y", "x"]}, "area": {"dims": ["y", "x"]}},
               "analyses": [
                   {"kind": "stats", "field": "T", "name": "s",
                    "stats": ["count", "mean", "min", "max", "argmax", "argmin"]},
                   {"kind": "stats", "field": "T", "name": "w", "weights": "area",
                    "stats": ["mean", "std"]},
                   {"kind": "exceedance", "field": "T", "name": "e", "threshold": 0.5,
                    "op": "gt"},
                   {"kind": "exceedance", "field": "T", "name": "we", "threshold": 0.5,
                    "op": "le", "weights": "area"},
                   {"kind": "histogram", "field": "T", "bins": 8, "range": [-20.0, 20.0]},
                   {"kind": "histogram", "field": "T", "name": "wh", "bins": 8,
                    "range": [-20.0, 20.0], "weights": "area"}],
               "output": {"overwrite": True}}
        for order in "CF":
            for n in (3, 7, 17, 33):
                shape = (n + 1, n + 2) if order == "C" else (n + 2, n + 1)
                lo, hi = ((1, 1), (0, 1)) if order == "C" else ((1, 1), (1, 0))
                gshape = (n, n)
                def body(comm):
                    api.init(comm, cfg)
                    try:
                        T = guarded(shape, "float64", order)
                        A = guarded(shape, "float64", order)
                        T[...] = rng.standard_normal(shape) * 10
                        T.flat[::7] = np.nan
                        A[...] = rng.random(shape)
                        api.declare_field("T", np.float64, gshape, (0, 0), shape, lo, hi, order)
                        api.declare_field("area", np.float64, gshape, (0, 0), shape, lo, hi,
                                          order)
                        api.expose("T", T)
                        api.expose("area", A)
                        sl = tuple(slice(l, s - h) for l, s, h in zip(lo, shape, hi))
                        return api.step(1, 0.0), T[sl].copy(), A[sl].copy()
                    finally:
                        api.finalize()
                print(mode, order, n, flush=True)
                (res, x, w), = FakeWorld(1).run(body)
                fin = np.isfinite(x)
                assert res["s_count"] == fin.sum() and res["s_max"] == x[fin].max(), res
                assert np.isclose(res["w_mean"], np.average(x[fin], weights=w[fin]))
                assert res["e_count"] == (x[fin] > 0.5).sum(), sorted(res)
                checked += 1
        print("checked", checked)
        sys.exit(0)
    for ndim, order, dtype in itertools.product((2, 3), "CF", ("float64", "float32")):
        for n in (1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 65):
            shape = [n + 1] * ndim
            if ndim == 3:
                shape[1] = 3
            fast = ndim - 1 if order == "C" else 0
            shape[fast] = n + 2          # a halo of 1 before and after on the fast axis
            a = guarded(tuple(shape), dtype, order)
            a[...] = rng.standard_normal(a.shape) * 10
            a.flat[rng.integers(0, a.size, size=max(1, a.size // 9))] = np.nan
            # interior: [1:-1] on the fast axis, [1:] (no high halo) on the
            # others, so the last padded row ends past the allocation
            sl = [slice(1, None)] * ndim
            sl[fast] = slice(1, -1)
            v = a[tuple(sl)]
            x = v.astype(np.float64)
            fin = x[np.isfinite(x)]
            print(mode, ndim, order, dtype, n, flush=True)
            if mode == "moments":
                m = km.moments(v)
                assert m[0] == fin.size, (m, fin.size)
                assert np.isclose(m[1], fin.sum(), rtol=1e-5, atol=1e-6 * fin.size)
                fn, args = km.prepare(v)
                fn(*args)
                assert np.array_equal(args[-1], m, equal_nan=True)
            elif mode == "extremes":
                out = arg_extremes(v, (0,) * ndim, v.shape)
                if fin.size == 0:
                    assert list(out) == [-np.inf, np.inf, np.inf, np.inf], out
                    checked += 1
                    continue
                assert out[0] == fin.max() and out[2] == fin.min(), (out, fin.max(), fin.min())
                flat = np.where(np.isfinite(x), x, -np.inf).ravel()
                assert out[1] == np.argmax(flat)
            elif mode == "exceedance":
                w = guarded(a.shape, "float64", order)
                w[...] = rng.random(a.shape)
                wv = w[tuple(sl)]
                for weights in (np.ones(()), wv):
                    out = kw.exceedance(v, weights, 0.5, "gt")
                    ww = np.broadcast_to(weights, v.shape)[np.isfinite(x)]
                    assert out[0] == (fin > 0.5).sum() and out[1] == fin.size, out
                    assert np.isclose(out[3], ww.sum())
            elif mode == "padding":   # the guard's own check: this must die
                from insitu.kernels.rows import padded
                p = padded(v)
                if p is v:   # a single row: no padded description
                    continue
                print("sum", float(np.nansum(p)), flush=True)
            elif mode == "histogram":
                h = kh.histogram(v, -20.0, 20.0, 8)
                ref = np.histogram(fin, 8, (-20.0, 20.0))[0]
                assert np.array_equal(h[1:-1], ref), (h, ref)
                hw = kh.weighted_histogram(v, np.ones(()), -20.0, 20.0, 8)
                assert np.array_equal(hw, h), (hw, h)
            checked += 1
    print("checked", checked)
''')


@pytest.mark.parametrize("mode", ["moments", "extremes", "exceedance", "histogram", "session"])
def test_row_kernels_never_read_past_the_view(mode, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    r = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    last = r.stdout.strip().splitlines()[-1:]
    assert r.returncode == 0, (f"{mode}: the child died ({r.returncode}) after layout "
                               f"{last}:\n{r.stderr[-3000:]}")
    assert r.stdout.strip().endswith("checked 8" if mode == "session" else "checked 104"), \
        r.stdout[-500:]


def test_the_guard_catches_a_read_of_the_padding(tmp_path):
    """The test above can fail: reading the padded description whole (what
    a kernel that ignored the real row length would do) dies at the first
    layout, with SIGSEGV."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    r = subprocess.run([sys.executable, str(script), "padding"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == -11, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert r.stdout.splitlines()[-1] == "padding 2 C float64 2", r.stdout
