"""Normalization layers: batch normalization (statistics over the batch, running averages kept as
buffers for eval) and layer normalization (statistics over each sample's last axes).

Both compute x_hat = (x - mean) / sqrt(var + epsilon) and y = gamma * x_hat + beta; with M values
per statistic the input gradient is dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps).
"""

from __future__ import annotations

import math

from engine.errors import ShapeError
from engine.ops._util import format_shape
from engine.registry import Op, Param, Port, TensorType, Weight, register


def _normalized_backward(g, x_hat, inv_std, gamma, axes):
    """dx of y = gamma * (x - mean) * inv_std with mean and inv_std taken over ``axes``."""
    dx_hat = g * gamma if gamma is not None else g
    mean_dx_hat_x_hat = (dx_hat * x_hat).mean(axis=axes, keepdims=True)
    dx_hat = dx_hat - dx_hat.mean(axis=axes, keepdims=True)  # a new array: g may be shared
    dx_hat -= x_hat * mean_dx_hat_x_hat
    dx_hat *= inv_std
    return dx_hat


@register
class BatchNorm(Op):
    name = "batch_norm"
    category = "normalization"
    inputs = (Port("x", doc="(N, C) or (N, C, ...): normalized per channel (axis 1)", rank=(2, None)),)
    doc = ("Batch normalization over axis 1 of (N, C) or (N, C, ...): in training y = gamma * (x - mean_B) / "
           "sqrt(var_B + epsilon) + beta with batch statistics, which also update running averages; in eval the "
           "running averages replace them.")
    params = (
        Param("momentum", "float", 0.1, "weight of the new batch in the running averages: "
                                        "running = (1 - momentum) * running + momentum * batch",
              minimum=0.0, maximum=1.0),
        Param("epsilon", "float", 1e-5, "added to the variance before the square root", minimum=0.0, maximum=1.0),
        Param("affine", "bool", True, "learn a scale gamma and a shift beta per channel"),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        if x.rank < 2:
            raise ShapeError(f"needs an input (N, C) or (N, C, ...) with channels on axis 1, got "
                             f"{format_shape(x.shape)} (rank {x.rank}): it normalizes each channel over the batch; give it features (N, C) "
                             f"or maps (N, C, H, W), e.g. one value per sample reshaped to (N, 1)", field="inputs.x")
        if x.shape[1] is None:
            raise ShapeError(f"needs a known channel size (axis 1), got {format_shape(x.shape)}", field="inputs.x")
        return x

    def weights(self, p, x: TensorType) -> list[Weight]:
        channels = x.shape[1]
        weights = []
        if p.affine:
            weights += [Weight("gamma", (channels,), "ones"), Weight("beta", (channels,), "zeros")]
        weights += [Weight("running_mean", (channels,), "zeros", trainable=False),
                    Weight("running_var", (channels,), "ones", trainable=False)]
        return weights

    def flops(self, p, inputs, outputs):
        return 4 * inputs[0].per_sample_size()

    def forward(self, ctx, p, x, *weights):
        gamma, beta, running_mean, running_var = weights if p.affine else (None, None, *weights)
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if ctx.training:
            count = x.size // x.shape[1]
            if count < 2:
                raise ValueError(f"batch_norm in training needs more than one value per channel, got input {x.shape}")
            mean = x.mean(axis=axes, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=axes, keepdims=True)
            inv_std = 1.0 / (var + p.epsilon) ** 0.5
            x_hat = centered
            x_hat *= inv_std
            m = p.momentum
            ctx.updates = {
                "running_mean": (1 - m) * running_mean + m * mean.reshape(-1),
                "running_var": (1 - m) * running_var + m * var.reshape(-1) * (count / (count - 1)),
            }
        else:
            inv_std = (1.0 / (running_var + p.epsilon) ** 0.5).reshape(shape)
            x_hat = (x - running_mean.reshape(shape)) * inv_std
        ctx.x_hat, ctx.inv_std, ctx.gamma, ctx.axes = x_hat, inv_std, gamma, axes
        if gamma is None:
            return x_hat
        return x_hat * gamma.reshape(shape) + beta.reshape(shape)

    def backward(self, ctx, p, g):
        x_hat, inv_std, gamma, axes = ctx.x_hat, ctx.inv_std, ctx.gamma, ctx.axes
        needs = ctx.needs
        shape = (1, -1) + (1,) * (g.ndim - 2)
        gamma_b = None if gamma is None else gamma.reshape(shape)
        dx = None
        if needs[0]:
            if ctx.training:
                dx = _normalized_backward(g, x_hat, inv_std, gamma_b, axes)
            else:
                dx = g * inv_std if gamma_b is None else g * (gamma_b * inv_std)
        if not p.affine:
            return dx, None, None
        dgamma = (g * x_hat).sum(axis=axes) if needs[1] else None
        dbeta = g.sum(axis=axes) if needs[2] else None
        return dx, dgamma, dbeta, None, None


@register
class LayerNorm(Op):
    name = "layer_norm"
    category = "normalization"
    inputs = (Port("x", doc="(N, ...): each sample normalized over its last axes", rank=(2, None)),)
    doc = ("Layer normalization over each sample's last k axes: y = gamma * (x - mean) / sqrt(var + epsilon) + beta, "
           "mean and var taken over those axes; gamma and beta have their shape.")
    params = (
        Param("axes", "int", 1, "how many trailing axes to normalize over (1: the features of (N, ..., D))",
              minimum=1, maximum=8),
        Param("epsilon", "float", 1e-5, "added to the variance before the square root", minimum=0.0, maximum=1.0),
        Param("affine", "bool", True, "learn a scale gamma and a shift beta over the normalized shape"),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        if p.axes >= x.rank:
            raise ShapeError(f"axes {p.axes} must leave the batch axis out: the input {format_shape(x.shape)} "
                             f"has rank {x.rank}", field="params.axes")
        if any(size is None for size in x.shape[-p.axes:]):
            raise ShapeError(f"the last {p.axes} axes of {format_shape(x.shape)} must have known sizes",
                             field="inputs.x")
        return x

    def weights(self, p, x: TensorType) -> list[Weight]:
        if not p.affine:
            return []
        normalized = tuple(x.shape[-p.axes:])
        size = math.prod(normalized)
        return [Weight("gamma", normalized, "ones", size, size), Weight("beta", normalized, "zeros", size, size)]

    def flops(self, p, inputs, outputs):
        return 4 * inputs[0].per_sample_size()

    def forward(self, ctx, p, x, gamma=None, beta=None):
        axes = tuple(range(x.ndim - p.axes, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        x_hat = x - mean
        var = (x_hat * x_hat).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / (var + p.epsilon) ** 0.5
        x_hat *= inv_std
        ctx.x_hat, ctx.inv_std, ctx.gamma, ctx.axes = x_hat, inv_std, gamma, axes
        return x_hat if gamma is None else x_hat * gamma + beta

    def backward(self, ctx, p, g):
        x_hat, needs = ctx.x_hat, ctx.needs
        dx = _normalized_backward(g, x_hat, ctx.inv_std, ctx.gamma, ctx.axes) if needs[0] else None
        if not p.affine:
            return (dx,)
        batch_axes = tuple(range(g.ndim - p.axes))
        dgamma = (g * x_hat).sum(axis=batch_axes) if needs[1] else None
        dbeta = g.sum(axis=batch_axes) if needs[2] else None
        return dx, dgamma, dbeta
