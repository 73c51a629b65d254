"""Exports a trained char LM as a one-step TFLite model, states in and out.

    python -m recipes.char_lm.export_tflite --model_dir=/tmp/char_lm

Writes model_dir/model_step.tflite: inputs ``ids`` (1, 1) int32 and the
states ``h_1, c_1, ..., h_L, c_L`` (1, units) float32; outputs, in order,
``output_0`` the logits (1, 1, vocab) and ``output_1...`` the new states in
the same order. Each LSTM layer is one fused UNIDIRECTIONAL_SEQUENCE_LSTM op.
`recipes.char_lm.tflite_sampler` runs it on the LiteRT interpreter.
"""

import os

from absl import app
from absl import flags

from recipes.common.errors import UsageError
from recipes.common.errors import run_and_report

FLAGS = flags.FLAGS

STEP_FILENAME = "model_step.tflite"


def one_step_model(model):
    """`model` (from `model.build_model`) behind (1, 1) ids and (1, units) states."""
    import keras

    inputs = [
        keras.Input(batch_shape=(1, 1) if index == 0 else (1, spec.shape[-1]),
                    dtype=spec.dtype, name=spec.name)
        for index, spec in enumerate(model.inputs)
    ]
    return keras.Model(inputs, model(inputs), name="char_lm_step")


def export(model_dir, quantize=False):
    """Writes model_dir/model_step.tflite; returns its bytes."""
    from keras_lstm import tflite
    from recipes.char_lm import generation

    model, _ = generation.load_run(model_dir)
    content = tflite.convert(one_step_model(model), batch_size=None, quantize=quantize)
    with open(os.path.join(model_dir, STEP_FILENAME), "wb") as f:
        f.write(content)
    return content


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    from keras_lstm import tflite

    content = export(FLAGS.model_dir, FLAGS.quantize)
    print(f"{os.path.join(FLAGS.model_dir, STEP_FILENAME)}: {len(content)} bytes, "
          f"ops {sorted(set(tflite.op_names(content)))}")


def _define_flags():
    """Flags of the command line (defined only when run as a script)."""
    flags.DEFINE_string("model_dir", None, "A finished training run (model.keras, vocab.json).")
    flags.mark_flag_as_required("model_dir")
    flags.DEFINE_bool("quantize", False, "Store the weights as int8 (dynamic-range quantization).")


if __name__ == "__main__":
    _define_flags()
    app.run(lambda argv: run_and_report(main, argv))
