"""The LSTM's and the GRU's float32 scans on the CPU, each a single compiled kernel call per piece of
the batch.

A step of the recurrence is one small product (the rows [x_t, 1, h_{t-1}] of the piece times
[W; b; U], or the gate gradients times U^T) and a few passes over the step's gates. As NumPy calls
that is five or six calls a step, 28 steps a sequence, each of which takes the GIL: two threads
running their halves of the batch queued for it. Here one call runs the whole scan of a piece
without the GIL, calling BLAS (``_blas``) for the products and looping over the gates in between.

The gates' tanh (and the sigmoids, as 1/2 tanh(z/2) + 1/2, the kernel's i, f and o columns being
halved beforehand) is a rational function that vectorizes: Eigen's 13/6-degree interpolant on
[-7.9053, 7.9053], outside of which float32 tanh is +/-1 (``fast_tanh``). It is within 4e-7 of tanh
(a few float32 ulp near +/-1) and keeps NaN. float64 data keeps the NumPy scan and NumPy's tanh,
which is correctly rounded to within an ulp (and what ``make crosscheck`` compares with PyTorch).

A 28-step scan of 32 rows, 28 features, 128 units, forward, on one thread (AVX-512): 1.96 ms
against 2.28 as NumPy calls; split in two pieces on 2 threads, 1.44 ms against 1.77. The whole
training step of the bench's LSTM (steps of the two paths alternating in one process): 1.14x at
batch 32 on 2 threads, 1.10x at 128; 1.11x and 1.09x on one thread.

The GRU's scans do the same with its own gates (the input projection of all steps stays one product
before the loop): its steps 2.26x faster at batch 32 on 2 threads, 1.57x at 128, 1.53x and 1.36x on
one thread; its NumPy form took a dozen calls a step each way, which on 2 threads queued for the GIL.

The loops over a row take whole contiguous arrays and the piece's row range, not views of the
piece: numba compiles a view's rows as strided arrays, whose loops do not vectorize (a piece's
scan then took as long as the whole batch's).
"""

from __future__ import annotations

import functools

import numpy

from engine.ops import _blas, _numba

# Eigen's generic_fast_tanh_float: odd numerator and even denominator, in x^2.
_CLAMP = numpy.float32(7.90531110763549805)
_ALPHA = tuple(numpy.float32(value) for value in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_BETA = tuple(numpy.float32(value) for value in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))


def usable(xp, dtype) -> bool:
    """Whether the compiled scans take arrays of ``xp`` and ``dtype``."""
    return _numba.available(xp) and numpy.dtype(dtype) == numpy.float32 and _blas.gemm(dtype) is not None


@functools.cache
def kernels() -> tuple:
    """(LSTM forward, LSTM backward, GRU forward, GRU backward), each compiled on its first call, once
    per process (not cached on disk: the BLAS function's address
    differs from process to process)."""
    import numba  # noqa: PLC0415 - present: usable() asked _numba.available first

    product = _blas.gemm(numpy.float32)
    gemm, index = product.function, product.index
    compile_ = functools.partial(numba.njit, nogil=True, error_model="numpy")
    clamp, low = _CLAMP, -_CLAMP
    a1, a3, a5, a7, a9, a11, a13 = _ALPHA
    b0, b2, b4, b6 = _BETA
    zero, one, half = numpy.float32(0.0), numpy.float32(1.0), numpy.float32(0.5)

    @compile_(inline="always")
    def fast_tanh(x):
        x = clamp if x > clamp else x  # (a NaN passes both tests and stays NaN)
        x = low if x < low else x
        x2 = x * x
        p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * x
        q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
        return p / q

    @compile_(inline="always")
    def product_arguments(n, rows, k):
        """``multiply``'s arguments for (rows, k) @ (k, n): sizes [n, m, k, ldb, lda, ldc] (the leading
        dimensions of whole contiguous rows), factors (1, 0) and the code 'N', made once per scan."""
        return (numpy.array([n, rows, k, n, k, n], dtype=index), numpy.array([1.0, 0.0], dtype=numpy.float32),
                numpy.array([78], dtype=numpy.uint8))

    @compile_(inline="always")
    def multiply(a, b, c, arguments):
        """Row-major c (m, n) = a (m, k) @ b (k, n) as Fortran's c^T = b^T a^T (``product_arguments``)."""
        sizes, factors, code = arguments
        gemm(code.ctypes.data, code.ctypes.data, sizes[0:].ctypes.data, sizes[1:].ctypes.data,
             sizes[2:].ctypes.data, factors[0:].ctypes.data, b.ctypes.data, sizes[3:].ctypes.data,
             a.ctypes.data, sizes[4:].ctypes.data, factors[1:].ctypes.data, c.ctypes.data, sizes[5:].ctypes.data)

    @compile_(inline="always")
    def step_gradient(carried, d_outputs, mask, t, n, new, passed):
        """The gradient reaching row n's new state at step t, into ``new``: the carry plus the output's,
        and with a mask m (h_t = m h_new + (1 - m) h_{t-1}) times m, ``passed`` getting (1 - m) carry,
        what goes straight to the previous state. Returns m (1 without a mask)."""
        if d_outputs.shape[0] > 0:
            d_output = d_outputs[t, n]
            for j in range(new.shape[0]):
                new[j] = carried[j] + d_output[j]
        else:
            new[:] = carried
        m = one
        if mask.shape[0] > 0:
            m = mask[t, n, 0]
            for j in range(new.shape[0]):
                new[j] *= m
                passed[j] = carried[j] - carried[j] * m
        return m

    def forward(stacked, kernel, activations, cells, tanh_cells, mask, reverse, low, high):
        """The scan of rows low:high of the batch (all arrays are whole and contiguous, so that the
        loops over a row vectorize): row ``back`` of ``stacked`` (T + 1, N, F + 1 + H) holds
        [x_t, 1, h_{t-1}] for step t, whose state this writes into the last H columns of row
        ``ahead`` (back, ahead = t, t + 1 forward, t + 1, t reversed; the initial state and cell are
        zeros); ``kernel`` [W; b; U] with the i, f and o columns halved; ``activations`` (T, N, 4H)
        get i, f, g, o, ``cells`` (T + 1, N, H) the cells, ``tanh_cells`` (T, N, H) their tanh.
        ``mask`` (T, N, 1), or empty: a row whose mask is 0 at step t keeps its state and cell."""
        steps, width = activations.shape[0], activations.shape[2]
        rows = high - low
        units = width // 4
        inner = stacked.shape[2]
        states = stacked[:, :, inner - units:]
        scale = numpy.full(width, half, dtype=numpy.float32)
        scale[2 * units:3 * units] = one
        shift = numpy.full(width, half, dtype=numpy.float32)
        shift[2 * units:3 * units] = zero
        arguments = product_arguments(width, rows, inner)
        masked = mask.shape[0] > 0
        first = steps if reverse else 0
        states[first, low:high] = zero
        cells[first, low:high] = zero
        for s in range(steps):
            t = steps - 1 - s if reverse else s
            back, ahead = (t + 1, t) if reverse else (t, t + 1)
            multiply(stacked[back, low:], kernel, activations[t, low:], arguments)
            for n in range(low, high):
                gates, previous, cell = activations[t, n], cells[back, n], cells[ahead, n]
                tanh_cell, state = tanh_cells[t, n], states[ahead, n]
                for k in range(width):
                    gates[k] = fast_tanh(gates[k]) * scale[k] + shift[k]
                for j in range(units):
                    cell[j] = gates[units + j] * previous[j] + gates[j] * gates[2 * units + j]
                for j in range(units):
                    tanh_cell[j] = fast_tanh(cell[j])
                for j in range(units):
                    state[j] = gates[3 * units + j] * tanh_cell[j]
                if masked and mask[t, n, 0] == zero:
                    cell[:] = previous
                    state[:] = states[back, n]

    def backward(activations, tanh_cells, cells, recurrent_t, d_outputs, carry, mask, d_gates, reverse, low, high):
        """The gradients of the gate pre-activations of rows low:high, into d_gates (T, N, 4H), from
        ``carry`` (high - low, H: the last state's gradient, overwritten) and ``d_outputs`` (T, N, H, or
        empty: every step's state's gradient); ``recurrent_t`` U^T (4H, H). Arrays whole and contiguous,
        as forward's. Arithmetic as the NumPy path's."""
        steps, width = activations.shape[0], activations.shape[2]
        units = width // 4
        rows = high - low
        arguments = product_arguments(units, rows, width)
        masked = mask.shape[0] > 0
        carry_cell = numpy.zeros((rows, units), dtype=numpy.float32)
        d_new = numpy.empty(units, dtype=numpy.float32)
        d_cell = numpy.empty(units, dtype=numpy.float32)
        passed = numpy.zeros((rows, units), dtype=numpy.float32)
        kept = numpy.zeros((rows, units), dtype=numpy.float32)
        for s in range(steps):
            t = s if reverse else steps - 1 - s
            back = t + 1 if reverse else t
            for n in range(low, high):
                gates, row, tanh_cell, previous = activations[t, n], d_gates[t, n], tanh_cells[t, n], cells[back, n]
                cell_carried = carry_cell[n - low]
                m = step_gradient(carry[n - low], d_outputs, mask, t, n, d_new, passed[n - low])
                if masked:  # the cell too: c_t = m c_new + (1 - m) c_{t-1}
                    for j in range(units):
                        kept[n - low, j] = cell_carried[j] - cell_carried[j] * m
                        cell_carried[j] *= m
                for j in range(units):  # dc = dh o (1 - tanh(c)^2) + the cell's carry
                    tanh = tanh_cell[j]
                    d_cell[j] = d_new[j] * gates[3 * units + j] * (one - tanh * tanh) + cell_carried[j]
                for j in range(units):
                    cell_carried[j] = d_cell[j] * gates[units + j]
                for j in range(units):
                    i = gates[j]
                    row[j] = d_cell[j] * gates[2 * units + j] * (i - i * i)
                for j in range(units):
                    f = gates[units + j]
                    row[units + j] = d_cell[j] * previous[j] * (f - f * f)
                for j in range(units):
                    g = gates[2 * units + j]
                    row[2 * units + j] = d_cell[j] * gates[j] * (one - g * g)
                for j in range(units):
                    o = gates[3 * units + j]
                    row[3 * units + j] = d_new[j] * tanh_cell[j] * (o - o * o)
            if s == steps - 1:  # what would flow on is the gradient of the (constant) initial state
                break
            multiply(d_gates[t, low:], recurrent_t, carry, arguments)
            if masked:
                carry += passed
                carry_cell += kept


    def gru_forward(inputs, kernel, hidden_bias, states, activations, hidden_n, mask, reverse, low, high):
        """The GRU's scan of rows low:high (whole contiguous arrays, as ``forward``'s): ``inputs`` (T, N,
        3H) the projected x_t W + b (+ b_h's r and z parts), r and z columns negated; ``kernel`` U (H,
        3H), r and z columns negated; ``hidden_bias`` b_h's n part (H); ``states`` (T + 1, N, H) get the
        states, ``activations`` (T, N, 3H) r, z, n, ``hidden_n`` (T, N, H) h_{t-1} U_n + b_hn. With r and
        z negated, sigmoid(z) = 1/2 - tanh(-z / 2) / 2."""
        steps, width = activations.shape[0], activations.shape[2]
        units = width // 3
        rows = high - low
        projected = numpy.empty((rows, width), dtype=numpy.float32)
        arguments = product_arguments(width, rows, units)
        masked = mask.shape[0] > 0
        first = steps if reverse else 0
        states[first, low:high] = zero
        for s in range(steps):
            t = steps - 1 - s if reverse else s
            back, ahead = (t + 1, t) if reverse else (t, t + 1)
            multiply(states[back, low:], kernel, projected, arguments)
            for n in range(low, high):
                gates, product, given = activations[t, n], projected[n - low], inputs[t, n]
                n_hidden, previous, state = hidden_n[t, n], states[back, n], states[ahead, n]
                for k in range(2 * units):
                    gates[k] = half - half * fast_tanh(half * (given[k] + product[k]))
                for j in range(units):
                    n_hidden[j] = product[2 * units + j] + hidden_bias[j]
                for j in range(units):
                    gates[2 * units + j] = fast_tanh(gates[j] * n_hidden[j] + given[2 * units + j])
                for j in range(units):
                    candidate = gates[2 * units + j]
                    state[j] = (previous[j] - candidate) * gates[units + j] + candidate
                if masked and mask[t, n, 0] == zero:
                    state[:] = previous

    def gru_backward(activations, states, hidden_n, recurrent_t, d_outputs, carry, mask, d_input, d_hidden, reverse,
                     low, high):
        """The GRU's gradients of x_t W + b (``d_input``) and h_{t-1} U + b_h (``d_hidden``), (T, N, 3H), for
        rows low:high, from ``carry`` (high - low, H) and ``d_outputs`` (T, N, H, or empty);
        ``recurrent_t`` U^T (3H, H), unscaled. Arithmetic as the NumPy path's."""
        steps, width = activations.shape[0], activations.shape[2]
        units = width // 3
        rows = high - low
        arguments = product_arguments(units, rows, width)
        masked = mask.shape[0] > 0
        d_new = numpy.empty((rows, units), dtype=numpy.float32)
        passed = numpy.zeros((rows, units), dtype=numpy.float32)
        for s in range(steps):
            t = s if reverse else steps - 1 - s
            back = t + 1 if reverse else t
            for n in range(low, high):
                gates, previous, n_hidden = activations[t, n], states[back, n], hidden_n[t, n]
                hidden_row, input_row = d_hidden[t, n], d_input[t, n]
                new = d_new[n - low]
                step_gradient(carry[n - low], d_outputs, mask, t, n, new, passed[n - low])
                for j in range(units):  # dn_pre = dh (1 - z) (1 - n^2)
                    candidate = gates[2 * units + j]
                    input_row[2 * units + j] = (one - gates[units + j]) * new[j] * (one - candidate * candidate)
                for j in range(units):  # dz_pre = dh (h_{t-1} - n) z (1 - z)
                    z = gates[units + j]
                    hidden_row[units + j] = (previous[j] - gates[2 * units + j]) * new[j] * (z - z * z)
                for j in range(units):  # dr_pre = dn_pre (h_{t-1} U_n + b_hn) r (1 - r)
                    r = gates[j]
                    hidden_row[j] = input_row[2 * units + j] * n_hidden[j] * (r - r * r)
                for j in range(units):
                    hidden_row[2 * units + j] = input_row[2 * units + j] * gates[j]
                for k in range(2 * units):
                    input_row[k] = hidden_row[k]
            if s == steps - 1:
                break
            multiply(d_hidden[t, low:], recurrent_t, carry, arguments)
            for n in range(rows):
                gates, row, new = activations[t, n + low], carry[n], d_new[n]
                for j in range(units):
                    row[j] += new[j] * gates[units + j]
                if masked:
                    for j in range(units):
                        row[j] += passed[n, j]

    return compile_(forward), compile_(backward), compile_(gru_forward), compile_(gru_backward)
