"""The recurrent layers against ``torch.nn.RNN``/``LSTM``/``GRU`` in float64: the engine's weights
are copied into PyTorch's modules (kernel = weight_ih^T, recurrent_kernel = weight_hh^T, bias =
bias_ih, recurrent_bias = bias_hh, else bias_hh = 0), then outputs and the gradients of the input
and of every weight are compared. Padded batches go through ``pack_padded_sequence``."""

from __future__ import annotations

import itertools

import numpy

from engine import testing

TOLERANCE = 1e-10  # as for the other ops; the layers agree to about 1e-15 in float64
BATCH, STEPS, FEATURES, UNITS = 4, 5, 3, 4
LENGTHS = numpy.array([5, 2, 4, 1])


def _torch_module(op: str, params: dict):
    import torch  # noqa: PLC0415

    options = {"input_size": FEATURES, "hidden_size": params["units"], "num_layers": params.get("num_layers", 1),
               "bidirectional": params.get("bidirectional", False), "batch_first": True, "dtype": torch.float64}
    if op == "rnn":
        return torch.nn.RNN(nonlinearity=params.get("activation", "tanh"), **options)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[op](**options)


def _torch_name(engine_name: str) -> tuple[str, bool]:
    """PyTorch's parameter for an engine weight name, and whether it is stored transposed."""
    kind, _, tag = engine_name.rpartition("_l")
    torch_kind = {"kernel": "weight_ih", "recurrent_kernel": "weight_hh", "bias": "bias_ih",
                  "recurrent_bias": "bias_hh"}[kind]
    return f"{torch_kind}_l{tag}", kind.endswith("kernel")


def compare(op: str, params: dict, lengths: numpy.ndarray | None) -> float:
    """Largest |engine - torch| over the output and every gradient."""
    import torch  # noqa: PLC0415
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: PLC0415

    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(BATCH, STEPS, FEATURES))
    inputs = [x, lengths]
    weights = testing.make_weights(op, params, inputs, dtype="float64")
    outputs, ctx, op_object, p, _ = testing.run_op(op, params, inputs, weights)
    out = outputs[0]
    cotangent = numpy.random.default_rng(1).normal(size=out.shape)
    grads = op_object.backward(ctx, p, cotangent)
    names = [w.name for w in op_object.weights(p, *[testing.tensor_type(v) for v in inputs])]

    module = _torch_module(op, params)
    torch_params = dict(module.named_parameters())
    with torch.no_grad():
        for value in torch_params.values():
            value.zero_()
        for name, value in zip(names, weights):
            torch_name, transposed = _torch_name(name)
            torch_params[torch_name].copy_(torch.from_numpy(value.T if transposed else value))
    x_torch = torch.tensor(x, requires_grad=True)
    if lengths is None:
        sequences, last = module(x_torch)
    else:
        packed = pack_padded_sequence(x_torch, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
        packed_out, last = module(packed)
        sequences, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=STEPS)
    if not params.get("return_sequences"):
        h_n = last[0] if op == "lstm" else last
        directions = 2 if params.get("bidirectional") else 1
        theirs = torch.cat(list(h_n[-directions:]), dim=1)
    else:
        theirs = sequences
    theirs.backward(torch.from_numpy(cotangent))
    worst = float(numpy.max(numpy.abs(out - theirs.detach().numpy())))
    worst = max(worst, float(numpy.max(numpy.abs(grads[0] - x_torch.grad.numpy()))))
    for name, grad in zip(names, grads[2:]):
        torch_name, transposed = _torch_name(name)
        reference = torch_params[torch_name].grad.numpy()
        worst = max(worst, float(numpy.max(numpy.abs(grad - (reference.T if transposed else reference)))))
    return worst


def cases():
    layouts = [
        ("unidirectional", {}),
        ("bidirectional", {"bidirectional": True}),
        ("2 layers", {"num_layers": 2}),
        ("2 layers bidirectional", {"num_layers": 2, "bidirectional": True}),
    ]
    kinds = [("lstm", {}), ("gru", {}), ("rnn", {}), ("rnn", {"activation": "relu"})]
    for (op, extra), (layout, params), sequences, lengths in itertools.product(
            kinds, layouts, (False, True), (None, LENGTHS)):
        label = f"{op}{'-relu' if extra else ''} {layout}, {'sequences' if sequences else 'last state'}"
        label += ", padded" if lengths is not None else ""
        yield label, op, {"units": UNITS, "return_sequences": sequences, **extra, **params}, lengths


def main() -> int:
    """Print one line per case; returns the number of mismatches."""
    print(f"recurrent layers (outputs, input and weight gradients, float64, tolerance {TOLERANCE:g}):")
    failures = 0
    for label, op, params, lengths in cases():
        worst = compare(op, params, lengths)
        ok = worst <= TOLERANCE
        failures += not ok
        print(f"  {label:58} max |engine - torch| = {worst:.2e}  {'ok' if ok else 'MISMATCH'}")
    return failures
