"""Trains and compares the models on the adding problem; a library, no flags.

For every length and model: measure the input-gradient norms at
initialization, train with Adam (resuming from the run's checkpoint), report
the test MSE against the predict-the-mean baseline and measure the gradient
norms again. Everything lands in model_dir:

    results.json, metrics.json          the figures
    mse_vs_length.png, gradient_norms.png, validation_curves.png
    logs/                               TensorBoard: config, plots
    T<length>/<model>/                  checkpoints/, logs/ (loss, val MSE),
                                        run.json (settings), history.json
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

import keras_lstm
from recipes.common import summaries
from recipes.common.checkpoints import checkpoint_numbers
from recipes.common.checkpoints import restore_newest_intact
from recipes.common.errors import UsageError
from recipes.common.finite import non_finite_weights
from recipes.common.model_dir import check_model_dir
from recipes.common.run_lock import run_lock
from recipes.common.signals import Stopped
from recipes.common.signals import stop_requests
from recipes.common.outputs import log_config_text
from recipes.common.outputs import read_json
from recipes.common.outputs import write_json_atomically
from recipes.common.outputs import write_metrics
from recipes.long_range import data
from recipes.long_range import gradients
from recipes.long_range import plots
from recipes.long_range.config import validate
from recipes.long_range.model import build_model

# Settings a run's checkpoint depends on; the budget ones may change on resume.
_BUDGET_SETTINGS = ("train_steps", "max_minutes", "stop_mse", "jit_compile")


def train_and_evaluate(config, model_dir):
    """Runs the whole comparison described by `config` into `model_dir`.

    A rerun skips (length, model) pairs already finished with the same
    settings and resumes unfinished ones from their last checkpoint.

    Returns:
        The metrics written to metrics.json.

    Raises:
        UsageError: bad settings or files, before anything is written; or
            another run holds model_dir.
        FloatingPointError: a loss or a weight became NaN or infinite; the
            pair is not recorded, its last finite checkpoint stays the latest.
        Stopped: SIGINT or SIGTERM arrived; the pair's checkpoint was saved.
    """
    validate(config)
    results_path = os.path.join(model_dir, "results.json")
    results = _load_results(model_dir, results_path)
    for length in config.lengths:
        for name in config.models:
            _check_run_settings(_run_dir(model_dir, length, name), config)
    with stop_requests() as stop, run_lock(model_dir):
        return _run_all(config, model_dir, results, results_path, stop)


def _run_all(config, model_dir, results, results_path, stop):
    """Trains every pair not finished yet, then plots; model_dir is locked."""
    log_dir = os.path.join(model_dir, "logs")
    log_config_text(log_dir, {"model_dir": model_dir, **_as_json(config)})
    started = time.time()
    for length in config.lengths:
        for name in config.models:
            key = str(length)
            previous = results["runs"].get(key, {}).get(name)
            if previous and previous["settings"] == config.settings():
                print(f"T={length} {name}: finished earlier, "
                      f"test MSE {previous['test_mse']:.4f} (skipped)")
                continue
            entry = _train_one(config, name, length, model_dir, stop)
            results["runs"].setdefault(key, {})[name] = entry
            write_json_atomically(results_path, results)
    figures = _write_plots(config, results, model_dir, log_dir)
    metrics = _metrics(config, results, figures, time.time() - started)
    write_metrics(model_dir, metrics)
    return metrics


def _train_one(config, name, length, model_dir, stop):
    """Trains one model at one length; returns its results.json entry."""
    run_dir = _run_dir(model_dir, length, name)
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomically(os.path.join(run_dir, "run.json"), config.settings())
    keras.utils.set_random_seed(config.seed)
    model = build_model(
        name, length, data.FEATURES, config.units, config.lstm_bias, config.seed
    )
    grad_x, grad_y = data.held_out_set(
        config.seed, "validation", length, config.gradient_examples
    )
    norms_at_init = gradients.input_gradient_norms(model, grad_x, grad_y)
    test_x, test_y = data.held_out_set(
        config.seed, "test", length, config.eval_examples
    )
    heatmaps = _gate_heatmaps(config, model, name, test_x[:1], run_dir)

    optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, step=step, seconds=seconds
    )
    manager, restored = restore_newest_intact(
        checkpoint, os.path.join(run_dir, "checkpoints"), 2,
        finish=lambda status: status.assert_consumed())
    if restored:
        print(f"T={length} {name}: resumed from step {int(step.numpy())}")
    elif heatmaps:
        heatmaps.write(0)
    history_path = os.path.join(run_dir, "history.json")
    history = [
        row for row in read_json(history_path, default=[])
        if row["step"] <= int(step.numpy())
    ]
    val_x, val_y = data.held_out_set(
        config.seed, "validation", length, config.eval_examples
    )
    train_step = _make_train_step(model, optimizer, config.jit_compile)
    mse = _make_mse(model, config.jit_compile)
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs"))
    budget = config.max_minutes * 60.0 or float("inf")
    stopped_by = "train_steps"
    losses = []
    resumed_at = time.time() - float(seconds.numpy())

    def save():
        """Checkpoints the pair, never with a non-finite weight."""
        seconds.assign(time.time() - resumed_at)
        bad = non_finite_weights(model.weights + optimizer.variables)
        if bad:
            raise diverged(f"the weights became NaN or infinite ({bad[0]})")
        manager.save(checkpoint_number=int(step.numpy()))

    def diverged(what):
        kept = (f"the latest checkpoint, {manager.latest_checkpoint}, holds "
                "the last finite weights" if manager.latest_checkpoint
                else "no checkpoint had been saved yet")
        return FloatingPointError(
            f"T={length} {name}: {what} by step {int(step.numpy())}; stopped "
            f"without saving or recording the pair ({kept}). Lower "
            "--learning_rate or --clipnorm and train in a new --model_dir")

    while int(step.numpy()) < config.train_steps and not stop:
        if time.time() - resumed_at >= budget:
            stopped_by = "max_minutes"
            break
        current = int(step.numpy())
        x, y = data.training_batch(config.seed, length, current, config.batch_size)
        losses.append(float(train_step(x, y)))
        step.assign_add(1)
        if not np.isfinite(losses[-1]):
            raise diverged(f"the training loss became {losses[-1]}")
        current += 1
        if current % config.log_every == 0:
            with writer.as_default(step=current):
                summaries.write_scalar(
                    "train/loss", np.mean(losses[-config.log_every:]), current
                )
        if current % config.eval_every == 0 or current == config.train_steps:
            val_mse = float(mse(val_x, val_y))
            if not np.isfinite(val_mse):
                raise diverged(f"the validation MSE became {val_mse}")
            seconds.assign(time.time() - resumed_at)
            row = {
                "step": current,
                "seconds": round(float(seconds.numpy()), 2),
                "train_loss": float(np.mean(losses[-config.eval_every:])),
                "val_mse": val_mse,
            }
            history.append(row)
            with writer.as_default(step=current):
                summaries.write_scalar("validation/mse", val_mse, current)
            save()
            write_json_atomically(history_path, history)
            print(f"T={length} {name}: step {current}/{config.train_steps} "
                  f"loss {row['train_loss']:.4f} val MSE {val_mse:.4f} "
                  f"(baseline {data.BASELINE_MSE:.3f}) {row['seconds']:.0f}s",
                  flush=True)
            if val_mse < config.stop_mse:
                stopped_by = "stop_mse"
                break
    save()
    writer.close()
    if stop:
        raise Stopped(f"{stop.name}: T={length} {name} saved a checkpoint at "
                      f"step {int(step.numpy())}; rerun the same command to "
                      "resume", stop.exit_status)

    if heatmaps:
        heatmaps.write(int(step.numpy()))
        heatmaps.on_train_end()
    test_mse = float(mse(test_x, test_y))
    if not np.isfinite(test_mse):
        raise diverged(f"the test MSE became {test_mse}")
    # What predicting the mean target, 1, scores on these very sequences.
    test_baseline_mse = float(np.mean(np.square(test_y - 1.0)))
    norms_trained = gradients.input_gradient_norms(model, grad_x, grad_y)
    print(f"T={length} {name}: test MSE {test_mse:.4f} (predicting the "
          f"mean: {test_baseline_mse:.4f}) after "
          f"{int(step.numpy())} steps, {float(seconds.numpy()):.0f}s "
          f"(stopped by {stopped_by}); mean ‖∂loss/∂x_t‖ at the last / first "
          f"step: {norms_at_init[0]:.1e} / {norms_at_init[-1]:.1e} at init, "
          f"{norms_trained[0]:.1e} / {norms_trained[-1]:.1e} trained",
          flush=True)
    return {
        "settings": config.settings(),
        "test_mse": test_mse,
        "baseline_mse": data.BASELINE_MSE,
        "test_baseline_mse": test_baseline_mse,
        "steps": int(step.numpy()),
        "train_seconds": round(float(seconds.numpy()), 2),
        "stopped_by": stopped_by,
        "parameters": int(model.count_params()),
        "history": history,
        "gradient_norms": {
            "init": norms_at_init.tolist(),
            "trained": norms_trained.tolist(),
        },
    }


def _gate_heatmaps(config, model, name, example, run_dir):
    """The gate-heatmap writer for an LSTM model, or None."""
    if not config.gate_heatmaps or name == "simple_rnn":
        return None
    # The two marked positions (marker channel) drawn on the time axis.
    marks = [np.flatnonzero(row[:, data.MARKER_CHANNEL]) for row in example]
    callback = keras_lstm.GateHeatmapCallback(
        name, example, log_dir=os.path.join(run_dir, "logs"), time_marks=marks
    )
    callback.set_model(model)
    return callback


def _make_train_step(model, optimizer, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            loss = tf.reduce_mean(tf.square(predictions - targets))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return train_step


def _make_mse(model, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def mse(inputs, targets):
        return tf.reduce_mean(tf.square(model(inputs, training=False) - targets))

    return mse


def _runs_at_lengths(config, results):
    """{length: {model: entry}} for this run's lengths, every model trained
    there so far (also by earlier runs with other --models)."""
    return {
        length: results["runs"][str(length)] for length in config.lengths
    }


def _write_plots(config, results, model_dir, log_dir):
    """Draws the PNGs for this run's lengths and shows them in TensorBoard."""
    paths = plots.plot_all(
        _runs_at_lengths(config, results), data.BASELINE_MSE, model_dir
    )
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=0):
        for path in paths:
            tag = os.path.splitext(os.path.basename(path))[0]
            summaries.write_png(tag, tf.io.read_file(path), step=0)
    writer.close()
    return [os.path.basename(path) for path in paths]


def _metrics(config, results, figures, wall_seconds):
    runs = _runs_at_lengths(config, results)
    test_mse = {
        str(length): {name: entry["test_mse"] for name, entry in by_model.items()}
        for length, by_model in runs.items()
    }
    steps = {
        str(length): {name: entry["steps"] for name, entry in by_model.items()}
        for length, by_model in runs.items()
    }
    norms = {
        str(length): {
            name: {
                stage: gradients.summarize_by_distance(np.array(values))
                for stage, values in entry["gradient_norms"].items()
            }
            for name, entry in by_model.items()
        }
        for length, by_model in runs.items()
    }
    return {
        "baseline_mse": data.BASELINE_MSE,
        "test_mse": test_mse,
        "test_baseline_mse": {
            str(length): next(iter(by_model.values())).get("test_baseline_mse")
            for length, by_model in runs.items()
        },
        "train_steps": steps,
        "train_seconds": {
            str(length): {n: e["train_seconds"] for n, e in by_model.items()}
            for length, by_model in runs.items()
        },
        "gradient_norm_by_distance": norms,
        # This invocation only: a rerun that skips finished runs is quick.
        "wall_seconds_this_invocation": round(wall_seconds, 1),
        "figures": figures,
    }


def _run_dir(model_dir, length, name):
    return os.path.join(model_dir, f"T{length}", name)


def _check_run_settings(run_dir, config):
    """A checkpoint made with other weights or data cannot be resumed."""
    saved = read_json(os.path.join(run_dir, "run.json"), default=None)
    if saved is None:
        return
    wanted = config.settings()
    fixed = [k for k in wanted if k not in _BUDGET_SETTINGS]
    changed = {k: saved.get(k) for k in fixed if saved.get(k) != wanted[k]}
    trained = checkpoint_numbers(os.path.join(run_dir, "checkpoints"))
    if trained and trained[-1] > config.train_steps:
        raise UsageError(
            f"{run_dir} has already trained {trained[-1]} steps, more than "
            "--train_steps; its figures would not match the flag. Use "
            f"--train_steps >= {trained[-1]}, or a new --model_dir. "
            f"Received: train_steps={config.train_steps}"
        )
    if changed:
        raise UsageError(
            f"{run_dir} holds a run made with other settings "
            f"({', '.join(f'{k}={v!r}' for k, v in changed.items())}); use a new "
            "--model_dir, or the same settings to resume it. Received: "
            + ", ".join(f"{k}={wanted[k]!r}" for k in changed)
        )


def _load_results(model_dir, results_path):
    check_model_dir(model_dir)
    return read_json(results_path, default={"runs": {}})


def _as_json(config):
    return {k: json.dumps(v) for k, v in dataclasses.asdict(config).items()}
