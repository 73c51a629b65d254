"""gate_trace against the NumPy reference; the heatmap callback's figures and event file."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm import gate_figures
from numpy_reference import lstm_reference

FIGURE_SHAPE = (360, 900, 3)  # gate_figures.FIGSIZE at gate_figures.DPI

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
        "lstm", ids, str(tmp_path), every_n_epochs=2)
    model.fit(ids, np.zeros((2, 1)), epochs=4, verbose=0,
              callbacks=[callback])
    found = read_images(str(tmp_path))
    tags = {f"gates/lstm/{g}" for g in ("f", "i", "o", "c")}
    assert set(found) == {(tag, step) for tag in tags for step in (1, 3)}
    for images in found.values():
        assert len(images) == 2
        assert images[0].shape == FIGURE_SHAPE
    # The picture is the trace of the trained layer, with the embedding mask.
    callback.set_model(model)
    figures = callback.figures("end of epoch 4")
    layer = model.get_layer("lstm")
    trace = keras_lstm.gate_trace(layer, model.layers[0](ids),
                                  mask=ids != 0)
    for k in range(2):
        figure = figures["gates/lstm/f"][k]
        np.testing.assert_allclose(figure.axes[0].images[0].get_array(),
                                   trace.f[k].T, atol=1e-6)
        assert figure.axes[0].get_title() == (
            f"forget gate f · layer 'lstm' · end of epoch 4 · example {k + 1} of 2")
    np.testing.assert_array_equal(
        found["gates/lstm/f", 3][1], gate_figures.figure_to_rgb(figures["gates/lstm/f"][1]))


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
    assert found["gates/bi/forward/h", 0][0].shape == FIGURE_SHAPE
    title = callback.figures("training step 0")["gates/bi/backward/h"][0].axes[0].get_title()
    assert title == "hidden state h · layer 'bi' (backward) · training step 0"


def test_callback_writes_one_image_per_example_beyond_three(tmp_path):
    # tf.summary.image keeps 3 images unless told otherwise.
    x = np.concatenate([inputs(1), inputs(2), inputs(3)])  # 6 examples.
    layer = keras_lstm.LSTM(UNITS, name="lstm")
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    callback = keras_lstm.GateHeatmapCallback(layer, x, str(tmp_path), gates=("o",))
    callback.set_model(model)
    callback.write(0)
    found = read_images(str(tmp_path))
    assert list(found) == [("gates/lstm/o", 0)] and len(found["gates/lstm/o", 0]) == 6


def test_callback_draws_the_time_marks_of_each_example(tmp_path):
    layer = randomized(keras_lstm.LSTM(UNITS, name="lstm"))
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    callback = keras_lstm.GateHeatmapCallback(
        layer, inputs(), str(tmp_path), gates=("i",), time_marks=[[1, 4], [2, 3]])
    callback.set_model(model)
    figures = callback.figures("training step 7")["gates/lstm/i"]
    for figure, marks in zip(figures, ([1, 4], [2, 3])):
        drawn = {float(line.get_xdata()[0]) for line in figure.axes[0].lines}
        assert drawn == set(marks)


def test_callback_argument_errors():
    with pytest.raises(ValueError, match="Received: gates=\\('f', 'x'\\)"):
        keras_lstm.GateHeatmapCallback("lstm", inputs(), "/tmp/x",
                                       gates=("f", "x"))
    with pytest.raises(ValueError, match="every_n_epochs=0"):
        keras_lstm.GateHeatmapCallback("lstm", inputs(), "/tmp/x",
                                       every_n_epochs=0)
    with pytest.raises(ValueError, match="one sequence of time steps per example. "
                       "Received: 1 for 2 examples"):
        keras_lstm.GateHeatmapCallback("lstm", inputs(), "/tmp/x", time_marks=[[3]])
