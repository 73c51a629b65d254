"""char_lm vocabulary, text loading and input pipelines (no training)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from recipes.char_lm import input_pipeline
from recipes.char_lm.vocab import OOV_ID
from recipes.char_lm.vocab import OOV_TEXT
from recipes.char_lm.vocab import Vocabulary
from recipes.common import tfds_access
from recipes.common.errors import UsageError

TEXT = "To be, or not to be: that is the question.\n" * 20


def test_encode_decode_round_trip():
    vocab = Vocabulary.from_text(TEXT)
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int32 and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT
    assert vocab.size == len(set(TEXT)) + 1
    assert OOV_ID not in ids


def test_unknown_characters_map_to_oov_and_are_reported():
    vocab = Vocabulary.from_text("abc")
    np.testing.assert_array_equal(vocab.encode("aZbé"), [1, OOV_ID, 2, OOV_ID])
    assert vocab.decode(vocab.encode("aZ")) == "a" + OOV_TEXT
    assert vocab.unknown_chars("abZ?é") == ["?", "Z", "é"]


def test_vocabulary_save_load(tmp_path):
    vocab = Vocabulary.from_text("héllo\nwörld")
    vocab.save(str(tmp_path))
    loaded = Vocabulary.load(str(tmp_path))
    assert loaded.chars == vocab.chars
    np.testing.assert_array_equal(loaded.encode("wörld"), vocab.encode("wörld"))


def test_read_text_file_missing(tmp_path):
    path = str(tmp_path / "nope.txt")
    with pytest.raises(UsageError, match="was not found.*text_file=.*nope.txt"):
        input_pipeline.read_text_file(path)


def test_read_text_file_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("utf-8") + b" na\xefve")
    with pytest.raises(UsageError,
                       match=r"byte at offset 16 \(0xef\) is not valid UTF-8"):
        input_pipeline.read_text_file(str(path))


def test_split_text_keeps_the_end_for_validation():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, validation = input_pipeline.split_text(text, 0.1, 10, "test")
    assert train + validation == text
    assert len(validation) == 100


@pytest.mark.parametrize(
    "text, fraction, match",
    [
        ("", 0.1, "the training text is empty"),
        ("abcdefghij", 0.1, "at least seq_len \\+ 1 = 17 .*Received: 10 characters"),
        ("a" * 40, 0.1, "validation part .* Received: 4 characters"),
        ("a" * 40, 0.9, "training part .* Received: [34] characters"),
    ],
)
def test_split_text_errors(text, fraction, match):
    with pytest.raises(UsageError, match=match):
        input_pipeline.split_text(text, fraction, 16, "test")


def _batches(stream, steps):
    return [
        {k: v.numpy() for k, v in stream.batch(tf.constant(s)).items()}
        for s in steps
    ]


def test_shuffled_stream_targets_are_next_characters_and_epochs_cover_all():
    ids = np.arange(1, 102, dtype=np.int32)  # 101 ids: 10 windows of 10.
    stream = input_pipeline.TrainingStream(ids, 10, 5, seed=3, stateful=False)
    assert stream.num_windows == 10 and stream.spare == 0
    batches = _batches(stream, range(4))
    for batch in batches:
        np.testing.assert_array_equal(batch["targets"], batch["inputs"] + 1)
        # Windows are aligned to the grid of non-overlapping windows.
        assert set(batch["inputs"][:, 0] % 10) == {1}
    # Steps 0-1 are epoch 0, steps 2-3 epoch 1: each visits every window once.
    for epoch in (batches[:2], batches[2:]):
        starts = np.concatenate([b["inputs"][:, 0] for b in epoch])
        assert sorted(starts) == list(range(1, 101, 10))
    assert not np.array_equal(batches[0]["inputs"], batches[2]["inputs"])
    assert not any(b["reset"].any() for b in batches)


def test_stream_is_a_pure_function_of_seed_and_step():
    ids = np.random.default_rng(0).integers(1, 20, 5000).astype(np.int32)
    one = input_pipeline.TrainingStream(ids, 16, 8, seed=1, stateful=False)
    two = input_pipeline.TrainingStream(ids, 16, 8, seed=1, stateful=False)
    other = input_pipeline.TrainingStream(ids, 16, 8, seed=2, stateful=False)
    via_dataset = [
        b["inputs"].numpy() for b in one.dataset(5, 8)
    ]
    direct = [b["inputs"] for b in _batches(two, range(5, 8))]
    np.testing.assert_array_equal(via_dataset, direct)
    assert not np.array_equal(direct[0], _batches(other, [5])[0]["inputs"])


def test_stateful_stream_rows_continue_across_steps():
    ids = np.arange(1, 1002, dtype=np.int32)  # 1000 usable positions.
    stream = input_pipeline.TrainingStream(ids, 10, 4, seed=0, stateful=True)
    assert stream.row_len == 250 and stream.steps_per_epoch == 25
    first, second = _batches(stream, [0, 1])
    np.testing.assert_array_equal(second["inputs"], first["inputs"] + 10)
    np.testing.assert_array_equal(first["targets"], first["inputs"] + 1)
    assert first["reset"].all() and not second["reset"].any()
    assert _batches(stream, [25])[0]["reset"].all()  # New epoch.


def test_stateful_stream_needs_enough_text():
    with pytest.raises(UsageError, match="--stateful needs at least .* = 161"):
        input_pipeline.TrainingStream(
            np.ones(100, np.int32), 10, 16, seed=0, stateful=True)


@pytest.mark.parametrize("stateful", [False, True])
def test_evaluation_covers_every_character_once(stateful):
    ids = np.arange(1, 108, dtype=np.int32)  # 106 targets.
    batches = list(input_pipeline.evaluation_dataset(ids, 5, 4, stateful))
    targets, weights = [], []
    for batch in batches:
        assert batch["inputs"].shape == (4, 5)
        np.testing.assert_array_equal(
            batch["targets"].numpy() * batch["weights"].numpy(),
            (batch["inputs"].numpy() + 1) * batch["weights"].numpy())
        targets.append(batch["targets"].numpy()[batch["weights"].numpy() > 0])
        weights.append(batch["weights"].numpy().sum())
    assert sum(weights) == 106
    assert sorted(np.concatenate(targets)) == list(range(2, 108))
    if stateful:  # Row r's windows follow each other.
        np.testing.assert_array_equal(
            batches[1]["inputs"][0], batches[0]["inputs"][0] + 5)
        assert batches[0]["reset"].numpy().all()


def test_stateful_evaluation_rows_read_context_before_their_stretch():
    ids = np.arange(1, 108, dtype=np.int32)  # Position p holds p + 1; 106 targets.
    batches = list(input_pipeline.evaluation_dataset(
        ids, 5, 4, stateful=True, context_windows=2))
    inputs = np.concatenate([b["inputs"].numpy() for b in batches], axis=1)
    weights = np.concatenate([b["weights"].numpy() for b in batches], axis=1)
    stretch = 27  # ceil(106 / 4) scored characters per row.
    for row in range(4):
        first_scored = row * stretch
        first_read = max(first_scored - 10, 0)  # 2 windows of 5 before it.
        assert inputs[row, 0] == first_read + 1
        # Reading is contiguous up to the end of the text, then padding.
        readable = min(inputs.shape[1], 106 - first_read)
        np.testing.assert_array_equal(
            inputs[row, :readable], np.arange(first_read, first_read + readable) + 1)
        np.testing.assert_array_equal(
            inputs[row][weights[row] > 0],
            np.arange(first_scored, min(first_scored + stretch, 106)) + 1)
    assert batches[0]["reset"].numpy().all()
    assert not any(b["reset"].numpy().any() for b in batches[1:])


def test_load_tfds_text_with_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    with tfds.testing.mock_data(num_examples=2):
        text = input_pipeline.load_tfds_text("tiny_shakespeare")
    assert isinstance(text, str) and len(text) > 20


def test_load_tfds_text_offline_names_text_file(monkeypatch):
    import tensorflow_datasets as tfds

    def unreachable(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'")

    monkeypatch.setattr(tfds, "load", unreachable)
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    with pytest.raises(UsageError, match="could not load the TFDS dataset "
                       "'tiny_shakespeare' \\(ConnectionError.*--text_file=PATH"):
        input_pipeline.load_tfds_text("tiny_shakespeare")


SHAKESPEARE = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                           "data", "tinyshakespeare.txt")


@pytest.mark.skipif(not os.path.exists(SHAKESPEARE),
                    reason="../shared/data/tinyshakespeare.txt is absent")
def test_tiny_shakespeare_split_and_round_trip():
    text = input_pipeline.read_text_file(SHAKESPEARE)
    train, validation = input_pipeline.split_text(text, 0.1, 100, "file")
    assert len(text) == 1_115_394
    assert len(validation) == 111_540  # The last 10 %, nanoGPT's split.
    vocab = Vocabulary.from_text(train)
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.size == 66  # 65 characters + the OOV id.


def test_load_tfds_text_offline_fails_fast_without_downloading(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    def must_not_download(*args, **kwargs):
        raise AssertionError("tfds.load called although offline")

    monkeypatch.setattr(tfds, "load", must_not_download)
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: False)
    with pytest.raises(UsageError, match="not prepared .* internet is "
                       "unreachable; pass --text_file=PATH"):
        input_pipeline.load_tfds_text("tiny_shakespeare", str(tmp_path))
