"""The one table of op cases that every check runs: gradients, shape rules, dtypes, backends.

Each case names an op, its parameters and how to make its inputs. Input makers:
``F(shape)`` floats, ``P(shape)`` positive floats, ``I(shape, high)`` integer class indices,
``B(shape)`` 0/1 labels, ``OneHot(shape)`` one-hot rows, or a list of makers for a variadic port.
"""

from __future__ import annotations

import dataclasses

import numpy


@dataclasses.dataclass(frozen=True)
class F:
    shape: tuple
    scale: float = 1.0
    away_from_zero: bool = False  # keep |x| > 0.1 where kinks (relu, abs) would fool differences

    def make(self, rng, dtype):
        x = rng.normal(0.0, self.scale, size=self.shape)
        if self.away_from_zero:
            x = numpy.where(numpy.abs(x) < 0.1, numpy.sign(x + 1e-12) * 0.1 + x, x)
        return x.astype(dtype)


@dataclasses.dataclass(frozen=True)
class P:
    shape: tuple
    low: float = 0.5
    high: float = 2.0

    def make(self, rng, dtype):
        return rng.uniform(self.low, self.high, size=self.shape).astype(dtype)


@dataclasses.dataclass(frozen=True)
class I:  # noqa: E742 - short names keep the table readable
    shape: tuple
    high: int

    def make(self, rng, dtype):
        return rng.integers(0, self.high, size=self.shape).astype("int64")


@dataclasses.dataclass(frozen=True)
class B:
    shape: tuple

    def make(self, rng, dtype):
        return rng.integers(0, 2, size=self.shape).astype(dtype)


@dataclasses.dataclass(frozen=True)
class OneHot:
    shape: tuple

    def make(self, rng, dtype):
        labels = rng.integers(0, self.shape[-1], size=self.shape[:-1])
        return numpy.eye(self.shape[-1])[labels].astype(dtype)


@dataclasses.dataclass(frozen=True)
class Case:
    op: str
    inputs: tuple
    params: dict = dataclasses.field(default_factory=dict)
    name: str = ""
    training: bool = False
    skip_grad: tuple = ()  # input positions not to differentiate (masks, indices)
    rtol: float = 1e-5
    atol: float = 1e-7

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}" if self.name else self.op

    def make_inputs(self, dtype="float64", seed=0):
        rng = numpy.random.default_rng(seed)
        return [
            [m.make(rng, dtype) for m in maker] if isinstance(maker, list)
            else (None if maker is None else maker.make(rng, dtype))
            for maker in self.inputs
        ]


CASES: list[Case] = [
    # math
    Case("add", (F((4, 3)), F((4, 3)))),
    Case("add", (F((4, 3)), F((3,))), name="broadcast-row"),
    Case("add", (F((2, 1, 3)), F((4, 1))), name="broadcast-both"),
    Case("residual_add", (F((2, 3)), F((2, 3)))),
    Case("residual_add", (F((2, 3, 2, 2)), F((2, 3, 2, 2))), name="images"),
    Case("subtract", (F((4, 3)), F((4, 1)))),
    Case("multiply", (F((4, 3)), F((3,)))),
    Case("multiply", (F((2, 3, 4)), F((2, 1, 4))), name="broadcast-middle"),
    Case("divide", (F((4, 3)), P((4, 3)))),
    Case("divide", (F((4, 3)), P((1, 3))), name="broadcast"),
    Case("power", (P((4, 3)),), {"exponent": 3.0}),
    Case("power", (P((4, 3)),), {"exponent": -0.5}, name="negative-exponent"),
    Case("sqrt", (P((4, 3)),)),
    Case("exp", (F((4, 3)),)),
    Case("log", (P((4, 3)),)),
    Case("negate", (F((4, 3)),)),
    Case("abs", (F((4, 3), away_from_zero=True),)),
    Case("clip", (F((5, 4), away_from_zero=True),), {"minimum": -0.5, "maximum": 0.5}),
    Case("clip", (F((5, 4), away_from_zero=True),), {"minimum": 0.05}, name="lower-only"),
    Case("matmul", (F((4, 3)), F((3, 5)))),
    Case("matmul", (F((2, 4, 3)), F((3, 5))), name="batched-broadcast"),
    Case("matmul", (F((2, 4, 3)), F((2, 3, 5))), name="batched"),
    # layers
    Case("dense", (F((4, 3)),), {"units": 5}),
    Case("dense", (F((4, 3)),), {"units": 2, "use_bias": False}, name="no-bias"),
    Case("dense", (F((2, 4, 3)),), {"units": 5}, name="rank3"),
    # activations
    Case("relu", (F((4, 5), away_from_zero=True),)),
    Case("leaky_relu", (F((4, 5), away_from_zero=True),), {"slope": 0.2}),
    Case("sigmoid", (F((4, 5)),)),
    Case("tanh", (F((4, 5)),)),
    Case("softmax", (F((4, 5)),)),
    Case("softmax", (F((3, 4, 2)),), {"axis": 1}, name="axis1"),
    Case("log_softmax", (F((4, 5)),)),
    Case("log_softmax", (F((3, 4, 2)),), {"axis": 0}, name="axis0"),
    Case("gelu", (F((4, 5)),)),
    Case("gelu", (F((4, 5)),), {"approximate": "tanh"}, name="tanh"),
    Case("softplus", (F((4, 5), scale=3.0),)),
    # losses
    Case("mse", (F((6, 2)), F((6, 2)))),
    Case("mse", (F((6, 1)), F((6,))), {"reduction": "sum"}, name="column-vs-vector-sum"),
    Case("mae", (F((6, 2)), F((6, 2)) ), name="", atol=1e-6),
    Case("huber", (F((6, 3), scale=2.0), F((6, 3))), {"delta": 0.7}),
    Case("softmax_cross_entropy", (F((5, 4)), I((5,), 4))),
    Case("softmax_cross_entropy", (F((5, 4)), OneHot((5, 4))), name="one-hot"),
    Case("softmax_cross_entropy", (F((2, 3, 4)), I((2, 3), 4)), {"label_smoothing": 0.1, "reduction": "sum"},
         name="smoothing-rank3"),
    Case("softmax_cross_entropy", (F((5, 4)), OneHot((5, 4))), {"label_smoothing": 0.2}, name="one-hot-smoothing"),
    Case("sigmoid_cross_entropy", (F((6,)), B((6,)))),
    Case("sigmoid_cross_entropy", (F((6, 1)), B((6,))), name="column-logits"),
    Case("hinge", (F((8,), away_from_zero=True), B((8,)))),
    Case("hinge", (F((8,), away_from_zero=True), B((8,))), {"margin": 0.0}, name="no-margin"),
    Case("perceptron", (F((8,), away_from_zero=True), B((8,)))),
    # reductions
    Case("sum", (F((4, 3)),)),
    Case("sum", (F((2, 3, 4)),), {"axis": 1}, name="axis1"),
    Case("sum", (F((2, 3, 4)),), {"axis": [0, -1], "keepdims": True}, name="axes-list-keepdims"),
    Case("mean", (F((4, 3)),)),
    Case("mean", (F((2, 3, 4)),), {"axis": -1}, name="negative-axis"),
    Case("mean", (F((2, 3, 4)),), {"axis": [1, 2], "keepdims": True}, name="axes-list-keepdims"),
    Case("max", (F((4, 3)),)),
    Case("max", (F((2, 3, 4)),), {"axis": 1, "keepdims": True}, name="axis1-keepdims"),
    Case("max", (F((2, 3, 4)),), {"axis": [-1, 0]}, name="axes-list-negative"),
    # shape
    Case("reshape", (F((2, 3, 4)),), {"shape": [4, 3]}),
    Case("reshape", (F((2, 3, 4)),), {"shape": [2, -1, 3]}, name="inferred-size"),
    Case("flatten", (F((2, 3, 4)),)),
    Case("flatten", (F((2, 3, 2, 2)),), {"start_axis": 2}, name="start-axis2"),
    Case("transpose", (F((2, 3, 4)),)),
    Case("transpose", (F((2, 3, 4)),), {"axes": [0, 2, 1]}, name="permutation"),
    Case("transpose", (F((2, 3, 4)),), {"axes": [-1, 0, 1]}, name="negative-axes"),
    Case("concat", ([F((2, 3)), F((2, 4))],)),
    Case("concat", ([F((2, 1, 3)), F((2, 4, 3)), F((2, 2, 3))],), {"axis": 1}, name="three-middle-axis"),
    Case("slice", (F((3, 6)),), {"start": 1, "stop": 4}),
    Case("slice", (F((3, 7, 2)),), {"axis": 1, "start": -5, "step": 2}, name="negative-start-step"),
    Case("slice", (F((3, 6)),), {"start": 0, "stop": -1, "step": 3}, name="negative-stop"),
    # regularization
    Case("dropout", (F((6, 5)),), {"rate": 0.4}, name="training", training=True),
    Case("dropout", (F((6, 5)),), {"rate": 0.4}, name="eval"),
    # recommender
    Case("embedding", (I((4, 3), 7),), {"vocab_size": 7, "dim": 5}, skip_grad=(0,)),
    Case("embedding", (I((5,), 3),), {"vocab_size": 3, "dim": 2}, name="repeated-rows", skip_grad=(0,)),
    Case("fm_interaction", (F((4, 3, 5)),)),
    Case("fm_interaction", (F((4, 3, 5)),), {"reduce": False}, name="per-component"),
]

# Ops without a gradient of their own (they stop the flow); each still has a shape-rule case.
NON_DIFFERENTIABLE = [
    Case("step", (F((4, 5)),)),
    Case("sequence_mask", (I((3,), 5),), {"steps": 4}),  # lengths 0..4 of 4 steps
    Case("sequence_mask", (I((3,), 5),), {"steps": 4, "form": "attention"}, name="attention"),
    Case("sequence_mask", (I((2,), 3),), {"steps": 2, "form": "attention_single_head"}, name="attention-single-head"),
]

import tests.engine.op_cases_recurrent  # noqa: E402, F401 - appends the recurrent layers' cases to CASES
from tests.engine.op_cases_spatial import CASES as SPATIAL_CASES  # noqa: E402 - its cases build on Case above

CASES += SPATIAL_CASES
