"""The auction's inner loop: best and second-best ``a[i, j] − prices[j]`` of one row, in SIMD.

Every bid of the exact solver (:mod:`semrsm.matching.exact`) scans a whole row of the cost
matrix for its best and second-best value and the best column. numba does not vectorise
that loop: it is a reduction of three coupled values (best, second best, its column), so the
compiled scalar code runs at about 0.8 ns per entry. :func:`row_top2` emits it as LLVM
vector code instead, through a numba intrinsic:

* ``_LANES`` (8) float64 lanes per vector and ``_ACCUMULATORS`` (4) independent vectors, so
  the compare-select chains of consecutive vectors do not wait on each other;
* float32 cost matrices (``exact_batch`` accepts them) are widened to float64 as they are
  loaded, so they are solved in float64 arithmetic without a float64 copy;
* the accumulators and then the lanes are merged by a tree of vector selects; ties keep the
  lowest column, so the result is exactly that of a sequential scan with ``>``.

The vector types are legalised by LLVM for whatever the machine has (SSE2, AVX2, AVX-512,
NEON), so the code is portable; only the speed differs. ``tests/test_row_scan.py`` checks it
against a plain loop on random rows, ties, and float32 and float64 inputs.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_LANES = 8
_ACCUMULATORS = 4
_BLOCK = _LANES * _ACCUMULATORS  # entries per loop iteration


def _merge(builder: ir.IRBuilder, x: tuple, y: tuple) -> tuple:
    """Top-2 of the union of two (best, second, best column) triples, lane by lane; a tie
    on the best keeps the lower column."""
    b1, b2, bj = x
    c1, c2, cj = y
    gt = builder.fcmp_ordered(">", c1, b1)
    lower = builder.and_(builder.fcmp_ordered("==", c1, b1), builder.icmp_signed("<", cj, bj))
    second_if_gt = builder.select(builder.fcmp_ordered(">", c2, b1), c2, b1)
    second_else = builder.select(builder.fcmp_ordered(">", c1, b2), c1, b2)
    return (builder.select(gt, c1, b1), builder.select(gt, second_if_gt, second_else),
            builder.select(builder.or_(gt, lower), cj, bj))


def _make_vector_top2(accumulators: int):
    """An intrinsic ``(a, i, prices, start, stop) → (best, second best, best column)`` of
    ``a[i, start:stop] − prices[start:stop]`` with ``accumulators`` vectors per iteration;
    ``stop − start`` a multiple of ``_LANES · accumulators``; ``a`` C-contiguous 2-D
    float32/float64, ``prices`` C-contiguous float64. (−inf, −inf, 0) when ``stop ≤ start``."""
    block = _LANES * accumulators

    @intrinsic
    def vector_top2(typingctx, a, i, prices, start, stop):
        sig = types.Tuple((types.float64, types.float64, types.int64))(a, i, prices, start, stop)
        return sig, lambda context, builder, signature, args: _codegen(
            context, builder, signature, args, accumulators, block)

    return vector_top2


def _codegen(context, builder, signature, args, accumulators: int, block: int):
    """Emit the vector loop and the final merge (see :func:`_make_vector_top2`)."""
    a_ty, _, p_ty, _, _ = signature.args
    arr = context.make_array(a_ty)(context, builder, args[0])
    pr = context.make_array(p_ty)(context, builder, args[2])
    i64, dbl = ir.IntType(64), ir.DoubleType()
    elt = context.get_data_type(a_ty.dtype)
    esize = context.get_abi_sizeof(elt)
    vecd, veci, vece = (ir.VectorType(t, _LANES) for t in (dbl, i64, elt))
    mask_t = ir.VectorType(ir.IntType(32), _LANES)
    n = builder.extract_value(arr.shape, 1)
    row_bytes = builder.mul(builder.mul(args[1], n), i64(esize))
    a_base = builder.add(builder.ptrtoint(arr.data, i64), row_bytes)
    p_base = builder.ptrtoint(pr.data, i64)
    start, stop = args[3], args[4]
    ninf = ir.Constant(vecd, [float("-inf")] * _LANES)
    izero = ir.Constant(veci, [0] * _LANES)
    lane_ids = ir.Constant(veci, list(range(_LANES)))
    undef_i = ir.Constant(veci, ir.Undefined)

    entry = builder.block
    loop = builder.append_basic_block("row_top2.loop")
    done = builder.append_basic_block("row_top2.done")
    builder.cbranch(builder.icmp_signed("<", start, stop), loop, done)

    builder.position_at_end(loop)
    j = builder.phi(i64)
    state = [tuple(builder.phi(t) for t in (vecd, vecd, veci)) for _ in range(accumulators)]
    new_state = []
    for u, (m1, m2, ix) in enumerate(state):
        off = builder.add(j, i64(u * _LANES))
        pa = builder.inttoptr(builder.add(a_base, builder.mul(off, i64(esize))),
                              vece.as_pointer())
        va = builder.load(pa, align=esize)
        if elt != dbl:
            va = builder.fpext(va, vecd)
        pp = builder.inttoptr(builder.add(p_base, builder.mul(off, i64(8))), vecd.as_pointer())
        v = builder.fsub(va, builder.load(pp, align=8))
        gt = builder.fcmp_ordered(">", v, m1)
        above_second = builder.fcmp_ordered(">", v, m2)
        cols = builder.add(builder.shuffle_vector(
            builder.insert_element(undef_i, off, i64(0)), undef_i,
            ir.Constant(mask_t, [0] * _LANES)), lane_ids)
        new_state.append((builder.select(gt, v, m1),
                          builder.select(gt, m1, builder.select(above_second, v, m2)),
                          builder.select(gt, cols, ix)))
    j_next = builder.add(j, i64(block))
    loop_end = builder.block
    builder.cbranch(builder.icmp_signed("<", j_next, stop), loop, done)
    j.add_incoming(start, entry)
    j.add_incoming(j_next, loop_end)
    for phis, news in zip(state, new_state, strict=True):
        for phi, start, new in zip(phis, (ninf, ninf, izero), news, strict=True):
            phi.add_incoming(start, entry)
            phi.add_incoming(new, loop_end)

    builder.position_at_end(done)
    acc = []
    for news in new_state:
        merged = []
        for t, start, new in zip((vecd, vecd, veci), (ninf, ninf, izero), news, strict=True):
            phi = builder.phi(t)
            phi.add_incoming(start, entry)
            phi.add_incoming(new, loop_end)
            merged.append(phi)
        acc.append(tuple(merged))
    while len(acc) > 1:
        acc = [_merge(builder, acc[k], acc[k + 1]) for k in range(0, len(acc), 2)]
    x = acc[0]
    half = _LANES // 2
    while half >= 1:
        mask = ir.Constant(mask_t, [(lane + half) % _LANES for lane in range(_LANES)])
        x = _merge(builder, x, tuple(builder.shuffle_vector(v, v, mask) for v in x))
        half //= 2
    out = [builder.extract_element(v, i64(0)) for v in x]
    return context.make_tuple(builder, signature.return_type, out)


_top2_wide = _make_vector_top2(_ACCUMULATORS)
_top2_narrow = _make_vector_top2(1)


@nb.njit(cache=True, nogil=True)
def row_top2(a: np.ndarray, i: int, prices: np.ndarray) -> tuple[float, float, int]:
    """Best and second-best ``a[i, j] − prices[j]`` over ``j`` and the best ``j`` (the lowest
    among equal bests).

    ``a``: C-contiguous (S, S) float32 or float64 with S ≥ 1; ``prices``: C-contiguous (S,)
    float64. Arithmetic in float64. The second best is −inf when S = 1.
    """
    n = a.shape[1]
    wide = n - n % _BLOCK
    narrow = n - n % _LANES
    b1, b2, j1 = _top2_wide(a, i, prices, 0, wide)
    if narrow > wide:  # the remaining whole vectors
        c1, c2, cj = _top2_narrow(a, i, prices, wide, narrow)
        if c1 > b1:
            b2 = max(b1, c2)
            b1 = c1
            j1 = cj
        else:
            b2 = max(b2, c1)
    for j in range(narrow, n):
        v = a[i, j] - prices[j]
        if v > b1:
            b2 = b1
            b1 = v
            j1 = j
        elif v > b2:
            b2 = v
    return b1, b2, j1
