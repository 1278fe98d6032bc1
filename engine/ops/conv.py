"""Convolutions over (N, C, L) and (N, C, H, W): im2col into one contiguous window array, then a
single matrix product for all samples and groups; the input's gradient scatters back by col2im.

out[n, f, y, x] = b[f] + sum_{c in group(f), i, j} W[f, c, i, j] * x_pad[n, c, y*sh + i*dh, x*sw + j*dw]
"""

from __future__ import annotations

import math
from typing import ClassVar

from engine.backend import array_module
from engine.errors import ShapeError
from engine.initializers import INITIALIZER_NAMES
from engine.ops import _windows
from engine.ops._util import format_shape, scratch
from engine.registry import Op, Param, Port, TensorType, Weight, register


def window_params(*, kernel_default=None, stride_default=(1,), padding_default=(0,), dilation: bool = True,
                  padding_choices=("valid", "same")) -> tuple[Param, ...]:
    """The kernel, stride, padding (and dilation) parameters that windowed ops share."""
    params = [
        Param("kernel_size", "int_list", *(() if kernel_default is None else (kernel_default,)),
              doc="window size: one int for every spatial axis, or one per axis", minimum=1, maximum=1024),
        Param("stride", "int_list", stride_default, "step between windows: one int, or one per axis",
              minimum=1, maximum=1024, nullable=stride_default is None),
        Param("padding", "padding", padding_default,
              "zeros added on each side: an int, one per axis, 'valid' (none) or 'same' (output size = "
              "ceil(input / stride))", minimum=0, maximum=1024, choices=padding_choices),
    ]
    if dilation:
        params.append(Param("dilation", "int_list", (1,), "spacing between kernel taps: one int, or one per axis",
                            minimum=1, maximum=1024))
    return tuple(params)


class Convolution(Op):
    """Shared by conv1d and conv2d: ``rank`` spatial axes, computed as two-dimensional."""

    rank: ClassVar[int]
    category = "layers"
    params = (
        Param("filters", "int", doc="output channels", minimum=1, maximum=65_536),
        *window_params(),
        Param("groups", "int", 1, "split channels into groups convolved separately (channels and filters "
                                  "must both divide by it); groups = channels is a depthwise convolution",
              minimum=1, maximum=65_536),
        Param("use_bias", "bool", True, "add a learned bias per filter"),
        Param("kernel_init", "choice", "he_uniform", "initializer of W", choices=INITIALIZER_NAMES),
        Param("bias_init", "choice", "zeros", "initializer of b", choices=INITIALIZER_NAMES),
    )

    def geometry(self, p, shape: tuple) -> _windows.Geometry:
        return _windows.geometry(shape, self.rank, p.kernel_size, p.stride, p.dilation, p.padding)

    def infer(self, p, x: TensorType) -> TensorType:
        geo = self.geometry(p, x.shape)
        channels = x.shape[1]
        if channels is None:
            raise ShapeError("needs a known channel axis (axis 1)", field="inputs.x")
        if channels % p.groups or p.filters % p.groups:
            culprit = (f"the {channels} input channels of x {format_shape(x.shape)}" if channels % p.groups
                       else f"filters {p.filters}")
            common = math.gcd(channels, p.filters)
            choices = ", ".join(str(d) for d in range(1, common + 1) if common % d == 0)
            raise ShapeError(f"groups {p.groups} does not divide {culprit}; groups must divide both the input "
                             f"channels ({channels}) and filters ({p.filters}): one of {choices}",
                             field="params.groups")
        spatial = geo.out[-self.rank:]
        return TensorType((x.shape[0], p.filters, *spatial), x.dtype)

    def weights(self, p, x: TensorType) -> list[Weight]:
        kernel = _windows.spatial(p.kernel_size, self.rank, "kernel_size")
        area = math.prod(kernel)
        fan_in, fan_out = x.shape[1] // p.groups * area, p.filters * area
        weights = [Weight("W", (p.filters, x.shape[1] // p.groups, *kernel), p.kernel_init, fan_in, fan_out)]
        if p.use_bias:
            weights.append(Weight("b", (p.filters,), p.bias_init, fan_in, fan_out))
        return weights

    def flops(self, p, inputs, outputs):
        kernel = _windows.spatial(p.kernel_size, self.rank, "kernel_size")
        return 2 * inputs[0].shape[1] // p.groups * math.prod(kernel) * outputs[0].per_sample_size()

    def forward(self, ctx, p, x, W, b=None):
        geo = self.geometry(p, x.shape)
        n, channels = x.shape[:2]
        groups, filters = p.groups, p.filters
        xp = array_module(x)
        positions = geo.out[0] * geo.out[1]
        cols = scratch(ctx, "cols", (channels, *geo.kernel, n, *geo.out), x.dtype, xp)
        cols = _windows.im2col(x.reshape(n, channels, *geo.size), geo, out=cols)  # (C, kh, kw, N, Ho, Wo)
        cols = cols.reshape(groups, -1, n * positions)
        kernel = W.reshape(groups, filters // groups, -1)
        product = scratch(ctx, "product", (groups, filters // groups, n * positions), x.dtype, xp)
        xp.matmul(kernel, cols, out=product)  # one product for every sample and group
        product = product.reshape(filters, n, positions)
        out = xp.empty((n, filters, product.shape[-1]), dtype=product.dtype)  # back to (N, F, P) in one pass
        if b is not None:
            xp.add(product.transpose(1, 0, 2), b[:, None], out=out)
        else:
            out[...] = product.transpose(1, 0, 2)
        needs = ctx.needs
        ctx.geo, ctx.x_shape = geo, x.shape
        ctx.cols = cols if len(needs) < 2 or needs[1] else None
        ctx.kernel = kernel if not needs or needs[0] else None
        return out.reshape(n, filters, *geo.out[-self.rank:])

    def backward(self, ctx, p, g):
        geo, cols, kernel = ctx.geo, ctx.cols, ctx.kernel
        needs = ctx.needs
        n, filters = g.shape[:2]
        groups = p.groups
        xp = array_module(g)
        grad = scratch(ctx, "grad", (filters, n, g[0, 0].size), g.dtype, xp)
        grad[...] = g.reshape(n, filters, -1).transpose(1, 0, 2)  # (F, N, P)
        grad = grad.reshape(groups, filters // groups, -1)
        dx = dW = None
        if needs[0]:
            (ho, wo), row = geo.out, geo.padded[1] if geo.flat_rows else geo.out[1]
            if row > wo:  # col2im's flat rows: Wp gradient values per output row, zero past Wo
                wide = scratch(ctx, "wide_grad", (filters, n, ho, row), g.dtype, xp)
                wide[..., wo:] = 0
                wide[..., :wo] = grad.reshape(filters, n, ho, wo)
                wide = wide.reshape(groups, filters // groups, -1)
            else:
                wide = grad
            dcols = scratch(ctx, "dcols", (groups, kernel.shape[-1], wide.shape[-1]), g.dtype, xp)
            xp.matmul(kernel.swapaxes(-1, -2), wide, out=dcols)  # (G, C/G*kh*kw, N*Ho*R)
            dcols = dcols.reshape(ctx.x_shape[1], *geo.kernel, n, ho, row)
            dx = _windows.col2im(dcols, geo).reshape(ctx.x_shape)
        if needs[1]:
            dW = (grad @ cols.swapaxes(-1, -2)).reshape(filters, -1, *geo.kernel[-self.rank:])
        if not p.use_bias:
            return dx, dW
        db = grad.reshape(filters, -1).sum(axis=1) if needs[2] else None
        return dx, dW, db


@register
class Conv2d(Convolution):
    name = "conv2d"
    rank = 2
    inputs = (Port("x", doc="images (N, C, H, W)", rank=(4, 4)),)
    doc = ("2-D convolution of (N, C, H, W) by W (filters, C/groups, kh, kw): out[n, f] = b[f] + "
           "sum_c W[f, c] * x[n, c] over each strided, dilated window; gives (N, filters, H', W').")


@register
class Conv1d(Convolution):
    name = "conv1d"
    rank = 1
    inputs = (Port("x", doc="sequences, channels first: (N, C, L)", rank=(3, 3)),)
    doc = ("1-D convolution of (N, C, L) by W (filters, C/groups, k): out[n, f, t] = b[f] + "
           "sum_{c, i} W[f, c, i] * x[n, c, t*stride + i*dilation]; gives (N, filters, L').")
