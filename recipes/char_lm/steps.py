"""The distributed train and evaluation steps (tf.function + strategy.run).

Each replica computes its share of the global mean loss (its sum divided by
the number of target characters of the *global* batch), so that summing over
replicas gives the mean; gradients are summed over replicas the same way.
"""

import keras
import tensorflow as tf

# Static loss scale used only under mixed_float16 (GPU), where small
# gradients would underflow float16; bfloat16 (CPU, TPU) needs none.
FLOAT16_LOSS_SCALE = 1024.0


def _reset_states(states, reset, stateful):
    """Zeros for non-stateful runs; carried states zeroed where reset."""
    if not stateful:
        return [tf.zeros_like(s) for s in states]
    keep = 1.0 - tf.cast(reset, states[0].dtype)[:, None]  # (B, 1)
    return [s * keep for s in states]


def _float32_states(states):
    """States as carried between steps: float32 (bfloat16 under mixed
    precision would round the state each window), without gradient."""
    return [tf.stop_gradient(tf.cast(s, tf.float32)) for s in states]


def make_train_step(strategy, model, optimizer, step, config, loss_scale):
    """Returns train_step(batch, states) -> (loss, grad_norm, new_states).

    `batch` is a distributed batch of dicts (inputs, targets, reset);
    `states` the per-replica LSTM states. The step clips the global gradient
    norm, applies Adam and increments `step`.
    """
    num_replicas = strategy.num_replicas_in_sync
    targets_per_step = float(config.batch_size * config.seq_len)

    def replica_step(batch, states):
        states = _reset_states(states, batch["reset"], config.stateful)
        with tf.GradientTape() as tape:
            outputs = model([batch["inputs"]] + states, training=True)
            xent = keras.losses.sparse_categorical_crossentropy(
                batch["targets"], outputs[0], from_logits=True
            )  # (B_replica, T)
            loss = tf.reduce_sum(xent) / targets_per_step
            scaled_loss = loss * loss_scale
        variables = model.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        grads = [tf.convert_to_tensor(g) / loss_scale for g in grads]
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        grads, grad_norm = tf.clip_by_global_norm(grads, config.clip_norm)
        # Keras' apply_gradients sums the gradients over replicas once more;
        # each replica hands it an equal share of the (identical) clipped sum.
        optimizer.apply_gradients(
            zip([g / num_replicas for g in grads], variables)
        )
        return loss, grad_norm, _float32_states(outputs[1:])

    @tf.function
    def train_step(batch, states):
        loss, grad_norm, new_states = strategy.run(
            replica_step, args=(batch, states)
        )
        step.assign_add(1)
        sum_ = tf.distribute.ReduceOp.SUM
        return (
            strategy.reduce(sum_, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.MEAN, grad_norm, axis=None),
            new_states,
        )

    return train_step


def make_eval_step(strategy, model, config):
    """Returns eval_step(batch, states) -> (sum of nats, characters, states)."""

    def replica_step(batch, states):
        states = _reset_states(states, batch["reset"], config.stateful)
        outputs = model([batch["inputs"]] + states, training=False)
        xent = keras.losses.sparse_categorical_crossentropy(
            batch["targets"], outputs[0], from_logits=True
        )  # (B_replica, T)
        weights = batch["weights"]
        return (tf.reduce_sum(xent * weights), tf.reduce_sum(weights),
                _float32_states(outputs[1:]))

    @tf.function
    def eval_step(batch, states):
        nats, chars, new_states = strategy.run(replica_step, args=(batch, states))
        sum_ = tf.distribute.ReduceOp.SUM
        return (
            strategy.reduce(sum_, nats, axis=None),
            strategy.reduce(sum_, chars, axis=None),
            new_states,
        )

    return eval_step


def distribute(strategy, make_dataset):
    """Distributes a dataset of global batches (dicts) over all replicas.

    Replica r of the run (on any worker) gets rows [r * rows, (r + 1) *
    rows) of every global batch, rows = batch / replicas: the same split
    that `scatter_states` and `gather_states` use, so a run on N workers
    reads exactly the batches a single process reads. Every worker computes
    the global batches (cheap here) and keeps its replicas' rows.
    """

    def dataset_fn(context):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local  # First replica of this worker.

        def local_rows(batch):
            def split(value):
                rows = value.shape[0] // context.num_replicas_in_sync
                mine = value[first * rows : (first + local) * rows]
                return tf.reshape(mine, [local, rows] + value.shape[1:].as_list())

            return tf.nest.map_structure(split, batch)

        return make_dataset().map(local_rows).unbatch()

    return strategy.distribute_datasets_from_function(dataset_fn)


def zero_states(strategy, config):
    """Per-replica all-zero LSTM states for the per-replica batch."""
    rows = config.batch_size // strategy.num_replicas_in_sync
    return [
        strategy.experimental_distribute_values_from_function(
            lambda _: tf.zeros((rows, config.units)))
        for _ in range(2 * config.layers)
    ]


def gather_states(strategy, states):
    """The states of all replicas, on all workers, as one (2 * layers, batch,
    units) array (a collective op under multi-worker: every worker calls it)."""
    return tf.stack([strategy.gather(s, axis=0) for s in states])


def scatter_states(strategy, stacked):
    """Inverse of `gather_states`: replica r gets its block of batch rows."""
    rows = stacked.shape[1] // strategy.num_replicas_in_sync

    def block(index):
        def value_fn(context):
            r = context.replica_id_in_sync_group
            return stacked[index, r * rows : (r + 1) * rows]

        return strategy.experimental_distribute_values_from_function(value_fn)

    return [block(index) for index in range(stacked.shape[0])]
