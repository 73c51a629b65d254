"""gate_trace against the NumPy reference; the heatmap callback's event file."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm import introspect
from numpy_reference import lstm_reference

BATCH, STEPS, FEATURES, UNITS = 2, 6, 3, 4
ATOL = 1e-5
NAMES = ("f", "i", "o", "c_hat", "c", "h")


def inputs(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


def randomized(layer, seed=0):
    layer.build((None, STEPS, FEATURES))
    rng = np.random.default_rng(seed)
    layer.set_weights([(0.5 * rng.standard_normal(w.shape)).astype("float32")
                       for w in layer.get_weights()])
    return layer


def assert_trace_matches(trace, gates, names=NAMES):
    for name in names:
        np.testing.assert_allclose(getattr(trace, name), gates[name],
                                   atol=ATOL, err_msg=name)


@pytest.mark.parametrize(
    "layer_class", [keras_lstm.LSTM, keras.layers.LSTM], ids=["ours", "keras"]
)
def test_trace_matches_reference(layer_class):
    layer = randomized(layer_class(UNITS))
    x = inputs()
    trace = keras_lstm.gate_trace(layer, x)
    assert isinstance(trace, keras_lstm.GateTrace)
    assert all(getattr(trace, n).shape == (BATCH, STEPS, UNITS) for n in NAMES)
    _, _, _, gates = lstm_reference(x, *layer.get_weights())
    assert_trace_matches(trace, gates)


def test_trace_of_a_bare_cell_and_initial_state():
    cell = keras_lstm.LSTMCell(UNITS)
    cell.build((None, FEATURES))
    rng = np.random.default_rng(4)
    h0, c0 = rng.standard_normal((2, BATCH, UNITS)).astype("float32")
    trace = keras_lstm.gate_trace(cell, inputs(), initial_state=[h0, c0])
    _, _, _, gates = lstm_reference(inputs(), *cell.get_weights(),
                                    initial_state=(h0, c0))
    assert_trace_matches(trace, gates)


def test_go_backwards_is_aligned_with_the_inputs():
    layer = randomized(keras_lstm.LSTM(UNITS, go_backwards=True))
    trace = keras_lstm.gate_trace(layer, inputs())
    _, _, _, gates = lstm_reference(inputs(), *layer.get_weights(),
                                    go_backwards=True)
    # The reference lists steps in processing order, last input first.
    assert_trace_matches(trace, {k: v[:, ::-1] for k, v in gates.items()})


def test_masked_steps_carry_the_states():
    layer = randomized(keras_lstm.LSTM(UNITS, return_sequences=True))
    mask = np.ones((BATCH, STEPS), bool)
    mask[1, 3:] = False
    trace = keras_lstm.gate_trace(layer, inputs(), mask=mask)
    outputs, _, _, gates = lstm_reference(inputs(), *layer.get_weights(),
                                          mask=mask)
    np.testing.assert_allclose(trace.h, outputs, atol=ATOL)
    np.testing.assert_allclose(trace.c[1, 3:], np.repeat(
        gates["c"][1, 2:3], STEPS - 3, axis=0), atol=ATOL)
    assert_trace_matches(trace, gates, ("f", "i", "o", "c_hat"))
    np.testing.assert_allclose(trace.h, layer(inputs(), mask=mask), atol=ATOL)


def test_bidirectional_gives_both_directions():
    layer = keras.layers.Bidirectional(keras_lstm.LSTM(UNITS))
    layer.build((None, STEPS, FEATURES))
    traces = keras_lstm.gate_trace(layer, inputs())
    assert set(traces) == {"forward", "backward"}
    forward = layer.forward_layer.get_weights()
    _, _, _, gates = lstm_reference(inputs(), *forward)
    assert_trace_matches(traces["forward"], gates)
    backward = layer.backward_layer.get_weights()
    _, _, _, gates = lstm_reference(inputs(), *backward, go_backwards=True)
    assert_trace_matches(traces["backward"],
                         {k: v[:, ::-1] for k, v in gates.items()})


def test_variant_trace_matches_its_layer_outputs():
    layer = randomized(keras_lstm.ProjectionLSTM(
        UNITS, projection_units=2, return_sequences=True, return_state=True))
    outputs, _, c = layer(inputs())
    trace = keras_lstm.gate_trace(layer, inputs())
    assert trace.h.shape == (BATCH, STEPS, 2)
    np.testing.assert_allclose(trace.h, outputs, atol=ATOL)
    np.testing.assert_allclose(trace.c[:, -1], c, atol=ATOL)
    cifg = randomized(keras_lstm.CIFGLSTM(UNITS))
    trace = keras_lstm.gate_trace(cifg, inputs())
    np.testing.assert_allclose(trace.i, 1.0 - trace.f, atol=1e-6)


def test_trace_errors():
    with pytest.raises(TypeError, match="Received: GRU"):
        layer = keras.layers.GRU(UNITS)
        layer.build((None, STEPS, FEATURES))
        keras_lstm.gate_trace(layer, inputs())
    with pytest.raises(ValueError, match="unbuilt"):
        keras_lstm.gate_trace(keras_lstm.LSTM(UNITS), inputs())
    layer = randomized(keras_lstm.LSTM(UNITS))
    with pytest.raises(ValueError, match="Received: inputs.shape=\\(2, 6\\)"):
        keras_lstm.gate_trace(layer, inputs()[:, :, 0])
    with pytest.raises(ValueError, match="Received: initial_state shapes"):
        keras_lstm.gate_trace(layer, inputs(),
                              initial_state=[np.zeros((BATCH, 3))] * 2)


def test_heatmap_colours_and_layout():
    values = np.array([[0.0, 1.0], [0.5, 2.0], [-1.0, 0.25]])  # (time, units)
    image = introspect.heatmap(values, 0.0, 1.0,
                               np.array([[0, 0, 0], [200, 100, 0]]), 2)
    assert image.shape == (2 * 2, 3 * 2, 3) and image.dtype == np.uint8
    # Rows are units, columns time; values outside the range clip.
    np.testing.assert_array_equal(image[0, ::2, 0], [0, 100, 0])
    np.testing.assert_array_equal(image[2, ::2, :2], [[200, 100]] * 2 +
                                  [[50, 25]])


def read_images(log_dir):
    """{(tag, step): decoded images} from the event files in log_dir."""
    found = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "images"
                record = tf.make_ndarray(value.tensor)
                images = [tf.io.decode_png(png).numpy() for png in record[2:]]
                width, height = int(record[0]), int(record[1])
                assert all(im.shape == (height, width, 3) for im in images)
                found[value.tag, event.step] = images
    return found


def test_callback_writes_heatmaps_each_epoch(tmp_path):
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(10, FEATURES, mask_zero=True),
        keras_lstm.LSTM(UNITS, name="lstm"),
        keras.layers.Dense(1),
    ])
    model.compile("sgd", "mse")
    callback = keras_lstm.GateHeatmapCallback(
        "lstm", ids, str(tmp_path), every_n_epochs=2, cell_pixels=3)
    model.fit(ids, np.zeros((2, 1)), epochs=4, verbose=0,
              callbacks=[callback])
    found = read_images(str(tmp_path))
    tags = {f"gates/lstm/{g}" for g in ("f", "i", "o", "c")}
    assert set(found) == {(tag, step) for tag in tags for step in (1, 3)}
    for images in found.values():
        assert len(images) == 2
        assert images[0].shape == (UNITS * 3, 5 * 3, 3)
    # The picture is the trace of the trained layer, with the embedding mask.
    layer = model.get_layer("lstm")
    trace = keras_lstm.gate_trace(layer, model.layers[0](ids),
                                  mask=ids != 0)
    expected = introspect.gate_heatmaps(trace, ("f",), cell_pixels=3)["f"]
    np.testing.assert_array_equal(found["gates/lstm/f", 3], expected)


def test_callback_on_bidirectional_layer_object(tmp_path):
    x = inputs()
    layer = keras.layers.Bidirectional(keras_lstm.LSTM(UNITS), name="bi")
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    callback = keras_lstm.GateHeatmapCallback(layer, x[:1], str(tmp_path),
                                              gates=("c_hat", "h"))
    callback.set_model(model)
    callback.write(0)
    found = read_images(str(tmp_path))
    assert set(found) == {
        (f"gates/bi/{d}/{g}", 0)
        for d in ("forward", "backward") for g in ("c_hat", "h")
    }
    scale = 512 // STEPS if 512 // STEPS < 16 else 16
    assert found["gates/bi/forward/h", 0][0].shape == (
        UNITS * scale, STEPS * scale, 3)


def test_callback_writes_one_image_per_example_beyond_three(tmp_path):
    # tf.summary.image keeps 3 images unless told otherwise.
    x = np.concatenate([inputs(1), inputs(2), inputs(3)])  # 6 examples.
    layer = keras_lstm.LSTM(UNITS, name="lstm")
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    callback = keras_lstm.GateHeatmapCallback(layer, x, str(tmp_path),
                                              gates=("o",), cell_pixels=2)
    callback.set_model(model)
    callback.write(0)
    found = read_images(str(tmp_path))
    trace = keras_lstm.gate_trace(layer, x)
    expected = introspect.gate_heatmaps(trace, ("o",), cell_pixels=2)["o"]
    assert list(found) == [("gates/lstm/o", 0)] and len(expected) == 6
    np.testing.assert_array_equal(found["gates/lstm/o", 0], expected)


def test_callback_argument_errors():
    with pytest.raises(ValueError, match="Received: gates=\\('f', 'x'\\)"):
        keras_lstm.GateHeatmapCallback("lstm", inputs(), "/tmp/x",
                                       gates=("f", "x"))
    with pytest.raises(ValueError, match="every_n_epochs=0"):
        keras_lstm.GateHeatmapCallback("lstm", inputs(), "/tmp/x",
                                       every_n_epochs=0)
