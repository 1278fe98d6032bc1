"""Element-wise arithmetic: broadcasting binary ops and unary maths."""

from __future__ import annotations

from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops._util import broadcast_shapes, format_shape, sum_to
from engine.registry import Op, Param, Port, TensorType, register


class Binary(Op):
    """Two float tensors broadcast together (NumPy rules); the gradient is summed back."""

    category = "math"
    inputs = (Port("a", doc="left operand"), Port("b", doc="right operand"))

    def infer(self, p, a: TensorType, b: TensorType) -> TensorType:
        if a.dtype != b.dtype:
            raise ShapeError(f"operands have different dtypes {a.dtype} and {b.dtype}", field="inputs.b")
        return TensorType(broadcast_shapes(a.shape, b.shape, field="inputs.b"), a.dtype)


class Unary(Op):
    category = "math"

    def infer(self, p, x: TensorType) -> TensorType:
        return x


@register
class Add(Binary):
    name = "add"
    doc = "a + b, broadcasting."

    def forward(self, ctx, p, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    def backward(self, ctx, p, g):
        sa, sb = ctx.shapes
        return (sum_to(g, sa) if ctx.needs[0] else None, sum_to(g, sb) if ctx.needs[1] else None)


@register
class ResidualAdd(Op):
    name = "residual_add"
    category = "layers"
    doc = ("x + shortcut, the join of a residual connection. Unlike add it never broadcasts: the shapes must be "
           "equal, so a shortcut of another shape is projected first (a 1x1 conv2d, a dense layer).")
    inputs = (Port("x", doc="the residual branch's output"),
              Port("shortcut", doc="the block's input, or its projection to x's shape"))

    def infer(self, p, x: TensorType, shortcut: TensorType) -> TensorType:
        if x.dtype != shortcut.dtype:
            raise ShapeError(f"x is {x.dtype} but shortcut is {shortcut.dtype}", field="inputs.shortcut")
        differ = [axis for axis, (a, b) in enumerate(zip(x.shape, shortcut.shape))
                  if a is not None and b is not None and a != b]
        if x.rank != shortcut.rank or differ:
            where = (f"ranks {x.rank} and {shortcut.rank}" if x.rank != shortcut.rank else
                     f"size {x.shape[differ[0]]} against {shortcut.shape[differ[0]]} at axis {differ[0]}")
            raise ShapeError(
                f"x {format_shape(x.shape)} and shortcut {format_shape(shortcut.shape)} must have the same shape "
                f"({where}); project the shortcut to x's shape first, e.g. with a 1x1 conv2d of x's channels and "
                f"stride for images, or a dense layer of x's features",
                field="inputs.shortcut",
            )
        return TensorType(tuple(b if a is None else a for a, b in zip(x.shape, shortcut.shape)), x.dtype)

    def forward(self, ctx, p, x, shortcut):
        return x + shortcut

    def backward(self, ctx, p, g):
        return (g if ctx.needs[0] else None, g if ctx.needs[1] else None)


@register
class Subtract(Binary):
    name = "subtract"
    doc = "a - b, broadcasting."

    def forward(self, ctx, p, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    def backward(self, ctx, p, g):
        sa, sb = ctx.shapes
        return (sum_to(g, sa) if ctx.needs[0] else None, sum_to(-g, sb) if ctx.needs[1] else None)


@register
class Multiply(Binary):
    name = "multiply"
    doc = "a * b element-wise, broadcasting."

    def forward(self, ctx, p, a, b):
        ctx.a, ctx.b = a, b
        return a * b

    def backward(self, ctx, p, g):
        a, b = ctx.a, ctx.b
        return (sum_to(g * b, a.shape) if ctx.needs[0] else None, sum_to(g * a, b.shape) if ctx.needs[1] else None)


@register
class Divide(Binary):
    name = "divide"
    doc = "a / b element-wise, broadcasting; d/da = 1/b, d/db = -a/b^2."

    def forward(self, ctx, p, a, b):
        out = a / b
        ctx.b, ctx.out, ctx.a_shape = b, out, a.shape
        return out

    def backward(self, ctx, p, g):
        b, out = ctx.b, ctx.out
        g_over_b = g / b
        da = sum_to(g_over_b, ctx.a_shape) if ctx.needs[0] else None
        db = sum_to(-g_over_b * out, b.shape) if ctx.needs[1] else None
        return da, db


@register
class Power(Op):
    name = "power"
    category = "math"
    doc = "x ** exponent for a constant exponent; d/dx = exponent * x^(exponent-1)."
    params = (Param("exponent", "float", 2.0, "the constant power"),)

    def infer(self, p, x):
        return x

    def forward(self, ctx, p, x):
        ctx.x = x
        return x**p.exponent

    def backward(self, ctx, p, g):
        x = ctx.x
        return (g * (p.exponent * x ** (p.exponent - 1.0)),)


@register
class Sqrt(Unary):
    name = "sqrt"
    doc = "sqrt(x); d/dx = 1 / (2 sqrt(x))."

    def forward(self, ctx, p, x):
        out = array_module(x).sqrt(x)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        return (g / (2.0 * ctx.out),)


@register
class Exp(Unary):
    name = "exp"
    doc = "e^x; d/dx = e^x."

    def forward(self, ctx, p, x):
        out = array_module(x).exp(x)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        return (g * ctx.out,)


@register
class Log(Unary):
    name = "log"
    doc = "natural logarithm ln(x); d/dx = 1/x."

    def forward(self, ctx, p, x):
        ctx.x = x
        return array_module(x).log(x)

    def backward(self, ctx, p, g):
        return (g / ctx.x,)


@register
class Negate(Unary):
    name = "negate"
    doc = "-x."

    def forward(self, ctx, p, x):
        return -x

    def backward(self, ctx, p, g):
        return (-g,)


@register
class Abs(Unary):
    name = "abs"
    doc = "|x|; the gradient is sign(x) (0 at 0)."

    def forward(self, ctx, p, x):
        ctx.x = x
        return array_module(x).abs(x)

    def backward(self, ctx, p, g):
        return (g * array_module(g).sign(ctx.x),)


@register
class Clip(Unary):
    name = "clip"
    doc = "min(max(x, minimum), maximum); the gradient passes where x is inside the bounds."
    params = (
        Param("minimum", "float", None, "lower bound (null: none)", nullable=True),
        Param("maximum", "float", None, "upper bound (null: none)", nullable=True),
    )

    def forward(self, ctx, p, x):
        ctx.x = x
        return array_module(x).clip(x, p.minimum, p.maximum)

    def backward(self, ctx, p, g):
        x = ctx.x
        inside = True
        if p.minimum is not None:
            inside = x >= p.minimum
        if p.maximum is not None:
            inside = inside & (x <= p.maximum)
        return (g * inside,)
