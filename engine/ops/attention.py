"""Attention: scaled dot-product attention and the multi-head attention layer built on it.

attention(Q, K, V) = softmax(Q K^T * scale + masked) V, scale = 1/sqrt(d) by default; masked
positions (mask == 0, or above the diagonal when causal) get weight 0; a query row that may see no
key gives zeros.
With P the weights: dV = P^T g, dS = P * (g V^T - rowsum(g V^T * P)), dQ = scale dS K, dK = scale dS^T Q.

The multi-head layer projects self-attention's query, key and value with one product (the three
kernels side by side), and attends in pieces of the batch on the engine's threads (its sequences never
meet), each piece's heads as one batched product writing straight into the merged layout. A piece
makes its own rows of the projections too (self-attention's three, the output's), so that the
forward pass is one hand-off to the pool (an encoder layer's steps on 2 threads 2-3.6% faster), and
the backward pass takes each projection's three gradients from one split (``product_gradients``).
"""

from __future__ import annotations

import math

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.initializers import INITIALIZER_NAMES
from engine.ops._util import broadcast_shapes, format_shape, sum_to
from engine.ops.linalg import PRODUCT_TERMS_PER_ELEMENT, product_gradients, rows_product
from engine.registry import Op, Param, Port, TensorType, Weight, register


def _check_pair(a: TensorType, b: TensorType, axis: int, a_name: str, b_name: str, what: str, why: str) -> None:
    """Sizes of ``a`` and ``b`` along ``axis`` (``what`` they count) must agree; ``why`` says how to fix it."""
    if a.shape[axis] is not None and b.shape[axis] is not None and a.shape[axis] != b.shape[axis]:
        raise ShapeError(f"{a_name} {format_shape(a.shape)} has {a.shape[axis]} {what} (axis {axis}) but {b_name} "
                         f"{format_shape(b.shape)} has {b.shape[axis]}: {why}", field=f"inputs.{b_name}")


def _mask_type(mask: TensorType | None, batch: tuple, lq, lk) -> None:
    """The mask must broadcast to the scores (*batch, Lq, Lk) without enlarging them: each of its
    axes, aligned from the right, is 1 or the scores' size (an unknown size matches any)."""
    if mask is None:
        return
    scores = (*batch, lq, lk)
    broadcast_shapes(mask.shape, scores, field="inputs.mask")
    widened = mask.rank > len(scores) or any(
        m not in (1, None) and s is not None and m != s for m, s in zip(reversed(mask.shape), reversed(scores)))
    if widened:
        raise ShapeError(f"mask {format_shape(mask.shape)} must broadcast to the attention scores "
                         f"{format_shape(scores)} (batch..., queries, keys) without adding axes or sizes: "
                         f"give it at most {len(scores)} axes, each 1 or the scores' size", field="inputs.mask")


def _keep(xp, mask, causal: bool, lq: int, lk: int):
    """Where a query may attend to a key (broadcasting to the scores), or None for everywhere."""
    keep = None
    if mask is not None:
        keep = mask != 0
    if causal:
        lower = xp.tri(lq, lk, dtype=bool)
        keep = lower if keep is None else keep & lower
    return keep


def _row_max(rows):
    """The maximum along the last axis, kept as size 1, by folding halves onto each other: NumPy's
    reduction along rows as short as attention's is several times slower (the maximum is exact
    either way)."""
    xp = array_module(rows)
    folded = rows
    while folded.shape[-1] > 1:
        half = folded.shape[-1] // 2
        odd = folded[..., 2 * half:]
        folded = xp.maximum(folded[..., :half], folded[..., half:2 * half])
        if odd.shape[-1]:
            xp.maximum(folded[..., :1], odd, out=folded[..., :1])
    return folded


def _row_sum(rows):
    """The sum along the last axis, kept as size 1, as a product with ones (BLAS; NumPy's reduction
    along short rows is several times slower)."""
    xp = array_module(rows)
    return (rows @ xp.ones(rows.shape[-1], dtype=rows.dtype))[..., None]


def _softmax_in_place(scores, keep):
    """scores (..., Lk) -> softmax over the last axis, in place; masked positions get weight 0."""
    xp = array_module(scores)
    if keep is not None:
        xp.copyto(scores, xp.finfo(scores.dtype).min, where=~keep)
    scores -= _row_max(scores)
    xp.exp(scores, out=scores)
    scores /= _row_sum(scores)
    if keep is not None:
        scores *= keep  # a query that may see no key at all attends to nothing and gives zeros
    return scores


def attend(q, k, v, mask, causal: bool, scale: float):
    """Forward of attention on arrays (..., Lq, d), (..., Lk, d), (..., Lk, dv): (out, weights)."""
    xp = array_module(q)
    scores = q @ k.swapaxes(-1, -2)
    scores *= scale
    weights = _softmax_in_place(scores, _keep(xp, mask, causal, *scores.shape[-2:]))
    return weights @ v, weights


def _scores_gradient(dweights, weights, scale: float, rowsum=None):
    """dS = scale * P * (dP - rowsum(dP * P)), written over dP (``rowsum`` given: the same as
    rowsum(dO * O) with O = P V, over fewer values)."""
    if rowsum is None:
        rowsum = _row_sum(dweights * weights)
    dweights -= rowsum
    dweights *= weights
    dweights *= scale
    return dweights


def attend_backward(g, q, k, v, weights, scale: float, needs=(True, True, True)):
    """Gradients (dq, dk, dv) of ``attend`` for the cotangent g (..., Lq, dv), at broadcast shapes."""
    dv = weights.swapaxes(-1, -2) @ g if needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, dv
    dscores = _scores_gradient(g @ v.swapaxes(-1, -2), weights, scale)
    dq = dscores @ k if needs[0] else None
    dk = dscores.swapaxes(-1, -2) @ q if needs[1] else None
    return dq, dk, dv


def _over_batch(xp, batch: int, work: int, rows) -> None:
    """``rows(low, high)`` for pieces of the batch on the engine's threads (one call on CuPy)."""
    if xp is numpy:
        parallel.run(batch, rows, work=work)
    else:
        rows(0, batch)


def _batch_rows(mask, batch: int, low: int, high: int):
    """The rows low:high of a mask that broadcasts to (N, heads, Lq, Lk), if it has a batch axis."""
    if mask is None or mask.ndim < 4 or mask.shape[0] == 1:
        return mask
    return mask[low:high]


@register
class ScaledDotProductAttention(Op):
    name = "scaled_dot_product_attention"
    category = "attention"
    doc = ("softmax(Q K^T / sqrt(d) + mask) V over query (..., Lq, d), key (..., Lk, d), value (..., Lk, dv); "
           "leading axes (batch, heads) broadcast; gives (..., Lq, dv).")
    params = (
        Param("causal", "bool", False, "query i attends only to keys j <= i (a decoder's look-ahead mask)"),
        Param("scale", "float", None, "multiplies the scores; null means 1 / sqrt(d)", minimum=0.0, nullable=True),
    )
    inputs = (
        Port("query", doc="(..., Lq, d)", rank=(2, None)),
        Port("key", doc="(..., Lk, d)", rank=(2, None)),
        Port("value", doc="(..., Lk, dv)", rank=(2, None)),
        Port("mask", "any", "1 (or true) where query i may attend to key j, 0 elsewhere; broadcasts to (..., Lq, Lk)",
             optional=True, differentiable=False),
    )

    def infer(self, p, query: TensorType, key: TensorType, value: TensorType, mask=None) -> TensorType:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.rank < 2:
                raise ShapeError(f"{name} needs shape (..., length, features), got {format_shape(t.shape)}",
                                 field=f"inputs.{name}")
        if query.shape[-1] is None:
            raise ShapeError(f"query needs a known feature size, got {format_shape(query.shape)}", field="inputs.query")
        _check_pair(query, key, -1, "query", "key", "features",
                    "queries and keys are compared by dot products, so their feature sizes must be equal; "
                    "project one of them with a dense layer (or use multi_head_attention, which projects both)")
        _check_pair(key, value, -2, "key", "value", "steps", "each key needs its value: give them the same length")
        batch = broadcast_shapes(query.shape[:-2], key.shape[:-2], field="inputs.key")
        batch = broadcast_shapes(batch, value.shape[:-2], field="inputs.value")
        _mask_type(mask, batch, query.shape[-2], key.shape[-2])
        return TensorType((*batch, query.shape[-2], value.shape[-1]), query.dtype)

    def flops(self, p, inputs, outputs):
        query, key, out = inputs[0], inputs[1], outputs[0]
        positions = out.per_sample_size() // out.shape[-1]  # query rows per sample, over batch and heads
        return 2 * positions * (key.shape[-2] or 1) * (query.shape[-1] + out.shape[-1])

    def _scale(self, p, query) -> float:
        return 1.0 / math.sqrt(query.shape[-1]) if p.scale is None else p.scale

    def forward(self, ctx, p, query, key, value, mask=None):
        scale = self._scale(p, query)
        out, weights = attend(query, key, value, mask, p.causal, scale)
        ctx.query, ctx.key, ctx.value, ctx.weights, ctx.scale = query, key, value, weights, scale
        return out

    def backward(self, ctx, p, g):
        q, k, v = ctx.query, ctx.key, ctx.value
        dq, dk, dv = attend_backward(g, q, k, v, ctx.weights, ctx.scale, ctx.needs[:3])
        return (None if dq is None else sum_to(dq, q.shape), None if dk is None else sum_to(dk, k.shape),
                None if dv is None else sum_to(dv, v.shape), None)


@register
class MultiHeadAttention(Op):
    name = "multi_head_attention"
    category = "attention"
    doc = ("Multi-head attention over (N, L, D): project query, key and value into heads of head_dim, attend "
           "in each head (scaled dot product), concatenate and project: out = concat_h(attention_h) Wo + bo.")
    params = (
        Param("heads", "int", doc="number of attention heads", minimum=1, maximum=1024),
        Param("head_dim", "int", None, "features per head; null means the query's features / heads",
              minimum=1, maximum=65_536, nullable=True),
        Param("units", "int", None, "output features; null means the query's features", minimum=1,
              maximum=1_000_000, nullable=True),
        Param("causal", "bool", False, "query i attends only to keys j <= i"),
        Param("use_bias", "bool", True, "add learned biases to the four projections"),
        Param("kernel_init", "choice", "glorot_uniform", "initializer of the projections", choices=INITIALIZER_NAMES),
    )
    inputs = (
        Port("query", doc="(N, Lq, Dq)", rank=(3, 3)),
        Port("key", doc="(N, Lk, Dk); left out: the query (self-attention)", optional=True, rank=(3, 3)),
        Port("value", doc="(N, Lk, Dv); left out: the key", optional=True, rank=(3, 3)),
        Port("mask", "any", "1 where query i may attend to key j; broadcasts to (N, heads, Lq, Lk), e.g. "
             "(N, 1, 1, Lk) from sequence_mask", optional=True, differentiable=False, rank=(0, 4)),
    )
    projections = ("query", "key", "value")

    def _sizes(self, p, query: TensorType) -> tuple[int, int]:
        features = query.shape[-1]
        head_dim = p.head_dim
        if head_dim is None:
            if features % p.heads:
                raise ShapeError(f"heads {p.heads} does not divide the query's {features} features; set head_dim",
                                 field="params.heads")
            head_dim = features // p.heads
        return head_dim, features if p.units is None else p.units

    def infer(self, p, query: TensorType, key=None, value=None, mask=None) -> TensorType:
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.rank != 3 or t.shape[-1] is None:
                raise ShapeError(f"{name} needs shape (N, length, features) with known features, "
                                 f"got {format_shape(t.shape)}", field=f"inputs.{name}")
        _check_pair(query, key, 0, "query", "key", "sequences", "query and key need the same batch")
        _check_pair(key, value, 1, "key", "value", "steps", "each key needs its value: give them the same length")
        _check_pair(key, value, 0, "key", "value", "sequences", "key and value need the same batch")
        _mask_type(mask, (query.shape[0], p.heads), query.shape[1], key.shape[1])
        head_dim, units = self._sizes(p, query)
        return TensorType((query.shape[0], query.shape[1], units), query.dtype)

    def weights(self, p, query: TensorType, key=None, value=None, mask=None) -> list[Weight]:
        key = query if key is None else key
        value = key if value is None else value
        head_dim, units = self._sizes(p, query)
        inner = p.heads * head_dim
        weights = []
        for name, t in zip("qkv", (query, key, value)):
            weights.append(Weight(f"W{name}", (t.shape[-1], inner), p.kernel_init, t.shape[-1], inner))
            if p.use_bias:
                weights.append(Weight(f"b{name}", (inner,), "zeros", t.shape[-1], inner))
        weights.append(Weight("Wo", (inner, units), p.kernel_init, inner, units))
        if p.use_bias:
            weights.append(Weight("bo", (units,), "zeros", inner, units))
        return weights

    def flops(self, p, inputs, outputs):
        query = inputs[0]
        head_dim, units = self._sizes(p, query)
        inner = p.heads * head_dim
        length = query.shape[1] or 1
        return 2 * length * inner * (sum(t.shape[-1] for t in inputs[:3]) + units + 2 * length)

    def forward(self, ctx, p, query, key=None, value=None, mask=None, *weights):
        xp = array_module(query)
        key_given, value_given = key is not None, value is not None
        key = query if key is None else key
        value = key if value is None else value
        per = 2 if p.use_bias else 1
        kernels, biases = weights[0:3 * per:per], (weights[1:3 * per:per] if p.use_bias else (None,) * 3)
        Wo, bo = weights[3 * per], (weights[3 * per + 1] if p.use_bias else None)
        heads, n, lq, lk = p.heads, query.shape[0], query.shape[1], key.shape[1]
        head_dim = kernels[0].shape[1] // heads
        fused = not (key_given or value_given)
        if fused:  # self-attention: one product for the three projections, (N, L, 3, heads, head_dim),
            # made in the pieces below with the rest (one hand-off to the pool for the whole layer)
            kernel = xp.concatenate(kernels, axis=1)
            bias = None if biases[0] is None else xp.concatenate(biases)
            projected = xp.empty((n, lq, 3, heads, head_dim), dtype=query.dtype)
            q, k, v = (projected[:, :, index].transpose(0, 2, 1, 3) for index in range(3))
        else:
            q, k, v = (rows_product(x.reshape(-1, x.shape[-1]), W, b).reshape(n, x.shape[1], heads, -1)
                       .transpose(0, 2, 1, 3) for x, W, b in zip((query, key, value), kernels, biases))
        scale = 1.0 / math.sqrt(head_dim)
        value_dim = v.shape[-1]
        probabilities = xp.empty((n, heads, lq, lk), dtype=query.dtype)
        merged = xp.empty((n, lq, heads * value_dim), dtype=query.dtype)  # heads side by side
        merged_heads = merged.reshape(n, lq, heads, value_dim).transpose(0, 2, 1, 3)
        out = xp.empty((n, lq, Wo.shape[1]), dtype=query.dtype)

        def rows(low, high):
            if fused:
                in_rows = projected[low:high].reshape((high - low) * lq, -1)
                xp.matmul(query[low:high].reshape((high - low) * lq, -1), kernel, out=in_rows)
                if bias is not None:
                    in_rows += bias
            scores = probabilities[low:high]
            xp.matmul(q[low:high], k[low:high].swapaxes(-1, -2), out=scores)
            scores *= scale
            _softmax_in_place(scores, _keep(xp, _batch_rows(mask, n, low, high), p.causal, lq, lk))
            merged_heads[low:high] = scores @ v[low:high]
            out_rows = out[low:high].reshape((high - low) * lq, -1)
            xp.matmul(merged[low:high].reshape((high - low) * lq, -1), Wo, out=out_rows)
            if bo is not None:
                out_rows += bo

        products = n * lq * (query.shape[-1] * 3 * heads * head_dim * fused + Wo.shape[0] * Wo.shape[1])
        _over_batch(xp, n, probabilities.size * (head_dim + value_dim) // 8 + products // PRODUCT_TERMS_PER_ELEMENT,
                    rows)
        ctx.saved = (query, key, value, q, k, v, probabilities, merged, kernels, Wo, scale)
        ctx.given = (key_given, value_given)
        return out

    def backward(self, ctx, p, g):
        query, key, value, q, k, v, probabilities, merged, kernels, Wo, scale = ctx.saved
        xp = array_module(g)
        key_given, value_given = ctx.given
        n, heads, lq = g.shape[0], p.heads, g.shape[1]
        fused = not (key_given or value_given)
        merged_heads = merged.reshape(n, lq, heads, -1).transpose(0, 2, 1, 3)  # O, each head's P V

        def flat(x):
            return x.reshape(-1, x.shape[-1])

        dattended, dWo, dbo = product_gradients(flat(merged), flat(g), Wo, need_db=p.use_bias)
        dattended = dattended.reshape(n, lq, heads, -1).transpose(0, 2, 1, 3)
        # The gradients of q, k and v in the projections' own layout (fused: one (N, L, 3, heads, d)).
        if fused:
            d_projected = xp.empty((n, lq, 3, heads, q.shape[-1]), dtype=g.dtype)
            dq, dk, dv = (d_projected[:, :, index].transpose(0, 2, 1, 3) for index in range(3))
        else:
            dq, dk, dv = (xp.empty((n, x.shape[2], heads, x.shape[3]), dtype=g.dtype).transpose(0, 2, 1, 3)
                          for x in (q, k, v))

        def rows(low, high):
            weights = probabilities[low:high]
            g_rows = dattended[low:high]
            xp.matmul(weights.swapaxes(-1, -2), g_rows, out=dv[low:high])
            rowsum = _row_sum(g_rows * merged_heads[low:high])
            dscores = _scores_gradient(g_rows @ v[low:high].swapaxes(-1, -2), weights, scale, rowsum)
            xp.matmul(dscores, k[low:high], out=dq[low:high])
            xp.matmul(dscores.swapaxes(-1, -2), q[low:high], out=dk[low:high])

        _over_batch(xp, n, probabilities.size * (q.shape[-1] + v.shape[-1]) // 4, rows)

        weight_grads = []
        if fused:
            flat_d = d_projected.reshape(n * lq, -1)
            dquery, d_kernel, d_bias = product_gradients(flat(query), flat_d, xp.concatenate(kernels, axis=1),
                                                         need_db=p.use_bias)
            dquery = dquery.reshape(query.shape)
            dkey = dvalue = None
            inner = kernels[0].shape[1]
            for index in range(3):
                columns = slice(index * inner, (index + 1) * inner)
                weight_grads += [xp.ascontiguousarray(d_kernel[:, columns])]
                weight_grads += [d_bias[columns].copy()] if p.use_bias else []
        else:
            grads_in = []
            for d, x, W in ((dq, query, kernels[0]), (dk, key, kernels[1]), (dv, value, kernels[2])):
                d = d.transpose(0, 2, 1, 3).reshape(n * x.shape[1], -1)  # contiguous: the layout it was made in
                grads_in.append(rows_product(d, W.T).reshape(x.shape))
                weight_grads += [rows_product(flat(x).T, d)] + ([_sum_rows(d)] if p.use_bias else [])
            dquery, dkey, dvalue = grads_in
            if not value_given:  # value is the key
                dkey = dkey + dvalue
                dvalue = None
            if not key_given:  # key is the query
                dquery = dquery + dkey
                dkey = None
        weight_grads += [dWo, dbo] if p.use_bias else [dWo]
        return (dquery, dkey, dvalue, None, *weight_grads)


def _sum_rows(rows):
    """The column sums of (M, C) rows, in runs of rows on the engine's threads."""
    return parallel.reduce_rows(array_module(rows), rows.shape[0], rows.shape[1],
                                lambda low, high: rows[low:high].sum(axis=0), lambda a, b: a + b)
