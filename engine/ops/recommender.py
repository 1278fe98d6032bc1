"""Recommender building blocks: embedding lookup and the factorization-machine interaction."""

from __future__ import annotations

from engine.backend import array_module
from engine.errors import ShapeError
from engine.initializers import INITIALIZER_NAMES
from engine.ops._util import format_shape
from engine.registry import Op, Param, Port, TensorType, Weight, register

# Graphs type float tensors as float32; a model computing in float64 converts them all alike.
DEFAULT_FLOAT = "float32"


@register
class Embedding(Op):
    name = "embedding"
    category = "layers"
    doc = ("Look up a learned vector per index: out[..., :] = table[indices[...], :] "
           "(zeros where indices == padding_index, if set).")
    params = (
        Param("vocab_size", "int", doc="number of distinct indices; they run from 0 to vocab_size - 1",
              minimum=1, maximum=100_000_000),
        Param("dim", "int", doc="length of each vector", minimum=1, maximum=100_000),
        Param("init", "choice", "normal", "initializer of the table", choices=INITIALIZER_NAMES),
        Param("padding_index", "int", None, "an index that stands for 'no token': its row starts at zero, "
                                            "looks up zeros and gets no gradient; null for none",
              minimum=0, maximum=100_000_000, nullable=True),
    )
    inputs = (Port("indices", "int", doc="integer ids (N, ...), e.g. (N, fields)", differentiable=False,
                   rank=(1, None)),)

    def infer(self, p, indices: TensorType) -> TensorType:
        if not indices.dtype.startswith("int"):
            raise ShapeError(f"indices must be integers, got {indices.dtype}", field="inputs.indices")
        if indices.rank < 1:
            raise ShapeError("indices need a batch axis, (N,) or (N, ...), got a scalar ()", field="inputs.indices")
        if p.padding_index is not None and p.padding_index >= p.vocab_size:
            raise ShapeError(f"padding_index {p.padding_index} must be below vocab_size {p.vocab_size}",
                             field="params.padding_index")
        return TensorType((*indices.shape, p.dim), DEFAULT_FLOAT)

    def weights(self, p, indices: TensorType) -> list[Weight]:
        zero_rows = () if p.padding_index is None else (p.padding_index,)
        return [Weight("table", (p.vocab_size, p.dim), p.init, p.vocab_size, p.dim, zero_rows=zero_rows)]

    def flops(self, p, inputs, outputs):
        return 0

    def forward(self, ctx, p, indices, table):
        if indices.size:
            low, high = int(indices.min()), int(indices.max())
            if low < 0 or high >= p.vocab_size:
                raise ValueError(
                    f"embedding indices must lie in [0, {p.vocab_size}) (vocab_size {p.vocab_size}), "
                    f"got values from {low} to {high}"
                )
        ctx.indices = indices
        out = table[indices]
        if p.padding_index is not None:
            # Zeros whatever the row holds (a loaded table, weight decay), so the gradient is exactly zero.
            out *= (indices != p.padding_index)[..., None]
        return out

    def backward(self, ctx, p, g):
        if not ctx.needs[1]:
            return None, None
        # One bincount over (row, column) cells: vectorised, and about twice as fast as add.at.
        xp = array_module(g)
        dim = p.dim
        cells = ctx.indices.reshape(-1, 1).astype(xp.int64) * dim + xp.arange(dim)
        table_grad = xp.bincount(cells.reshape(-1), weights=g.reshape(-1), minlength=p.vocab_size * dim)
        table_grad = table_grad.reshape(p.vocab_size, dim).astype(g.dtype, copy=False)
        if p.padding_index is not None:
            table_grad[p.padding_index] = 0
        return None, table_grad


@register
class FMInteraction(Op):
    name = "fm_interaction"
    category = "recommender"
    doc = (
        "Factorization-machine pairwise term of field embeddings x (N, F, K): "
        "0.5 * sum_k[(sum_f x)^2 - sum_f x^2], i.e. the sum over field pairs of <x_i, x_j>."
    )
    params = (Param("reduce", "bool", True, "sum over the K embedding components to give (N, 1); else (N, K)"),)
    inputs = (Port("x", doc="field embeddings (N, fields, dim)", rank=(3, 3)),)

    def infer(self, p, x: TensorType) -> TensorType:
        if x.rank != 3:
            raise ShapeError(
                f"needs field embeddings of shape (N, fields, dim), got {format_shape(x.shape)} (rank {x.rank})",
                field="inputs.x",
            )
        return TensorType((x.shape[0], 1 if p.reduce else x.shape[2]), x.dtype)

    def flops(self, p, inputs, outputs):
        return 3 * inputs[0].per_sample_size()

    def forward(self, ctx, p, x):
        field_sum = x.sum(axis=1)
        out = 0.5 * (field_sum * field_sum - (x * x).sum(axis=1))
        ctx.x, ctx.field_sum = x, field_sum
        return out.sum(axis=1, keepdims=True) if p.reduce else out

    def backward(self, ctx, p, g):
        # d/dx[n, f, k] = g[n, k] * (sum_f x[n, :, k] - x[n, f, k]); g (N, 1) broadcasts over k.
        return (g[:, None, :] * (ctx.field_sum[:, None, :] - ctx.x),)
