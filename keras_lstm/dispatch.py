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


def inference_prefers_step(features, units, fused_loops):
    """Whether "auto" should run an inference call step by step on CPU.

    Only when the fused path would run its XLA loops (`LSTM.fused_loops`):
    without a backward pass their gain is only the per-step overhead, and
    the one large ``x·kernel`` matmul over all steps is slow when the input
    is wider than the state. Measured at imdb's shape (64, 200, 128 features,
    64 units): the projection alone took 9 ms of keras's whole 18 ms forward
    and fused inference with XLA loops ran at 0.7–0.8x keras, while at charlm
    (64 features, 256 units) and long (8, 32) it ran at 1.0–1.5x. With the
    C++ loops the fused path was faster than step by step at imdb too (16.9
    vs 19.9 ms, keras 20.1 ms, before they split the batch rows between the
    cores; 1.47–2.44x keras since), so with them it always runs. Unknown
    feature counts keep the fused path.
    """
    return fused_loops != "native" and features is not None and features > units
