"""Training and evaluation of the character LM: a custom tf.distribute loop.

`train_and_evaluate(config, model_dir)` checks every input first, then
trains with `steps.make_train_step` under the configured strategy, evaluates
on the whole validation split every `eval_every` steps, and writes to
model_dir: TensorBoard logs (train/, validation/), checkpoints/ (model,
optimizer, step = data position, carried states, best figures), vocab.json,
model.keras and metrics.json. Rerunning with the same model_dir resumes.
"""

import math
import os
import signal
import time

import keras
import tensorflow as tf

from recipes.char_lm import generation
from recipes.char_lm import input_pipeline
from recipes.char_lm import model as model_lib
from recipes.char_lm import steps
from recipes.char_lm.config import CELLS
from recipes.char_lm.config import RESUMABLE_CHANGES
from recipes.char_lm.trainer import Trainer
from recipes.char_lm.vocab import Vocabulary
from recipes.common import outputs
from recipes.common import run_config
from recipes.common import strategy as strategy_lib
from recipes.common import summaries
from recipes.common import workers
from recipes.common.errors import UsageError
from recipes.common.model_dir import check_model_dir
from recipes.common.run_lock import run_lock
from recipes.common.signals import EXIT_STATUS
from recipes.common.signals import Stopped
from recipes.common.signals import stop_requests

NATS_TO_BITS = 1.0 / math.log(2.0)
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)


def check_config(config):
    """Raises UsageError for settings no run can use (the flags check these too)."""
    positive = ("seq_len", "batch_size", "layers", "units", "embedding_dim",
                "train_steps", "eval_every", "checkpoint_every", "log_every",
                "max_checkpoints")
    for name in positive:
        if getattr(config, name) < 1:
            raise UsageError(f"{name} must be >= 1. Received: "
                             f"{name}={getattr(config, name)}")
    if not 0.0 < config.validation_fraction < 1.0:
        raise UsageError("validation_fraction must be in (0, 1). Received: "
                         f"validation_fraction={config.validation_fraction}")
    for name in ("dropout", "weight_dropout", "ema_decay"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise UsageError(f"{name} must be in [0, 1). Received: "
                             f"{name}={getattr(config, name)}")
    if config.weight_dropout and config.cell != "keras_lstm":
        raise UsageError(
            "weight_dropout (DropConnect on the recurrent kernel) needs "
            "--cell=keras_lstm; keras.layers.LSTM has no such option. Received: "
            f"cell={config.cell!r}, weight_dropout={config.weight_dropout}")
    if config.cell not in CELLS:
        raise UsageError(f"cell must be one of {', '.join(CELLS)}. "
                         f"Received: cell={config.cell!r}")
    if config.strategy not in strategy_lib.STRATEGIES:
        raise UsageError(f"strategy must be one of {', '.join(strategy_lib.STRATEGIES)}. "
                         f"Received: strategy={config.strategy!r}")


def check_same_run(config, model_dir):
    """Raises UsageError if model_dir holds a run with other settings.

    Only RESUMABLE_CHANGES may differ, and train_steps may only grow.
    """
    saved = run_config.saved_config(model_dir)
    if saved is None:
        return
    run_config.refuse_changes(saved, config.as_dict(), RESUMABLE_CHANGES)
    if config.train_steps < saved["train_steps"]:
        raise UsageError(
            f"--train_steps cannot shrink in a resumed run (its schedule and "
            f"checkpoints were made for {saved['train_steps']} steps); use a "
            f"new --model_dir, or --stop_after_steps to stop early. Received: "
            f"train_steps={config.train_steps} (saved: {saved['train_steps']})")


def load_data(config, model_dir):
    """Reads and splits the text; returns (vocab, train_ids, validation_ids)."""
    if config.text_file:
        text = input_pipeline.read_text_file(config.text_file)
        source = f"text_file={config.text_file!r}"
    else:
        text = input_pipeline.load_tfds_text(config.tfds_name, config.data_dir)
        source = f"TFDS {config.tfds_name!r}"
    train_text, validation_text = input_pipeline.split_text(
        text, config.validation_fraction, config.seq_len, source
    )
    vocab = Vocabulary.from_text(train_text)
    if os.path.exists(os.path.join(model_dir, "vocab.json")):
        saved = Vocabulary.load(model_dir)
        if saved.chars != vocab.chars:
            raise UsageError(
                f"model_dir holds a run trained on another text (its vocabulary "
                f"differs); use a new --model_dir. Received: model_dir="
                f"{model_dir!r}, {source}"
            )
    return vocab, vocab.encode(train_text), vocab.encode(validation_text)


def _log_train_step(writer, step, loss, grad_norm, learning_rate):
    """Writes one step's training figures to TensorBoard."""
    with writer.as_default():
        summaries.write_scalar("loss", loss, step)
        summaries.write_scalar("bits_per_char", loss * NATS_TO_BITS, step)
        summaries.write_scalar("learning_rate", learning_rate, step)
        summaries.write_scalar("gradient_norm", grad_norm, step)


def _log_evaluation(run, writer, vocab, prime, val_loss, gate_logger):
    """Writes validation figures, text samples and gate heatmaps."""
    step = int(run.step.numpy())
    with writer.as_default():
        summaries.write_scalar("loss", val_loss, step)
        summaries.write_scalar("bits_per_char", val_loss * NATS_TO_BITS, step)
        for temperature in SAMPLE_TEMPERATURES:
            text = generation.generate(run.model, vocab, prime,
                                       run.config.sample_length, temperature,
                                       seed=run.config.seed)
            # Markdown: indent 4 spaces to show the text verbatim.
            summaries.write_text(f"samples/temperature_{temperature}",
                                 "    " + text.replace("\n", "\n    "), step)
    writer.flush()
    if gate_logger is not None:
        gate_logger.write(step)


def _make_gate_logger(config, model, validation_ids, model_dir):
    """A keras_lstm.introspect gate-heatmap writer for the first LSTM layer."""
    if not config.gate_heatmap:
        return None
    from keras_lstm import introspect

    ids = tf.constant(validation_ids[None, : min(100, len(validation_ids))])
    example = [ids] + [tf.zeros((1, config.units))] * (2 * config.layers)
    logger = introspect.GateHeatmapCallback(
        "lstm_1", example, log_dir=os.path.join(model_dir, "validation"))
    logger.set_model(model)
    return logger


def _evaluate(run, eval_data):
    """The validation loss; a FloatingPointError if it is not finite."""
    val_loss = run.evaluate(eval_data)
    if not math.isfinite(val_loss):
        raise run.divergence(f"the validation loss became {val_loss} at step "
                             f"{int(run.step.numpy())}")
    return val_loss


def train_and_evaluate(config, model_dir):
    """Trains (or resumes) the character LM in model_dir; returns the metrics.

    Raises:
        UsageError: bad configuration or data, before anything is written;
            or another run holds model_dir.
        FloatingPointError: the loss or the weights became NaN or infinite;
            nothing non-finite is saved, the last finite checkpoint stays the
            latest.
        Stopped: SIGINT or SIGTERM arrived; a checkpoint was saved first.
    """
    check_config(config)
    check_model_dir(model_dir)
    check_same_run(config, model_dir)
    # Before any TF op: multi-worker collectives are set up at startup.
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu_address)
    vocab, train_ids, validation_ids = load_data(config, model_dir)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(f"batch_size must be divisible by the {replicas} "
                         f"replicas. Received: batch_size={config.batch_size}")
    stream = input_pipeline.TrainingStream(
        train_ids, config.seq_len, config.batch_size, config.seed, config.stateful)
    # Every input is checked: from here on the run writes to model_dir.
    # Signals are deferred from before the lock is taken: a SIGTERM that
    # comes while the model is built still ends in a checkpoint.
    with stop_requests() as stop, run_lock(model_dir):
        return _train(config, model_dir, vocab, train_ids, validation_ids,
                      strategy, stream, stop)


def _train(config, model_dir, vocab, train_ids, validation_ids, strategy,
           stream, stop):
    """The run itself, once every input is checked and model_dir is locked."""
    replicas = strategy.num_replicas_in_sync
    policy = strategy_lib.set_precision(config.mixed_precision)
    # Only the chief writes to model_dir; other workers write to a temporary
    # directory (every worker reads and resumes from model_dir).
    out_dir = workers.output_dir(strategy, model_dir)
    os.makedirs(out_dir, exist_ok=True)
    vocab.save(out_dir)
    run = Trainer(config, model_dir, out_dir, vocab, strategy, policy)
    workers.check_same_position(strategy, int(run.step.numpy()), "steps", model_dir)
    run_config.save_config(out_dir, model_dir, config.as_dict(), int(run.step.numpy()))
    any_worker_stops = workers.make_stop_agreement(strategy)
    train_writer = tf.summary.create_file_writer(os.path.join(out_dir, "train"))
    val_writer = tf.summary.create_file_writer(os.path.join(out_dir, "validation"))
    outputs.log_config_text(os.path.join(out_dir, "train"), config.as_dict())
    eval_data = steps.distribute(strategy, lambda: input_pipeline.evaluation_dataset(
        validation_ids, config.seq_len, config.batch_size, config.stateful))
    gate_logger = _make_gate_logger(config, run.model, validation_ids, out_dir)
    prime = vocab.decode(train_ids[:10])

    start = int(run.step.numpy())
    end = config.train_steps
    if config.stop_after_steps:
        end = min(end, start + config.stop_after_steps)
    train_data = steps.distribute(strategy, lambda: stream.dataset(start, end))
    # The bar counts this invocation's steps (its time estimate assumes it
    # starts at 0); evaluation lines give the run's step.
    progbar = keras.utils.Progbar(max(1, end - start), stateful_metrics=(
        "loss", "ms/step", "chars/s")) if config.progress else None
    chars_per_step = config.batch_size * config.seq_len
    val_loss = val_step = None
    stopping = False  # A signal reached this worker or another one.
    try:
        for batch in train_data:
            began = time.perf_counter()
            loss, grad_norm, run.states = run.train_step(batch, run.states)
            loss = float(loss)  # Waits for the step to finish.
            seconds = time.perf_counter() - began
            step = int(run.step.numpy())
            if not math.isfinite(loss):
                raise run.divergence(
                    f"the training loss became {loss} at step {step}")
            run.train_seconds.assign_add(seconds)
            run.chars_trained.assign_add(chars_per_step)
            if step % config.log_every == 0 or step == end:
                learning_rate = float(run.optimizer.learning_rate)
                _log_train_step(train_writer, step, loss, float(grad_norm),
                                learning_rate)
            if progbar is not None:
                progbar.update(step - start, [
                    ("loss", loss), ("ms/step", 1000 * seconds),
                    ("chars/s", chars_per_step / seconds)])
            if step % config.eval_every == 0 or step == config.train_steps:
                with run.evaluated_weights():
                    val_loss, val_step = _evaluate(run, eval_data), step
                    _log_evaluation(run, val_writer, vocab, prime, val_loss,
                                    gate_logger)
                if val_loss < run.best_val.numpy():
                    run.best_val.assign(val_loss)
                    run.best_step.assign(step)
                if progbar is not None:
                    print(f"\nstep {step}: validation {val_loss:.4f} nats/char, "
                          f"{val_loss * NATS_TO_BITS:.4f} bits/char", flush=True)
            if step % config.checkpoint_every == 0 or step % config.eval_every == 0:
                run.save()
            stopping = any_worker_stops(stop)
            if stopping:  # SIGINT or SIGTERM: saved just below.
                break
    except KeyboardInterrupt:  # A second Ctrl-C: save what there is.
        run.save()
        print(f"\ninterrupted: saved a checkpoint at step {int(run.step.numpy())}; "
              "rerun the same command to resume", flush=True)
        raise
    finally:
        train_writer.close()
        val_writer.close()
    run.save()
    step = int(run.step.numpy())
    if stopping:
        raise Stopped(f"{stop.name or 'another worker was signalled'}: saved a "
                      f"checkpoint at step {step}; rerun the same command to "
                      "resume", stop.exit_status if stop else EXIT_STATUS[signal.SIGTERM])
    if step < config.train_steps:
        print(f"stopped at step {step} of {config.train_steps} "
              "(--stop_after_steps); rerun the same command to resume", flush=True)
    with run.evaluated_weights():
        if val_step != step:  # Stopped between evaluations, or nothing to do.
            val_loss = _evaluate(run, eval_data)
        outputs.save_model_atomically(
            run.model, os.path.join(out_dir, model_lib.MODEL_FILENAME))
    best, best_step = float(run.best_val.numpy()), int(run.best_step.numpy())
    if val_loss < best:  # Stopped between evaluations: report, don't keep,
        best, best_step = val_loss, step  # so a resumed run ends the same.
    seconds = float(run.train_seconds.numpy())
    metrics = {
        "steps": step,
        "final_val_nats_per_char": val_loss,
        "final_val_bits_per_char": val_loss * NATS_TO_BITS,
        "best_val_nats_per_char": best,
        "best_val_bits_per_char": best * NATS_TO_BITS,
        "best_step": best_step,
        "chars_trained": int(run.chars_trained.numpy()),
        "training_seconds": seconds,
        "chars_per_second": int(run.chars_trained.numpy()) / seconds if seconds else 0.0,
        "cell": config.cell,
        "precision_policy": policy,
        "replicas": replicas,
    }
    outputs.write_metrics(out_dir, metrics)
    return metrics
