"""Fixed-width vectors of float64 for the numba kernels: explicit lanes.

A float sum is only reproducible if the order of its additions is fixed.
LLVM vectorises a float reduction only when allowed to reassociate it
(fast-math ``reassoc``), and then the order is LLVM's choice: it depends on
the CPU's vector width and on how numba inlined the code, so a kernel
compiled fresh and the same kernel loaded from numba's cache gave sums one
ulp apart (issue 10, item 7).  Written as plain scalar code in a fixed
order, the sums were exact to the source but ran at half of
``numpy.sum``'s speed on float32 (the loop vectoriser cannot keep
accumulators in registers across an inner loop over lanes, and LLVM's SLP
vectoriser does not vectorise scalar accumulators carried by a loop).

So the kernels say what the CPU should do: a :data:`VEC` value is an LLVM
``<8 x double>``, each operation below acts lane by lane, and a
horizontal sum adds the lanes in one fixed tree.  LLVM keeps the vectors
in registers and maps each operation to one AVX-512 instruction or two
AVX2 ones (SSE: four); since no fast-math flag is set and no operation
spans lanes, it may not reorder, fuse (no FMA) or re-associate anything,
and the bits are the same on every x86-64 CPU, compiled or loaded from the
cache.

Eight lanes is the width of one AVX-512 register and two AVX2 ones: wide
enough to hide the latency of an addition, small enough that a kernel's
few accumulators stay in AVX2's sixteen registers.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

#: Lanes per vector.
W = 8

_F64 = ir.DoubleType()
_VT = ir.VectorType(_F64, W)
_I32 = ir.IntType(32)


class F64Vec(types.Type):
    """The numba type of :data:`W` float64 lanes (an LLVM vector)."""

    def __init__(self):
        super().__init__(name=f"F64x{W}")


#: The one vector type.
VEC = F64Vec()


@register_model(F64Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


_LOADABLE = (types.float32, types.float64, types.int32, types.int64)


def _vload_codegen(context, builder, aryty, ary, idxs):
    """W values from ``ary`` at ``idxs`` (the last one running over the lanes),
    widened to float64.  One vector load when the last axis is contiguous:
    always for layout C, and for any other layout when its last stride is
    one item (a halo-sliced view: checked at run time, a branch LLVM hoists
    out of the loop); lane by lane through the strides otherwise."""
    dtype = aryty.dtype
    size = np.dtype(str(dtype)).itemsize
    elt = context.get_data_type(dtype)
    vty = ir.VectorType(elt, W)
    shape = cgutils.unpack_tuple(builder, ary.shape, aryty.ndim)
    strides = cgutils.unpack_tuple(builder, ary.strides, aryty.ndim)
    first = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides,
                                      aryty.layout, idxs)
    if aryty.layout == "C":
        v = builder.load(builder.bitcast(first, vty.as_pointer()), align=size)
    else:
        unit = builder.icmp_signed("==", strides[-1], ir.Constant(strides[-1].type, size))
        with builder.if_else(unit, likely=True) as (contiguous, strided):
            with contiguous:
                v1 = builder.load(builder.bitcast(first, vty.as_pointer()), align=size)
                b1 = builder.basic_block
            with strided:
                v2 = ir.Constant(vty, ir.Undefined)
                for l in range(W):
                    at = idxs[:-1] + [builder.add(idxs[-1], ir.Constant(idxs[-1].type, l))]
                    ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides,
                                                    "A", at)
                    v2 = builder.insert_element(v2, builder.load(ptr, align=size),
                                                ir.Constant(_I32, l))
                b2 = builder.basic_block
        v = builder.phi(vty)
        v.add_incoming(v1, b1)
        v.add_incoming(v2, b2)
    if dtype == types.float64:
        return v
    if dtype == types.float32:
        return builder.fpext(v, _VT)
    return builder.sitofp(v, _VT)


def _check_loadable(arr, ndim):
    if not (isinstance(arr, types.Array) and arr.ndim == ndim and arr.dtype in _LOADABLE):
        raise TypingError(f"needs a {ndim}-D array of {_LOADABLE}, got {arr}")


@intrinsic
def vload(typingctx, arr, i):
    """``arr[i:i + W]`` widened to float64 (exactly for float32 and int32;
    int64 rounded as ``np.float64(x)`` rounds).  ``arr`` is 1-D; no bounds
    check, as in a numba loop.  Contiguous values are read with one vector
    load, strided ones lane by lane (see :func:`_vload_codegen`)."""
    _check_loadable(arr, 1)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        return _vload_codegen(context, builder, sig.args[0], ary, [idx])
    return VEC(arr, i), codegen


@intrinsic
def vload3(typingctx, arr, i, j, k):
    """``arr[i, j, k:k + W]`` of a 3-D array, as :func:`vload`.  Indexing the
    array in place, rather than slicing a row out of it, spares numba's
    reference counting of the slice: atomic operations that cost some
    50 ns per row, which a halo-sliced field with short rows pays at every
    row."""
    _check_loadable(arr, 3)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idxs = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:], sig.args[1:])]
        return _vload_codegen(context, builder, sig.args[0], ary, idxs)
    return VEC(arr, i, j, k), codegen


@intrinsic
def splat(typingctx, x):
    """A vector with every lane ``x``."""
    def codegen(context, builder, sig, args):
        x = context.cast(builder, args[0], sig.args[0], types.float64)
        v = builder.insert_element(ir.Constant(_VT, ir.Undefined), x, ir.Constant(_I32, 0))
        return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined),
                                      ir.Constant(ir.VectorType(_I32, W), [0] * W))
    return VEC(x), codegen


def _binary(op):
    @intrinsic
    def fn(typingctx, a, b):
        if a != VEC or b != VEC:
            raise TypingError(f"{op} needs two vectors")

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])
        return VEC(VEC, VEC), codegen
    return fn


#: Lane-wise ``a + b``, ``a - b`` and ``a * b``, each rounded once.
vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")


def _select(pred):
    @intrinsic
    def fn(typingctx, a, b):
        if a != VEC or b != VEC:
            raise TypingError("vmin/vmax need two vectors")

        def codegen(context, builder, sig, args):
            return builder.select(builder.fcmp_ordered(pred, args[0], args[1]),
                                  args[0], args[1])
        return VEC(VEC, VEC), codegen
    return fn


#: Lane-wise ``a if a < b else b`` (and ``>``): a NaN in ``a`` leaves ``b``
#: (vminpd's own rule, one instruction); of two equal values, ``b``.
vmin = _select("<")
vmax = _select(">")


@intrinsic
def lane(typingctx, v, i):
    """Lane ``i`` of ``v`` as a float64."""
    if v != VEC:
        raise TypingError("lane needs a vector")

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], context.cast(builder, args[1], sig.args[1],
                                                             types.intp))
    return types.float64(VEC, i), codegen


def _horizontal(kind):
    @intrinsic
    def fn(typingctx, v):
        if v != VEC:
            raise TypingError("a horizontal reduction needs a vector")

        def codegen(context, builder, sig, args):
            # Halve the vector until one lane is left: lane l + w/2 goes into
            # lane l, in the same tree on every machine.
            v = args[0]
            w = W
            while w > 1:
                w //= 2
                lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, w),
                                                              list(range(w))))
                hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, w),
                                                              list(range(w, 2 * w))))
                if kind == "sum":
                    v = builder.fadd(lo, hi)
                else:
                    v = builder.select(builder.fcmp_ordered(kind, hi, lo), hi, lo)
            return builder.extract_element(v, ir.Constant(_I32, 0))
        return types.float64(VEC), codegen
    return fn


#: The lanes of ``v`` added in a fixed pairwise tree: ``((v0 + v4) + (v2 +
#: v6)) + ((v1 + v5) + (v3 + v7))``.
hsum = _horizontal("sum")
#: The smallest and the largest lane, in the same tree (no lane may be NaN:
#: :func:`vmin` and :func:`vmax` never put one into their second operand).
hmin = _horizontal("<")
hmax = _horizontal(">")


@intrinsic
def vrint(typingctx, v):
    """Lane-wise round to the nearest integer, ties to even (exact)."""
    if v != VEC:
        raise TypingError("vrint needs a vector")

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VT, [_VT]),
                                            f"llvm.rint.v{W}f64")
        return builder.call(fn, args)
    return VEC(VEC), codegen


def _finite(builder, v):
    fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VT, [_VT]),
                                          f"llvm.fabs.v{W}f64")
    return builder.fcmp_ordered("<", builder.call(fabs, [v]),
                                ir.Constant(_VT, [float("inf")] * W))


@intrinsic
def vfinite_or_zero(typingctx, v):
    """Lane-wise ``x if |x| < inf else 0.0``: NaN and +-Inf become 0."""
    if v != VEC:
        raise TypingError("vfinite_or_zero needs a vector")

    def codegen(context, builder, sig, args):
        return builder.select(_finite(builder, args[0]), args[0], ir.Constant(_VT, [0.0] * W))
    return VEC(VEC), codegen


@intrinsic
def vfinite_or(typingctx, v, fill):
    """Lane-wise ``x if |x| < inf else fill`` (``fill`` a float)."""
    if v != VEC:
        raise TypingError("vfinite_or needs a vector")

    def codegen(context, builder, sig, args):
        f = context.cast(builder, args[1], sig.args[1], types.float64)
        one = builder.insert_element(ir.Constant(_VT, ir.Undefined), f, ir.Constant(_I32, 0))
        fills = builder.shuffle_vector(one, ir.Constant(_VT, ir.Undefined),
                                       ir.Constant(ir.VectorType(_I32, W), [0] * W))
        return builder.select(_finite(builder, args[0]), args[0], fills)
    return VEC(VEC, fill), codegen


@intrinsic
def visfinite(typingctx, v):
    """Lane-wise 1.0 where ``x`` is finite, else 0.0 (a count, or a factor
    that zeroes what a NaN or an Inf would have added)."""
    if v != VEC:
        raise TypingError("visfinite needs a vector")

    def codegen(context, builder, sig, args):
        return builder.select(_finite(builder, args[0]), ir.Constant(_VT, [1.0] * W),
                              ir.Constant(_VT, [0.0] * W))
    return VEC(VEC), codegen


@intrinsic
def visnan(typingctx, v):
    """Lane-wise 1.0 where ``x`` is NaN, else 0.0."""
    if v != VEC:
        raise TypingError("visnan needs a vector")

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_unordered("uno", args[0], args[0]),
                              ir.Constant(_VT, [1.0] * W), ir.Constant(_VT, [0.0] * W))
    return VEC(VEC), codegen


@intrinsic
def vstore_i32(typingctx, arr, i, v):
    """``arr[i:i + W] = v`` converted to int32 (truncating, as ``int(x)``;
    the lanes must hold integers in int32's range).  ``arr`` must be a 1-D
    C-contiguous int32 array; no bounds check."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype == types.int32 and v == VEC):
        raise TypingError(f"vstore_i32 needs a 1-D C-contiguous int32 array, got {arr}")

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = builder.bitcast(builder.gep(ary.data, [idx]), ir.VectorType(_I32, W).as_pointer())
        builder.store(builder.fptosi(args[2], ir.VectorType(_I32, W)), ptr, align=4)
        return context.get_dummy_value()
    return types.none(arr, i, v), codegen


@intrinsic
def prefetch3(typingctx, arr, i, j, k, ahead):
    """Hint that the cache line ``ahead`` bytes past ``arr[i, j, k]`` will be
    read soon (a no-op for the results: a prefetch never faults, even past
    the end of the array).  Reading a slab row by row, the hardware
    prefetcher alone left memory idle part of the time on this machine
    kind; a hint some kilobytes ahead of the reads doubled the bandwidth of
    the reproducible sum on halo views and raised the statistics kernel's
    from 18 to 30 GB/s (float64, beyond the caches)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 3):
        raise TypingError(f"prefetch3 needs a 3-D array, got {arr}")

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idxs = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:4], sig.args[1:4])]
        shape = cgutils.unpack_tuple(builder, ary.shape, 3)
        strides = cgutils.unpack_tuple(builder, ary.strides, 3)
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides,
                                        aryty.layout, idxs)
        addr = builder.add(builder.ptrtoint(ptr, cgutils.intp_t),
                           context.cast(builder, args[4], sig.args[4], types.intp))
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, _I32, _I32, _I32]),
            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.inttoptr(addr, i8p), ir.Constant(_I32, 0),
                          ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()
    return types.none(arr, i, j, k, ahead), codegen
