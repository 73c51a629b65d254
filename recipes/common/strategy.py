"""tf.distribute strategy and mixed-precision setup shared by the recipes."""

import keras
import tensorflow as tf

from recipes.common.errors import UsageError

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name, tpu_address=""):
    """Returns the tf.distribute strategy called `name` (see STRATEGIES).

    default: the current single-device strategy; mirrored: all local GPUs, or
    all logical CPUs; multi_worker: MultiWorkerMirroredStrategy configured by
    the TF_CONFIG environment variable; tpu: a TPU cluster at `tpu_address`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=tpu_address
            )
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise UsageError(
                f"--strategy=tpu needs a reachable TPU; none was found "
                f"({error}). Received: tpu_address={tpu_address!r}"
            ) from error
        return tf.distribute.TPUStrategy(resolver)
    raise UsageError(
        f"--strategy must be one of {', '.join(STRATEGIES)}. "
        f"Received: strategy={name!r}"
    )


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (before TF starts).

    Lets MirroredStrategy be exercised on a machine without GPUs.
    """
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) >= num_devices:
        return
    tf.config.set_logical_device_configuration(
        cpus[0],
        [tf.config.LogicalDeviceConfiguration()] * num_devices,
    )


def set_precision(mixed):
    """Sets the global Keras dtype policy and returns its name.

    Mixed precision computes in float16 on GPUs and in bfloat16 elsewhere
    (CPUs and TPUs handle bfloat16 natively), keeping float32 variables.
    """
    if not mixed:
        policy = "float32"
    elif tf.config.list_physical_devices("GPU"):
        policy = "mixed_float16"
    else:
        policy = "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy
