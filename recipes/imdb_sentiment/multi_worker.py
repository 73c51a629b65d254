"""Two workarounds that let Keras 3's fit and evaluate run on several workers.

Both are in keras/src/backend/tensorflow/trainer.py (Keras 3.15, unchanged
on Keras's master in 2026-08), and only hit `MultiWorkerMirroredStrategy`:

1. Before training or evaluating, `_maybe_symbolic_build` takes the first
   distributed batch and averages it over all replicas, only to learn its
   shapes and dtypes. Across workers that average is a collective op over a
   tuple of batches, and fails: "Attempt to convert a value (PerReplica:...)
   with an unsupported type" (keras-team/keras#20585, open); with batches of
   different lengths on two workers it would not be defined anyway (reading
   it also costs an extra pass over the start of the dataset; the order does
   not change, each epoch's is fixed: input_pipeline.epoch_seed). The model
   is built from the dataset's element spec instead: same shapes and
   dtypes, nothing read.
2. After each step, `reduce_per_replica` averages the per-replica logs with
   `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar logs
   ("Invalid reduction dimension 0 for input with 0 dimensions"). The steps
   return each log as a vector of one element, which that reduction averages
   to the scalar Keras expects. (The epoch's figures are read from the
   metrics afterwards, summed over all workers: exact.)

`patch_for_multi_worker(model)` applies both to one model.
"""

import types

import tensorflow as tf


def _build_from_element_spec(model, iterator=None, data_batch=None):
    """`_maybe_symbolic_build` from the dataset's spec, not from a batch."""
    if iterator is not None:
        # TensorSpecs have the shape and dtype that _symbolic_build reads.
        data_batch = iterator.data_adapter.get_tf_dataset().element_spec
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=data_batch)


def _logs_as_vectors(step):
    """`step` (train_step or test_step) returning logs of shape (1,)."""

    def wrapped(data):
        return tf.nest.map_structure(lambda log: tf.reshape(log, [1]), step(data))

    return wrapped


def patch_for_multi_worker(model):
    """Patches `model` under MultiWorkerMirroredStrategy; otherwise no-op."""
    if isinstance(model.distribute_strategy,
                  tf.distribute.MultiWorkerMirroredStrategy):
        model._maybe_symbolic_build = types.MethodType(_build_from_element_spec, model)
        model.train_step = _logs_as_vectors(model.train_step)
        model.test_step = _logs_as_vectors(model.test_step)
