"""One command for a GPU owner: is keras_lstm right and fast on cuDNN?

    python benchmarks/gpu_check.py                       # on a machine with a GPU
    python benchmarks/gpu_check.py --quick --allow-cpu   # smoke test without one

1. Correctness. For each case below, keras_lstm.LSTM and keras.layers.LSTM
   get the same weights and inputs; outputs, final states and the gradients
   with respect to the inputs, initial states and every weight are compared
   with Keras's step loop (``use_cudnn=False``, the reference every
   keras_lstm path matches) and the largest difference is printed (absolute,
   or relative for arrays whose largest value exceeds 1),
   with the path keras_lstm chose ("cudnn" expected on a GPU). TF32 is turned
   off for this part: Ampere and newer GPUs otherwise round matmul inputs to
   10-bit mantissas, in both libraries.
2. Speed. A training step (forward and backward, in a tf.function) and an
   inference call of keras_lstm.LSTM against keras.layers.LSTM on its cuDNN
   path, medians of interleaved calls, at the shapes of lstm_speed.py.

Exit status: 0 if every difference is within --tolerance, 1 if not, 2 when no
GPU is visible (unless --allow-cpu). Our CI has no GPU: it runs this script
on CPU only (tests/test_gpu_check.py), never on a GPU.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Run from a checkout without installing: the package sits one folder up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import lstm_speed  # noqa: E402  (this folder: shapes, data, timing)

BATCH, STEPS, FEATURES, UNITS = 16, 24, 12, 20
RIGHT_PADDED_LENGTHS = [24, 17, 9, 1] * 4

# name: (layer arguments, call arguments); "bidirectional" wraps the layer.
CASES = {
    "plain": (dict(return_sequences=True), {}),
    "right_padded_mask": (dict(return_sequences=True), dict(mask="right")),
    "right_padded_last_output": ({}, dict(mask="right")),
    "go_backwards": (dict(return_sequences=True, go_backwards=True), {}),
    "go_backwards_right_padded": (
        dict(return_sequences=True, go_backwards=True), dict(mask="right")),
    "left_padded_mask (fused path)": (
        dict(return_sequences=True), dict(mask="left")),
    "return_state_initial_state": (
        dict(return_state=True), dict(initial_state=True)),
    "bidirectional_right_padded": (
        dict(return_sequences=True, bidirectional=True), dict(mask="right")),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="Tiny speed shapes and few repeats (smoke test).")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="Run without a GPU (checks the CPU paths only).")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="Largest accepted difference (see above).")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", help="Also write the results as JSON.")
    return parser.parse_args(argv)


def make_mask(kind):
    lengths = np.array(RIGHT_PADDED_LENGTHS[:BATCH])
    right = np.arange(STEPS)[None, :] < lengths[:, None]
    return right if kind == "right" else right[:, ::-1].copy()


def build_pair(layer_kwargs):
    """(keras_lstm layer, Keras's cuDNN layer, Keras's step loop), same weights."""
    import keras

    import keras_lstm

    kwargs = dict(layer_kwargs)
    wrap = keras.layers.Bidirectional if kwargs.pop("bidirectional", False) \
        else (lambda layer: layer)
    layers = (wrap(keras_lstm.LSTM(UNITS, **kwargs)),
              wrap(keras.layers.LSTM(UNITS, **kwargs)),
              wrap(keras.layers.LSTM(UNITS, use_cudnn=False, **kwargs)))
    rng = np.random.default_rng(0)
    for layer in layers:
        layer.build((BATCH, STEPS, FEATURES))
    weights = [0.5 * rng.standard_normal(w.shape).astype("float32")
               for w in layers[1].get_weights()]
    for layer in layers:
        layer.set_weights(weights)
    return layers


def outputs_and_gradients(layer, x, states, mask):
    """Every output and state, and d(loss)/d(inputs, states, weights)."""
    import tensorflow as tf

    kwargs = {} if mask is None else {"mask": tf.constant(mask)}
    watched = [x] + (states or [])
    if states:
        kwargs["initial_state"] = states
    with tf.GradientTape() as tape:
        tape.watch(watched)
        results = tf.nest.flatten(layer(x, training=True, **kwargs))
        # Each output and state weighted differently.
        loss = sum(tf.reduce_sum(tf.square(r) * (k + 1.0))
                   for k, r in enumerate(results))
    grads = tape.gradient(loss, watched + list(layer.trainable_weights))
    return [r.numpy() for r in results] + [g.numpy() for g in grads]


def max_difference(a, b):
    """Largest |a - b| over all arrays, each scaled by max(1, max |b|)."""
    return max(float(np.max(np.abs(u - v)) / max(1.0, np.max(np.abs(v))))
               if u.size else 0.0 for u, v in zip(a, b))


def check_case(name, layer_kwargs, call):
    import tensorflow as tf

    ours, keras_cudnn, keras_loop = build_pair(layer_kwargs)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((BATCH, STEPS, FEATURES)), tf.float32)
    states = None
    if call.get("initial_state"):
        states = [tf.constant(rng.standard_normal((BATCH, UNITS)), tf.float32)
                  for _ in range(2)]
    mask = make_mask(call["mask"]) if "mask" in call else None
    reference = outputs_and_gradients(keras_loop, x, states, mask)
    inner = getattr(ours, "forward_layer", ours)
    return {
        "case": name,
        "keras_lstm_path": inner.implementation_path,
        "keras_lstm_vs_keras_loop": max_difference(
            outputs_and_gradients(ours, x, states, mask), reference),
        # Informational: Keras's cuDNN path writes zeros at padded steps of
        # returned sequences, where its own step loop repeats the last output.
        "keras_cudnn_vs_keras_loop": max_difference(
            outputs_and_gradients(keras_cudnn, x, states, mask), reference),
    }


def speed(configs, repeats):
    """Median ms of training and inference steps, keras_lstm vs keras."""
    import keras_lstm

    rows = []
    for name, config in configs.items():
        x, target = lstm_speed.make_data(config)
        theirs, ours = lstm_speed.build_layers(config, x)
        steps = {}
        # Inference functions traced here are never saved: let keras_lstm
        # use its fast paths in them (see keras_lstm.portable_graphs).
        with keras_lstm.portable_graphs(False):
            for label, layer in (("keras", theirs), ("keras_lstm", ours)):
                train, infer = lstm_speed.make_tf_steps(layer, x, target)
                train(), infer()  # Trace inside the block.
                steps[label + " train"], steps[label + " infer"] = train, infer
        times = lstm_speed.time_interleaved(steps, repeats, warmup=3)
        row = {"config": name, "path": ours.implementation_path}
        for kind in ("train", "infer"):
            row[f"keras_{kind}_ms"] = 1e3 * times[f"keras {kind}"]
            row[f"keras_lstm_{kind}_ms"] = 1e3 * times[f"keras_lstm {kind}"]
            row[f"{kind}_speedup_vs_keras"] = (
                times[f"keras {kind}"] / times[f"keras_lstm {kind}"])
        rows.append(row)
    return rows


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    print(f"TensorFlow {tf.__version__}, GPUs: {[g.name for g in gpus]}")
    if not gpus and not args.allow_cpu:
        print("No GPU is visible: nothing of the cuDNN path to check. "
              "(--allow-cpu runs the CPU paths.)")
        return 2
    tf.config.experimental.enable_tensor_float_32_execution(False)
    checks = [check_case(name, *case) for name, case in CASES.items()]
    failed = [c for c in checks if c["keras_lstm_vs_keras_loop"] > args.tolerance]
    print("\n| case | keras_lstm path | keras_lstm vs keras loop | "
          "keras cuDNN vs keras loop |\n|---|---|---|---|")
    for c in checks:
        print(f"| {c['case']} | {c['keras_lstm_path']} | "
              f"{c['keras_lstm_vs_keras_loop']:.2e} | "
              f"{c['keras_cudnn_vs_keras_loop']:.2e} |")
    tf.config.experimental.enable_tensor_float_32_execution(True)
    configs = lstm_speed.QUICK_CONFIGS if args.quick else {
        k: lstm_speed.CONFIGS[k] for k in ("imdb", "charlm", "big")}
    rows = speed(configs, 3 if args.quick else args.repeats)
    print("\n| shape | path | train ms keras / keras_lstm | speed-up | "
          "infer ms keras / keras_lstm | speed-up |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['path']} | {r['keras_train_ms']:.1f} / "
              f"{r['keras_lstm_train_ms']:.1f} | "
              f"{r['train_speedup_vs_keras']:.2f}x | "
              f"{r['keras_infer_ms']:.1f} / {r['keras_lstm_infer_ms']:.1f} | "
              f"{r['infer_speedup_vs_keras']:.2f}x |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"gpus": [g.name for g in gpus], "tolerance": args.tolerance,
                       "checks": checks, "speed": rows}, f, indent=2)
    print("\nAll differences within {:g}.".format(args.tolerance) if not failed
          else f"\nFAILED (above {args.tolerance:g}): "
          + ", ".join(c["case"] for c in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
