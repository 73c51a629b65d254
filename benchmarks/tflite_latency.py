"""Latency per sequence: the LiteRT interpreter on converted models vs `model.predict`.

For each shape, one model ``Input(batch_shape=(1, T, F)) -> keras_lstm.LSTM(U)
-> Dense(1)`` is converted with `keras_lstm.tflite.convert` (float32, and
dynamic-range int8), and one sequence at a time is timed: `invoke()` on the
interpreter (its default threads), `model.predict(x)` and a compiled
`tf.function(model)` call. Medians of interleaved repeats; prints a Markdown
table and the file sizes.

    flock /tmp/keras_lstm_cpu.lock python benchmarks/tflite_latency.py
"""

import argparse
import statistics
import time

import numpy as np

SHAPES = {  # name: (T, F, U)
    "issue": (20, 8, 16),
    "imdb": (200, 128, 64),
    "charlm": (100, 64, 512),
}


def median_ms(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(steps, features, units, repeats):
    import keras
    import tensorflow as tf

    import keras_lstm
    from keras_lstm import tflite

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(batch_shape=(1, steps, features)),
        keras_lstm.LSTM(units),
        keras.layers.Dense(1),
    ])
    x = np.random.default_rng(0).normal(size=(1, steps, features)).astype("float32")
    row = {}
    for name, quantize in (("tflite float32", False), ("tflite int8", True)):
        content = tflite.convert(model, batch_size=None, quantize=quantize)
        runner = tflite.interpreter(content)
        index = runner.get_input_details()[0]["index"]

        def invoke(runner=runner, index=index):
            runner.set_tensor(index, x)
            runner.invoke()

        row[name] = median_ms(invoke, repeats)
        row[name + " KiB"] = len(content) / 1024
    row["model.predict"] = median_ms(lambda: model.predict(x, verbose=0), repeats)
    compiled = tf.function(lambda x: model(x, training=False))
    row["tf.function"] = median_ms(lambda: compiled(x).numpy(), repeats)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    args = parser.parse_args()
    columns = ["tflite float32", "tflite int8", "model.predict", "tf.function"]
    print("| shape (T, F, U) | " + " | ".join(c + " ms" for c in columns)
          + " | float32 KiB | int8 KiB |")
    print("|---" * (len(columns) + 3) + "|")
    for name in args.shapes:
        row = measure(*SHAPES[name], args.repeats)
        cells = [f"{row[c]:.2f}" for c in columns]
        sizes = [f"{row['tflite float32 KiB']:.0f}", f"{row['tflite int8 KiB']:.0f}"]
        print(f"| {name} {SHAPES[name]} | " + " | ".join(cells + sizes) + " |",
              flush=True)


if __name__ == "__main__":
    main()
