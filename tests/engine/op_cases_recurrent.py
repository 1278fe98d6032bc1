"""Cases of the recurrent layers (rnn, lstm, gru), appended to the shared table ``op_cases.CASES``:
every variant at tiny sizes (N sequences of T steps of F features, H units), so the float64 central
differences stay fast.

The second input is the optional ``lengths`` port: ``None`` leaves it out, ``Lengths`` feeds fixed
true lengths (padding after them), which the gradient check skips as integers.
"""

from __future__ import annotations

import dataclasses

import numpy

from tests.engine import op_cases
from tests.engine.op_cases import Case, F

N, T, FEATURES, UNITS = 2, 3, 2, 3


@dataclasses.dataclass(frozen=True)
class Lengths:
    values: tuple

    def make(self, rng, dtype):
        return numpy.array(self.values, dtype="int64")


def _x(batch: int = N):
    return F((batch, T, FEATURES))


# One full and one short sequence, and (3 sequences) a zero-padded middle one.
PADDED = (_x(3), Lengths((3, 1, 2)))
UNMASKED = (_x(), None)


def _variants(op: str, extra: dict | None = None, label: str = "") -> list[Case]:
    base = {"units": UNITS, **(extra or {})}
    prefix = f"{label}-" if label else ""
    variants = [
        ("last", UNMASKED, {}),
        ("sequences", UNMASKED, {"return_sequences": True}),
        ("bidirectional", UNMASKED, {"bidirectional": True}),
        ("bidirectional-sequences", UNMASKED, {"bidirectional": True, "return_sequences": True}),
        ("two-layers", UNMASKED, {"num_layers": 2, "return_sequences": True}),
        ("two-layers-bidirectional-last", UNMASKED, {"num_layers": 2, "bidirectional": True}),
        ("lengths-last", PADDED, {}),
        ("lengths-sequences", PADDED, {"return_sequences": True}),
        ("lengths-bidirectional-two-layers", PADDED,
         {"bidirectional": True, "num_layers": 2, "return_sequences": True}),
        ("lengths-bidirectional-last", PADDED, {"bidirectional": True}),
    ]
    return [
        Case(op, inputs, {**base, **params}, name=prefix + name, skip_grad=(1,))
        for name, inputs, params in variants
    ]


RECURRENT_CASES: list[Case] = [
    *_variants("rnn"),
    *_variants("rnn", {"activation": "relu"}, "relu")[:3],
    Case("rnn", PADDED, {"units": UNITS, "activation": "relu", "bidirectional": True, "return_sequences": True},
         name="relu-lengths-bidirectional", skip_grad=(1,)),
    *_variants("lstm"),
    *_variants("gru"),
]

op_cases.CASES.extend(RECURRENT_CASES)
