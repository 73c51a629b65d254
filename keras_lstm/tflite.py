"""TFLite / LiteRT conversion of models with `keras_lstm` layers, and what to check.

TensorFlow's default converter turns each `keras_lstm.LSTM` into one fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op (see `keras_lstm.export_graph`). With the
batch size left open (``keras.Input(shape=...)``, plain ``model.export``) the
op keeps states of batch 1, so the .tflite runs one sequence at a time; a
fixed batch size (any) takes that batch. `convert` fixes it for you:

    content = keras_lstm.tflite.convert(model, batch_size=1)
    open("model.tflite", "wb").write(content)

`tf.lite.TFLiteConverter.from_keras_model(model)` gives the same ops for a
model built on ``keras.Input(batch_shape=(1, ...))``, with one difference:
the converter sets the fused op's ``cell_clip`` to 10, so TFLite clips the
cell state to [-10, 10] where Keras does not (`without_cell_clip` undoes it;
`convert` applies it).
"""

import keras
import tensorflow as tf


def fixed_batch(model, batch_size):
    """`model` behind inputs of batch size `batch_size` (same weights).

    TFLite's fused LSTM op takes one batch size, and a Keras model usually
    leaves it open (``keras.Input(shape=...)``), which converts for batch 1.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive int. Received: batch_size={batch_size!r}"
        )
    inputs = [
        keras.Input(batch_shape=(batch_size, *spec.shape[1:]), dtype=spec.dtype,
                    name=spec.name)
        for spec in model.inputs
    ]
    outputs = model(inputs if len(inputs) > 1 else inputs[0])
    return keras.Model(inputs, outputs, name=f"{model.name}_batch_{batch_size}")


def convert(model, batch_size=1, quantize=False):
    """Converts a Keras model to a TFLite flatbuffer (bytes).

    Args:
        model: A functional or sequential `keras.Model`.
        batch_size: The batch size the converted model takes (the fused
            LSTM op takes one), or None to keep the model's own (an open
            one converts for batch 1).
        quantize: Dynamic-range quantization: weights stored as int8,
            activations computed in float (``tf.lite.Optimize.DEFAULT``).
    """
    if batch_size is not None:
        model = fixed_batch(model, batch_size)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return without_cell_clip(converter.convert())


def without_cell_clip(content):
    """`content` with the fused LSTM ops' cell-state clipping turned off.

    TensorFlow's converter writes ``cell_clip=10`` into every
    UNIDIRECTIONAL_SEQUENCE_LSTM op it makes from a Keras LSTM; Keras never
    clips, so a cell state beyond ±10 (common in trained language models)
    would give other outputs. 0 means no clipping.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python import util

    model = util._convert_model_from_bytearray_to_object(bytearray(content))
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if isinstance(op.builtinOptions,
                          schema.UnidirectionalSequenceLSTMOptionsT):
                op.builtinOptions.cellClip = 0.0
    return bytes(util._convert_model_from_object_to_bytearray(model))


def _interpreter_module():
    """``ai_edge_litert.interpreter`` (LiteRT), else TensorFlow's ``tf.lite``."""
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:  # pragma: no cover - depends on the environment.
        return tf.lite
    return litert


def interpreter(content, num_threads=None, delegates=True):
    """A LiteRT interpreter for `content`, tensors allocated.

    ``delegates=False`` keeps XNNPACK from taking over ops, so that
    `_get_ops_details` lists the model's own ops.
    """
    module = _interpreter_module()
    resolver = module.OpResolverType.AUTO
    if not delegates:
        resolver = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    runner = module.Interpreter(
        model_content=content, num_threads=num_threads,
        experimental_op_resolver_type=resolver,
    )
    runner.allocate_tensors()
    return runner


def op_names(content):
    """The op names of a TFLite model, in execution order."""
    details = interpreter(content, delegates=False)._get_ops_details()
    return [op["op_name"] for op in details]
