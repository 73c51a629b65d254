"""Which implementation runs an `LSTM` layer: pure functions of its configuration.

Three paths compute the same thing (`keras.layers.LSTM`'s results):

- ``"cudnn"``: NVIDIA's fused kernel; only with a visible GPU.
- ``"fused"``: `keras_lstm.fused`, the whole-sequence loop with a hand-written
  backward pass, compiled with XLA; the default on CPU.
- ``"step"``: `keras.layers.RNN` running the cell one step at a time; handles
  every option, and is the only path for variants and custom activations.

Kept free of TensorFlow state so that the rules are unit-tested on any machine.
"""

import dataclasses

IMPLEMENTATIONS = ("auto", "fused", "step")
"""Accepted values of `LSTM(implementation=...)`."""

# Keras 3's LSTM takes implementation=0, 1 or 2 (1: a dropout mask per gate,
# which the layer passes to its cell); as a path choice they mean "auto".
_KERAS_IMPLEMENTATIONS = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class LayerOptions:
    """What the path choice depends on, read from a layer.

    Attributes:
        plain_cell: The cell is exactly `keras_lstm.LSTMCell` (not a variant).
        activation: Name of the cell's activation, e.g. "tanh".
        recurrent_activation: Name of the gates' activation, e.g. "sigmoid".
        recurrent_dropout: The cell's recurrent dropout rate.
        unroll: The layer unrolls the time loop.
        use_bias: The cell has a bias.
        implementation: "auto", "fused" or "step" (user override).
        use_cudnn: "auto", True or False, as in `keras.layers.LSTM`.
        per_gate_dropout: Input dropout with one mask per gate (Keras's
            implementation=1), which only the cell's own step applies.
    """

    plain_cell: bool
    activation: str
    recurrent_activation: str
    recurrent_dropout: float
    unroll: bool
    use_bias: bool
    implementation: str = "auto"
    use_cudnn: object = "auto"
    per_gate_dropout: bool = False


def check_implementation(implementation):
    """Returns the normalised `implementation` argument or raises ValueError."""
    if implementation in _KERAS_IMPLEMENTATIONS and not isinstance(
        implementation, bool
    ):
        return "auto"
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            "`implementation` must be one of 'auto', 'fused' or 'step', or "
            "Keras's 0, 1 or 2. "
            f"Received: implementation={implementation!r}"
        )
    return implementation


def fused_blockers(options):
    """Reasons the fused path cannot run this configuration (empty if it can)."""
    reasons = []
    if not options.plain_cell:
        reasons.append("the cell is a variant, not keras_lstm.LSTMCell")
    if options.activation != "tanh":
        reasons.append(f"activation={options.activation!r} (needs 'tanh')")
    if options.recurrent_activation != "sigmoid":
        reasons.append(
            f"recurrent_activation={options.recurrent_activation!r} "
            "(needs 'sigmoid')"
        )
    if options.recurrent_dropout:
        reasons.append(
            f"recurrent_dropout={options.recurrent_dropout} (needs 0)"
        )
    if options.unroll:
        reasons.append("unroll=True (needs False)")
    if options.per_gate_dropout:
        reasons.append("dropout with implementation=1 (a mask per gate)")
    return reasons


def cudnn_blockers(options, gpu_available):
    """Reasons the cuDNN path cannot run this configuration (empty if it can).

    Masks are checked at run time, not here: a right-padded mask becomes
    cuDNN sequence lengths (go_backwards included); any other mask (left
    padding, holes, empty rows) runs the fused path instead, as do calls
    whose gradient may be differentiated again (`keras_lstm.second_order`).
    """
    reasons = fused_blockers(options)
    if not options.use_bias:
        reasons.append("use_bias=False (needs True)")
    if not gpu_available:
        reasons.append("no GPU is visible")
    if options.use_cudnn is False:
        reasons.append("use_cudnn=False")
    if options.implementation != "auto":
        reasons.append(f"implementation={options.implementation!r}")
    return reasons


def select_path(options, gpu_available):
    """Chooses "cudnn", "fused" or "step" for a layer; raises if impossible.

    Args:
        options: A `LayerOptions`.
        gpu_available: Whether TensorFlow sees a GPU.

    Returns:
        The path's name.

    Raises:
        ValueError: `implementation="fused"` or `use_cudnn=True` was asked
            for a configuration that path cannot run.
    """
    if options.use_cudnn is True:
        reasons = cudnn_blockers(options, gpu_available)
        if reasons:
            raise ValueError(
                "use_cudnn=True was given, but the cuDNN path cannot run "
                "this layer: " + "; ".join(reasons) + ". Pass "
                "use_cudnn='auto' to fall back to another implementation. "
                f"Received: use_cudnn={options.use_cudnn}"
            )
        return "cudnn"
    if options.implementation == "step":
        return "step"
    reasons = fused_blockers(options)
    if options.implementation == "fused" and reasons:
        raise ValueError(
            "implementation='fused' was given, but the fused path cannot run "
            "this layer: " + "; ".join(reasons) + ". Received: "
            f"implementation={options.implementation!r}"
        )
    if reasons:
        return "step"
    if not cudnn_blockers(options, gpu_available):
        return "cudnn"
    return "fused"


# Without the C++ ops (no compiler, float64, KERAS_LSTM_NATIVE=0) the fused
# path's XLA loops beat Keras's own step-by-step loop only where a step's
# recurrent matmul is small, so that per-op overhead dominates it. Training
# step x keras.layers.LSTM, XLA loops, over runs on two CPUs (AMD EPYC and
# an Intel Xeon with AVX512-FP16): long (32 rows, 32 units, 131 k
# multiply-adds a step) 1.17–2.68 on both; imdb (64 rows, 64 units, 1.0 M)
# 0.90–1.35; charlm (64, 256 units, 16.8 M) 0.52–1.58; big (256, 512, 268 M)
# 0.54–1.19. Where it is not a sure win, "auto" runs the layer step by step,
# which is Keras's own algorithm, so it is never slower than Keras.
XLA_LOOPS_MAX_STEP_MACS = 1 << 18

# The batch size assumed when it is unknown while tracing (Keras's default).
ASSUMED_BATCH = 32


def auto_prefers_step(features, units, batch, loops, training):
    """Whether "auto" should run a call step by step instead of fused.

    Args:
        features, units, batch: The call's sizes (None where unknown when
            traced).
        loops: The fused path's loops for this call: "native" (the C++ ops),
            "xla", or "python" (plain TensorFlow ops, in graphs that may be
            saved; see `keras_lstm.tracing`).
        training: Whether the call computes a training step.

    Rules, measured on CPU (docs/benchmarks.md):

    - the C++ loops are faster than Keras at every shape measured: never;
    - the XLA loops: where a step's recurrent matmul, batch · units · 4 ·
      units multiply-adds, is above `XLA_LOOPS_MAX_STEP_MACS` (see above);
    - inference on the XLA or plain loops with more input features than
      units: its one large ``x·kernel`` projection is slow there (imdb's
      shape: 9 ms of keras's 18 ms forward; fused 0.7–0.8x keras);
    - training on the plain loops (graphs that may be saved): they trained
      at 0.78–1.04x keras (imdb, charlm, long; docs/benchmarks.md).
    """
    if loops == "native":
        return False
    if not training and features is not None and features > units:
        return True
    if loops == "python":
        return training
    if loops != "xla":
        return False
    rows = ASSUMED_BATCH if batch is None else batch
    return rows * 4 * units * units > XLA_LOOPS_MAX_STEP_MACS
