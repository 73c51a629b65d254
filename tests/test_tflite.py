"""TFLite conversion: each keras_lstm.LSTM becomes one fused LSTM op and matches Keras.

Models convert with TensorFlow's default converter and run on the LiteRT
interpreter (`keras_lstm.tflite.interpreter`); outputs are compared with
`model.predict` in float32.
"""

import warnings

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_lstm
from keras_lstm import export_graph
from keras_lstm import tflite

FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"
UNFUSED = ("WHILE", "FlexKerasLstmForward", "CUSTOM", "DELEGATE")


def run(content, feeds):
    """Runs a converted model on `feeds` {input name: array}; outputs in order."""
    runner = tflite.interpreter(content).get_signature_runner()
    got = runner(**feeds)
    return [got[f"output_{index}"] for index in range(len(got))]


def check(model, feeds, atol=1e-5, content=None, fused=None):
    """Converts `model` (unless `content`), checks the ops and the outputs.

    `fused`: the number of fused LSTM ops expected (default: one per layer).
    """
    content = content or tf.lite.TFLiteConverter.from_keras_model(model).convert()
    ops = tflite.op_names(content)
    if fused is None:
        fused = len([
            layer for layer in model._flatten_layers()
            if isinstance(layer, keras_lstm.LSTM)
        ])
    assert ops.count(FUSED) == fused, ops
    assert not set(ops) & set(UNFUSED), ops
    assert not [op for op in ops if op.startswith("Flex")], ops
    want = model.predict([feeds[i.name] for i in model.inputs], verbose=0)
    want = want if isinstance(want, list) else [want]
    for _ in range(2):  # A second invoke must not start from the first's states.
        got = run(content, feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=atol, rtol=0)
    return content, ops


def sequences(batch, steps, features, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


@pytest.mark.parametrize("batch, return_sequences, go_backwards", [
    (1, False, False),
    (3, True, False),
    (2, True, True),
    (2, False, True),
])
def test_single_layer(batch, return_sequences, go_backwards):
    keras.utils.set_random_seed(1)
    inputs = keras.Input(batch_shape=(batch, 20, 8), name="x")
    h = keras_lstm.LSTM(16, return_sequences=return_sequences,
                        go_backwards=go_backwards)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    check(model, {"x": sequences(batch, 20, 8)})


def test_stacked_with_states_in_and_out():
    keras.utils.set_random_seed(2)
    x = keras.Input(batch_shape=(2, 7, 5), name="x")
    h0 = keras.Input(batch_shape=(2, 6), name="h0")
    c0 = keras.Input(batch_shape=(2, 6), name="c0")
    seq = keras_lstm.LSTM(6, return_sequences=True)(x, initial_state=[h0, c0])
    out, h, c = keras_lstm.LSTM(4, return_sequences=True, return_state=True)(seq)
    model = keras.Model([x, h0, c0], [out, h, c])
    rng = np.random.default_rng(3)
    check(model, {
        "x": sequences(2, 7, 5),
        "h0": rng.normal(size=(2, 6)).astype("float32"),
        "c0": rng.normal(size=(2, 6)).astype("float32"),
    })


@pytest.mark.parametrize("mask_zero", [False, True])
def test_a_single_step_with_states_runs_plain_ops(mask_zero):
    keras.utils.set_random_seed(3)
    ids = keras.Input(batch_shape=(3, 1), dtype="int32", name="ids")
    h0 = keras.Input(batch_shape=(3, 6), name="h0")
    c0 = keras.Input(batch_shape=(3, 6), name="c0")
    x = keras.layers.Embedding(50, 4, mask_zero=mask_zero)(ids)
    out, h, c = keras_lstm.LSTM(6, return_state=True)(x, initial_state=[h0, c0])
    model = keras.Model([ids, h0, c0], [out, h, c])
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    ops = tflite.op_names(content)
    assert not {FUSED, "WHILE"} & set(ops), ops
    rng = np.random.default_rng(4)
    check(model, {
        "ids": np.array([[3], [0], [7]], "int32"),
        "h0": rng.normal(size=(3, 6)).astype("float32"),
        "c0": rng.normal(size=(3, 6)).astype("float32"),
    }, content=content, fused=0)


def token_ids(rows, steps, lengths, seed=0):
    """int32 ids in [1, 50) with each row right-padded by zeros after lengths[row]."""
    ids = np.random.default_rng(seed).integers(1, 50, size=(rows, steps))
    ids[np.arange(steps)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return ids.astype("int32")


def embedding_model(batch, steps, mask_zero, return_sequences):
    keras.utils.set_random_seed(4)
    ids = keras.Input(batch_shape=(batch, steps), dtype="int32", name="ids")
    x = keras.layers.Embedding(50, 8, mask_zero=mask_zero)(ids)
    x = keras.layers.Bidirectional(
        keras_lstm.LSTM(5, return_sequences=True))(x)
    out, h, c = keras_lstm.LSTM(
        3, return_sequences=return_sequences, return_state=True)(x)
    return keras.Model(ids, [out, h, c])


def test_embedding_inputs_without_mask():
    model = embedding_model(2, 9, mask_zero=False, return_sequences=True)
    check(model, {"ids": token_ids(2, 9, [9, 9])})


@pytest.mark.parametrize("return_sequences", [True, False])
def test_right_padded_mask_matches_keras(return_sequences):
    model = embedding_model(4, 9, mask_zero=True, return_sequences=return_sequences)
    # Full, padded, a single token and an all-padding row.
    check(model, {"ids": token_ids(4, 9, [9, 5, 1, 0])})


def mixed_masks(steps=8, seed=0):
    """int32 ids (7, steps) whose zeros (the mask) take every form Keras allows."""
    ids = np.random.default_rng(seed).integers(1, 50, size=(7, steps))
    valid = np.ones(ids.shape, bool)
    valid[1, 5:] = False            # right padding
    valid[2, :3] = False            # left padding
    valid[3, [1, 4, 5]] = False     # holes
    valid[4, :] = False             # all masked
    valid[5, :-1] = False           # only the last step
    valid[6, 1:] = False            # only the first step
    ids[~valid] = 0
    return ids.astype("int32")


def check_against_keras(build, feeds, fused):
    """Converts `build(keras_lstm.LSTM)` and compares it with
    `build(keras.layers.LSTM)` holding the same weights, through the
    interpreter (invoked twice), to 1e-5."""
    ours, reference = build(keras_lstm.LSTM), build(keras.layers.LSTM)
    reference.set_weights(ours.get_weights())
    content = tf.lite.TFLiteConverter.from_keras_model(ours).convert()
    ops = tflite.op_names(content)
    assert ops.count(FUSED) == fused, ops
    assert not set(ops) & set(UNFUSED), ops
    assert not [op for op in ops if op.startswith("Flex")], ops
    inputs = [feeds[i.name] for i in reference.inputs]
    want = reference.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    for _ in range(2):
        got = run(content, feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=0)
    return ops


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_any_mask_matches_keras_lstm(go_backwards, return_sequences):
    # Right and left padding, holes, all-masked rows, through two stacked
    # layers behind Embedding(mask_zero=True), with return_state.
    ids = mixed_masks()

    def build(lstm):
        keras.utils.set_random_seed(10)
        tokens = keras.Input(batch_shape=ids.shape, dtype="int32", name="ids")
        x = keras.layers.Embedding(50, 8, mask_zero=True)(tokens)
        x = lstm(5, return_sequences=True, go_backwards=go_backwards)(x)
        out, h, c = lstm(3, return_sequences=return_sequences, return_state=True,
                         go_backwards=go_backwards)(x)
        return keras.Model(tokens, [out, h, c])

    ops = check_against_keras(build, {"ids": ids}, fused=2)
    assert "TOPK_V2" in ops, ops


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_with_any_mask_matches_keras_lstm(return_sequences):
    # Bidirectional sets zero_output_for_mask = return_sequences on both
    # layers and runs its backward layer with go_backwards.
    ids = mixed_masks(steps=9, seed=1)

    def build(lstm):
        keras.utils.set_random_seed(11)
        tokens = keras.Input(batch_shape=ids.shape, dtype="int32", name="ids")
        x = keras.layers.Embedding(50, 6, mask_zero=True)(tokens)
        x = keras.layers.Bidirectional(lstm(4, return_sequences=True))(x)
        outputs = keras.layers.Bidirectional(lstm(
            3, return_sequences=return_sequences, return_state=True))(x)
        return keras.Model(tokens, list(outputs))

    check_against_keras(build, {"ids": ids}, fused=4)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_zero_output_for_mask_without_sequences_matches_keras_lstm(go_backwards):
    # Keras's last output is its last step's: zeros when that step is masked.
    ids = mixed_masks(steps=6, seed=2)

    def build(lstm):
        keras.utils.set_random_seed(12)
        tokens = keras.Input(batch_shape=ids.shape, dtype="int32", name="ids")
        x = keras.layers.Embedding(50, 4, mask_zero=True)(tokens)
        out = lstm(3, zero_output_for_mask=True, go_backwards=go_backwards)(x)
        return keras.Model(tokens, out)

    check_against_keras(build, {"ids": ids}, fused=1)


def test_saved_model_from_export_converts(tmp_path):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((10, 4), name="x")
    h = keras.layers.Bidirectional(keras_lstm.LSTM(8))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    # TFLite fuses only a fixed batch size, which model.export leaves open.
    model.export(str(tmp_path / "exported"), verbose=False,
                 input_signature=[tf.TensorSpec((2, 10, 4), name="x")])
    content = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp_path / "exported")).convert()
    ops = tflite.op_names(content)
    assert ops.count(FUSED) == 2 and "WHILE" not in ops, ops
    x = sequences(2, 10, 4)
    np.testing.assert_allclose(
        run(content, {"x": x})[0], model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_plain_export_of_a_masked_model_converts_to_fused_ops(tmp_path):
    model = embedding_model(2, 9, mask_zero=True, return_sequences=False)
    model.export(str(tmp_path / "exported"), verbose=False,
                 input_signature=[tf.TensorSpec((2, 9), tf.int32, name="ids")])
    content = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp_path / "exported")).convert()
    ids = token_ids(2, 9, [9, 4])
    ids[0, [0, 3]] = 0  # Left padding and a hole.
    check(model, {"ids": ids}, content=content)


def test_convert_fixes_the_batch_of_an_open_model():
    keras.utils.set_random_seed(6)
    model = keras.Sequential([
        keras.Input((12, 3), name="x"), keras_lstm.LSTM(7), keras.layers.Dense(1)
    ])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content = tflite.convert(model, batch_size=1)
    assert not [w for w in caught if "unknown batch size" in str(w.message)]
    assert tflite.op_names(content).count(FUSED) == 1
    x = sequences(1, 12, 3)
    np.testing.assert_allclose(
        run(content, {"x": x})[0], model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_dynamic_range_quantization_keeps_the_fused_op():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input(batch_shape=(1, 30, 16), name="x"),
        keras_lstm.LSTM(64, return_sequences=True),
        keras_lstm.LSTM(64),
        keras.layers.Dense(1),
    ])
    floats = tflite.convert(model, batch_size=None)
    quantized = tflite.convert(model, batch_size=None, quantize=True)
    assert tflite.op_names(quantized).count(FUSED) == 2
    assert len(quantized) < 0.4 * len(floats)
    x = sequences(1, 30, 16)
    np.testing.assert_allclose(
        run(quantized, {"x": x})[0], model.predict(x, verbose=0), atol=0.05, rtol=0)


def test_export_graph_traces_each_shape_on_its_own():
    # The implementation selector swaps functions of one api_implements name:
    # a trace for one shape must never run another's.
    layer = keras_lstm.LSTM(4, return_sequences=True)
    with keras_lstm.portable_graphs():
        for shape in [(2, 5, 3), (3, 7, 3)]:
            x = tf.constant(sequences(*shape))
            got = tf.function(lambda x: layer(x))(x)
            np.testing.assert_allclose(got, layer(x), atol=1e-6, rtol=0)


def test_convert_removes_the_converters_cell_clip():
    # While x = 1 the input and forget gates are open and c grows by
    # tanh(1) a step, to about 23; then it decays by 0.8 a step, from 23
    # in Keras but from 10 under the converter's cell_clip.
    keras.utils.set_random_seed(8)
    layer = keras_lstm.LSTM(1, return_sequences=True)
    model = keras.Sequential([keras.Input(batch_shape=(1, 40, 1), name="x"), layer])
    kernel = np.array([[40.0, 20.0, 0.0, 0.0]], "float32")  # i, f, c, o
    bias = np.array([-20.0, 1.386, 1.0, 0.0], "float32")
    layer.set_weights([kernel, np.zeros((1, 4), "float32"), bias])
    x = np.zeros((1, 40, 1), "float32")
    x[:, :30] = 1.0
    want = model.predict(x, verbose=0)
    clipped = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert np.abs(run(clipped, {"x": x})[0] - want).max() > 0.05
    check(model, {"x": x}, content=tflite.convert(model, batch_size=None))


@pytest.mark.parametrize("variant", [
    lambda: keras_lstm.PeepholeLSTM(6),
    lambda: keras_lstm.ProjectionLSTM(6, 3),
    lambda: keras_lstm.LayerNormLSTM(6),
    lambda: keras_lstm.CIFGLSTM(6),
])
def test_variants_convert_unfused(variant):
    # The converter's Keras LSTM interface has no peephole, projection,
    # layer-norm or CIFG inputs: variants keep the step loop (a WHILE op).
    keras.utils.set_random_seed(9)
    model = keras.Sequential([keras.Input(batch_shape=(2, 8, 4), name="x"), variant()])
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    ops = tflite.op_names(content)
    assert FUSED not in ops and "WHILE" in ops, ops
    x = sequences(2, 8, 4)
    np.testing.assert_allclose(
        run(content, {"x": x})[0], model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_keras_litert_export_with_a_fixed_batch(tmp_path):
    model = embedding_model(2, 9, mask_zero=True, return_sequences=False)
    path = str(tmp_path / "model.tflite")
    model.export(path, format="litert", verbose=False,
                 input_signature=[tf.TensorSpec((2, 9), tf.int32, name="ids")])
    with open(path, "rb") as f:
        content = f.read()
    check(model, {"ids": token_ids(2, 9, [9, 3])}, content=content)


@pytest.mark.parametrize("batch_size", [0, -1, 1.0, "1"])
def test_fixed_batch_rejects_what_is_not_a_positive_int(batch_size):
    model = keras.Sequential([keras.Input((3, 2)), keras_lstm.LSTM(2)])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        tflite.fixed_batch(model, batch_size)


def test_plain_export_converts_to_fused_ops_that_run_at_batch_one(tmp_path):
    # model.export leaves the batch open; zero initial states then enter the
    # composite with the static shape (1, units) the converter needs.
    keras.utils.set_random_seed(13)
    inputs = keras.Input((10, 4), name="x")
    h = keras.layers.Bidirectional(keras_lstm.LSTM(8, return_sequences=True))(inputs)
    h = keras_lstm.LSTM(6, go_backwards=True)(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.export(str(tmp_path / "exported"), verbose=False)
    x = sequences(3, 10, 4)
    want = model.predict(x, verbose=0)
    # TensorFlow still serves any batch size from the same SavedModel.
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(loaded.serve(x), want, atol=1e-5, rtol=0)

    content = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp_path / "exported")).convert()
    ops = tflite.op_names(content)
    assert ops.count(FUSED) == 3 and not set(ops) & set(UNFUSED), ops
    runner = tflite.interpreter(content)
    (spec,) = runner.get_input_details()
    assert list(spec["shape_signature"]) == [-1, 10, 4]
    for _ in range(2):
        np.testing.assert_allclose(
            run(content, {"x": x[:1]})[0], want[:1], atol=1e-5, rtol=0)
    # The fused op keeps states of one row: TFLite's kernel refuses others.
    runner.resize_tensor_input(spec["index"], [3, 10, 4])
    with pytest.raises(RuntimeError, match=r"NumElements\(output_state\)"):
        runner.allocate_tensors()


def test_an_open_batch_from_keras_model_warns_that_it_runs_at_batch_one():
    keras.utils.set_random_seed(14)
    model = keras.Sequential([
        keras.Input((5, 3), name="x"), keras_lstm.LSTM(4), keras.layers.Dense(1)
    ])
    with pytest.warns(UserWarning, match="runs one sequence at a time.*batch_size=N"):
        content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert tflite.op_names(content).count(FUSED) == 1
    x = sequences(1, 5, 3)
    np.testing.assert_allclose(
        run(content, {"x": x})[0], model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_an_open_batch_masked_model_matches_keras_lstm_one_row_at_a_time():
    ids = mixed_masks(steps=7, seed=3)

    def build(lstm):
        keras.utils.set_random_seed(15)
        tokens = keras.Input((7,), dtype="int32", name="ids")
        x = keras.layers.Embedding(50, 6, mask_zero=True)(tokens)
        x = keras.layers.Bidirectional(lstm(4, return_sequences=True))(x)
        return keras.Model(tokens, lstm(3)(x))

    ours, reference = build(keras_lstm.LSTM), build(keras.layers.LSTM)
    reference.set_weights(ours.get_weights())
    with pytest.warns(UserWarning, match="runs one sequence at a time"):
        content = tf.lite.TFLiteConverter.from_keras_model(ours).convert()
    ops = tflite.op_names(content)
    assert ops.count(FUSED) == 3 and not set(ops) & set(UNFUSED), ops
    want = reference.predict(ids, verbose=0)
    for row in range(len(ids)):
        got = run(content, {"ids": ids[row:row + 1]})[0]
        np.testing.assert_allclose(got, want[row:row + 1], atol=1e-5, rtol=0)


def test_an_open_batch_with_initial_states_warns_before_the_converter_fails():
    x = keras.Input((5, 3))
    h0, c0 = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([x, h0, c0], keras_lstm.LSTM(4)(x, initial_state=[h0, c0]))
    with pytest.warns(UserWarning, match="initial states given.*batch_size=N"):
        with pytest.raises(Exception):
            tf.lite.TFLiteConverter.from_keras_model(model).convert()


def test_saved_model_with_the_composite_loads_without_keras_lstm(tmp_path):
    import os
    import subprocess
    import sys

    from tensorflow.core.protobuf import saved_model_pb2
    from test_export_portable import LOAD_WITHOUT_KERAS_LSTM

    model = embedding_model(2, 9, mask_zero=False, return_sequences=False)
    model = keras.Model(model.inputs[0], model.outputs[0])
    tokens = token_ids(4, 9, [9, 9, 9, 9])
    want = model.predict(tokens, verbose=0)
    model.export(str(tmp_path / "export"), verbose=False)
    proto = saved_model_pb2.SavedModel()
    with open(tmp_path / "export" / "saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    library = proto.meta_graphs[0].graph_def.library.function
    assert any(f.attr["api_implements"].s.startswith(b"lstm_") for f in library)
    np.save(tmp_path / "tokens.npy", tokens)
    np.save(tmp_path / "outputs.npy", want)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_KERAS_LSTM, str(tmp_path), "export=serve"],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=""),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.split()[-1]) < 1e-5, result.stdout


def test_saved_graphs_on_a_gpu_keep_cudnn_unless_bound_for_tflite(monkeypatch):
    from keras_lstm import cudnn

    layer = keras_lstm.LSTM(3)
    layer.build((2, 4, 5))
    for gpu, saved, tflite_bound in [(True, False, True), (False, True, True)]:
        monkeypatch.setattr(cudnn, "gpu_available", lambda gpu=gpu: gpu)
        with tf.Graph().as_default(), keras_lstm.portable_graphs():
            assert export_graph.applies(layer, None, training=False) is saved
            with export_graph.bound_for_tflite():
                assert export_graph.applies(layer, None, training=False) is tflite_bound
            with export_graph.masks_as_lengths():  # The earlier name.
                assert export_graph.applies(layer, None, training=False) is tflite_bound
