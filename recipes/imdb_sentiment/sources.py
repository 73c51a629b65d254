"""Reads labelled reviews from TFDS, an aclImdb folder or a CSV file.

Each reader returns a dict split name -> `Reviews` (texts and 0/1 labels as
NumPy arrays) and raises `UsageError` for anything wrong with what it was
given, before the recipe starts any work. The aclImdb reader also gives each
training review its movie (IMDb title id, from train/urls_{pos,neg}.txt), so
that validation can hold out whole movies as the test set does.
"""

import csv
import dataclasses
import io
import os
import re

import numpy as np

from recipes.common import tfds_access
from recipes.common.errors import UsageError
from recipes.common.text_files import read_utf8

POSITIVE_LABELS = ("positive", "pos", "1")
NEGATIVE_LABELS = ("negative", "neg", "0")
CSV_COLUMNS = ("review", "sentiment")
CSV_SPLITS = ("train", "test")
ACL_FOLDERS = ("train/pos", "train/neg", "test/pos", "test/neg")
# aclImdb's review files are named {id}_{rating}.txt; line `id` (counted
# from 0) of urls_{pos,neg}.txt is the URL of that review's movie.
_REVIEW_NAME = re.compile(r"^(\d+)_\d+\.txt$")
_TITLE_ID = re.compile(r"/title/(tt\d+)")


@dataclasses.dataclass
class Reviews:
    """Review texts (str) and labels (1 positive, 0 negative), aligned.

    `movies` holds each review's movie id (str) where the source gives one
    (aclImdb training reviews), else None.
    """

    texts: np.ndarray
    labels: np.ndarray
    movies: np.ndarray = None

    def __len__(self):
        return len(self.labels)

    def take(self, indices):
        """The reviews at `indices`, in that order."""
        movies = None if self.movies is None else self.movies[indices]
        return Reviews(self.texts[indices], self.labels[indices], movies)


def _reviews(texts, labels, movies=None):
    return Reviews(
        np.array(texts, dtype=object), np.array(labels, dtype=np.int32),
        None if movies is None else np.array(movies, dtype=object),
    )


def _read_movie_urls(data_dir, label_name):
    """The movie id (IMDb title, e.g. "tt0453418") of each line of train/urls_{label}.txt."""
    path = os.path.join(data_dir, "train", f"urls_{label_name}.txt")
    movies = []
    for line_number, line in enumerate(
            read_utf8(path, "--data_dir: train/urls_*.txt").splitlines()):
        found = _TITLE_ID.search(line)
        if not found:
            raise UsageError(
                f"--data_dir: line {line_number + 1} of train/urls_{label_name}.txt "
                "holds no IMDb movie URL (expected .../title/tt1234567/...), "
                "so its review cannot be grouped by movie. Received: "
                f"{line.strip()[:100]!r} in data_dir={data_dir!r}")
        movies.append(found.group(1))
    return movies


def read_acl_movies(data_dir, label_name, names):
    """The movie id of each training review file in `names` (train/{label_name}).

    Returns None when aclImdb's train/urls_pos.txt and urls_neg.txt are both
    absent (the recipe then splits validation at random); raises UsageError
    when only one is there, a review file is not named {id}_{rating}.txt, or
    an id has no line in its urls file.
    """
    present = [os.path.isfile(os.path.join(data_dir, "train", f"urls_{label}.txt"))
               for label in ("pos", "neg")]
    if not any(present):
        return None
    if not all(present):
        raise UsageError(
            "--data_dir: train/urls_pos.txt and train/urls_neg.txt (the movie "
            "of each training review) must both be there, or neither (then "
            "validation is split at random); found only "
            f"train/urls_{'pos' if present[0] else 'neg'}.txt. Received: "
            f"data_dir={data_dir!r}")
    urls = _read_movie_urls(data_dir, label_name)
    movies = []
    for name in names:
        matched = _REVIEW_NAME.match(name)
        if not matched:
            raise UsageError(
                f"--data_dir: train/{label_name}/{name} is not named "
                "{id}_{rating}.txt, so its line in "
                f"train/urls_{label_name}.txt is unknown. Received: "
                f"data_dir={data_dir!r}")
        review_id = int(matched.group(1))
        if review_id >= len(urls):
            raise UsageError(
                f"--data_dir: train/{label_name}/{name} has id {review_id}, but "
                f"train/urls_{label_name}.txt has only {len(urls)} lines (line "
                "id, from 0, is the review's movie). Received: "
                f"data_dir={data_dir!r}")
        movies.append(urls[review_id])
    return movies


def read_acl_imdb(data_dir):
    """Reads the Stanford layout: data_dir/{train,test}/{pos,neg}/*.txt.

    The training reviews carry their movie ids (see `read_acl_movies`) when
    the folder has train/urls_pos.txt and train/urls_neg.txt.
    """
    if not os.path.isdir(data_dir):
        raise UsageError(
            "--data_dir must be an existing aclImdb folder. "
            f"Received: data_dir={data_dir!r}"
        )
    missing = [
        name
        for name in ACL_FOLDERS
        if not os.path.isdir(os.path.join(data_dir, name))
    ]
    if missing:
        raise UsageError(
            "--data_dir must hold the aclImdb layout with folders "
            f"{', '.join(ACL_FOLDERS)}; missing: {', '.join(missing)}. "
            f"Received: data_dir={data_dir!r}"
        )
    splits = {}
    for split in CSV_SPLITS:
        texts, labels, movies = [], [], []
        for label_name, label in (("pos", 1), ("neg", 0)):
            folder = os.path.join(data_dir, split, label_name)
            names = sorted(n for n in os.listdir(folder) if n.endswith(".txt"))
            if not names:
                raise UsageError(
                    f"--data_dir: folder {split}/{label_name} holds no .txt "
                    f"reviews, so the {split} split would lack "
                    f"{label_name} examples. Received: data_dir={data_dir!r}"
                )
            for name in names:
                path = os.path.join(folder, name)
                if not os.path.isfile(path):
                    raise UsageError(
                        f"--data_dir: {split}/{label_name}/{name} is not a "
                        "review file (a directory?); the folder must hold "
                        f"only .txt files. Received: data_dir={data_dir!r}"
                    )
                texts.append(read_utf8(path, "--data_dir: every review"))
                labels.append(label)
            if movies is not None and split == "train":
                found = read_acl_movies(data_dir, label_name, names)
                movies = None if found is None else movies + found
        splits[split] = _reviews(
            texts, labels, movies if split == "train" else None)
    return splits


def _parse_label(value, line_number, csv_file):
    label = value.strip().lower()
    if label in POSITIVE_LABELS:
        return 1
    if label in NEGATIVE_LABELS:
        return 0
    raise UsageError(
        f"--csv_file: line {line_number} has an unknown sentiment; expected "
        f"one of {', '.join(POSITIVE_LABELS + NEGATIVE_LABELS)}. "
        f"Received: sentiment={value!r} in csv_file={csv_file!r}"
    )


def read_csv(csv_file, seed):
    """Reads a CSV with `review,sentiment` and an optional `split` column.

    Without a `split` column the rows are divided 50/50 into train and test
    by a permutation seeded with `seed`.
    """
    if not os.path.isfile(csv_file):
        raise UsageError(
            f"--csv_file must be an existing file. Received: csv_file={csv_file!r}"
        )
    csv.field_size_limit(2**30)
    # utf-8-sig: a CSV exported by Excel starts with a byte-order mark.
    with io.StringIO(read_utf8(csv_file, "--csv_file"), newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        missing = [c for c in CSV_COLUMNS if c not in columns]
        if missing:
            raise UsageError(
                f"--csv_file must have the columns {', '.join(CSV_COLUMNS)} "
                f"(and optionally split); missing: {', '.join(missing)}. "
                f"Received: columns={columns} in csv_file={csv_file!r}"
            )
        reader.fieldnames = columns
        has_split = "split" in columns
        texts, labels, split_names = [], [], []
        # Line 1 is the header.
        for line_number, row in enumerate(reader, start=2):
            texts.append(row["review"] or "")
            labels.append(_parse_label(row["sentiment"] or "", line_number, csv_file))
            if has_split:
                split = (row["split"] or "").strip().lower()
                if split not in CSV_SPLITS:
                    raise UsageError(
                        f"--csv_file: line {line_number} has an unknown split; "
                        f"expected one of {', '.join(CSV_SPLITS)}. "
                        f"Received: split={row['split']!r} in "
                        f"csv_file={csv_file!r}"
                    )
                split_names.append(split)
    reviews = _reviews(texts, labels)
    if has_split:
        split_names = np.array(split_names)
        return {
            split: reviews.take(np.flatnonzero(split_names == split))
            for split in CSV_SPLITS
        }
    order = np.random.default_rng(seed).permutation(len(reviews))
    half = len(order) // 2
    return {"train": reviews.take(order[:half]), "test": reviews.take(order[half:])}


def _load_tfds_split(name, split, data_dir):
    # Imported here: TFDS is slow to import and only this source needs it.
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir)
    texts, labels = [], []
    for text, label in tfds.as_numpy(dataset):
        texts.append(text.decode("utf-8"))
        labels.append(int(label))
    return _reviews(texts, labels)


def _tfds_unavailable(reason, received):
    return UsageError(
        f"could not load the TFDS dataset imdb_reviews ({reason}); give the "
        "reviews as files instead with --data_dir=PATH/aclImdb (folders "
        "train/pos, train/neg, test/pos, test/neg) or --csv_file=PATH.csv "
        f"(columns review,sentiment). Received: {received}"
    )


def read_tfds(tfds_data_dir=""):
    """Loads TFDS `imdb_reviews` (downloading it the first time).

    Offline, and with the dataset not yet prepared, this fails at once
    instead of after minutes of TFDS download retries.
    """
    if not tfds_access.can_load("imdb_reviews", tfds_data_dir):
        raise _tfds_unavailable(
            "it is not prepared in the TFDS data directory and the internet "
            "is unreachable",
            f"tfds_data_dir={tfds_data_dir!r}",
        )
    try:
        return {
            split: _load_tfds_split("imdb_reviews", split, tfds_data_dir or None)
            for split in CSV_SPLITS
        }
    except Exception as error:  # Offline, blocked or a broken cache: any cause.
        raise _tfds_unavailable(
            "offline, or its download failed",
            f"{type(error).__name__}: {str(error)[:300]}",
        ) from error


def check_has_words(splits, source):
    """Raises UsageError naming each non-empty split whose reviews are all blank."""
    blank = [name for name, reviews in splits.items()
             if len(reviews) and not any(str(t).strip() for t in reviews.texts)]
    if blank:
        raise UsageError(
            f"every review of the {' and '.join(blank)} split is empty; a "
            f"vocabulary cannot be learned from no words. Received: {source}"
        )


def read_reviews(config):
    """Reads train and test reviews from the source the config names."""
    if config.data_dir and config.csv_file:
        raise UsageError(
            "give at most one of --data_dir and --csv_file. Received: "
            f"data_dir={config.data_dir!r}, csv_file={config.csv_file!r}"
        )
    if config.data_dir:
        splits = read_acl_imdb(config.data_dir)
        source = f"data_dir={config.data_dir!r}"
    elif config.csv_file:
        splits = read_csv(config.csv_file, config.seed)
        source = f"csv_file={config.csv_file!r}"
    else:
        splits = read_tfds(config.tfds_data_dir)
        source = "TFDS imdb_reviews"
    check_has_words(splits, source)
    return splits
