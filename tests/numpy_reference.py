"""A plain NumPy reference of the seed's six LSTM equations, a loop over time.

Written for reading, not speed: every equation appears as in the seed article,
with W_g·[h_{t-1}, x_t] split into its x part (kernel) and h part
(recurrent_kernel), gate blocks in the order i, f, c, o.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def split_gates(w):
    """Splits a packed (..., 4u) weight into its i, f, c, o blocks."""
    return np.split(np.asarray(w, dtype=np.float64), 4, axis=-1)


def lstm_step(x_t, h_tm1, c_tm1, kernel, recurrent_kernel, bias):
    """One step; returns a dict with f, i, c_hat, o, c, h."""
    k_i, k_f, k_c, k_o = split_gates(kernel)
    u_i, u_f, u_c, u_o = split_gates(recurrent_kernel)
    if bias is None:
        bias = np.zeros(np.shape(kernel)[-1])
    b_i, b_f, b_c, b_o = split_gates(bias)
    f = sigmoid(x_t @ k_f + h_tm1 @ u_f + b_f)      # forget gate
    i = sigmoid(x_t @ k_i + h_tm1 @ u_i + b_i)      # input gate
    c_hat = np.tanh(x_t @ k_c + h_tm1 @ u_c + b_c)  # candidate
    c = f * c_tm1 + i * c_hat                        # cell state
    o = sigmoid(x_t @ k_o + h_tm1 @ u_o + b_o)      # output gate
    h = o * np.tanh(c)                               # hidden state
    return {"f": f, "i": i, "c_hat": c_hat, "o": o, "c": c, "h": h}


def lstm_reference(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    initial_state=None,
    mask=None,
    go_backwards=False,
):
    """Runs the equations over (batch, time, features) inputs, in float64.

    A masked step (mask False) keeps the previous h and c and emits the
    previous step's *output*, exactly as keras.layers.LSTM does. Before the
    first step that output is zeros, not h_0: a sequence whose first steps are
    masked emits zeros there even with a non-zero initial_state, and a fully
    masked sequence returns a zero last output while its final states stay
    (h_0, c_0). With go_backwards the steps run from last to first and the
    outputs come back in that (reversed) order, as Keras returns them.

    Returns:
        (outputs (batch, time, units) in processing order, whose last step is
        the layer's last output; h_T (batch, units), c_T (batch, units), the
        final states; gates: dict of name -> (batch, time, units) in
        processing order, computed also for masked steps).
    """
    x = np.asarray(x, dtype=np.float64)
    batch, steps, _ = x.shape
    units = np.shape(recurrent_kernel)[0]
    if initial_state is None:
        h = np.zeros((batch, units))
        c = np.zeros((batch, units))
    else:
        h, c = (np.asarray(s, dtype=np.float64) for s in initial_state)
    if mask is None:
        mask = np.ones((batch, steps), dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outputs, trace = [], {k: [] for k in ("f", "i", "c_hat", "o", "c", "h")}
    output = np.zeros((batch, units))  # What a masked first step emits.
    for t in order:
        new = lstm_step(x[:, t], h, c, kernel, recurrent_kernel, bias)
        keep = mask[:, t][:, None]
        h = np.where(keep, new["h"], h)
        c = np.where(keep, new["c"], c)
        output = np.where(keep, new["h"], output)
        outputs.append(output)
        for k in trace:
            trace[k].append(new[k])
    gates = {k: np.stack(v, axis=1) for k, v in trace.items()}
    return np.stack(outputs, axis=1), h, c, gates
