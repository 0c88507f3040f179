"""Small helpers for kernels written as LLVM IR through `numba.core.extending.intrinsic`.

The intrinsics of matmul_tables / matmul_x86 / bytes8 take raw addresses and byte strides as int64 (so
that each is typed, compiled and cached once, whatever the dtype or layout of the arrays
behind them); these helpers build the IR for constants, vectors and loops.
"""
from __future__ import annotations

import functools

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils

I8, I16, I32, I64 = (ir.IntType(w) for w in (8, 16, 32, 64))
BYTEP = I8.as_pointer()


def const(v, ty=I64):
    return ir.Constant(ty, v)


def vec(elem, n):
    return ir.VectorType(elem, n)


def zeros(vty):
    return ir.Constant(vty, [0] * vty.count)


def splat(builder, value, vty):
    """A vector of vty with every lane = value (a scalar of vty's element type)."""
    v = builder.insert_element(ir.Constant(vty, None), value, const(0, I32))
    return builder.shuffle_vector(v, ir.Constant(vty, None),
                                  ir.Constant(vec(I32, vty.count), [0] * vty.count))


def address(builder, base, offset, ty=I8):
    """A pointer to `ty` at byte `offset` (int64 value) from `base` (an int64 address or an
    i8* pointer)."""
    if isinstance(base.type, ir.IntType):
        base = builder.inttoptr(base, BYTEP)
    p = builder.gep(base, [offset]) if not (isinstance(offset, ir.Constant)
                                            and offset.constant == 0) else base
    return builder.bitcast(p, ty.as_pointer())


def load(builder, base, offset, ty):
    return builder.load(address(builder, base, offset, ty), align=1)


def store(builder, value, base, offset):
    builder.store(value, address(builder, base, offset, value.type), align=1)


def vector_fn(builder, name, vty, nargs=2):
    """The LLVM intrinsic llvm.<name>.v<count>i<width> (e.g. sadd.sat, smax, smin)."""
    fty = ir.FunctionType(vty, [vty] * nargs)
    return cgutils.get_or_insert_function(
        builder.module, fty, f"llvm.{name}.v{vty.count}i{vty.element.width}")


def smin(builder, x, y):
    return builder.select(builder.icmp_signed("<", x, y), x, y)


def switch(builder, selector, cases, emit):
    """Emit emit(case) in its own block for each case value (the first is the default)."""
    done = builder.append_basic_block("sw.done")
    blocks = {c: builder.append_basic_block(f"sw.{c}") for c in cases}
    sw = builder.switch(selector, blocks[cases[0]])
    for c in cases[1:]:
        sw.add_case(const(c), blocks[c])
    for c, bb in blocks.items():
        builder.position_at_end(bb)
        emit(c)
        builder.branch(done)
    builder.position_at_end(done)


def if_else(builder, cond, emit_then, emit_else):
    with builder.if_else(cond) as (then, otherwise):
        with then:
            emit_then()
        with otherwise:
            emit_else()


for_range = cgutils.for_range
alloca = cgutils.alloca_once


def int_signature(*args):
    """void(int64, …) for intrinsic arguments that are all integers, else None (Numba then
    reports the call as untypable)."""
    if not all(isinstance(a, types.Integer) for a in args):
        return None
    return types.void(*([types.int64] * len(args)))


def _call_ints_typer(typingctx, fnptr, args):
    if not (isinstance(fnptr, types.Integer) and isinstance(args, types.UniTuple)
            and isinstance(args.dtype, types.Integer)):
        return None
    n = args.count

    def codegen(context, builder, sig, llargs):
        ptr, tup = llargs
        fty = ir.FunctionType(ir.VoidType(), [I64] * n)
        fn = builder.inttoptr(ptr, fty.as_pointer())
        vals = [builder.extract_value(tup, i) for i in range(n)]
        vals = [v if v.type == I64 else builder.sext(v, I64) for v in vals]
        builder.call(fn, vals)
        return context.get_dummy_value()

    return types.void(fnptr, args), codegen


def _make_call_ints():
    from numba.core.extending import intrinsic
    return intrinsic(_call_ints_typer)


call_ints = _make_call_ints()
call_ints.__doc__ = """call_ints(address, (a0, a1, …)): call the C function void f(int64, …) at `address`
(a numba.cfunc's .address) with integer arguments. The heavy IR kernels are compiled once as
cfuncs and reached through their address, so the drivers that call them stay small to
compile and can be cached (the address is an argument, not a constant)."""


@functools.lru_cache(maxsize=None)
def cfunc_address(fn) -> int:
    """Address of `fn` compiled (once, cached on disk) as a C function of int64 arguments.

    The drivers reach the IR kernels through these addresses (call_ints) instead of calling
    them directly: a Numba call links the callee's code into every caller and compiles it
    again there, so the kernels would be compiled once per driver and specialization."""
    nargs = fn.__code__.co_argcount
    return numba.cfunc(types.void(*([types.int64] * nargs)), cache=True)(fn).address
