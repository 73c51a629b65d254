"""CPU time of one IMDB training step: the classifier vs its pretraining language model.

Why: the language model of `--pretrain_epochs` needs a softmax over the
vocabulary at every token; this measures what a full softmax (20k words, or a
smaller output vocabulary) and a sampled one (N words drawn) cost against a
classifier step, at batch 64 x 256 tokens with the recipe's default model.

    python benchmarks/imdb_lm_softmax.py 64 256 1024   # the sampled sizes to try
"""

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import model as model_lib
from recipes.imdb_sentiment import pretrain

BATCH, TIME, PADDING = 64, 256, 40
STEPS, WARMUP = 4, 2


def token_ids(vocab_size, rng):
    """Zipf-distributed ids (>= 2), the last PADDING steps of every row padding."""
    ids = np.minimum(rng.zipf(1.3, size=(BATCH, TIME)), vocab_size - 1)
    ids[ids < 2] = 2
    ids[:, TIME - PADDING:] = 0
    return tf.constant(ids.astype("int64"))


def cpu_ms_per_step(model, loss_fn, ids):
    """(CPU ms, wall ms) per compiled training step: forward, gradient, Adam."""
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = loss_fn(model, x)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    for _ in range(WARMUP):
        step(ids).numpy()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(STEPS):
        step(ids).numpy()
    return ((time.process_time() - cpu) * 1000 / STEPS,
            (time.perf_counter() - wall) * 1000 / STEPS)


def main(sampled_sizes):
    rng = np.random.default_rng(0)
    config = config_lib.default_config()
    vocab_size = config.vocab_size
    ids = token_ids(vocab_size, rng)
    runs = [("classifier", model_lib.build_classifier(config, vocab_size), ids,
             lambda m, x: tf.reduce_mean(keras.losses.binary_crossentropy(
                 tf.ones((BATCH, 1)), m(x, training=True))))]
    for sampled in sampled_sizes:
        lm_config = dataclasses.replace(config, pretrain_sampled_words=sampled)
        runs.append((f"LM, sampled softmax, {sampled} words drawn",
                     pretrain.build_language_model(lm_config, vocab_size), ids,
                     lambda m, x: m(x, training=True)[0]))
    for output_vocab in (2000, vocab_size):
        runs.append((f"LM, full softmax over {output_vocab} words",
                     pretrain.build_language_model(config, output_vocab),
                     token_ids(output_vocab, rng),
                     lambda m, x: m(x, training=False)[0]))
    for name, model, x, loss_fn in runs:
        cpu, wall = cpu_ms_per_step(model, loss_fn, x)
        print(f"{name:45s} CPU {cpu:7.0f} ms/step   wall {wall:7.0f} ms/step",
              flush=True)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [64, 256, 1024])
