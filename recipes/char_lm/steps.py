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


def zero_states(strategy, config):
    """Per-replica all-zero LSTM states for the per-replica batch."""
    rows = config.batch_size // strategy.num_replicas_in_sync
    return strategy.experimental_distribute_values_from_function(
        lambda _: [tf.zeros((rows, config.units)) for _ in range(2 * config.layers)]
    )


def gather_states(strategy, states):
    """The per-replica states joined into one (2 * layers, batch, units) array."""
    per_replica = [
        tf.stack(list(s)) for s in strategy.experimental_local_results(states)
    ]
    return tf.concat(per_replica, axis=1)


def scatter_states(strategy, stacked):
    """Inverse of `gather_states`: replica r gets its block of batch rows."""
    rows = stacked.shape[1] // strategy.num_replicas_in_sync

    def value_fn(context):
        r = context.replica_id_in_sync_group
        return list(tf.unstack(stacked[:, r * rows : (r + 1) * rows]))

    return strategy.experimental_distribute_values_from_function(value_fn)
