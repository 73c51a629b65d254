"""Reading reviews for the IMDB recipe: aclImdb folders, CSV files, TFDS, and their errors."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from recipes.common import tfds_access
from recipes.common.errors import UsageError
from recipes.imdb_sentiment import sources
from recipes.imdb_sentiment.config import Config
from imdb_data import write_acl_imdb as write_tree


def numbered_review(split, label, index, rng):
    """Review text that names its split, label and index."""
    del rng
    return f"{split} {label} review {index}<br />end"


def write_acl_imdb(root, reviews_per_folder=3):
    """A tiny aclImdb tree; review text names its split, label and index."""
    return write_tree(root, reviews_per_folder, review=numbered_review)


def write_csv(path, rows, header="review,sentiment"):
    with open(path, "w") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(row + "\n")
    return str(path)


def test_acl_imdb_reads_every_review_with_its_label(tmp_path):
    splits = sources.read_acl_imdb(write_acl_imdb(tmp_path / "aclImdb"))
    assert sorted(splits) == ["test", "train"]
    for split, reviews in splits.items():
        assert len(reviews) == 6
        for text, label in zip(reviews.texts, reviews.labels):
            assert text.startswith(f"{split} {'pos' if label == 1 else 'neg'} ")
        assert reviews.labels.dtype == np.int32


def test_acl_imdb_missing_folder_names_the_layout(tmp_path):
    root = write_acl_imdb(tmp_path / "aclImdb")
    os.rename(os.path.join(root, "train", "pos"), os.path.join(root, "train", "positive"))
    with pytest.raises(UsageError, match=r"missing: train/pos\. Received: data_dir="):
        sources.read_acl_imdb(root)


def test_acl_imdb_missing_path(tmp_path):
    with pytest.raises(UsageError, match="existing aclImdb folder. Received: data_dir="):
        sources.read_acl_imdb(str(tmp_path / "nowhere"))


def test_acl_imdb_empty_folder_is_an_empty_split(tmp_path):
    root = write_acl_imdb(tmp_path / "aclImdb")
    for name in os.listdir(os.path.join(root, "test", "neg")):
        os.remove(os.path.join(root, "test", "neg", name))
    with pytest.raises(UsageError, match="test/neg holds no .txt reviews"):
        sources.read_acl_imdb(root)


def test_csv_with_split_column_keeps_rows_in_their_split(tmp_path):
    path = write_csv(
        tmp_path / "r.csv",
        ['"good, really",positive,train', "bad,negative,test",
         "fine,POS,test", '"dull ""film""",0,train'],
        header="Review,Sentiment,Split",
    )
    splits = sources.read_csv(path, seed=0)
    assert list(splits["train"].texts) == ["good, really", 'dull "film"']
    assert list(splits["train"].labels) == [1, 0]
    assert list(splits["test"].texts) == ["bad", "fine"]
    assert list(splits["test"].labels) == [0, 1]


def test_csv_without_split_column_is_split_in_half_by_the_seed(tmp_path):
    rows = [f"review {i},{'positive' if i % 2 else 'negative'}" for i in range(10)]
    path = write_csv(tmp_path / "r.csv", rows)
    first = sources.read_csv(path, seed=3)
    again = sources.read_csv(path, seed=3)
    other = sources.read_csv(path, seed=4)
    assert len(first["train"]) == len(first["test"]) == 5
    assert list(first["train"].texts) == list(again["train"].texts)
    assert list(first["train"].texts) != list(other["train"].texts)
    together = sorted(list(first["train"].texts) + list(first["test"].texts))
    assert together == sorted(f"review {i}" for i in range(10))
    for text, label in zip(first["test"].texts, first["test"].labels):
        assert label == int(text.split()[1]) % 2


def test_csv_without_needed_columns(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["nice,1"], header="text,label")
    with pytest.raises(UsageError, match=r"missing: review, sentiment\. Received: columns=\['text', 'label'\]"):
        sources.read_csv(path, seed=0)


def test_csv_unknown_label_names_the_line(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["nice,positive", "meh,neutral"])
    with pytest.raises(UsageError, match="line 3 has an unknown sentiment.*Received: sentiment='neutral'"):
        sources.read_csv(path, seed=0)


def test_csv_unknown_split(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["nice,positive,dev"], header="review,sentiment,split")
    with pytest.raises(UsageError, match="line 2 has an unknown split.*Received: split='dev'"):
        sources.read_csv(path, seed=0)


def test_csv_missing_file(tmp_path):
    with pytest.raises(UsageError, match="existing file. Received: csv_file="):
        sources.read_csv(str(tmp_path / "none.csv"), seed=0)


def test_tfds_reads_mock_imdb_reviews(monkeypatch):
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    with tfds.testing.mock_data(num_examples=6):
        splits = sources.read_tfds()
    assert {name: len(r) for name, r in splits.items()} == {"train": 6, "test": 6}
    assert all(isinstance(text, str) for text in splits["train"].texts)
    assert set(splits["train"].labels) <= {0, 1}


def test_tfds_unreachable_names_the_local_flags(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'ai.stanford.edu'")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    with pytest.raises(UsageError) as error:
        sources.read_reviews(Config())
    message = str(error.value)
    assert "could not load the TFDS dataset imdb_reviews" in message
    assert "--data_dir" in message and "--csv_file" in message
    assert "ConnectionError: Failed to resolve" in message


def test_tfds_offline_fails_fast_without_downloading(monkeypatch, tmp_path):
    def must_not_download(*args, **kwargs):
        raise AssertionError("tfds.load called although offline")

    monkeypatch.setattr(tfds, "load", must_not_download)
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: False)
    with pytest.raises(UsageError) as error:
        sources.read_reviews(Config(tfds_data_dir=str(tmp_path)))
    message = str(error.value)
    assert "imdb_reviews (it is not prepared" in message
    assert "internet is unreachable" in message
    assert "--data_dir=PATH/aclImdb" in message and "--csv_file=PATH.csv" in message
    assert f"Received: tfds_data_dir={str(tmp_path)!r}" in message


def test_data_dir_and_csv_file_together():
    with pytest.raises(UsageError, match="at most one of --data_dir and --csv_file"):
        sources.read_reviews(Config(data_dir="a", csv_file="b"))
