"""Tiny aclImdb trees written by the IMDB recipe's tests."""

import os

import numpy as np

POSITIVE = ["great", "wonderful", "loved", "excellent", "best", "fun"]
NEGATIVE = ["awful", "boring", "worst", "bad", "waste", "dull"]
FILLER = ["the", "movie", "film", "was", "and", "plot", "actors", "<br />"]


def sentiment_review(split, label, index, rng):
    """A short review whose label follows its sentiment words."""
    del split, index
    words = POSITIVE if label == "pos" else NEGATIVE
    return " ".join(rng.choice(words + FILLER, size=int(rng.integers(3, 16))))


def write_acl_imdb(root, per_folder=12, seed=0, review=sentiment_review):
    """Writes train/{pos,neg} and test/{pos,neg} with `per_folder` reviews each.

    `review(split, label, index, rng)` gives each review's text.
    """
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = os.path.join(root, split, label)
            os.makedirs(folder)
            for index in range(per_folder):
                with open(os.path.join(folder, f"{index}_1.txt"), "w") as f:
                    f.write(review(split, label, index, rng))
    return str(root)


def write_movie_urls(root, per_folder=12, reviews_per_movie=3):
    """Writes train/urls_{pos,neg}.txt as aclImdb has them: line i is review i's movie.

    Review i of train/pos and of train/neg belongs to movie tt{1000 + i //
    reviews_per_movie}, so every movie has both positive and negative reviews.
    Returns {(label, review id): movie id}.
    """
    movies = {}
    for label in ("pos", "neg"):
        lines = []
        for index in range(per_folder):
            movie = f"tt{1000 + index // reviews_per_movie:07d}"
            movies[(label, index)] = movie
            lines.append(f"http://www.imdb.com/title/{movie}/usercomments\n")
        with open(os.path.join(root, "train", f"urls_{label}.txt"), "w") as f:
            f.writelines(lines)
    return movies
