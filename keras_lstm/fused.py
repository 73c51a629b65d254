"""The fast whole-sequence LSTM: one projection, a lean loop, a hand-written backward.

Keras runs the cell once per step and lets autodiff differentiate the loop, so
every step pays for ``x_t·kernel`` and ~30 small ops forward and more backward.
Here the sequence is processed time-major in three stages:

1. ``zx = x·kernel + bias`` for all steps in one large matmul (autodiff gives its
   gradients ``dx``, ``dkernel``, ``dbias`` as large matmuls too);
2. a loop over time doing only ``z = zx_t + h_{t-1}·recurrent_kernel`` and the
   gate math of `keras_lstm.cell.lstm_equations`, storing the gates;
3. a hand-written backward loop (`tf.custom_gradient`) that walks time
   backwards doing only per-step work and stores ``dz_t``; ``drecurrent_kernel``
   is then one matmul over all steps.

The loops run in one of two forms ("auto" picks, see `choose_loops`): the C++
ops of `keras_lstm.native` (float32 on CPU; they split the batch rows between
the cores, and a small batch is instead cut into time chunks so that
projection and recurrence overlap on two cores), or the loops below compiled
with XLA (a nested ``tf.function(jit_compile=True)``), which fuses each step's
element-wise math into a few kernels. Both remove the per-op dispatch cost
that dominates LSTMs of recipe size on CPU.

Masks follow `keras.layers.RNN` exactly: a masked step keeps both states and
repeats the previous output (zeros with ``zero_output_for_mask``, which
`keras.layers.Bidirectional` sets); the output before the first unmasked step
is zeros. Under mixed precision the inputs and the weights arrive in
float16/bfloat16 (Keras autocasts the float32 variables): the input projection,
the one large matmul, is computed in that low precision; the recurrence is
widened to float32 (as cuDNN accumulates its half-precision LSTM), since
rounding the carried cell state every step compounds over long sequences, and
only the results are rounded back, once, at the end. float64 layers stay
float64 throughout.
"""

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from keras_lstm import devices
from keras_lstm import native
from keras_lstm import second_order
from keras_lstm import tracing
from keras_lstm.cell import GATE_ORDER
from keras_lstm.cell import lstm_equations
from keras_lstm.sequence_gradients import recurrent_kernel_gradient

# The backward pass below differentiates these gate positions; it is written
# for the cell's order and would silently be wrong for any other.
if GATE_ORDER != ("i", "f", "c", "o"):
    raise ImportError(
        "keras_lstm.fused is written for the gate order ('i', 'f', 'c', 'o'). "
        f"Received: GATE_ORDER={GATE_ORDER}"
    )


def _forward_loop(zx, h0, c0, recurrent_kernel, mask, store="train"):
    """Runs the recurrence over time-major pre-activations.

    Args:
        zx: (time, batch, 4 * units), ``x_t·kernel + bias`` for every step.
        h0, c0: (batch, units) initial states.
        recurrent_kernel: (units, 4 * units).
        mask: None or bool (time, batch, 1); False keeps the previous states.
        store: What to keep. "train": everything the backward pass needs;
            "outputs": every step's h only; "last": nothing (inference of the
            last output). Storing less saves a third of the loop's time.

    Returns:
        "train": hs (time, batch, units) h after each step, cs the same for
        c, gates (time, batch, 4 * units) the activated gates i, f, ĉ, o.
        "outputs": hs and the final c. "last": h_T[None] and the final c.
    """
    steps = tf.shape(zx)[0]
    arrays = [tf.TensorArray(zx.dtype, size=steps) for _ in range(3)]

    def body(t, h_tm1, c_tm1, hs, cs, gates):
        z = zx[t] + tf.matmul(h_tm1, recurrent_kernel)
        g = lstm_equations(z, c_tm1)
        h, c = g.h, g.c
        if mask is not None:
            h = tf.where(mask[t], h, h_tm1)
            c = tf.where(mask[t], c, c_tm1)
        if store != "last":
            hs = hs.write(t, h)
        if store == "train":
            cs = cs.write(t, c)
            gates = gates.write(t, tf.concat([g.i, g.f, g.c_hat, g.o], -1))
        return t + 1, h, c, hs, cs, gates

    _, h_last, c_last, hs, cs, gates = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, *arrays),
        maximum_iterations=steps,
    )
    if store == "train":
        return hs.stack(), cs.stack(), gates.stack()
    if store == "outputs":
        return hs.stack(), c_last
    return h_last[None], c_last


def _walk_back_in_time(body, steps, c0, dc_last):
    """Runs a backward step `body(t, dh, dc, d_zs)` from t = steps - 1 to 0.

    Returns (dz for every step (time, batch, 4 * units), dh0, dc0).
    """
    _, dh0, dc0, d_zs = tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (steps - 1, tf.zeros_like(c0), dc_last,
         tf.TensorArray(c0.dtype, size=steps)),
        maximum_iterations=steps,
    )
    return d_zs.stack(), dh0, dc0


def _backward_loop(d_hs, dc_last, cs, gates, c0, recurrent_kernel, mask):
    """Walks time backwards; returns (dz for every step, dh0, dc0).

    ``d_hs`` is the upstream gradient of every step's h (time, batch, units)
    and ``dc_last`` that of the final cell state. Each step reads its saved
    gates and cell states; XLA fuses the element-wise math of a step into one
    kernel next to its one matmul, and no per-step temporaries are kept.
    """
    steps = tf.shape(cs)[0]
    kernel_t = tf.transpose(recurrent_kernel)

    def body(t, dh, dc, d_zs):
        i, f, c_hat, o = tf.split(gates[t], 4, axis=-1)
        c_tm1 = tf.where(t > 0, cs[tf.maximum(t - 1, 0)], c0)
        tanh_c = tf.tanh(cs[t])
        dh = dh + d_hs[t]
        if mask is not None:
            # A masked step passes dh and dc straight through to step t - 1.
            keep = tf.cast(mask[t], dh.dtype)
            dh_skip, dc_skip = dh * (1.0 - keep), dc * (1.0 - keep)
            dh, dc = dh * keep, dc * keep
        dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat(
            [
                dc * c_hat * i * (1.0 - i),
                dc * c_tm1 * f * (1.0 - f),
                dc * i * (1.0 - c_hat * c_hat),
                dh * tanh_c * o * (1.0 - o),
            ],
            axis=-1,
        )
        dh_prev, dc_prev = tf.matmul(dz, kernel_t), dc * f
        if mask is not None:
            dh_prev, dc_prev = dh_prev + dh_skip, dc_prev + dc_skip
        return t - 1, dh_prev, dc_prev, d_zs.write(t, dz)

    return _walk_back_in_time(body, steps, c0, dc_last)


def _backward_loop_vectorized(d_hs, dc_last, cs, gates, c0, recurrent_kernel, mask):
    """`_backward_loop` with the per-step factors computed for all steps first.

    Everything that does not depend on the carried gradients is computed in
    a few large element-wise ops before the loop, so each step does the
    least work; it costs 6·units floats per step and batch element of extra
    memory, worth it for small states (see `_BACKWARD_VECTORIZED_MAX_UNITS`).
    """
    i, f, c_hat, o = tf.split(gates, 4, axis=-1)
    c_prev = tf.concat([c0[None], cs[:-1]], axis=0)
    tanh_c = tf.tanh(cs)
    # dc_t += dh_t * dc_per_dh;  dz = [dc_t * dz_per_dc, dh_t * dzo_per_dh].
    dc_per_dh = o * (1.0 - tanh_c * tanh_c)
    dz_per_dc = tf.concat(
        [c_hat * i * (1.0 - i), c_prev * f * (1.0 - f),
         i * (1.0 - c_hat * c_hat)],
        axis=-1,
    )
    dzo_per_dh = tanh_c * o * (1.0 - o)
    if mask is not None:
        # A masked step passes dh and dc straight through to step t - 1.
        keep = tf.cast(mask, cs.dtype)
        dc_per_dh, dzo_per_dh = dc_per_dh * keep, dzo_per_dh * keep
        dz_per_dc = dz_per_dc * keep
        f = f * keep + (1.0 - keep)
    steps = tf.shape(cs)[0]
    kernel_t = tf.transpose(recurrent_kernel)

    def body(t, dh, dc, d_zs):
        dh = dh + d_hs[t]
        dc = dc + dh * dc_per_dh[t]
        dz = tf.concat(
            [tf.tile(dc, [1, 3]) * dz_per_dc[t], dh * dzo_per_dh[t]], -1
        )
        dh_prev = tf.matmul(dz, kernel_t)
        if mask is not None:
            dh_prev = dh_prev + dh * (1.0 - keep[t])
        return t - 1, dh_prev, dc * f[t], d_zs.write(t, dz)

    return _walk_back_in_time(body, steps, c0, dc_last)


_forward_loop_xla = tf.function(
    _forward_loop, jit_compile=True, autograph=False
)
_backward_loop_xla = tf.function(
    _backward_loop, jit_compile=True, autograph=False
)
_backward_loop_vectorized_xla = tf.function(
    _backward_loop_vectorized, jit_compile=True, autograph=False
)

# Up to this many units the backward pass precomputes its per-step factors
# (`_backward_loop_vectorized`): measured in one process (training step,
# x keras) at imdb (64 units) 1.05 vs 0.97, long (32) 1.82 vs 1.48, and at
# charlm (256) 1.48 vs 1.57; small states are bound by per-step work, large
# ones by memory traffic, and the factors cost 6·units floats per step.
_BACKWARD_VECTORIZED_MAX_UNITS = 128


LOOPS = ("auto", "native", "xla", "python")
"""How `fused_lstm` runs its time loops: "native" the C++ ops of
`keras_lstm.native`, "xla" the loops above compiled with XLA, "python" the
same loops as plain TensorFlow ops, "auto" the fastest that can run."""

# A batch too small for the ops' row blocks (under
# `native.ROW_BLOCKS_MIN_BATCH` rows, known when traced) runs its recurrence
# on one core, so the native path cuts the sequence into this many chunks
# (fewer if a chunk would have under _MIN_CHUNK_STEPS steps), each projected
# and run on its own: TensorFlow then projects chunk k + 1 on the other core
# while the recurrence of chunk k runs. A larger (or unknown) batch already
# keeps both cores busy and runs in one chunk, which saves the chunks'
# concatenation. Training step x keras, same process, 8 chunks vs 1: with
# row blocks imdb 1.55 vs 1.68, charlm 1.88 vs 1.97, long 4.09 vs 4.46;
# batch 8 (imdb's sizes otherwise) 3.05 vs 2.88, inference 1.86 vs 1.46.
_NATIVE_CHUNKS = 8
_MIN_CHUNK_STEPS = 16


def _inside_xla_compilation():
    """Whether ops built now end up in an XLA cluster (jit_compile=True)."""
    graph = tf.compat.v1.get_default_graph()
    return control_flow_util.GraphOrParentsInXlaContext(graph)


def choose_loops(dtype, gpu_available, inside_xla, native_available):
    """The loops "auto" runs: "native" where it can run, else "xla".

    The C++ ops take float32 on CPU and have no XLA kernel, so float64,
    machines with a GPU and code compiled with jit_compile=True keep the XLA
    loops (a GPU runs cuDNN or XLA's GPU loops; see `keras_lstm.cudnn`). The
    native loops were the faster at every shape measured (docs/benchmarks.md).

    Args:
        dtype: The recurrence's dtype (float32 also under mixed precision).
        gpu_available: Whether TensorFlow sees a GPU.
        inside_xla: Whether the ops are being built into an XLA cluster.
        native_available: A callable telling whether the C++ ops load; only
            called when they would be used (the first call builds them).
    """
    if dtype != tf.float32 or gpu_available or inside_xla:
        return "xla"
    return "native" if native_available() else "xla"


def _loop_functions(loops, units):
    """(forward, backward) loop functions for "xla" or "python"."""
    use_xla = loops == "xla"
    forward = _forward_loop_xla if use_xla else _forward_loop
    if units is not None and units <= _BACKWARD_VECTORIZED_MAX_UNITS:
        backward = (_backward_loop_vectorized_xla if use_xla
                    else _backward_loop_vectorized)
    else:
        backward = _backward_loop_xla if use_xla else _backward_loop
    return forward, backward


def recurrence(zx, h0, c0, recurrent_kernel, mask=None, training=True,
               all_outputs=True, loops="xla"):
    """The differentiable core: time-major pre-activations to all hidden states.

    Args:
        zx: (time, batch, 4 * units) input projections with the bias added.
        h0, c0: (batch, units) initial states.
        recurrent_kernel: (units, 4 * units) tensor.
        mask: None or bool (time, batch, 1).
        training: Store the gates for the backward pass while running forward.
            If False, the forward pass stores only h and a gradient, if one is
            asked for anyway, reruns the forward pass first (same result).
        all_outputs: Return every step's h; if False (and not training) only
            the last one, as (1, batch, units).
        loops: "xla" (compiled with XLA) or "python" (plain TensorFlow ops).

    Returns:
        hs: (time, batch, units) hidden state after each step (see
        all_outputs), and c_last: (batch, units) the final cell state.
    """
    units = h0.shape[-1]
    forward, backward = _loop_functions(loops, units)
    twice = second_order.higher_order_possible([zx, h0, c0, recurrent_kernel])

    @tf.custom_gradient
    def core(zx, h0, c0, recurrent_kernel):
        # Kept only when a gradient may be differentiated again.
        originals = (zx, h0, c0, recurrent_kernel) if twice else None
        # The loops are never differentiated by autodiff; stop_gradient keeps
        # TensorFlow from building (and XLA from failing on) accumulators.
        args = [tf.stop_gradient(t) for t in (zx, h0, c0, recurrent_kernel)]
        if training:
            hs, cs, gates = forward(*args, mask, store="train")
            c_last = cs[-1]
            args[0] = None  # The backward pass needs no zx: free it early.
        else:
            store = "outputs" if all_outputs else "last"
            hs, c_last = forward(*args, mask, store=store)

        def grad(d_hs, dc_last):
            if originals is not None:
                store = "outputs" if training or all_outputs else "last"
                return second_order.autodiff_gradients(
                    lambda *a: _forward_loop(*a, mask, store=store),
                    originals, (d_hs, dc_last),
                )
            if training:
                all_hs, saved_cs, saved_gates = hs, cs, gates
            else:
                all_hs, saved_cs, saved_gates = forward(*args, mask, store="train")
            if not training and not all_outputs:  # d_hs is (1, batch, units).
                earlier = tf.zeros_like(all_hs[:-1])
                d_hs = tf.concat([earlier, d_hs], axis=0)
            d_zs, dh0, dc0 = backward(
                d_hs, dc_last, saved_cs, saved_gates, args[2], args[3], mask
            )
            d_kernel = recurrent_kernel_gradient(args[1], all_hs, d_zs)
            return d_zs, dh0, dc0, d_kernel

        return (hs, c_last), grad

    return core(zx, h0, c0, recurrent_kernel)


def _resolve_loops(loops, dtype, training=True):
    """`loops` with "auto" replaced by the choice for this machine and dtype.

    A graph that may be saved (`keras_lstm.tracing`) gets the "python"
    loops: standard TensorFlow ops that load anywhere.
    """
    if loops not in LOOPS:
        raise ValueError(f"loops must be one of {LOOPS}. Received: {loops!r}")
    if loops == "auto":
        if tracing.graph_may_be_saved(training):
            return "python"
        return choose_loops(
            dtype, devices.gpu_available(), _inside_xla_compilation(),
            native.available,
        )
    if loops == "native" and dtype != tf.float32:
        raise ValueError(
            "loops='native' runs float32 only. Received: loops='native' with "
            f"dtype {dtype.name}"
        )
    if loops == "native" and not native.available():
        raise ValueError(
            "loops='native' was given, but keras_lstm's C++ ops are "
            "unavailable here (the warning above says why). Received: "
            "loops='native'"
        )
    return loops


def native_chunk_count(steps, batch):
    """How many time chunks the native path runs (see _NATIVE_CHUNKS).

    Args:
        steps, batch: The sequence's static length and batch size, or None
            where unknown when traced.
    """
    if batch is None or batch >= native.ROW_BLOCKS_MIN_BATCH:
        return 1
    if steps is None:
        return _NATIVE_CHUNKS
    return max(1, min(_NATIVE_CHUNKS, steps // _MIN_CHUNK_STEPS))


def _native_chunks(x, project, h0, c0, recurrent_kernel, bias, mask,
                   training):
    """Projection and recurrence on the C++ ops, chunk by chunk in time.

    ``project`` gives ``x·kernel`` only: the ops add the bias.
    Returns hs (T, B, U), h_last and c_last.
    """
    chunks = native_chunk_count(x.shape[0], x.shape[1])
    if chunks == 1:
        return native.recurrence(
            project(x), h0, c0, recurrent_kernel, mask, training, bias
        )
    steps = tf.shape(x)[0]
    h, c, hs = h0, c0, []
    for index in range(chunks):
        start, end = steps * index // chunks, steps * (index + 1) // chunks
        part_mask = None if mask is None else mask[start:end]
        part_hs, h, c = native.recurrence(
            project(x[start:end]), h, c, recurrent_kernel, part_mask,
            training, bias,
        )
        hs.append(part_hs)
    return tf.concat(hs, axis=0), h, c


def fused_lstm(
    inputs,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias=None,
    mask=None,
    go_backwards=False,
    return_sequences=True,
    zero_output_for_mask=False,
    training=True,
    loops="auto",
):
    """Runs a plain LSTM over a whole batch-major sequence, keras semantics.

    Args:
        inputs: (batch, time, features); dropout, if any, already applied.
        h0, c0: (batch, units) initial states.
        kernel: (features, 4 * units); recurrent_kernel: (units, 4 * units);
            bias: (4 * units,) or None. Gate order `keras_lstm.GATE_ORDER`.
        mask: None or bool (batch, time); False steps keep the states.
        go_backwards: Process time in reverse; outputs stay in that order.
        return_sequences: Also build the (batch, time, units) outputs.
        zero_output_for_mask: Masked steps output zeros instead of repeating
            the previous output (`keras.layers.Bidirectional` sets this).
        training: Keep what the backward pass needs while running forward
            (see `recurrence`).
        loops: How the time loops run, one of `LOOPS` ("auto": see
            `choose_loops`).

    Returns:
        ``(last_output, outputs, [h, c])`` as `keras.layers.RNN.inner_loop`
        returns them: outputs is (batch, time, units), or (batch, 1, units)
        when return_sequences is False.
    """
    out_dtype = inputs.dtype
    dtype = tf.float64 if out_dtype == tf.float64 else tf.float32
    x = tf.transpose(inputs, [1, 0, 2])  # (T, B, F), the compute dtype
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]  # (T, B, 1)
    if go_backwards:
        x = tf.reverse(x, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    loops = _resolve_loops(loops, dtype, training)

    # Cast once: the native path projects chunk by chunk.
    kernel = tf.cast(kernel, out_dtype)
    bias = None if bias is None else tf.cast(bias, out_dtype)

    def project(x_part, bias=None):
        """x·kernel (+ bias) in the compute dtype, then widened: (T, B, 4U)."""
        # Explicit sizes, not -1: a chunk may have zero steps.
        steps, batch, features = tf.unstack(tf.shape(x_part))
        zx = tf.matmul(tf.reshape(x_part, [steps * batch, features]), kernel)
        if bias is not None:
            zx = zx + bias
        return tf.cast(tf.reshape(zx, [steps, batch, tf.shape(kernel)[1]]), dtype)

    h0, c0 = tf.cast(h0, dtype), tf.cast(c0, dtype)
    recurrent_kernel = tf.cast(recurrent_kernel, dtype)
    if loops == "native":
        # The ops add the bias themselves, in the recurrence's dtype.
        hs, h_last, c_last = _native_chunks(
            x, project, h0, c0, recurrent_kernel,
            None if bias is None else tf.cast(bias, dtype), mask, training,
        )
    else:
        hs, c_last = recurrence(
            project(x, bias), h0, c0, recurrent_kernel, mask,
            training=training, all_outputs=return_sequences, loops=loops,
        )  # hs: (T, B, U), or (1, B, U) in inference without return_sequences.
        h_last = hs[-1]
    outputs = hs
    if mask is not None:
        if zero_output_for_mask:
            keep = tf.cast(mask, dtype)
        else:
            # Keras repeats the previous output at masked steps, starting
            # from zeros: the output is h once any step was seen, else zeros.
            keep = tf.cast(tf.math.cumsum(tf.cast(mask, dtype), axis=0) > 0, dtype)
        outputs = hs * keep[-tf.shape(hs)[0]:]
    last_output = outputs[-1]
    if return_sequences:
        outputs = tf.transpose(outputs, [1, 0, 2])
    else:
        outputs = last_output[:, None]
    cast = lambda t: tf.cast(t, out_dtype)  # noqa: E731
    return cast(last_output), cast(outputs), [cast(h_last), cast(c_last)]
