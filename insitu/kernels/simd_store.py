"""Vector stores, masked stores and lane masks for the kernels that update
per-point state in place (:mod:`insitu.kernels.perpoint`), on the
:data:`insitu.kernels.simd.VEC` vectors.

Why explicit vectors here too: a loop that reads a value and updates five
state arrays in place is not vectorised by LLVM (it would need run-time
checks that none of the six arrays overlap, more than its limit), so the
per-point running mean, variance, minimum and maximum ran one point at a
time.  Written with these, each operation is one instruction on eight
points, and the operations are the scalar loop's, lane by lane, in the
same order: the same bits.

A mask is a vector of 1.0 (lane on) and 0.0 (off), as
:func:`insitu.kernels.simd.visfinite` makes, so that masks are ordinary
:data:`VEC` values; LLVM folds the conversions back into the comparisons.

The masked stores write only the lanes whose new value passes the
comparison (``llvm.masked.store``: one ``vmovupd`` under a mask register
on AVX-512, ``vmaskmovpd`` on AVX2): a running minimum that did not move
is neither written nor dirtied in the cache, so its line is not written
back to memory.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .simd import VEC, W, _finite

_F64 = ir.DoubleType()
_VT = ir.VectorType(_F64, W)
_I32 = ir.IntType(32)
_ONE = ir.Constant(_VT, [1.0] * W)
_ZERO = ir.Constant(_VT, [0.0] * W)


def _on(builder, m):
    """The i1 lanes of a 1.0/0.0 mask."""
    return builder.fcmp_ordered("!=", m, _ZERO)


def _mask(builder, bits):
    return builder.select(bits, _ONE, _ZERO)


@intrinsic
def vdiv(typingctx, a, b):
    """Lane-wise ``a / b``, rounded once (``vdivpd``)."""
    if a != VEC or b != VEC:
        raise TypingError("vdiv needs two vectors")

    def codegen(context, builder, sig, args):
        return builder.fdiv(args[0], args[1])
    return VEC(VEC, VEC), codegen


@intrinsic
def vwhere(typingctx, m, a, b):
    """Lane-wise ``a if m else b`` (``m`` a 1.0/0.0 mask)."""
    if m != VEC or a != VEC or b != VEC:
        raise TypingError("vwhere needs three vectors")

    def codegen(context, builder, sig, args):
        return builder.select(_on(builder, args[0]), args[1], args[2])
    return VEC(VEC, VEC, VEC), codegen


def _compare(pred):
    @intrinsic
    def fn(typingctx, a, b):
        if a != VEC or b != VEC:
            raise TypingError("a comparison needs two vectors")

        def codegen(context, builder, sig, args):
            return _mask(builder, builder.fcmp_ordered(pred, args[0], args[1]))
        return VEC(VEC, VEC), codegen
    return fn


#: Lane-wise masks ``a < b``, ``a > b``, ``a <= b``, ``a >= b``, ``a == b``
#: (False where either is NaN).
vlt = _compare("<")
vgt = _compare(">")
vle = _compare("<=")
vge = _compare(">=")
veq = _compare("==")


def _logic(name, op):
    @intrinsic
    def fn(typingctx, a, b):
        if a != VEC or b != VEC:
            raise TypingError(f"{name} needs two masks")

        def codegen(context, builder, sig, args):
            return _mask(builder, getattr(builder, op)(_on(builder, args[0]),
                                                       _on(builder, args[1])))
        return VEC(VEC, VEC), codegen
    return fn


#: Lane-wise ``a or b`` and ``a and b`` of two masks.
vor = _logic("vor", "or_")
vand = _logic("vand", "and_")


@intrinsic
def vnotfinite(typingctx, v):
    """Lane-wise mask: ``x`` is NaN or +-Inf (not :func:`simd._finite`)."""
    if v != VEC:
        raise TypingError("vnotfinite needs a vector")

    def codegen(context, builder, sig, args):
        return _mask(builder, builder.not_(_finite(builder, args[0])))
    return VEC(VEC), codegen


@intrinsic
def vany(typingctx, m):
    """True if any lane of the mask ``m`` is on (one ``kortest``)."""
    if m != VEC:
        raise TypingError("vany needs a mask")

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(_on(builder, args[0]), ir.IntType(W))
        return builder.icmp_unsigned("!=", bits, ir.Constant(ir.IntType(W), 0))
    return types.boolean(VEC), codegen


@intrinsic
def vall(typingctx, m):
    """True if every lane of the mask ``m`` is on."""
    if m != VEC:
        raise TypingError("vall needs a mask")

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(_on(builder, args[0]), ir.IntType(W))
        return builder.icmp_unsigned("==", bits, ir.Constant(ir.IntType(W), (1 << W) - 1))
    return types.boolean(VEC), codegen


@intrinsic
def vall_nonneg(typingctx, v):
    """True if every lane of ``v`` is in ``[+0.0, +inf)``: finite and not
    negative (``-0.0``, NaN and +-Inf are not).  One unsigned comparison of
    the bits: a double's bits below those of +inf are exactly the finite
    values with a clear sign bit."""
    if v != VEC:
        raise TypingError("vall_nonneg needs a vector")

    def codegen(context, builder, sig, args):
        it = ir.VectorType(ir.IntType(64), W)
        bits = builder.bitcast(args[0], it)
        below = builder.icmp_unsigned("<", bits, ir.Constant(it, [0x7FF0000000000000] * W))
        return builder.icmp_unsigned("==", builder.bitcast(below, ir.IntType(W)),
                                     ir.Constant(ir.IntType(W), (1 << W) - 1))
    return types.boolean(VEC), codegen


@intrinsic
def prefetch(typingctx, arr, i):
    """Hint that ``arr[i]``'s cache line will be read soon (1-D array; a
    prefetch never faults, even past the end)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1):
        raise TypingError(f"prefetch needs a 1-D array, got {arr}")

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, _I32, _I32, _I32]),
            "llvm.prefetch.p0i8")
        ptr = builder.bitcast(builder.gep(ary.data, [idx]), i8p)
        builder.call(fn, [ptr, ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()
    return types.none(arr, i), codegen


def _check_f64(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype == types.float64):
        raise TypingError(f"needs a 1-D C-contiguous float64 array, got {arr}")


def _lanes_ptr(context, builder, sig, args):
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    idx = context.cast(builder, args[1], sig.args[1], types.intp)
    return builder.bitcast(builder.gep(ary.data, [idx]), _VT.as_pointer())


@intrinsic
def vstore(typingctx, arr, i, v):
    """``arr[i:i + W] = v`` (``arr`` 1-D C-contiguous float64; no bounds
    check, as in a numba loop)."""
    _check_f64(arr)

    def codegen(context, builder, sig, args):
        builder.store(args[2], _lanes_ptr(context, builder, sig, args), align=8)
        return context.get_dummy_value()
    return types.none(arr, i, v), codegen


def _store_if(pred):
    @intrinsic
    def fn(typingctx, arr, i, v):
        _check_f64(arr)

        def codegen(context, builder, sig, args):
            ptr = _lanes_ptr(context, builder, sig, args)
            old = builder.load(ptr, align=8)
            bits = builder.fcmp_ordered(pred, args[2], old)
            store = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [_VT, _VT.as_pointer(), _I32,
                                                ir.VectorType(ir.IntType(1), W)]),
                f"llvm.masked.store.v{W}f64.p0v{W}f64")
            builder.call(store, [args[2], ptr, ir.Constant(_I32, 8), bits])
            return context.get_dummy_value()
        return types.none(arr, i, v), codegen
    return fn


#: ``arr[i + l] = v[l]`` only in the lanes where ``v[l] < arr[i + l]``
#: (:func:`vstore_below`) or ``>`` (:func:`vstore_above`): a running
#: minimum or maximum.  A NaN in ``v`` compares False and is never stored.
vstore_below = _store_if("<")
vstore_above = _store_if(">")
