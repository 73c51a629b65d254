"""Generating text from a trained model, one character at a time.

Used for the TensorBoard samples during training and by `sample.py`.
"""

import numpy as np
import tensorflow as tf

from recipes.char_lm.vocab import OOV_ID


def _state_count(model):
    return len(model.inputs) - 1


def generate(model, vocab, prime, length, temperature, seed):
    """Returns `prime` followed by `length` sampled characters.

    The prime is read in one call; each new character is drawn from
    softmax(logits / temperature) and fed back with the carried states. The
    OOV id is never drawn. Same model, prime, temperature and seed -> same text.

    Args:
        model: A model from `model.build_model`.
        vocab: The `Vocabulary` it was trained with.
        prime: Non-empty text of characters in `vocab`.
        length: Characters to generate.
        temperature: Positive float; lower is more conservative.
        seed: Int seed of the draws.
    """
    step = tf.function(lambda inputs: model(inputs, training=False))
    units = model.inputs[1].shape[-1]
    states = [tf.zeros((1, units)) for _ in range(_state_count(model))]
    ids = tf.constant(vocab.encode(prime)[None, :])  # (1, len(prime))
    rng = np.random.default_rng(seed)
    generated = []
    for _ in range(length):
        outputs = step([ids] + states)
        logits = outputs[0][0, -1].numpy().astype(np.float64)  # (V,)
        states = [tf.cast(s, tf.float32) for s in outputs[1:]]
        logits[OOV_ID] = -np.inf
        scaled = (logits - logits.max()) / temperature
        probs = np.exp(scaled)
        probs /= probs.sum()
        next_id = int(rng.choice(len(probs), p=probs))
        generated.append(next_id)
        ids = tf.constant([[next_id]], dtype=tf.int32)
    return prime + vocab.decode(generated)
