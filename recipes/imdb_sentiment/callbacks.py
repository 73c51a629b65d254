"""TensorBoard logging of a training run: curves, weight histograms, heatmaps.

`EpochSummaries` writes what Keras's TensorBoard callback shows of a run
(one point per epoch, in train/ and validation/ folders) and adds a
histogram per LSTM gate bias; `gate_heatmap_callback` draws the first LSTM's
gates over a few validation reviews.
"""

import keras
import numpy as np
import tensorflow as tf

import keras_lstm

from recipes.common import summaries

HISTOGRAM_BUCKETS = 30
# Heatmaps show this many reviews, cut to this many tokens (time runs across).
HEATMAP_REVIEWS = 2
HEATMAP_TOKENS = 100


def named_lstm_layers(model):
    """(name, layer) of every LSTM in `model`, e.g. ("bidirectional_0/forward", ...)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found.append((f"{layer.name}/forward", layer.forward_layer))
            found.append((f"{layer.name}/backward", layer.backward_layer))
        elif isinstance(layer, (keras_lstm.LSTM, keras.layers.LSTM)):
            found.append((layer.name, layer))
    return found


class EpochSummaries(keras.callbacks.Callback):
    """Writes, after every epoch, what TensorBoard shows of the run.

    log_dir/train: epoch_loss, epoch_accuracy, epoch_learning_rate;
    log_dir/validation: epoch_loss, epoch_accuracy;
    log_dir/weights: a histogram of every weight, and one per gate (i, f, c,
    o) of each LSTM bias, since the packed (4 * units,) bias hides how
    training moves the forget gate (which starts at 1) apart from the others.
    The step is the epoch, counted from 0, so a resumed run continues the curves.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(
                f"{self.log_dir}/{name}"
            )
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self._writer("train").as_default():
            for name, value in logs.items():
                if not name.startswith("val_"):
                    summaries.write_scalar(f"epoch_{name}", value, epoch)
            learning_rate = keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate
            )
            summaries.write_scalar("epoch_learning_rate", learning_rate, epoch)
        with self._writer("validation").as_default():
            for name, value in logs.items():
                if name.startswith("val_"):
                    summaries.write_scalar(f"epoch_{name[4:]}", value, epoch)
        with self._writer("weights").as_default():
            for weight in self.model.weights:
                tf.summary.histogram(
                    weight.path, keras.ops.convert_to_numpy(weight), epoch,
                    buckets=HISTOGRAM_BUCKETS,
                )
            for name, layer in named_lstm_layers(self.model):
                gates = getattr(layer.cell, "gate_order", keras_lstm.GATE_ORDER)
                bias = keras.ops.convert_to_numpy(layer.cell.bias)
                for gate, values in zip(gates, np.split(bias, len(gates))):
                    tf.summary.histogram(
                        f"gate_bias/{name}/{gate}", values, epoch,
                        buckets=HISTOGRAM_BUCKETS,
                    )
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def gate_heatmap_callback(vectorizer, validation_texts, log_dir):
    """keras_lstm.GateHeatmapCallback on the first LSTM, for the first validation reviews."""
    texts = [str(t) for t in validation_texts[:HEATMAP_REVIEWS]]
    token_ids = vectorizer(tf.constant(texts))[:, :HEATMAP_TOKENS].to_tensor()
    return keras_lstm.GateHeatmapCallback("bidirectional_0", token_ids, log_dir)
