"""Recurrent layers over batch-first sequences x (N, T, F): a simple RNN, the LSTM and the GRU.

Each layer and direction owns ``kernel`` (F_in, G*H), ``recurrent_kernel`` (H, G*H) and ``bias``
(G*H), the GRU also ``recurrent_bias`` (G*H); names carry the layer (``_l0``) and, for the backward
direction, ``_reverse``. Gates are laid out as PyTorch lays them (LSTM i, f, g, o; GRU r, z, n), so
``kernel`` is PyTorch's ``weight_ih`` transposed and ``recurrent_kernel`` its ``weight_hh`` transposed.

Optional ``lengths`` (N,) mask padded steps: a step t >= lengths[n] leaves the state unchanged and
outputs zeros, so the last state is the one at each sequence's own last step, and the backward
direction starts there. Stacked layers feed each one's (concatenated) outputs to the next.

The input projection of all steps is one matmul before the time loop, each step one matmul for
all gates together, and the weight gradients one matmul over all steps after the backward loop.
The LSTM goes further: each step multiplies the rows [x_t, 1, h_{t-1}] by [W; b; U], so it needs no
projection beforehand and its three weight gradients are one matmul. On NumPy float32 arrays each
piece of the batch of an LSTM or a GRU scans in one compiled call each way (``_scans``: BLAS for the
step's product, a vectorized tanh for its gates, no GIL held); on float64 the LSTM's gate arithmetic
runs in numba kernels, one loop a step each way, between NumPy's products and tanh, and the GRU's and
the simple RNN's steps are NumPy calls. Arrays inside are time-major (T, N, ...),
so that every step reads and writes contiguous blocks.

Sequences of a batch do not interact, so each thread of the engine's pool runs the whole recurrence
(forward and backward) for its own rows of the batch, with one-thread BLAS, and the threads meet only
at the end of the scan; the products over all steps split on the pool too (``linalg.rows_product``).
"""

from __future__ import annotations

import contextlib
import functools

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.initializers import INITIALIZER_NAMES
from engine.ops import _numba, _scans
from engine.ops._util import format_shape
from engine.ops.linalg import rows_product, transposed
from engine.registry import Op, Param, Port, TensorType, Weight, register


class _Direction:
    """Where a direction keeps its states: S has T + 1 rows, the initial (zero) state at one end.

    Forward: S[t + 1] is the state after step t, its previous state S[t], the last S[T].
    Backward: S[t] is the state after step t (which runs from T - 1 down), previous S[t + 1], last S[0].
    """

    def __init__(self, steps: int, reverse: bool):
        self.reverse = reverse
        self.order = range(steps - 1, -1, -1) if reverse else range(steps)
        self.previous_offset, self.new_offset = (1, 0) if reverse else (0, 1)
        self.initial, self.last = (steps, 0) if reverse else (0, steps)

    def new_states(self, states):
        return states[:-1] if self.reverse else states[1:]

    def previous_states(self, states):
        return states[1:] if self.reverse else states[:-1]


STEP_COST = 8  # element-wise passes a step makes over each gate value (the pieces' work, for parallel.split)


# A step of a piece whose arrays hold fewer values than grain / STEP_GRAIN_SHARE (16,384 at the
# default grain) is mostly the interpreter's work, which holds the GIL: two such pieces at once ran
# slower than one (GRU at batch 32 on 2 threads: 88 steps/s against 132 on one).
STEP_GRAIN_SHARE = 8


def _over_batch(xp, batch: int, work: int, rows, *, step_values: int | None = None) -> None:
    """``rows(low, high)`` for pieces of the batch on the engine's threads (one call on CuPy).
    ``step_values``: the values of one row that a step's NumPy operations go over, where the step
    runs as NumPy operations (not in a numba kernel, which lets go of the GIL); a piece then gets
    rows enough for its step arrays to outweigh the interpreter's share."""
    if xp is not numpy:
        rows(0, batch)
        return
    work *= STEP_COST
    if step_values is not None:
        pieces = max(1, batch * step_values * STEP_GRAIN_SHARE // parallel.grain())
        work = min(work, pieces * parallel.grain())
    parallel.run(batch, rows, work=work)


def _absent(dtype):
    """What the compiled scans take for an absent mask or absent gradients of the outputs."""
    return numpy.empty((0, 0, 0), dtype=dtype)


def _compiled_gradient_inputs(d_outputs, mask, dtype):
    """The outputs' gradients and the mask as the compiled backward scans take them: whole and
    contiguous (one direction's columns of a bidirectional layer's gradients are a strided view), or
    empty where absent."""
    return (_absent(dtype) if d_outputs is None else numpy.ascontiguousarray(d_outputs),
            _absent(dtype) if mask is None else mask)


def _carry(d_last, low: int, high: int, units: int, dtype):
    """Rows low:high of the last state's gradient, a contiguous copy the backward scan overwrites (zeros
    without one)."""
    return numpy.zeros((high - low, units), dtype=dtype) if d_last is None else d_last[low:high].copy()


def _rows_of(array, low: int, high: int):
    """Rows low:high of a time-major (T, N, ...) array, or None."""
    return None if array is None else array[:, low:high]


def _freeze_padded(new, previous, padded):
    """Padded rows keep their previous state, exactly (whatever the padding computed)."""
    array_module(new).copyto(new, previous, where=padded)


def _step_gradient(carry, d_outputs, mask, t):
    """(gradient of step t's new state, gradient passed straight to the previous state).

    With a mask m, h_t = m h_new + (1 - m) h_{t-1} and the output is m h_new, so h_new gets
    m (carry + dy_t) and h_{t-1} gets (1 - m) carry besides what flows through h_new."""
    d_new = carry if d_outputs is None else carry + d_outputs[t]
    if mask is None:
        return d_new, None
    return d_new * mask[t], carry - carry * mask[t]


class _Cell:
    """One recurrence. ``scan`` runs it over the projected inputs xw (T, N, G*H), already multiplied
    column by column by ``column_scale`` (as is the recurrent kernel it gets, and its recurrent bias),
    and returns the states and what its backward needs. ``scan_backward`` returns the gradients of
    the unscaled x_t W + b and h_{t-1} U (+ b_h) for all steps, and of b_h where the cell has one."""

    gates: int
    stacks_inputs = False  # True: scan takes rows [x_t, 1, h_{t-1}] and [W; b; U] (_stack_inputs)

    def __init__(self, activation: str = "tanh"):
        self.activation = activation

    def column_scale(self, xp, units: int, dtype):
        return None

    def input_bias(self, bias, recurrent_bias):
        """The bias added to x_t W in the projection of all steps (the GRU moves part of b_h there)."""
        return bias


def _stack_inputs(layer_input, units: int, direction: _Direction):
    """(T + 1, N, F + 1 + H): row r holds [x_t, 1, h] for the step t whose previous state is S[r] (the
    states' rows, as in _Direction, are the last H columns, which the scan fills), so that a step's
    x_t W + b + h_{t-1} U is one product with [W; b; U], and the weight gradients one product too."""
    xp = array_module(layer_input)
    steps, batch, features = layer_input.shape
    stacked = xp.empty((steps + 1, batch, features + 1 + units), dtype=layer_input.dtype)
    used, unused = (slice(1, None), 0) if direction.reverse else (slice(0, steps), steps)
    stacked[used, :, :features] = layer_input
    stacked[used, :, features] = 1
    stacked[unused, :, :features + 1] = 0  # a row no step reads as its input
    return stacked


def _scales(xp, dtype, units: int, values: tuple):
    """A (len(values) * units,) vector holding each value over one gate's columns."""
    return xp.concatenate([xp.full(units, value, dtype=dtype) for value in values])


def _sum_rows(array):
    """The sum over every axis but the last, in runs of rows on the engine's threads."""
    rows = array.reshape(-1, array.shape[-1])
    return parallel.reduce_rows(array_module(array), rows.shape[0], rows.shape[1],
                                lambda low, high: rows[low:high].sum(axis=0), lambda a, b: a + b)


def _split(gates, count: int) -> list:
    """The (N, H) column blocks of one step's (N, count * H) gates, as views."""
    units = gates.shape[1] // count
    return [gates[:, k * units:(k + 1) * units] for k in range(count)]


def _overflow_to_infinity(xp):
    """exp(-z) may overflow for very negative z; inf is then right, as 1 / (1 + inf) = sigmoid(z) = 0."""
    errstate = getattr(xp, "errstate", None)
    return errstate(over="ignore") if errstate is not None else contextlib.nullcontext()


def _fused_kernels(xp):
    """The LSTM's numba kernels (forward, backward) where they run (``_numba.available``: NumPy
    arrays, numba installed, not switched off); else None, and the NumPy path does the same work in
    more passes over memory."""
    return _compiled_kernels() if _numba.available(xp) else None


@functools.cache
def _compiled_kernels():
    """Compiled on first use, so that processes that never run an LSTM on the CPU do not load LLVM;
    strict IEEE arithmetic (no reassociation), as before the other ops had kernels."""
    return tuple(_numba.compile_kernel(function, strict=True)
                 for function in (_lstm_cell_forward_kernel, _lstm_cell_backward_kernel))


def _lstm_cell_forward_kernel(gates, previous_cell, cell, half):
    """From tanh of the (scaled) gate inputs: i, f, o = half tanh + half in place, c = f c_prev + i g."""
    units = cell.shape[1]
    for n in range(cell.shape[0]):
        row, previous, new = gates[n], previous_cell[n], cell[n]
        for j in range(units):
            i = half * row[j] + half
            f = half * row[units + j] + half
            row[j] = i
            row[units + j] = f
            row[3 * units + j] = half * row[3 * units + j] + half
            new[j] = f * previous[j] + i * row[2 * units + j]


def _lstm_cell_backward_kernel(gates, tanh_cell, previous_cell, d_state, carry_cell, d_gates, one):
    """One step's gate gradients (through the activations) and the cell's carry, in place:
    dc = dh o (1 - tanh(c)^2) + carry; d(i, f, g, o) = (dc g, dc c_prev, dc i, dh tanh(c)) times
    (i(1 - i), f(1 - f), 1 - g^2, o(1 - o)); the carry becomes dc f. ``one`` has the arrays' dtype, so
    that float32 stays float32."""
    units = tanh_cell.shape[1]
    for n in range(tanh_cell.shape[0]):
        row, out, tanh_row, previous = gates[n], d_gates[n], tanh_cell[n], previous_cell[n]
        d_h, carry = d_state[n], carry_cell[n]
        for j in range(units):
            i, f, g, o = row[j], row[units + j], row[2 * units + j], row[3 * units + j]
            t = tanh_row[j]
            d_cell = d_h[j] * o * (one - t * t) + carry[j]
            carry[j] = d_cell * f
            out[j] = d_cell * g * (i - i * i)
            out[units + j] = d_cell * previous[j] * (f - f * f)
            out[2 * units + j] = d_cell * i * (one - g * g)
            out[3 * units + j] = d_h[j] * t * (o - o * o)


class _SimpleCell(_Cell):
    """h_t = act(x_t W + b + h_{t-1} U), act tanh or relu."""

    gates = 1

    def scan(self, xw, recurrent_kernel, recurrent_bias, mask, direction):
        xp = array_module(xw)
        steps, batch, units = xw.shape
        all_states = xp.empty((steps + 1, batch, units), dtype=xw.dtype)

        def rows(low, high):
            states, inputs = all_states[:, low:high], xw[:, low:high]
            padded = None if mask is None else mask[:, low:high] == 0
            states[direction.initial] = 0
            for t in direction.order:
                previous, new = states[t + direction.previous_offset], states[t + direction.new_offset]
                xp.matmul(previous, recurrent_kernel, out=new)
                new += inputs[t]
                if self.activation == "tanh":
                    xp.tanh(new, out=new)
                else:
                    xp.maximum(new, 0, out=new)
                if mask is not None:
                    _freeze_padded(new, previous, padded[t])

        _over_batch(xp, batch, xw.size, rows, step_values=units)
        return all_states, {"states": all_states}

    def scan_backward(self, cache, recurrent_kernel, d_outputs, d_last, mask, direction):
        xp = array_module(recurrent_kernel)
        all_new_states = direction.new_states(cache["states"])
        all_d_pre = xp.empty_like(all_new_states)
        recurrent_t = transposed(recurrent_kernel)

        def rows(low, high):
            new_states, d_pre = all_new_states[:, low:high], all_d_pre[:, low:high]
            d_seq, masks = _rows_of(d_outputs, low, high), _rows_of(mask, low, high)
            carry = xp.zeros_like(new_states[0]) if d_last is None else d_last[low:high].copy()
            for t in reversed(direction.order):
                d_new, passed = _step_gradient(carry, d_seq, masks, t)
                row, state = d_pre[t], new_states[t]
                if self.activation == "tanh":  # d tanh = 1 - h^2
                    xp.multiply(state, state, out=row)
                    xp.subtract(1.0, row, out=row)
                    row *= d_new
                else:
                    xp.multiply(d_new, state > 0, out=row)
                carry = row @ recurrent_t
                if mask is not None:
                    carry += passed

        _over_batch(xp, all_d_pre.shape[1], all_d_pre.size, rows, step_values=all_d_pre.shape[2])
        return all_d_pre, all_d_pre, None


class _LSTMCell(_Cell):
    """i, f, o = sigmoid, g = tanh of x_t W + b + h_{t-1} U (in that split);
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t)."""

    gates = 4
    stacks_inputs = True

    def column_scale(self, xp, units, dtype):
        # One tanh for all four gates (NumPy's tanh is twice as fast as its exp):
        # sigmoid(z) = (1 + tanh(z / 2)) / 2, so i, f and o get z / 2, and g = tanh(z) gets z.
        return _scales(xp, dtype, units, (0.5, 0.5, 1.0, 0.5))

    def scan(self, stacked_inputs, stacked_kernel, mask, direction):
        """Like _Cell.scan, from the rows [x_t, 1, h_{t-1}] of ``stacked_inputs`` (T + 1, N, F + 1 + H),
        whose last H columns are the states this scan writes (see Recurrent._stack_inputs), times
        ``stacked_kernel`` [W; b; U] (F + 1 + H, 4H): one product a step and none before the loop."""
        xp = array_module(stacked_inputs)
        steps, batch, width = stacked_inputs.shape[0] - 1, stacked_inputs.shape[1], stacked_kernel.shape[1]
        units = width // 4
        dtype = stacked_inputs.dtype
        all_states = stacked_inputs[:, :, -units:]
        all_cells = xp.empty((steps + 1, batch, units), dtype=dtype)
        all_activations = xp.empty((steps, batch, width), dtype=dtype)
        all_tanh_cells = xp.empty((steps, batch, units), dtype=dtype)
        halves = _scales(xp, dtype, units, (0.5, 0.5, 1.0, 0.5))  # tanh -> sigmoid for i, f, o
        offsets = _scales(xp, dtype, units, (0.5, 0.5, 0.0, 0.5))
        kernels = _fused_kernels(xp)
        half = dtype.type(0.5)
        compiled = _scans.kernels()[0] if _scans.usable(xp, dtype) else None
        compiled_mask = _absent(dtype) if compiled and mask is None else mask

        def rows(low, high):
            if compiled:
                compiled(stacked_inputs, stacked_kernel, all_activations, all_cells, all_tanh_cells, compiled_mask,
                         direction.reverse, low, high)
                return
            states, cells, inputs = all_states[:, low:high], all_cells[:, low:high], stacked_inputs[:, low:high]
            activations, tanh_cells = all_activations[:, low:high], all_tanh_cells[:, low:high]
            padded = None if mask is None else mask[:, low:high] == 0
            product = xp.empty((high - low, units), dtype=dtype)
            states[direction.initial] = 0
            cells[direction.initial] = 0
            for t in direction.order:
                back, ahead = t + direction.previous_offset, t + direction.new_offset
                gates = activations[t]
                xp.matmul(inputs[back], stacked_kernel, out=gates)  # row back holds [x_t, 1, h_{t-1}]
                xp.tanh(gates, out=gates)
                cell = cells[ahead]
                if kernels:
                    kernels[0](gates, cells[back], cell, half)
                else:
                    gates *= halves
                    gates += offsets
                    i, f, g, _ = _split(gates, 4)
                    xp.multiply(f, cells[back], out=cell)
                    xp.multiply(i, g, out=product)
                    cell += product
                tanh_cell = tanh_cells[t]
                xp.tanh(cell, out=tanh_cell)
                xp.multiply(gates[:, 3 * units:], tanh_cell, out=states[ahead])
                if mask is not None:
                    _freeze_padded(cell, cells[back], padded[t])
                    _freeze_padded(states[ahead], states[back], padded[t])

        _over_batch(xp, batch, all_activations.size, rows,
                    step_values=None if kernels else all_activations.shape[2])
        return all_states, {"states": all_states, "cells": all_cells, "activations": all_activations,
                            "tanh_cells": all_tanh_cells}

    def scan_backward(self, cache, recurrent_kernel, d_outputs, d_last, mask, direction):
        xp = array_module(recurrent_kernel)
        all_activations = cache["activations"]
        all_d_gates = xp.empty_like(all_activations)
        recurrent_t = transposed(recurrent_kernel)
        first = direction.order[0] if len(direction.order) else None
        kernels = _fused_kernels(xp)
        dtype = all_activations.dtype
        one = dtype.type(1.0)
        compiled = _scans.kernels()[1] if _scans.usable(xp, dtype) else None
        if compiled:
            outputs, compiled_mask = _compiled_gradient_inputs(d_outputs, mask, dtype)

        def rows(low, high):
            if compiled:
                compiled(all_activations, cache["tanh_cells"], cache["cells"], recurrent_t, outputs,
                         _carry(d_last, low, high, recurrent_t.shape[1], dtype), compiled_mask, all_d_gates,
                         direction.reverse, low, high)
                return
            cells, tanh_cells = cache["cells"][:, low:high], cache["tanh_cells"][:, low:high]
            activations, d_gates = all_activations[:, low:high], all_d_gates[:, low:high]
            d_seq, masks = _rows_of(d_outputs, low, high), _rows_of(mask, low, high)
            carry = xp.zeros_like(cells[0]) if d_last is None else d_last[low:high].copy()
            carry_cell = xp.zeros_like(cells[0])
            d_cell = xp.empty_like(carry_cell)
            scratch = xp.empty_like(carry_cell)
            slopes = xp.empty_like(activations[0])
            for t in reversed(direction.order):
                back = t + direction.previous_offset
                gates, row, tanh_cell = activations[t], d_gates[t], tanh_cells[t]
                d_new, passed = _step_gradient(carry, d_seq, masks, t)
                if mask is not None:
                    kept_cell = carry_cell - carry_cell * masks[t]
                    carry_cell *= masks[t]
                if kernels:
                    kernels[1](gates, tanh_cell, cells[back], d_new, carry_cell, row, one)
                else:
                    self._gate_gradients(xp, gates, tanh_cell, cells[back], d_new, carry_cell, row,
                                         d_cell, scratch, slopes)
                if t == first:  # what would flow on is the gradient of the (constant) initial state
                    break
                xp.matmul(row, recurrent_t, out=carry)
                if mask is not None:
                    carry += passed
                    carry_cell += kept_cell

        _over_batch(xp, all_d_gates.shape[1], all_d_gates.size, rows,
                    step_values=None if kernels else all_d_gates.shape[2])
        return all_d_gates, all_d_gates, None

    @staticmethod
    def _gate_gradients(xp, gates, tanh_cell, previous_cell, d_new, carry_cell, row, d_cell, scratch, slopes):
        """What _lstm_cell_backward_kernel computes, in a pass over memory per operation (CuPy, or
        NumPy without numba)."""
        i, f, g, o = _split(gates, 4)
        d_i, d_f, d_g, d_o = _split(row, 4)
        # dc = dh o (1 - tanh(c)^2) + the cell's carry
        xp.multiply(d_new, tanh_cell, out=d_o)
        xp.multiply(d_new, o, out=d_cell)
        xp.multiply(tanh_cell, tanh_cell, out=scratch)
        xp.subtract(1.0, scratch, out=scratch)
        d_cell *= scratch
        d_cell += carry_cell
        xp.multiply(d_cell, g, out=d_i)
        xp.multiply(d_cell, previous_cell, out=d_f)
        xp.multiply(d_cell, i, out=d_g)
        xp.multiply(d_cell, f, out=carry_cell)
        # Slopes: s - s^2 for the sigmoids, and for g, 1 - g^2 = (g - g^2) + (1 - g).
        xp.multiply(gates, gates, out=slopes)
        xp.subtract(gates, slopes, out=slopes)
        xp.subtract(1.0, g, out=scratch)
        _split(slopes, 4)[2] += scratch
        row *= slopes


class _GRUCell(_Cell):
    """r, z = sigmoid(x_t W + b + h_{t-1} U + b_h) (their parts), n = tanh(x_t W_n + b_n +
    r (h_{t-1} U_n + b_hn)), h_t = (1 - z) n + z h_{t-1} (PyTorch's formulation)."""

    gates = 3

    def column_scale(self, xp, units, dtype):
        # r and z negated: sigmoid(z) = 1 / (1 + e^-z) with one exp over both.
        return _scales(xp, dtype, units, (-1.0, -1.0, 1.0))

    def input_bias(self, bias, recurrent_bias):
        # b_h's r and z parts only ever add to x_t W + b: one addition in the projection instead of
        # one a step. Its n part is multiplied by r, so the steps keep it.
        units = bias.shape[0] // 3
        moved = bias.copy()
        moved[:2 * units] += recurrent_bias[:2 * units]
        return moved

    def scan(self, xw, recurrent_kernel, recurrent_bias, mask, direction):
        xp = array_module(xw)
        steps, batch, width = xw.shape
        units = width // 3
        all_states = xp.empty((steps + 1, batch, units), dtype=xw.dtype)
        all_activations = xp.empty((steps, batch, width), dtype=xw.dtype)
        all_hidden_n = xp.empty((steps, batch, units), dtype=xw.dtype)  # h_{t-1} U_n + b_hn, which backward needs
        hidden_bias_n = recurrent_bias[2 * units:]  # (the r and z parts are in xw: input_bias)
        compiled = _scans.kernels()[2] if _scans.usable(xp, xw.dtype) else None
        compiled_mask = _absent(xw.dtype) if compiled and mask is None else mask

        def rows(low, high):
            if compiled:
                compiled(xw, recurrent_kernel, hidden_bias_n, all_states, all_activations, all_hidden_n,
                         compiled_mask, direction.reverse, low, high)
                return
            states, inputs = all_states[:, low:high], xw[:, low:high]
            activations, hidden_n = all_activations[:, low:high], all_hidden_n[:, low:high]
            padded = None if mask is None else mask[:, low:high] == 0
            projected = xp.empty((high - low, width), dtype=xw.dtype)  # h_{t-1} U, r and z parts negated
            states[direction.initial] = 0
            with _overflow_to_infinity(xp):
                for t in direction.order:
                    back, ahead = t + direction.previous_offset, t + direction.new_offset
                    xp.matmul(states[back], recurrent_kernel, out=projected)
                    xp.add(projected[:, 2 * units:], hidden_bias_n, out=hidden_n[t])
                    gates = activations[t]
                    reset_update = gates[:, :2 * units]
                    xp.add(inputs[t, :, :2 * units], projected[:, :2 * units], out=reset_update)
                    xp.exp(reset_update, out=reset_update)
                    reset_update += 1.0
                    xp.reciprocal(reset_update, out=reset_update)
                    r, z, n = _split(gates, 3)
                    xp.multiply(r, hidden_n[t], out=n)
                    n += inputs[t, :, 2 * units:]
                    xp.tanh(n, out=n)
                    new = states[ahead]
                    xp.subtract(states[back], n, out=new)
                    new *= z
                    new += n
                    if mask is not None:
                        _freeze_padded(new, states[back], padded[t])

        _over_batch(xp, batch, xw.size, rows, step_values=None if compiled else xw.shape[2])
        return all_states, {"states": all_states, "activations": all_activations, "hidden_n": all_hidden_n}

    def scan_backward(self, cache, recurrent_kernel, d_outputs, d_last, mask, direction):
        xp = array_module(recurrent_kernel)
        all_activations = cache["activations"]
        units = all_activations.shape[2] // 3
        all_d_input = xp.empty_like(all_activations)  # gradient of x_t W + b
        all_d_hidden = xp.empty_like(all_activations)  # gradient of h_{t-1} U + b_h
        recurrent_t = transposed(recurrent_kernel)
        dtype = all_activations.dtype
        compiled = _scans.kernels()[3] if _scans.usable(xp, dtype) else None
        if compiled:
            outputs, compiled_mask = _compiled_gradient_inputs(d_outputs, mask, dtype)

        def rows(low, high):
            if compiled:
                compiled(all_activations, cache["states"], cache["hidden_n"], recurrent_t, outputs,
                         _carry(d_last, low, high, units, dtype), compiled_mask, all_d_input, all_d_hidden,
                         direction.reverse, low, high)
                return
            states, hidden_n = cache["states"][:, low:high], cache["hidden_n"][:, low:high]
            activations, d_input, d_hidden = (all_activations[:, low:high], all_d_input[:, low:high],
                                              all_d_hidden[:, low:high])
            d_seq, masks = _rows_of(d_outputs, low, high), _rows_of(mask, low, high)
            carry = xp.zeros_like(states[0]) if d_last is None else d_last[low:high].copy()
            scratch = xp.empty_like(carry)
            slopes = xp.empty((high - low, 2 * units), dtype=carry.dtype)  # r (1 - r) and z (1 - z) side by side
            for t in reversed(direction.order):
                back = t + direction.previous_offset
                r, z, n = _split(activations[t], 3)
                d_new, passed = _step_gradient(carry, d_seq, masks, t)
                d_r, d_z, d_hidden_n = _split(d_hidden[t], 3)
                d_n = _split(d_input[t], 3)[2]
                # dn_pre = dh (1 - z) (1 - n^2)
                xp.subtract(1.0, z, out=d_n)
                d_n *= d_new
                xp.multiply(n, n, out=scratch)
                xp.subtract(1.0, scratch, out=scratch)
                d_n *= scratch
                # dz_pre = dh (h_{t-1} - n) z (1 - z), dr_pre = dn_pre (h_{t-1} U_n + b_hn) r (1 - r)
                xp.subtract(states[back], n, out=d_z)
                d_z *= d_new
                xp.multiply(d_n, hidden_n[t], out=d_r)
                reset_update = activations[t][:, :2 * units]
                xp.multiply(reset_update, reset_update, out=slopes)
                xp.subtract(reset_update, slopes, out=slopes)
                d_hidden[t][:, :2 * units] *= slopes
                xp.multiply(d_n, r, out=d_hidden_n)
                carry = d_hidden[t] @ recurrent_t
                xp.multiply(d_new, z, out=scratch)
                carry += scratch
                if mask is not None:
                    carry += passed
            d_input[:, :, :2 * units] = d_hidden[:, :, :2 * units]

        _over_batch(xp, all_d_input.shape[1], all_d_input.size, rows,
                    step_values=None if compiled else all_d_input.shape[2])
        return all_d_input, all_d_hidden, _sum_rows(all_d_hidden)


class Recurrent(Op):
    """The shared layer: stacking, directions, masking, the projections and the weight gradients."""

    category = "recurrent"
    inputs = (
        Port("x", doc="sequences, batch first: (N, T, features)", rank=(3, 3)),
        Port("lengths", "int", doc="optional (N,) true lengths; steps at and after them are padding",
             optional=True, differentiable=False, rank=(1, 1)),
    )
    outputs = (Port("out", doc="(N, T, units * directions) with return_sequences, else the last state "
                               "(N, units * directions)"),)
    common_params = (
        Param("units", "int", doc="size of the hidden state", minimum=1, maximum=100_000),
        Param("return_sequences", "bool", False,
              "output the state at every step (N, T, units * directions) instead of the last state"),
        Param("bidirectional", "bool", False,
              "also run the sequence backwards and concatenate both directions' features"),
        Param("num_layers", "int", 1, "stacked layers, each fed the outputs of the one below", minimum=1, maximum=16),
        Param("kernel_init", "choice", "glorot_uniform", "initializer of the input kernels", choices=INITIALIZER_NAMES),
        Param("recurrent_init", "choice", "orthogonal", "initializer of the recurrent kernels",
              choices=INITIALIZER_NAMES),
        Param("bias_init", "choice", "zeros", "initializer of the biases", choices=INITIALIZER_NAMES),
    )
    recurrent_bias = False
    cell_type: type[_Cell] = _LSTMCell

    def cell(self, p) -> _Cell:
        return self.cell_type(getattr(p, "activation", "tanh"))

    def infer(self, p, x: TensorType, lengths: TensorType | None = None) -> TensorType:
        if x.rank != 3:
            raise ShapeError(
                f"needs sequences of shape (N, T, features), got {format_shape(x.shape)} (rank {x.rank})",
                field="inputs.x",
            )
        if x.shape[2] is None:
            raise ShapeError(f"needs a known feature size, got {format_shape(x.shape)}", field="inputs.x")
        if lengths is not None:
            if not lengths.dtype.startswith("int"):
                raise ShapeError(f"lengths must be integers, got {lengths.dtype}", field="inputs.lengths")
            if lengths.rank != 1:
                raise ShapeError(
                    f"lengths must have shape (N,), one per sequence, got {format_shape(lengths.shape)}",
                    field="inputs.lengths",
                )
            if None not in (lengths.shape[0], x.shape[0]) and lengths.shape[0] != x.shape[0]:
                raise ShapeError(
                    f"lengths {format_shape(lengths.shape)} must give one length per sequence of "
                    f"x {format_shape(x.shape)}",
                    field="inputs.lengths",
                )
        features = p.units * (2 if p.bidirectional else 1)
        shape = (x.shape[0], x.shape[1], features) if p.return_sequences else (x.shape[0], features)
        return TensorType(shape, x.dtype)

    def _layout(self, p, features: int):
        """(layer, suffix, input size) for every layer and direction, in weight order."""
        directions = ("", "_reverse") if p.bidirectional else ("",)
        width = p.units * len(directions)
        return [
            (layer, suffix, features if layer == 0 else width)
            for layer in range(p.num_layers)
            for suffix in directions
        ]

    def _names(self) -> tuple[str, ...]:
        return ("kernel", "recurrent_kernel", "bias") + (("recurrent_bias",) if self.recurrent_bias else ())

    def weights(self, p, x: TensorType, lengths: TensorType | None = None) -> list[Weight]:
        width = self.cell(p).gates * p.units
        weights = []
        for layer, suffix, fan_in in self._layout(p, x.shape[2]):
            tag = f"_l{layer}{suffix}"
            weights.append(Weight(f"kernel{tag}", (fan_in, width), p.kernel_init, fan_in, width))
            weights.append(Weight(f"recurrent_kernel{tag}", (p.units, width), p.recurrent_init, p.units, width))
            weights.append(Weight(f"bias{tag}", (width,), p.bias_init, fan_in, width))
            if self.recurrent_bias:
                weights.append(Weight(f"recurrent_bias{tag}", (width,), p.bias_init, p.units, width))
        return weights

    def flops(self, p, inputs, outputs):
        x = inputs[0]
        steps = x.shape[1] or 1
        width = self.cell(p).gates * p.units
        total = 0
        for _, _, fan_in in self._layout(p, x.shape[2]):
            total += steps * (2 * (fan_in + p.units) * width + 6 * width)
        return total

    def forward(self, ctx, p, x, lengths, *weights):
        xp = array_module(x)
        batch, steps, _ = x.shape
        cell = self.cell(p)
        per_direction = len(self._names())
        mask = None
        if lengths is not None:
            if lengths.shape != (batch,):
                raise ValueError(f"lengths must have shape ({batch},), one per sequence of x {tuple(x.shape)}, "
                                 f"got {tuple(lengths.shape)}")
            if lengths.size:
                low, high = int(lengths.min()), int(lengths.max())
                if low < 0 or high > steps:
                    raise ValueError(f"lengths must lie in [0, {steps}] (the sequence length), got values "
                                     f"from {low} to {high}")
            mask = (xp.arange(steps)[:, None] < lengths[None, :]).astype(x.dtype)[:, :, None]
        layer_input = xp.ascontiguousarray(x.transpose(1, 0, 2))
        directions = 2 if p.bidirectional else 1
        scale = cell.column_scale(xp, p.units, x.dtype)
        layers = []
        for layer in range(p.num_layers):
            runs = []
            for d in range(directions):
                start = (layer * directions + d) * per_direction
                kernel, recurrent_kernel, bias = weights[start:start + 3]
                recurrent_bias = weights[start + 3] if self.recurrent_bias else None
                direction = _Direction(steps, reverse=d == 1)
                if scale is not None:  # fold the cell's column scale into the small weights, not into xw
                    kernel, recurrent_kernel, bias = kernel * scale, recurrent_kernel * scale, bias * scale
                    recurrent_bias = None if recurrent_bias is None else recurrent_bias * scale
                if cell.stacks_inputs:
                    stacked_inputs = _stack_inputs(layer_input, p.units, direction)
                    stacked_kernel = xp.concatenate([kernel, bias[None], recurrent_kernel])
                    states, cache = cell.scan(stacked_inputs, stacked_kernel, mask, direction)
                    cache["stacked_inputs"] = stacked_inputs
                    runs.append((direction, states, cache))
                    continue
                # Every step multiplies by it: BLAS is markedly slower on a Fortran-ordered one (the
                # orthogonal initializer's, kept by the optimizer's in-place updates).
                recurrent_kernel = xp.ascontiguousarray(recurrent_kernel)
                xw = rows_product(layer_input.reshape(steps * batch, -1), kernel,
                                  cell.input_bias(bias, recurrent_bias)).reshape(steps, batch, -1)
                states, cache = cell.scan(xw, recurrent_kernel, recurrent_bias, mask, direction)
                runs.append((direction, states, cache))
            layers.append((layer_input, runs))
            outputs = [direction.new_states(states) for direction, states, _ in runs]
            if mask is not None:
                outputs = [out * mask for out in outputs]
            layer_input = outputs[0] if directions == 1 else xp.concatenate(outputs, axis=2)
        ctx.layers, ctx.mask, ctx.weights = layers, mask, weights
        if p.return_sequences:
            return xp.ascontiguousarray(layer_input.transpose(1, 0, 2))
        lasts = [states[direction.last] for direction, states, _ in layers[-1][1]]
        return lasts[0].copy() if directions == 1 else xp.concatenate(lasts, axis=1)

    def backward(self, ctx, p, g):
        xp = array_module(g)
        cell = self.cell(p)
        weights, mask = ctx.weights, ctx.mask
        per_direction = len(self._names())
        directions = 2 if p.bidirectional else 1
        units = p.units
        needs = ctx.needs or (True,) * (2 + len(weights))
        weight_needs = needs[2:]
        grads: list = [None] * len(weights)
        d_outputs = xp.ascontiguousarray(g.transpose(1, 0, 2)) if p.return_sequences else None
        for layer in reversed(range(p.num_layers)):
            layer_input, runs = ctx.layers[layer]
            steps, batch, fan_in = layer_input.shape
            flat_input = None if cell.stacks_inputs else layer_input.reshape(steps * batch, fan_in)
            want_input = layer > 0 or needs[0]
            d_x = None
            for d, (direction, _, cache) in enumerate(runs):
                start = (layer * directions + d) * per_direction
                kernel, recurrent_kernel = weights[start], weights[start + 1]
                columns = slice(d * units, (d + 1) * units)
                d_seq = None if d_outputs is None else d_outputs[:, :, columns]
                d_last = g[:, columns] if d_outputs is None else None
                d_input, d_hidden, d_recurrent_bias = cell.scan_backward(
                    cache, recurrent_kernel, d_seq, d_last, mask, direction)
                width = d_input.shape[2]
                flat_d_input = d_input.reshape(steps * batch, width)
                if cell.stacks_inputs:
                    # The rows [x_t, 1, h_{t-1}] of all steps times their gate gradients: the
                    # gradients of W, b and U in one matmul.
                    if any(weight_needs[start:start + 3]):
                        used = slice(1, None) if direction.reverse else slice(0, steps)
                        stacked = cache["stacked_inputs"][used].reshape(steps * batch, -1)
                        stacked_grad = rows_product(stacked.T, flat_d_input)
                        for offset, rows in enumerate((slice(0, fan_in), slice(fan_in + 1, None), fan_in)):
                            if weight_needs[start + offset]:
                                grads[start + offset] = stacked_grad[rows]
                elif weight_needs[start]:
                    grads[start] = rows_product(flat_input.T, flat_d_input)
                # One matmul over all steps for each weight gradient; the recurrent kernel's leaves
                # out the first step, whose previous state is the initial zero.
                if weight_needs[start + 1] and not cell.stacks_inputs:
                    later = slice(None, -1) if direction.reverse else slice(1, None)
                    previous = direction.previous_states(cache["states"])[later].reshape(-1, units)
                    grads[start + 1] = rows_product(previous.T, d_hidden[later].reshape(-1, width))
                if weight_needs[start + 2] and not cell.stacks_inputs:
                    grads[start + 2] = _sum_rows(flat_d_input)
                if self.recurrent_bias and weight_needs[start + 3]:
                    grads[start + 3] = d_recurrent_bias
                if want_input:
                    d_part = rows_product(flat_d_input, kernel.T).reshape(steps, batch, fan_in)
                    d_x = d_part if d_x is None else d_x + d_part
            d_outputs = d_x
        return (d_x.transpose(1, 0, 2) if needs[0] else None, None, *grads)


@register
class SimpleRNN(Recurrent):
    name = "rnn"
    doc = "Elman recurrent layer: h_t = act(x_t W + b + h_{t-1} U), act tanh or relu."
    params = Recurrent.common_params + (
        Param("activation", "choice", "tanh", "nonlinearity of the state", choices=("tanh", "relu")),
    )
    cell_type = _SimpleCell


@register
class LSTM(Recurrent):
    name = "lstm"
    doc = ("Long short-term memory: gates i, f, o = sigmoid and g = tanh of x_t W + b + h_{t-1} U; "
           "c_t = f c_{t-1} + i g, h_t = o tanh(c_t).")
    params = Recurrent.common_params
    cell_type = _LSTMCell


@register
class GRU(Recurrent):
    name = "gru"
    doc = ("Gated recurrent unit (PyTorch's form): r, z = sigmoid(x W + b + h U + b_h), "
           "n = tanh(x W_n + b_n + r (h U_n + b_hn)), h_t = (1 - z) n + z h_{t-1}.")
    params = Recurrent.common_params
    recurrent_bias = True
    cell_type = _GRUCell
