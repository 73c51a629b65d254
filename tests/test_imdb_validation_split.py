"""The IMDB recipe's validation split: whole movies held out (aclImdb urls files), else random."""

import dataclasses
import os

import numpy as np
import pytest

from recipes.common.errors import UsageError
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import input_pipeline
from recipes.imdb_sentiment import sources
from recipes.imdb_sentiment import train
from imdb_data import write_acl_imdb, write_movie_urls


def numbered_review(split, label, index, rng):
    del rng
    return f"{split} {label} {index}"


@pytest.fixture
def tree(tmp_path):
    """A 40-reviews-per-folder aclImdb tree with urls files (3 reviews per movie)."""
    root = write_acl_imdb(tmp_path / "aclImdb", per_folder=40, review=numbered_review)
    movies = write_movie_urls(root, per_folder=40, reviews_per_movie=3)
    return root, movies


def test_each_training_review_gets_the_movie_of_its_id_line(tree):
    root, movies = tree
    splits = sources.read_acl_imdb(root)
    assert splits["test"].movies is None
    train = splits["train"]
    assert len(train.movies) == len(train) == 80
    for text, movie in zip(train.texts, train.movies):
        _, label, index = text.split()
        assert movie == movies[(label, int(index))]


def test_by_movie_split_shares_no_movie_and_holds_out_about_the_fraction(tree):
    root, _ = tree
    train = sources.read_acl_imdb(root)["train"]
    for fraction in (0.1, 0.25, 0.5):
        for seed in range(5):
            rest, held_out = input_pipeline.split_validation_by_movie(
                train, fraction, seed)
            assert not set(rest.movies) & set(held_out.movies)
            assert sorted(rest.texts.tolist() + held_out.texts.tolist()) == sorted(
                train.texts.tolist())
            # Each movie has 6 reviews here (3 pos + 3 neg): within half a movie.
            assert abs(len(held_out) - fraction * len(train)) <= 3
            for text, label in zip(held_out.texts, held_out.labels):
                assert label == (1 if text.split()[1] == "pos" else 0)


def test_by_movie_split_is_deterministic_by_seed(tree):
    root, _ = tree
    train = sources.read_acl_imdb(root)["train"]
    first = input_pipeline.split_validation_by_movie(train, 0.25, seed=3)
    again = input_pipeline.split_validation_by_movie(train, 0.25, seed=3)
    other = input_pipeline.split_validation_by_movie(train, 0.25, seed=4)
    assert [s.texts.tolist() for s in first] == [s.texts.tolist() for s in again]
    assert set(first[1].movies) != set(other[1].movies)


def test_run_names_its_split(tree, tmp_path, capsys):
    root, _ = tree
    config = dataclasses.replace(config_lib.debug_config(), data_dir=root)
    splits, how = train.load_splits(config)
    assert how == "by_movie"
    assert "Validation split: by_movie" in train.describe_split(splits, how)
    for name in ("urls_pos.txt", "urls_neg.txt"):
        os.remove(os.path.join(root, "train", name))
    splits, how = train.load_splits(config)
    assert how == "random" and splits["train"].movies is None
    assert "Validation split: random" in train.describe_split(splits, how)


def test_only_one_urls_file_is_refused(tree):
    root, _ = tree
    os.remove(os.path.join(root, "train", "urls_neg.txt"))
    with pytest.raises(UsageError, match=r"must both be there, or neither .*"
                       r"found only train/urls_pos\.txt"):
        sources.read_acl_imdb(root)


def test_a_line_without_a_movie_url_is_named(tree):
    root, _ = tree
    path = os.path.join(root, "train", "urls_neg.txt")
    with open(path) as f:
        lines = f.readlines()
    lines[4] = "not a url\n"
    with open(path, "w") as f:
        f.writelines(lines)
    with pytest.raises(UsageError, match=r"line 5 of train/urls_neg\.txt holds no "
                       r"IMDb movie URL .* Received: 'not a url'"):
        sources.read_acl_imdb(root)


def test_a_urls_file_too_short_for_the_ids_is_refused(tree):
    root, _ = tree
    path = os.path.join(root, "train", "urls_pos.txt")
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(lines[:30])
    with pytest.raises(UsageError, match=r"has id 3\d, but train/urls_pos\.txt has "
                       r"only 30 lines"):
        sources.read_acl_imdb(root)


def test_a_review_not_named_by_id_is_refused_when_urls_exist(tree):
    root, _ = tree
    os.rename(os.path.join(root, "train", "pos", "7_1.txt"),
              os.path.join(root, "train", "pos", "seven.txt"))
    with pytest.raises(UsageError, match=r"train/pos/seven\.txt is not named "
                       r"\{id\}_\{rating\}\.txt"):
        sources.read_acl_imdb(root)


def test_tiny_fraction_holds_out_nothing_then_the_run_refuses(tree):
    root, _ = tree
    train_reviews = sources.read_acl_imdb(root)["train"]
    rest, held_out = input_pipeline.split_validation_by_movie(train_reviews, 0.001, 0)
    assert len(held_out) == 0 and len(rest) == len(train_reviews)
    config = dataclasses.replace(config_lib.debug_config(), data_dir=root,
                                 validation_fraction=0.001)
    with pytest.raises(UsageError, match="validation split is empty"):
        train.load_splits(config)


def test_sources_without_movies_keep_the_random_split(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("review,sentiment\n" + "".join(
        f"review {i},{'positive' if i % 2 else 'negative'}\n" for i in range(40)))
    config = dataclasses.replace(config_lib.debug_config(), csv_file=str(path))
    splits, how = train.load_splits(config)
    assert how == "random"
    assert len(splits["validation"]) == 5  # round(0.25 * 20)
    np.testing.assert_array_equal(
        splits["validation"].texts,
        input_pipeline.split_validation(
            sources.read_csv(str(path), 0)["train"], 0.25, 0)[1].texts)
