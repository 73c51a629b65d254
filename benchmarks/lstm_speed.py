"""Side-by-side CPU speed of keras.layers.LSTM, keras_lstm.LSTM and torch.nn.LSTM.

All implementations get the same weights and inputs and run in one process,
interleaved (one call of each in turn), and the medians are reported: timings
on a shared machine drift, so only numbers from the same run are compared.

A training step is forward + backward of a mean-square loss inside a
`tf.function` (torch: eager forward and `loss.backward()`), gradients of the
weights only; an inference step is the forward pass with training=False
(torch: under `torch.no_grad()`). GFLOP/s counts the matmuls only:
2·B·T·4U·(F+U) forward, three times that for training. Peak memory of a
training run is measured per implementation in a fresh process
(`resource.getrusage(...).ru_maxrss`).

Run (others share the CPU, hence the lock):

    flock /tmp/keras_lstm_cpu.lock python benchmarks/lstm_speed.py \\
        --output /tmp/lstm_speed.json

Smoke test (seconds): ``python benchmarks/lstm_speed.py --quick``.
"""

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Run from a checkout without installing: the package sits one folder up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

Config = collections.namedtuple(
    "Config", ["batch", "time", "features", "units", "return_sequences"]
)
CONFIGS = {
    "imdb": Config(64, 200, 128, 64, False),
    "charlm": Config(64, 100, 64, 256, True),
    "long": Config(32, 1000, 8, 32, False),
    "big": Config(256, 100, 256, 512, True),
}
QUICK_CONFIGS = {
    "imdb": Config(4, 12, 8, 6, False),
    "charlm": Config(4, 10, 6, 8, True),
}
IMPLEMENTATIONS = ("keras", "keras_lstm", "torch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="Comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=10,
                        help="Timed calls per implementation (median taken).")
    parser.add_argument("--warmup", type=int, default=3,
                        help="Untimed calls first (tracing, XLA compiling).")
    parser.add_argument("--output", default=None, help="Write results as JSON.")
    parser.add_argument("--no_memory", action="store_true",
                        help="Skip the per-implementation memory processes.")
    parser.add_argument("--no_torch", action="store_true",
                        help="Leave torch out even if it is installed.")
    parser.add_argument("--native", choices=("on", "off"), default="on",
                        help="off: run keras_lstm without its C++ ops "
                        "(KERAS_LSTM_NATIVE=0), as on a machine where they "
                        "do not build.")
    parser.add_argument("--quick", action="store_true",
                        help="Tiny shapes, 2 repeats: a smoke test.")
    parser.add_argument("--memory_child", default=None,
                        help=argparse.SUPPRESS)  # impl:config, internal
    args = parser.parse_args(argv)
    table = QUICK_CONFIGS if args.quick else CONFIGS
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown --configs {unknown}; choose from {list(CONFIGS)}")
    args.configs = [c for c in args.configs if c in table] or list(table)
    args.table = table
    if args.quick:
        args.repeats, args.warmup = 2, 1
    return args


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def make_data(config, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(config.batch, config.time, config.features))
    shape = (config.batch, config.time if config.return_sequences else 1,
             config.units)
    target = rng.normal(size=shape).reshape(
        shape if config.return_sequences else (config.batch, config.units))
    return x.astype("float32"), target.astype("float32")


def make_tf_steps(layer, x, target, portable=False):
    """(train_step, inference_step) callables that block until done.

    keras_lstm's inference function is traced as Keras's `predict` traces it
    (C++ ops allowed), or with `portable` as `model.export` traces it
    (standard ops only, see `keras_lstm.tracing`).
    """
    import tensorflow as tf

    x, target = tf.constant(x), tf.constant(target)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True) - target))
        grads = tape.gradient(loss, layer.trainable_weights)
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads]) * 0.0

    @tf.function
    def infer():
        return layer(x, training=False)

    if "keras_lstm" in type(layer).__module__:
        import keras_lstm

        with keras_lstm.portable_graphs(portable):
            infer.get_concrete_function()  # Traced now, in this mode.
    return (lambda: train().numpy()), (lambda: infer().numpy())


def make_torch_steps(keras_layer, config, x, target):
    import torch

    lstm = torch.nn.LSTM(config.features, config.units, batch_first=True)
    if keras_layer is not None:
        from keras_lstm import to_torch_lstm

        state = {k: torch.from_numpy(v) for k, v in to_torch_lstm(keras_layer).items()}
        lstm.load_state_dict(state)
    x, target = torch.from_numpy(x), torch.from_numpy(target)

    def run():
        out, (h, _) = lstm(x)
        return out if config.return_sequences else h[0]

    def train():
        lstm.zero_grad(set_to_none=True)
        loss = torch.mean((run() - target) ** 2)
        loss.backward()
        return loss.item()

    def infer():
        with torch.no_grad():
            return run().numpy()

    return train, infer, run


def build_layers(config, x):
    """keras.layers.LSTM and keras_lstm.LSTM with the same random weights."""
    import keras

    import keras_lstm

    kwargs = dict(return_sequences=config.return_sequences)
    theirs = keras.layers.LSTM(config.units, **kwargs)
    ours = keras_lstm.LSTM(config.units, **kwargs)
    for layer in (theirs, ours):
        layer.build(x.shape)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def time_interleaved(steps, repeats, warmup):
    """Median seconds per call of each callable, calls interleaved."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def matmul_peak_gflops(size=2048, repeats=10):
    """float32 GEMM throughput of this machine as TensorFlow sees it."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.matmul(a, a))
    seconds = time_interleaved({"mm": lambda: matmul().numpy()}, repeats, 2)
    return 2 * size**3 / seconds["mm"] / 1e9


def forward_flops(config):
    c = config
    return 2 * c.batch * c.time * 4 * c.units * (c.features + c.units)


def peak_memory_mb(impl, name, quick):
    """Runs a few training steps in a fresh process; returns its RSS figures."""
    cmd = [sys.executable, os.path.abspath(__file__),
           "--memory_child", f"{impl}:{name}"] + (["--quick"] if quick else [])
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         check=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_child(spec, table):
    """In the child: resident memory before and peak during training steps.

    The peak (VmHWM) is reset after setup by writing 5 to /proc/self/clear_refs,
    so importing the framework does not count. training_mb is what the first
    training step (tracing, XLA compiling) adds over the memory held after
    building the model; steady_mb what later steps add over that baseline.
    """
    impl, name = spec.split(":")
    config = table[name]
    x, target = make_data(config)
    if impl == "torch":
        train = make_torch_steps(None, config, x, target)[0]
    else:
        theirs, ours = build_layers(config, x)
        train = make_tf_steps(theirs if impl == "keras" else ours, x, target)[0]
    def reset_peak():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:  # Not Linux or not allowed: the peak includes setup.
            pass

    before = _status_mb("VmRSS")
    reset_peak()
    train()
    first = _status_mb("VmHWM")
    reset_peak()
    for _ in range(3):
        train()
    steady = _status_mb("VmHWM")
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": max(first, steady),
                      "training_mb": first - before,
                      "steady_mb": steady - before,
                      "ru_maxrss_mb": ru_peak}))


def benchmark_config(name, config, args, peak):
    x, target = make_data(config)
    theirs, ours = build_layers(config, x)
    train, infer = {}, {}
    train["keras"], infer["keras"] = make_tf_steps(theirs, x, target)
    train["keras_lstm"], infer["keras_lstm"] = make_tf_steps(ours, x, target)
    _, infer["export"] = make_tf_steps(ours, x, target, portable=True)
    diff = float(np.max(np.abs(ours(x) - theirs(x))))
    if torch_available() and not args.no_torch:
        train["torch"], infer["torch"], run = make_torch_steps(
            theirs, config, x, target)
        diff = max(diff, float(np.max(np.abs(run().detach().numpy() - theirs(x)))))
    train_s = time_interleaved(train, args.repeats, args.warmup)
    infer_s = time_interleaved(infer, args.repeats, args.warmup)
    flops = forward_flops(config)
    rows = {"export": {
        "infer_ms": 1e3 * infer_s["export"],
        "infer_speedup_vs_keras": infer_s["keras"] / infer_s["export"],
    }}
    for impl in train:
        row = {
            "train_ms": 1e3 * train_s[impl],
            "infer_ms": 1e3 * infer_s[impl],
            "train_speedup_vs_keras": train_s["keras"] / train_s[impl],
            "infer_speedup_vs_keras": infer_s["keras"] / infer_s[impl],
            "train_gflops": 3 * flops / train_s[impl] / 1e9,
            "infer_gflops": flops / infer_s[impl] / 1e9,
        }
        row["train_peak_fraction"] = row["train_gflops"] / peak
        row["infer_peak_fraction"] = row["infer_gflops"] / peak
        if not args.no_memory and (not args.quick or name == args.configs[0]):
            row.update(peak_memory_mb(impl, name, args.quick))
        rows[impl] = row
    from keras_lstm import dispatch

    infer_path = ours.implementation_path
    train_path = infer_path
    if infer_path == "fused" and dispatch.auto_prefers_step(
            config.features, config.units, config.batch, ours.fused_loops,
            training=False):
        infer_path = "step"
    if train_path == "fused" and dispatch.auto_prefers_step(
            config.features, config.units, config.batch, ours.fused_loops,
            training=True):
        train_path = "step"
    return {"config": config._asdict(), "path": train_path,
            "infer_path": infer_path,
            "max_abs_output_diff_vs_keras": diff, "results": rows}


def format_table(results, peak):
    lines = [f"float32 matmul peak (2048² GEMM): {peak:.0f} GFLOP/s", "",
             "| config | impl | train ms | ×keras | infer ms | ×keras | "
             "train GFLOP/s (% peak) | infer GFLOP/s (% peak) | peak RSS MB "
             "(+MB 1st step / later) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        c = res["config"]
        label = f"{name} ({c['batch']},{c['time']},{c['features']},{c['units']})"
        for impl, r in res["results"].items():
            if impl == "export":
                continue
            mem = (f"{r['peak_rss_mb']:.0f} (+{r['training_mb']:.0f} / "
                   f"+{r['steady_mb']:.0f})"
                   if "peak_rss_mb" in r else "-")
            lines.append(
                f"| {label} | {impl} | {r['train_ms']:.1f} | "
                f"{r['train_speedup_vs_keras']:.2f} | {r['infer_ms']:.1f} | "
                f"{r['infer_speedup_vs_keras']:.2f} | {r['train_gflops']:.1f} "
                f"({100 * r['train_peak_fraction']:.0f}%) | "
                f"{r['infer_gflops']:.1f} ({100 * r['infer_peak_fraction']:.0f}%)"
                f" | {mem} |")
    lines += ["", "Inference of the graph `model.export` saves (standard "
              "ops only):", "", "| config | ms | ×keras |", "|---|---|---|"]
    for name, res in results.items():
        r = res["results"]["export"]
        lines.append(f"| {name} | {r['infer_ms']:.1f} | "
                     f"{r['infer_speedup_vs_keras']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.native == "off":
        os.environ["KERAS_LSTM_NATIVE"] = "0"  # Read when the ops are first asked for.
    if args.memory_child:
        return memory_child(args.memory_child, args.table)
    peak = matmul_peak_gflops(512 if args.quick else 2048)
    results = {}
    for name in args.configs:
        results[name] = benchmark_config(name, args.table[name], args, peak)
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(format_table(results, peak))
    if args.output:
        import tensorflow as tf

        from keras_lstm import native

        meta = {"peak_gflops": peak, "repeats": args.repeats,
                "native_ops": native.available(),
                "tensorflow": tf.__version__, "cpus": os.cpu_count()}
        if torch_available() and not args.no_torch:
            import torch

            meta.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
        with open(args.output, "w") as f:
            json.dump({"meta": meta, "configs": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
