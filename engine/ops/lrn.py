"""Local response normalization across channels (AlexNet's, ONNX's LRN).

y_c = x_c * s_c^(-beta), s_c = bias + alpha / size * sum of x_i^2 over the channels i from
c - (size - 1) / 2 to c + (size - 1) / 2 (those that exist; size is odd). With t_c = g_c x_c s_c^(-beta - 1),
dx_j = g_j s_j^(-beta) - 2 alpha beta / size * x_j * (sum of t_c over the windows that hold j).
"""

from __future__ import annotations

from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops._util import format_shape
from engine.registry import Op, Param, Port, TensorType, register


def _window_sums(values, before: int, after: int):
    """out[:, c] = sum of values[:, i] for c - before <= i <= c + after, along axis 1 (channels),
    from a running sum over the zero-padded channels."""
    xp = array_module(values)
    n, channels = values.shape[:2]
    padded = xp.zeros((n, channels + before + after + 1, *values.shape[2:]), dtype=values.dtype)
    padded[:, before + 1:before + 1 + channels] = values
    running = xp.cumsum(padded, axis=1)
    return running[:, before + after + 1:] - running[:, :channels]


@register
class LocalResponseNorm(Op):
    name = "lrn"
    category = "normalization"
    doc = ("Local response normalization across channels of (N, C, ...): y = x / (bias + alpha / size * sum of "
           "x^2 over the size nearest channels)^beta, as in AlexNet and ONNX's LRN.")
    inputs = (Port("x", doc="(N, C, ...): each value normalized by its neighbours along axis 1", rank=(3, None)),)
    params = (
        Param("size", "int", 5, "channels in each window, centred on the channel (an odd number)", minimum=1),
        Param("alpha", "float", 1e-4, "scale of the sum of squares", minimum=0.0),
        Param("beta", "float", 0.75, "exponent", minimum=0.0),
        Param("bias", "float", 1.0, "added to the scaled sum of squares (k)", minimum=1e-12),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        if x.rank < 3:
            raise ShapeError(f"needs an input (N, C, ...) with channels on axis 1 and at least one axis after, got "
                             f"{format_shape(x.shape)} (rank {x.rank})", field="inputs.x")
        if p.size % 2 == 0:
            raise ShapeError(f"size must be odd (a window centred on its channel), got {p.size}", field="params.size")
        return x

    def flops(self, p, inputs, outputs):
        return 6 * inputs[0].per_sample_size()

    def forward(self, ctx, p, x):
        half = (p.size - 1) // 2
        scale = _window_sums(x * x, half, half)
        scale *= p.alpha / p.size
        scale += p.bias
        factor = scale ** -p.beta
        ctx.x, ctx.scale, ctx.factor = x, scale, factor
        return x * factor

    def backward(self, ctx, p, g):
        x, scale, factor = ctx.x, ctx.scale, ctx.factor
        half = (p.size - 1) // 2
        t = g * x * factor / scale  # j lies in the window of c exactly when c lies in the window of j
        dx = g * factor - (2.0 * p.alpha * p.beta / p.size) * x * _window_sums(t, half, half)
        return (dx,)
