"""The C++ loops of `keras_lstm.native` against the plain-TensorFlow loops.

Both compute the recurrence of `keras_lstm.fused`; the plain loops are checked
against the NumPy reference and keras.layers.LSTM elsewhere, so matching them
in float32 to 1e-5 (outputs, states and every gradient, with and without
masks) checks the compiled ops. The rules that pick the loops are plain
functions, tested here on any machine.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm import fused
from keras_lstm import native
from keras_lstm.native import build as native_build
from native_ops import native_ops_or_skip



@pytest.fixture(autouse=True)
def _needs_native_ops():
    native_ops_or_skip()


BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5

MASKS = {
    "none": None,
    "right": [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]],
    "left": [[0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]],
    "holes": [[1, 0, 1, 0, 0, 1], [0, 0, 1, 1, 0, 1], [1, 1, 0, 1, 1, 0]],
    "empty_row": [[0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 1, 0]],
}


def random_tensor(*shape, seed=0, scale=1.0):
    values = np.random.default_rng(seed).normal(size=shape) * scale
    return tf.constant(values.astype("float32"))


def lstm_arguments():
    """inputs, h0, c0, kernel, recurrent_kernel, bias (float32)."""
    return [
        random_tensor(BATCH, STEPS, FEATURES, seed=1),
        random_tensor(BATCH, UNITS, seed=2),
        random_tensor(BATCH, UNITS, seed=3),
        random_tensor(FEATURES, 4 * UNITS, seed=4, scale=0.6),
        random_tensor(UNITS, 4 * UNITS, seed=5, scale=0.6),
        random_tensor(4 * UNITS, seed=6),
    ]


def results_and_gradients(loops, mask, **options):
    """Every output of fused_lstm and the gradients of a weighted loss."""
    args = lstm_arguments()
    if mask is not None:
        mask = tf.constant(np.array(mask, bool))
    with tf.GradientTape() as tape:
        tape.watch(args)
        last, outputs, (h, c) = fused.fused_lstm(
            *args, mask=mask, loops=loops, **options
        )
        results = [last, outputs, h, c]
        loss = sum(
            tf.reduce_sum(r * random_tensor(*r.shape, seed=20 + k))
            for k, r in enumerate(results)
        )
    return results + tape.gradient(loss, args)


@pytest.mark.parametrize("mask_name", sorted(MASKS))
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(go_backwards=True),
        dict(return_sequences=False),
        dict(zero_output_for_mask=True),
        dict(training=False, return_sequences=False),
        dict(training=False),
    ],
    ids=["train", "go_backwards", "last_only", "zero_output",
         "inference_last", "inference_sequences"],
)
def test_native_loops_match_plain_loops(mask_name, options):
    native_results = results_and_gradients("native", MASKS[mask_name], **options)
    plain_results = results_and_gradients("python", MASKS[mask_name], **options)
    for got, want in zip(native_results, plain_results):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("mask_name", ["none", "holes"])
def test_chunked_sequence_matches_one_chunk(monkeypatch, mask_name):
    """Four chunks of 1-2 steps give what one chunk gives, gradients too."""
    monkeypatch.setattr(fused, "_MIN_CHUNK_STEPS", 1)
    chunked = results_and_gradients("native", MASKS[mask_name], go_backwards=True)
    monkeypatch.setattr(fused, "_NATIVE_CHUNKS", 1)
    whole = results_and_gradients("native", MASKS[mask_name], go_backwards=True)
    for got, want in zip(chunked, whole):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_thread_pool_matmul_matches_one_thread(monkeypatch):
    """Columns split across the pool's threads (32 units: 2 parts of 64)."""
    rng = np.random.default_rng(7)
    args = [tf.constant(a.astype("float32")) for a in (
        rng.normal(size=(4, 9, 6)), rng.normal(size=(4, 32)),
        rng.normal(size=(4, 32)), rng.normal(size=(6, 128)) * 0.3,
        rng.normal(size=(32, 128)) * 0.2, rng.normal(size=(128,)))]
    mask = tf.constant(rng.random((4, 9)) > 0.2)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(args)
            _, outputs, (h, c) = fused.fused_lstm(*args, mask=mask, loops="native")
            loss = tf.reduce_sum(outputs * outputs) + tf.reduce_sum(c)
        return [outputs, h, c] + list(tape.gradient(loss, args))

    one_thread = run()
    monkeypatch.setattr(native, "THREADED_MIN_MACS", 0)
    for got, want in zip(run(), one_thread):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("options", [dict(), dict(training=False)],
                         ids=["train", "inference"])
def test_row_blocks_match_plain_loops(options):
    """37 rows: the ops split them into uneven blocks run on separate threads."""
    rng = np.random.default_rng(11)
    batch, steps, features, units = 37, 7, 5, 6
    args = [tf.constant(a.astype("float32")) for a in (
        rng.normal(size=(batch, steps, features)), rng.normal(size=(batch, units)),
        rng.normal(size=(batch, units)), rng.normal(size=(features, 4 * units)) * 0.5,
        rng.normal(size=(units, 4 * units)) * 0.5, rng.normal(size=(4 * units,)))]
    mask = tf.constant(rng.random((batch, steps)) > 0.3)
    weights = rng.normal(size=(batch, steps, units)).astype("float32")

    def run(loops):
        with tf.GradientTape() as tape:
            tape.watch(args)
            _, outputs, (h, c) = fused.fused_lstm(
                *args, mask=mask, loops=loops, go_backwards=True, **options
            )
            loss = tf.reduce_sum(outputs * weights) + tf.reduce_sum(h * c)
        return [outputs, h, c] + list(tape.gradient(loss, args))

    for got, want in zip(run("native"), run("python")):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize(
    "steps, batch, expected",
    [(200, 64, 1), (200, None, 1), (None, None, 1), (200, 32, 1),
     (200, 31, 8), (40, 8, 2), (15, 8, 1), (None, 8, 8)],
)
def test_native_chunk_count(steps, batch, expected):
    """Chunks only when the batch is known and too small for row blocks."""
    assert fused.native_chunk_count(steps, batch) == expected


_DETERMINISM_SCRIPT = """
import numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(8)
from keras_lstm import fused
rng = np.random.default_rng(12)
batch, steps, features, units = 128, 30, 8, 16
args = [tf.constant(a.astype("float32")) for a in (
    rng.normal(size=(batch, steps, features)), rng.normal(size=(batch, units)),
    rng.normal(size=(batch, units)), rng.normal(size=(features, 4 * units)),
    rng.normal(size=(units, 4 * units)) * 0.5, rng.normal(size=(4 * units,)))]

@tf.function
def gradients():
    with tf.GradientTape() as tape:
        tape.watch(args)
        _, outputs, _ = fused.fused_lstm(*args, loops="native")
        loss = tf.reduce_sum(outputs * outputs)
    return tape.gradient(loss, args)

first = [g.numpy() for g in gradients()]
for _ in range(30):
    for got, want in zip(gradients(), first):
        np.testing.assert_array_equal(got.numpy(), want)
print("identical")
"""


def test_row_blocks_give_the_same_gradients_every_run(tmp_path):
    """8 row blocks on a pool of 8 threads (a fresh process, so the pool size
    can be set): every gradient, the bias's included, is bitwise the same in
    31 runs, because the blocks' shares are added in block order."""
    script = tmp_path / "determinism.py"
    script.write_text(_DETERMINISM_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "identical" in result.stdout


def test_unknown_length_with_empty_chunks():
    """3 steps of unknown length in _NATIVE_CHUNKS chunks: some are empty."""
    assert fused._NATIVE_CHUNKS > 3
    args = lstm_arguments()
    args[0] = args[0][:, :3]
    signature = [tf.TensorSpec([BATCH, None, FEATURES])] + [
        tf.TensorSpec(a.shape) for a in args[1:]
    ]

    def outputs_and_gradients(args, loops):
        with tf.GradientTape() as tape:
            tape.watch(args)
            _, outputs, (h, c) = fused.fused_lstm(*args, loops=loops)
            loss = tf.reduce_sum(outputs * 2.0) + tf.reduce_sum(h * c)
        return [outputs, h, c] + list(tape.gradient(loss, args))

    run = tf.function(
        lambda *args: outputs_and_gradients(args, "auto"),
        input_signature=signature,
    )
    for got, want in zip(run(*args), outputs_and_gradients(args, "python")):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_native_loops_inside_tf_function_and_jit_compile():
    args = lstm_arguments()
    mask = tf.constant(np.array(MASKS["holes"], bool))
    eager = fused.fused_lstm(*args, mask=mask, loops="python")[1]

    def run():
        return fused.fused_lstm(*args, mask=mask)[1]

    # Under jit_compile=True "auto" must keep to the XLA loops, which XLA can
    # compile; plain tf.function takes the C++ ops.
    for compiled in (tf.function(run), tf.function(run, jit_compile=True)):
        np.testing.assert_allclose(compiled(), eager, atol=1e-5)


def test_layer_reports_native_loops_for_float32_only():
    assert keras_lstm.LSTM(4).fused_loops == "native"
    assert keras_lstm.LSTM(4, dtype="float64").fused_loops == "xla"


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(), "native"),
        (dict(dtype=tf.float64), "xla"),
        (dict(gpu_available=True), "xla"),
        (dict(native_loads=False), "xla"),
        (dict(inside_xla=True), "xla"),
    ],
)
def test_choose_loops(change, expected):
    rules = dict(dtype=tf.float32, gpu_available=False, inside_xla=False,
                 native_loads=True)
    rules.update(change)
    asked = []

    def native_available():
        asked.append(True)
        return rules["native_loads"]

    got = fused.choose_loops(
        rules["dtype"], rules["gpu_available"], rules["inside_xla"],
        native_available,
    )
    assert got == expected
    # The C++ ops are only built when they would run (not on GPU machines).
    assert asked == ([True] if got == "native" or not rules["native_loads"] else [])


def test_unknown_loops_are_rejected():
    with pytest.raises(ValueError, match=r"loops must be one of .*'fast'"):
        fused.fused_lstm(*lstm_arguments(), loops="fast")


def test_native_loops_refuse_float64():
    args = [tf.cast(a, tf.float64) for a in lstm_arguments()]
    with pytest.raises(ValueError, match="float32 only.*dtype float64"):
        fused.fused_lstm(*args, loops="native")


def op_arguments(op, **changes):
    """Valid inputs of the forward or backward op by name, with some replaced."""
    states = dict(c0=random_tensor(BATCH, UNITS),
                  recurrent_kernel=random_tensor(UNITS, 4 * UNITS),
                  mask=tf.zeros([0]))
    if op == "forward":
        arguments = dict(zx=random_tensor(STEPS, BATCH, 4 * UNITS),
                         h0=random_tensor(BATCH, UNITS), bias=tf.zeros([0]),
                         **states)
    else:
        arguments = dict(d_hs=random_tensor(STEPS, BATCH, UNITS),
                         dh_last=random_tensor(BATCH, UNITS),
                         dc_last=random_tensor(BATCH, UNITS),
                         cs=random_tensor(STEPS, BATCH, UNITS),
                         gates=random_tensor(STEPS, BATCH, 4 * UNITS), **states)
    arguments.update(changes)
    return arguments


def run_op(op, arguments):
    module = native.ops()
    if op == "forward":
        return module.keras_lstm_forward(**arguments, store_for_backward=True)
    return module.keras_lstm_backward(**arguments)


# Per input, a wrong shape and what the kernel says at run time.
SHARED_BAD_INPUTS = [
    ("recurrent_kernel", (UNITS, 4 * UNITS - 1),
     r"recurrent_kernel must be \(units, 4 \* units\), got \[5,19\]"),
    ("recurrent_kernel", (4 * UNITS,), r"recurrent_kernel must be"),
    ("c0", (BATCH + 1, UNITS), r"states must be \(batch, units\), got \[4,5\]|"
     r"c0 must have h0's shape"),
    ("c0", (), r"states must be|c0 must have|must have c0's shape"),
    ("mask", (BATCH, STEPS), r"mask must be \(time, batch\) = \(6, 3\) "
     r"or \(0,\) for no mask, got \[3,6\]"),
    ("mask", (STEPS, 0), r"mask must be .* got \[6,0\]"),
    ("mask", (STEPS * BATCH,), r"mask must be .* got \[18\]"),
]
BAD_INPUTS = {
    "forward": SHARED_BAD_INPUTS + [
        ("zx", (STEPS, BATCH, 4 * UNITS + 1),
         r"sequence must be \(time, batch, 4 \* units\), got \[6,3,21\]"),
        ("zx", (STEPS * BATCH, 4 * UNITS), r"sequence must be"),
        ("h0", (), r"states must be \(batch, units\), got \[\]"),
        ("h0", (UNITS,), r"states must be \(batch, units\), got \[5\]"),
        ("bias", (4 * UNITS - 1,),
         r"bias must be \(4 \* units,\) = \(20,\) or empty, got \[19\]"),
        ("bias", (1, 4 * UNITS), r"bias must be"),
    ],
    "backward": SHARED_BAD_INPUTS + [
        ("gates", (4 * UNITS,), r"sequence must be"),
        ("gates", (BATCH, 4 * UNITS), r"sequence must be"),
        ("d_hs", (STEPS, BATCH), r"d_hs and cs must be"),
        ("cs", (UNITS,), r"d_hs and cs must be"),
        ("dh_last", (UNITS,), r"dh_last and dc_last must have c0's shape"),
        ("dc_last", (), r"dh_last and dc_last must have c0's shape"),
    ],
}
BAD_CASES = [(op, name, shape, message) for op, cases in BAD_INPUTS.items()
             for name, shape, message in cases]
BAD_IDS = [f"{op}-{name}-{shape}" for op, name, shape, _ in BAD_CASES]


@pytest.mark.parametrize("op, name, shape, message", BAD_CASES, ids=BAD_IDS)
def test_ops_reject_inputs_of_the_wrong_shape(op, name, shape, message):
    """Eagerly, and inside tf.function with known and with unknown shapes.

    A graph with known shapes fails when traced: the ops' shape functions
    check every rank (TensorFlow raises their InvalidArgument status as
    ValueError while tracing). Unknown shapes reach the kernel, which raises
    InvalidArgumentError. None of it may crash the process.
    """
    arguments = op_arguments(op, **{name: tf.zeros(shape)})
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run_op(op, arguments)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                       match=r"rank|Dimension|must be|[Ss]hape"):
        tf.function(lambda: run_op(op, arguments))()
    unknown = [tf.TensorSpec(None, tf.float32)] * len(arguments)
    function = tf.function(
        lambda *values: run_op(op, dict(zip(arguments, values))),
        input_signature=unknown,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(*arguments.values())


@pytest.mark.parametrize("op", ["forward", "backward"])
def test_ops_accept_valid_inputs_with_unknown_shapes(op):
    """The shape functions let through what the kernels accept."""
    arguments = op_arguments(op)
    eager = run_op(op, arguments)
    unknown = [tf.TensorSpec(None, tf.float32)] * len(arguments)
    traced = tf.function(
        lambda *values: run_op(op, dict(zip(arguments, values))),
        input_signature=unknown,
    )(*arguments.values())
    for got, want in zip(traced, eager):
        np.testing.assert_array_equal(got, want)
