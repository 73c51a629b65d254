"""Text loading, the train/validation split and the tf.data pipelines.

The training batches are a pure function of (seed, step): batch `s` is
computed from the step number alone, so the data position is the step, and a
run resumed at step s reads exactly what an uninterrupted run reads there.

Two layouts, both (batch, seq_len) windows of ids with targets shifted by one:

* shuffled (default): window w of the infinite stream lies in epoch
  w // n; each epoch visits the n non-overlapping windows in a new random
  order, starting at a new random offset.
* stateful (--stateful): each batch row reads its own contiguous stretch of
  the text, one window per step, so the LSTM state at the end of a window is
  the right initial state of the row's next window (truncated BPTT). Rows are
  re-laid at a new random offset every epoch and the state is reset then.
"""

import os

import numpy as np
import tensorflow as tf

from recipes.common import tfds_access
from recipes.common.errors import UsageError


def read_text_file(path):
    """Returns the UTF-8 text of `path`; a UsageError if missing or not UTF-8."""
    if not os.path.isfile(path):
        raise UsageError(
            f"--text_file must be an existing UTF-8 text file; it was not "
            f"found. Received: text_file={path!r}"
        )
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"--text_file must be UTF-8 text, but the byte at offset {error.start} "
            f"(0x{raw[error.start]:02x}) is not valid UTF-8 ({error.reason}). "
            f"Received: text_file={path!r}"
        ) from None


def load_tfds_text(name, data_dir=""):
    """Returns the whole text of the TFDS dataset `name` (all splits joined).

    TFDS's `tiny_shakespeare` cuts the corpus 90/5/5 into train, validation
    and test; joining them in that order gives back the corpus, which is then
    split exactly like a `--text_file`.

    Raises:
        UsageError: the dataset could not be loaded (e.g. offline); the
            message names --text_file and --data_dir as the ways out.
    """
    import tensorflow_datasets as tfds  # Imported only when used: slow.

    way_out = (f"pass --text_file=PATH to train on a local UTF-8 text file, or "
               f"--data_dir=DIR where the dataset is already prepared. "
               f"Received: data_dir={data_dir!r}")
    # Offline, tfds.load retries its download for minutes before failing.
    if not tfds_access.can_load(name, data_dir):
        raise UsageError(
            f"could not load the TFDS dataset {name!r}: it is not prepared in "
            f"the TFDS data directory and the internet is unreachable; {way_out}")
    try:
        splits = tfds.load(
            name,
            split=["train", "validation", "test"],
            data_dir=data_dir or None,
        )
        parts = [
            example["text"].numpy().decode("utf-8")
            for split in splits
            for example in split
        ]
    except Exception as error:  # noqa: BLE001 - any failure means "unavailable".
        raise UsageError(
            f"could not load the TFDS dataset {name!r} ({type(error).__name__}: "
            f"{str(error)[:200]}). Without internet access, {way_out}"
        ) from None
    return "".join(parts)


def split_text(text, validation_fraction, seq_len, source):
    """Splits `text` into (train, validation), the validation part last.

    Both parts must hold at least seq_len + 1 characters (one window and its
    next-character targets).
    """
    if not text:
        raise UsageError(f"the training text is empty. Received: {source}")
    if len(text) < seq_len + 1:
        raise UsageError(
            f"the text must be at least seq_len + 1 = {seq_len + 1} characters "
            f"long. Received: {len(text)} characters from {source}, "
            f"seq_len={seq_len}"
        )
    cut = int(len(text) * (1.0 - validation_fraction))  # As nanoGPT cuts.
    train, validation = text[:cut], text[cut:]
    for part, piece in (("training", train), ("validation", validation)):
        if len(piece) < seq_len + 1:
            raise UsageError(
                f"the {part} part of the text must be at least seq_len + 1 = "
                f"{seq_len + 1} characters long (text of {len(text)} characters, "
                f"validation_fraction={validation_fraction}). Received: "
                f"{len(piece)} characters; use a longer text, a smaller "
                f"--seq_len or another --validation_fraction"
            )
    return train, validation


def _index_shuffle(index, seed, max_index):
    """Position of `index` in the permutation of [0, max_index] of `seed`.

    The raw op, because the tf.random.experimental wrapper mis-pads batched
    seeds; `seed` is (..., 3) int64, one seed per index.
    """
    return tf.raw_ops.RandomIndexShuffle(
        index=index, seed=seed, max_index=tf.constant(max_index, tf.int64),
        rounds=4)


class TrainingStream:
    """Computes the training batch of any step from (ids, seed, step).

    Args:
        ids: int32 array, the encoded training text.
        seq_len: Characters per window.
        batch_size: Windows per (global) batch.
        seed: Data-order seed.
        stateful: Use the stateful layout (see the module docstring).
    """

    def __init__(self, ids, seq_len, batch_size, seed, stateful):
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = seed
        self.stateful = stateful
        usable = len(ids) - 1  # Positions that have a next-character target.
        if stateful:
            # Each row gets row_len characters, a whole number of windows.
            self.row_len = usable // batch_size // seq_len * seq_len
            if self.row_len == 0:
                raise UsageError(
                    f"--stateful needs at least batch_size * seq_len + 1 = "
                    f"{batch_size * seq_len + 1} training characters "
                    "(a smaller --batch_size or --seq_len, or --nostateful, "
                    f"needs fewer). Received: {len(ids)} characters"
                )
            self.steps_per_epoch = self.row_len // seq_len
            spare = usable - batch_size * self.row_len
        else:
            self.num_windows = usable // seq_len
            self.steps_per_epoch = max(1, self.num_windows // batch_size)
            spare = usable - self.num_windows * seq_len
        self.spare = spare  # Room for the per-epoch random offset.
        self.ids = tf.constant(ids, dtype=tf.int32)

    def _offset(self, epoch):
        """A pseudo-random offset in [0, spare] for each epoch."""
        seed = tf.stack([tf.fill(tf.shape(epoch), tf.cast(self.seed, tf.int64)),
                         epoch, tf.ones_like(epoch)], axis=-1)
        return _index_shuffle(tf.zeros_like(epoch), seed, self.spare)

    def _window_starts(self, step):
        """(batch,) start positions of the windows of `step`."""
        step = tf.cast(step, tf.int64)
        rows = tf.range(self.batch_size, dtype=tf.int64)
        if self.stateful:
            epoch = step // self.steps_per_epoch
            k = step % self.steps_per_epoch
            return self._offset(epoch) + rows * self.row_len + k * self.seq_len
        window = step * self.batch_size + rows  # Index in the infinite stream.
        epoch = window // self.num_windows
        position = window % self.num_windows
        seed = tf.stack([tf.fill(tf.shape(epoch), tf.cast(self.seed, tf.int64)),
                         epoch, tf.zeros_like(epoch)], axis=-1)
        shuffled = _index_shuffle(position, seed, self.num_windows - 1)
        return self._offset(epoch) + shuffled * self.seq_len

    def batch(self, step):
        """The batch of `step`: dict of inputs, targets (batch, seq_len), reset.

        `reset` (batch,) is True on the first step of a stateful epoch, where
        the carried state must start again from zeros.
        """
        starts = self._window_starts(step)
        offsets = tf.range(self.seq_len + 1, dtype=tf.int64)
        windows = tf.gather(self.ids, starts[:, None] + offsets[None, :])
        first = tf.equal(tf.cast(step, tf.int64) % self.steps_per_epoch, 0)
        return {
            "inputs": windows[:, :-1],  # (B, T)
            "targets": windows[:, 1:],  # (B, T)
            "reset": tf.fill([self.batch_size], first & self.stateful),
        }

    def dataset(self, start_step, end_step):
        """The batches of steps [start_step, end_step), in order."""
        return (
            tf.data.Dataset.range(start_step, end_step)
            .map(self.batch, num_parallel_calls=tf.data.AUTOTUNE,
                 deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )


# Windows of text each stateful evaluation row reads, unscored, before its
# own stretch: 200 characters of Tiny Shakespeare score as one unbroken
# stream does (1.4320 against 1.4320 nats/char; from zero state, 1.4358).
EVALUATION_CONTEXT_WINDOWS = 2


def evaluation_dataset(ids, seq_len, batch_size, stateful,
                       context_windows=EVALUATION_CONTEXT_WINDOWS):
    """Batches covering every validation character once, padded with weight 0.

    Returns dicts of inputs, targets, weights (batch, seq_len) and reset
    (batch,). Shuffled-layout models see independent windows (as in
    training). Stateful ones see each row's windows in order, the state
    carried from the first batch (reset=True) on: row r scores its own
    contiguous stretch of the text, and first reads `context_windows *
    seq_len` characters before it (fewer near the text's start) with weight
    0, so that its first characters are predicted from context, as in one
    unbroken stream, not from a zero state.
    """
    usable = len(ids) - 1
    if stateful:
        return _stateful_evaluation_dataset(
            ids, seq_len, batch_size, context_windows * seq_len)
    rows = -(-usable // seq_len)
    rows = -(-rows // batch_size) * batch_size
    padding = rows * seq_len - usable

    def blocks(a):  # (rows * seq_len,) -> (batches, batch_size, seq_len)
        return np.pad(a, (0, padding)).reshape(-1, batch_size, seq_len)

    return _as_dataset(blocks(ids[:-1]), blocks(ids[1:]),
                       blocks(np.ones(usable, np.float32)))


def _stateful_evaluation_dataset(ids, seq_len, batch_size, context):
    """The stateful layout of `evaluation_dataset`, `context` a multiple of
    seq_len."""
    usable = len(ids) - 1
    stretch = -(-usable // batch_size)  # Scored characters per row.
    row_len = -(-(context + stretch) // seq_len) * seq_len
    first_scored = np.arange(batch_size) * stretch  # (rows,)
    first_read = np.maximum(first_scored - context, 0)
    positions = first_read[:, None] + np.arange(row_len)[None, :]  # (rows, row_len)
    in_text = positions < usable
    scored = (in_text & (positions >= first_scored[:, None])
              & (positions < first_scored[:, None] + stretch))
    safe = np.where(in_text, positions, 0)
    inputs = np.where(in_text, ids[safe], 0)
    targets = np.where(in_text, ids[safe + 1], 0)

    def blocks(a):  # (rows, row_len) -> (windows, rows, seq_len): window k of every row.
        return a.reshape(batch_size, -1, seq_len).transpose(1, 0, 2)

    return _as_dataset(blocks(inputs), blocks(targets), blocks(scored))


def _as_dataset(inputs, targets, weights):
    """A dataset of (batches, batch_size, seq_len) arrays; state reset on the first."""
    reset = np.zeros(inputs.shape[:2], bool)
    reset[0] = True
    return tf.data.Dataset.from_tensor_slices({
        "inputs": inputs.astype(np.int32),
        "targets": targets.astype(np.int32),
        "weights": weights.astype(np.float32),
        "reset": reset,
    })
