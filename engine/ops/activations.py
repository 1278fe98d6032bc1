"""Activation functions, applied element-wise (softmax and log_softmax along one axis)."""

from __future__ import annotations

import math

from engine.backend import array_module, special
from engine.ops._util import normalize_axis
from engine.registry import Op, Param, Port, TensorType, register


class Activation(Op):
    category = "activations"

    def infer(self, p, x: TensorType) -> TensorType:
        return x


@register
class Relu(Activation):
    name = "relu"
    doc = "max(x, 0)."

    def forward(self, ctx, p, x):
        out = array_module(x).maximum(x, 0)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        return (g * (ctx.out > 0),)


@register
class LeakyRelu(Activation):
    name = "leaky_relu"
    doc = "x if x > 0 else slope * x."
    params = (Param("slope", "float", 0.01, "gradient for negative inputs", minimum=0.0, maximum=1.0),)

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.positive = x > 0
        return xp.where(ctx.positive, x, x * p.slope)

    def backward(self, ctx, p, g):
        return (array_module(g).where(ctx.positive, g, g * p.slope),)


@register
class Sigmoid(Activation):
    name = "sigmoid"
    doc = "Logistic function 1 / (1 + e^-x); d/dx = s (1 - s)."

    def forward(self, ctx, p, x):
        out = special(array_module(x)).expit(x)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        out = ctx.out
        return (g * out * (1.0 - out),)


@register
class Tanh(Activation):
    name = "tanh"
    doc = "Hyperbolic tangent; d/dx = 1 - tanh(x)^2."

    def forward(self, ctx, p, x):
        out = array_module(x).tanh(x)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        out = ctx.out
        return (g * (1.0 - out * out),)


@register
class Softmax(Activation):
    name = "softmax"
    doc = "exp(x) / sum(exp(x)) along an axis; VJP s * (g - sum(g s))."
    params = (Param("axis", "int", -1, "axis that sums to one"),)
    inputs = (Port("x", rank=(1, None)),)

    def infer(self, p, x):
        normalize_axis(p.axis, x.rank)
        return x

    def forward(self, ctx, p, x):
        xp = array_module(x)
        shifted = x - x.max(axis=p.axis, keepdims=True)
        out = xp.exp(shifted)
        out /= out.sum(axis=p.axis, keepdims=True)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        out = ctx.out
        return (out * (g - (g * out).sum(axis=p.axis, keepdims=True)),)


@register
class LogSoftmax(Activation):
    name = "log_softmax"
    doc = "x - logsumexp(x) along an axis; VJP g - softmax(x) * sum(g)."
    params = (Param("axis", "int", -1, "axis to normalise over"),)
    inputs = (Port("x", rank=(1, None)),)

    def infer(self, p, x):
        normalize_axis(p.axis, x.rank)
        return x

    def forward(self, ctx, p, x):
        xp = array_module(x)
        shifted = x - x.max(axis=p.axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=p.axis, keepdims=True))
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        xp = array_module(g)
        return (g - xp.exp(ctx.out) * g.sum(axis=p.axis, keepdims=True),)


@register
class Gelu(Activation):
    name = "gelu"
    doc = "x * Phi(x) (Gaussian error linear unit), exact or with the tanh approximation."
    params = (Param("approximate", "choice", "none", "'none' uses erf, 'tanh' the approximation", choices=("none", "tanh")),)

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.x = x
        if p.approximate == "tanh":
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
            ctx.t = xp.tanh(inner)
            return 0.5 * x * (1.0 + ctx.t)
        ctx.cdf = 0.5 * (1.0 + special(xp).erf(x * (1.0 / math.sqrt(2.0))))
        return x * ctx.cdf

    def backward(self, ctx, p, g):
        xp = array_module(g)
        x = ctx.x
        if p.approximate == "tanh":
            t = ctx.t
            d_inner = math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715 * x * x)
            return (g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner),)
        pdf = xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return (g * (ctx.cdf + x * pdf),)


@register
class Softplus(Activation):
    name = "softplus"
    doc = "log(1 + e^x), computed stably; d/dx = sigmoid(x)."

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.x = x
        return xp.logaddexp(x, 0.0)

    def backward(self, ctx, p, g):
        return (g * special(array_module(g)).expit(ctx.x),)


@register
class Step(Activation):
    name = "step"
    doc = "1 where x > 0, else 0 (the perceptron's output); no gradient flows through it."
    differentiable = False

    def forward(self, ctx, p, x):
        return (x > 0).astype(x.dtype)

    def backward(self, ctx, p, g):
        return (None,)
