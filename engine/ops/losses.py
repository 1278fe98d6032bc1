"""Losses: a prediction and a target in, a scalar out (mean or sum over every element)."""

from __future__ import annotations

import numpy

from engine.backend import array_module, special
from engine.errors import ShapeError
from engine.ops import _numba
from engine.ops._util import format_shape
from engine.registry import Op, Param, Port, TensorType, register

REDUCTION = Param("reduction", "choice", "mean", "how element losses combine", choices=("mean", "sum"))


class Loss(Op):
    category = "losses"
    is_loss = True
    params = (REDUCTION,)
    inputs = (Port("prediction", doc="model output", rank=(1, None)), Port("target", "any", doc="true values"))

    def infer(self, p, prediction: TensorType, target: TensorType) -> TensorType:
        if _squeeze_last(prediction.shape) != _squeeze_last(target.shape) or len(prediction.shape) == 0:
            raise ShapeError(
                f"prediction {format_shape(prediction.shape)} and target {format_shape(target.shape)} "
                "must have the same shape",
                field="inputs.target",
            )
        return TensorType((), prediction.dtype)

    def _reduce(self, ctx, p, values):
        ctx.scale = 1.0 / values.size if p.reduction == "mean" else 1.0
        return values.sum() * ctx.scale


def _squeeze_last(shape: tuple) -> tuple:
    """(N, 1) and (N,) describe the same targets."""
    return shape[:-1] if shape and shape[-1] == 1 else shape


def _with_target_grad(ctx, grad):
    """(d/d prediction, d/d target) for losses of prediction - target: the target's is the negation."""
    target_grad = None
    if ctx.needs and ctx.needs[1]:
        target_grad = (-grad).reshape(ctx.target_shape)
    return grad, target_grad


def _as_target(prediction, target):
    """The target as a float array shaped like the prediction."""
    target = target.astype(prediction.dtype, copy=False)
    if target.shape != prediction.shape:
        target = target.reshape(prediction.shape)
    return target


@register
class MeanSquaredError(Loss):
    name = "mse"
    doc = "Mean squared error: mean((prediction - target)^2)."

    def forward(self, ctx, p, prediction, target):
        ctx.diff = prediction - _as_target(prediction, target)
        ctx.target_shape = target.shape
        return self._reduce(ctx, p, ctx.diff * ctx.diff)

    def backward(self, ctx, p, g):
        grad = ctx.diff * (2.0 * ctx.scale * g)
        return _with_target_grad(ctx, grad)


@register
class MeanAbsoluteError(Loss):
    name = "mae"
    doc = "Mean absolute error: mean(|prediction - target|)."

    def forward(self, ctx, p, prediction, target):
        diff = prediction - _as_target(prediction, target)
        ctx.sign = array_module(diff).sign(diff)
        ctx.target_shape = target.shape
        return self._reduce(ctx, p, abs(diff))

    def backward(self, ctx, p, g):
        return _with_target_grad(ctx, ctx.sign * (ctx.scale * g))


@register
class Huber(Loss):
    name = "huber"
    doc = "Huber loss: 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta)."
    params = (REDUCTION, Param("delta", "float", 1.0, "where quadratic turns linear", minimum=1e-12))

    def forward(self, ctx, p, prediction, target):
        xp = array_module(prediction)
        diff = prediction - _as_target(prediction, target)
        magnitude = abs(diff)
        quadratic = magnitude <= p.delta
        ctx.diff, ctx.quadratic, ctx.target_shape = diff, quadratic, target.shape
        values = xp.where(quadratic, 0.5 * diff * diff, p.delta * (magnitude - 0.5 * p.delta))
        return self._reduce(ctx, p, values)

    def backward(self, ctx, p, g):
        xp = array_module(ctx.diff)
        d = xp.where(ctx.quadratic, ctx.diff, p.delta * xp.sign(ctx.diff))
        return _with_target_grad(ctx, d * (ctx.scale * g))


@register
class SoftmaxCrossEntropy(Op):
    name = "softmax_cross_entropy"
    category = "losses"
    is_loss = True
    doc = "Cross-entropy of softmax(logits) against class indices or one-hot / probability labels."
    params = (REDUCTION, Param("label_smoothing", "float", 0.0, "mix labels with the uniform distribution",
                               minimum=0.0, maximum=1.0))
    inputs = (
        Port("logits", doc="unnormalised scores (..., classes)", rank=(1, None)),
        Port("labels", "any", doc="class indices (...) as integers, or one-hot (..., classes) as floats"),
    )

    def infer(self, p, logits: TensorType, labels: TensorType) -> TensorType:
        if logits.rank < 1:
            raise ShapeError("logits need a class axis", field="inputs.logits")
        if labels.dtype.startswith("int"):
            if labels.shape != logits.shape[:-1]:
                raise ShapeError(
                    f"integer labels {format_shape(labels.shape)} must have the logits' shape without the class axis, "
                    f"{format_shape(logits.shape[:-1])}",
                    field="inputs.labels",
                )
        elif labels.shape != logits.shape:
            raise ShapeError(
                f"one-hot labels {format_shape(labels.shape)} must have the logits' shape {format_shape(logits.shape)}",
                field="inputs.labels",
            )
        return TensorType((), logits.dtype)

    def flops(self, p, inputs, outputs):
        return 4 * inputs[0].per_sample_size()

    def forward(self, ctx, p, logits, labels):
        xp = array_module(logits)
        classes = logits.shape[-1]
        if (labels.dtype.kind in "iu" and not p.label_smoothing and _numba.available(xp) and labels.size
                and logits.flags.c_contiguous):
            # One compiled pass over the rows instead of about fifteen NumPy calls (a classifier's loss
            # over a small batch was a few percent of its training step in call overhead).
            rows = logits.size // classes
            flat_labels = numpy.ascontiguousarray(labels.reshape(rows))
            probs = numpy.empty((rows, classes), dtype=logits.dtype)
            kernel = _numba.compile_kernel(_softmax_cross_entropy_pass)
            total = kernel(logits.reshape(rows, classes), flat_labels, probs)
            if total != total:  # a NaN logit, or a label out of range (the kernel stops at it)
                _check_class_indices(xp, labels, classes)
            ctx.scale = 1.0 / rows if p.reduction == "mean" else 1.0
            ctx.labels, ctx.target, ctx.probs = flat_labels, None, probs.reshape(logits.shape)
            return logits.dtype.type(total * ctx.scale)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=-1, keepdims=True)
        log_probs = shifted - xp.log(sum_exp)
        rows = logits.size // classes
        ctx.scale = 1.0 / rows if p.reduction == "mean" else 1.0
        if labels.dtype.kind in "iu":
            _check_class_indices(xp, labels, classes)
            flat_log_probs = log_probs.reshape(rows, classes)
            flat_labels = labels.reshape(rows)
            picked = flat_log_probs[xp.arange(rows), flat_labels]
            loss = -picked.sum()
            if p.label_smoothing:
                loss = (1.0 - p.label_smoothing) * loss - p.label_smoothing / classes * log_probs.sum()
            ctx.labels = flat_labels
            ctx.target = None
        else:
            target = labels.astype(logits.dtype, copy=False)
            if p.label_smoothing:
                target = target * (1.0 - p.label_smoothing) + p.label_smoothing / classes
            loss = -(target * log_probs).sum()
            ctx.target = target
            ctx.log_probs = log_probs
        exp /= sum_exp
        ctx.probs = exp
        return loss * ctx.scale

    def backward(self, ctx, p, g):
        xp = array_module(ctx.probs)
        probs = ctx.probs
        classes = probs.shape[-1]
        if ctx.target is None:
            grad = probs.reshape(-1, classes).copy() if p.label_smoothing else probs.reshape(-1, classes)
            rows = grad.shape[0]
            if p.label_smoothing:
                grad -= p.label_smoothing / classes
                grad[xp.arange(rows), ctx.labels] -= 1.0 - p.label_smoothing
            else:
                grad[xp.arange(rows), ctx.labels] -= 1.0
            grad = grad.reshape(probs.shape)
        else:
            grad = probs * ctx.target.sum(axis=-1, keepdims=True) - ctx.target
        grad *= ctx.scale * g
        labels_grad = None
        if ctx.target is not None and ctx.needs and ctx.needs[1]:
            labels_grad = ctx.log_probs * (-(1.0 - p.label_smoothing) * ctx.scale * g)
        return (grad, labels_grad)


def _check_class_indices(xp, labels, classes: int) -> None:
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"labels must be class indices in [0, {classes}), "
                         f"got values from {int(labels.min())} to {int(labels.max())}")


def _softmax_cross_entropy_pass(logits, labels, probs):
    """Per row: probs = softmax(logits); returns -sum of log softmax at the labels (accumulated in
    float64), NaN if a label is outside [0, classes)."""
    rows, classes = logits.shape
    total = 0.0
    for r in range(rows):
        row, out = logits[r], probs[r]
        top = row[0]
        for c in range(1, classes):
            if row[c] > top or row[c] != row[c]:
                top = row[c]
        sum_exp = 0.0
        for c in range(classes):
            e = numpy.exp(row[c] - top)
            out[c] = e
            sum_exp += e
        inverse = 1.0 / sum_exp
        for c in range(classes):
            out[c] = out[c] * inverse
        label = labels[r]
        if label < 0 or label >= classes:
            return numpy.nan
        total -= (row[label] - top) - numpy.log(sum_exp)
    return total


@register
class SigmoidCrossEntropy(Loss):
    name = "sigmoid_cross_entropy"
    doc = "Binary cross-entropy on logits (log loss): mean(log(1 + e^z) - y z), labels 0/1."
    inputs = (Port("logits", doc="one score per example (or per label)", rank=(1, None)),
              Port("labels", "any", doc="0/1 targets"))

    def forward(self, ctx, p, logits, labels):
        xp = array_module(logits)
        target = _as_target(logits, labels)
        ctx.logits, ctx.target, ctx.labels_shape = logits, target, labels.shape
        values = xp.logaddexp(0.0, logits) - target * logits
        return self._reduce(ctx, p, values)

    def backward(self, ctx, p, g):
        xp = array_module(ctx.logits)
        grad = (special(xp).expit(ctx.logits) - ctx.target) * (ctx.scale * g)
        labels_grad = None
        if ctx.needs and ctx.needs[1]:
            labels_grad = (ctx.logits * (-ctx.scale * g)).reshape(ctx.labels_shape)
        return (grad, labels_grad)


def _signed(prediction, labels):
    """Labels in {0, 1} or {-1, +1} as -1/+1 floats."""
    target = _as_target(prediction, labels)
    return array_module(target).where(target > 0, 1.0, -1.0).astype(prediction.dtype)


@register
class Hinge(Loss):
    name = "hinge"
    doc = "Hinge loss of a margin classifier: mean(max(0, margin - y f)), labels 0/1 or -1/+1."
    params = (REDUCTION, Param("margin", "float", 1.0, "required margin (0 gives the perceptron loss)", minimum=0.0))
    inputs = (
        Port("scores", doc="one score per example", rank=(1, None)),
        Port("labels", "any", doc="0/1 or -1/+1 targets", differentiable=False),
    )

    def forward(self, ctx, p, scores, labels):
        xp = array_module(scores)
        signed = _signed(scores, labels)
        slack = p.margin - signed * scores
        ctx.active = (slack > 0) * signed
        return self._reduce(ctx, p, xp.maximum(slack, 0.0))

    def backward(self, ctx, p, g):
        return (ctx.active * (-ctx.scale * g), None)


@register
class Perceptron(Hinge):
    name = "perceptron"
    doc = "Perceptron loss: mean(max(0, -y f)), labels 0/1 or -1/+1."
    params = (REDUCTION,)

    def forward(self, ctx, p, scores, labels):
        xp = array_module(scores)
        signed = _signed(scores, labels)
        slack = -signed * scores
        ctx.active = (slack > 0) * signed
        return self._reduce(ctx, p, xp.maximum(slack, 0.0))
