"""Generates text with the one-step .tflite model on the LiteRT interpreter.

    python -m recipes.char_lm.export_tflite --model_dir=/tmp/char_lm
    python -m recipes.char_lm.tflite_sampler --model_dir=/tmp/char_lm \\
        --prime="ROMEO:" --length=500 --temperature=0.8 --seed=1

Prints the same text as `python -m recipes.char_lm.sample` with the same
flags: the prime goes in one character per invoke (the Keras sampler reads it
in one call; the states come out the same to float rounding) and every next
character is drawn by `generation.draw` from the same random stream.
"""

import os

from absl import app
from absl import flags

from recipes.common.errors import UsageError
from recipes.common.errors import run_and_report

FLAGS = flags.FLAGS


def generate(content, vocab, prime, length, temperature, seed):
    """`prime` and `length` characters drawn with the one-step model `content`."""
    import numpy as np

    from keras_lstm import tflite
    from recipes.char_lm import generation

    run = tflite.interpreter(content).get_signature_runner()
    inputs = run.get_input_details()  # {name: details}, names sorted
    # output_1, output_2, ... are the states in the model's order h_1, c_1, ...
    layers = (len(inputs) - 1) // 2
    state_names = [f"{kind}_{layer}" for layer in range(1, layers + 1)
                   for kind in ("h", "c")]
    states = {name: np.zeros(inputs[name]["shape"], np.float32)
              for name in state_names}
    rng = np.random.default_rng(seed)

    def step(char_id):
        outputs = run(ids=np.array([[char_id]], np.int32), **states)
        for index, name in enumerate(state_names):
            states[name] = outputs[f"output_{index + 1}"]
        return outputs["output_0"][0, -1]

    for char_id in vocab.encode(prime):
        logits = step(int(char_id))
    generated = []
    for _ in range(length):
        generated.append(generation.draw(logits, temperature, rng))
        logits = step(generated[-1])
    return prime + vocab.decode(generated)


def main(argv):
    del argv
    from recipes.char_lm import generation
    from recipes.char_lm.export_tflite import STEP_FILENAME
    from recipes.char_lm.vocab import Vocabulary

    path = os.path.join(FLAGS.model_dir, STEP_FILENAME)
    if not os.path.isfile(path):
        raise UsageError(
            f"--model_dir must hold {STEP_FILENAME} (python -m "
            f"recipes.char_lm.export_tflite writes it). Received: "
            f"model_dir={FLAGS.model_dir!r}")
    vocab = Vocabulary.load(FLAGS.model_dir)
    generation.check_prime(vocab, FLAGS.prime)
    with open(path, "rb") as f:
        content = f.read()
    print(generate(content, vocab, FLAGS.prime, FLAGS.length, FLAGS.temperature,
                   FLAGS.seed))


if __name__ == "__main__":
    # The same flags as `python -m recipes.char_lm.sample`, which defines them
    # on import (only here: a test process may hold other recipes' flags).
    from recipes.char_lm import sample  # noqa: F401
    app.run(lambda argv: run_and_report(main, argv))
