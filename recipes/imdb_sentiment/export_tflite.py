"""Exports a trained IMDB classifier to TFLite, and scores the test set with it.

    python -m recipes.imdb_sentiment.export_tflite --model_dir=/tmp/imdb
    python -m recipes.imdb_sentiment.export_tflite --model_dir=/tmp/imdb \\
        --evaluate --data_dir=../shared/data/imdb/aclImdb

Writes into the run's model_dir:

    model.tflite       token ids (1, length) int64 -> P(positive) (1, 1), float32
    model_int8.tflite  the same with dynamic-range int8 weights
    tflite_metrics.json  sizes, ops, and with --evaluate the test accuracy of
                       both files and their interpreter latency per review

Each Bidirectional LSTM becomes two fused UNIDIRECTIONAL_SEQUENCE_LSTM ops.
The batch is 1 and the length free (resize the input to each review's token
count, no padding). The text vectorization stays outside the .tflite (TFLite
has no string ops without Flex): `token_ids` turns a review into the ids, with
the run's vectorizer (lower case, line breaks and punctuation to spaces, "!"
and "?" as tokens, `vocabulary.json` of the run: 0 pads, 1 is [UNK]).
"""

import json
import os
import time

from absl import app
from absl import flags

from recipes.common.errors import UsageError
from recipes.common.errors import run_and_report

FLAGS = flags.FLAGS

FLOAT_FILE = "model.tflite"
INT8_FILE = "model_int8.tflite"
METRICS_FILE = "tflite_metrics.json"


def split_model(model_dir):
    """(vectorizer, classifier) of the run's model.keras."""
    path = os.path.join(model_dir, "model.keras")
    if not os.path.isfile(path):
        raise UsageError(
            "--model_dir must hold the model.keras a finished training run "
            f"writes. Received: model_dir={model_dir!r}")
    import keras

    import keras_lstm  # noqa: F401  (registers keras_lstm.LSTM)
    import recipes.imdb_sentiment  # noqa: F401  (registers the custom objects)

    end_to_end = keras.models.load_model(path)
    return end_to_end.get_layer("vectorizer"), end_to_end.layers[-1]


def token_ids(vectorizer, review):
    """A review's token ids, (1, length) int64 without padding (length >= 1)."""
    ids = vectorizer([review]).numpy()  # (1, max_len), right-padded with 0
    length = max(1, int((ids != 0).sum()))
    return ids[:, :length].astype("int64")


def export(model_dir):
    """Writes both .tflite files; returns {file name: (bytes, op names)}."""
    from keras_lstm import tflite

    _, classifier = split_model(model_dir)
    written = {}
    for name, quantize in ((FLOAT_FILE, False), (INT8_FILE, True)):
        content = tflite.convert(classifier, batch_size=1, quantize=quantize)
        with open(os.path.join(model_dir, name), "wb") as f:
            f.write(content)
        written[name] = (content, tflite.op_names(content))
    return written


def score(content, ids_list):
    """P(positive) of each (1, length) id array, and the mean seconds per review."""
    import numpy as np

    from keras_lstm import tflite

    runner = tflite.interpreter(content)
    index = runner.get_input_details()[0]["index"]
    output = runner.get_output_details()[0]["index"]
    probabilities, seconds = [], 0.0
    for ids in ids_list:
        runner.resize_tensor_input(index, ids.shape)
        runner.allocate_tensors()
        runner.set_tensor(index, ids)
        start = time.perf_counter()
        runner.invoke()
        seconds += time.perf_counter() - start
        probabilities.append(float(runner.get_tensor(output)[0, 0]))
    return np.array(probabilities), seconds / max(1, len(ids_list))


def evaluate(model_dir, data_dir, limit, written):
    """Test accuracy and latency of each file, against the Keras classifier."""
    import numpy as np

    from recipes.imdb_sentiment import sources
    from recipes.imdb_sentiment.config import Config

    with open(os.path.join(model_dir, "config.json")) as f:
        config = Config(**json.load(f))
    if data_dir:
        config.data_dir, config.csv_file = data_dir, ""
    test = sources.read_reviews(config)["test"]
    texts, labels = test.texts, np.asarray(test.labels)
    if limit:  # Evenly spread, as the reviews come sorted by label.
        picked = np.linspace(0, len(texts) - 1, limit).astype(int)
        texts, labels = [texts[i] for i in picked], labels[picked]
    vectorizer, classifier = split_model(model_dir)
    ids_list = [token_ids(vectorizer, str(text)) for text in texts]
    results = {"test_examples": len(ids_list)}
    probabilities = {}
    for name, (content, _) in written.items():
        probabilities[name], seconds = score(content, ids_list)
        results[name] = {
            "test_accuracy": float(((probabilities[name] > 0.5) == labels).mean()),
            "ms_per_review": 1000 * seconds,
        }
    # Keras on the first reviews, one at a time as the interpreter runs them.
    few = ids_list[:200]
    start = time.perf_counter()
    keras_p = np.array([float(classifier.predict(ids, verbose=0)[0, 0]) for ids in few])
    results["keras_predict_ms_per_review"] = 1000 * (time.perf_counter() - start) / len(few)
    for name in written:
        results[name]["max_abs_diff_vs_keras_first_200"] = float(
            np.abs(probabilities[name][: len(few)] - keras_p).max())
    return results


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    written = export(FLAGS.model_dir)
    metrics = {
        name: {"bytes": len(content), "ops": sorted(set(ops)),
               "fused_lstm_ops": ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM")}
        for name, (content, ops) in written.items()
    }
    if FLAGS.evaluate:
        metrics["evaluation"] = evaluate(
            FLAGS.model_dir, FLAGS.data_dir, FLAGS.limit, written)
    with open(os.path.join(FLAGS.model_dir, METRICS_FILE), "w") as f:
        json.dump(metrics, f, indent=2)
    print(json.dumps(metrics, indent=2))


def _define_flags():
    """Flags of the command line (defined only when run as a script)."""
    flags.DEFINE_string("model_dir", None, "A finished training run (holds model.keras).")
    flags.mark_flag_as_required("model_dir")
    flags.DEFINE_bool("evaluate", False, "Score the test reviews with both .tflite files.")
    flags.DEFINE_string("data_dir", "", "aclImdb folder for --evaluate (default: the run's source).")
    flags.DEFINE_integer("limit", 0, "Score only the first N test reviews (0: all).")


if __name__ == "__main__":
    _define_flags()
    app.run(lambda argv: run_and_report(main, argv))
