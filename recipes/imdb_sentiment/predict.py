"""Prints P(positive) for reviews, using a trained run's model.keras.

    python -m recipes.imdb_sentiment.predict --model_dir=/tmp/imdb "A gem." "Dull."
    python -m recipes.imdb_sentiment.predict --model_dir=/tmp/imdb --input_file=reviews.txt

Each output line is the probability, a tab, and the review's first characters.
"""

import os

from absl import app
from absl import flags

from recipes.common.errors import UsageError
from recipes.common.errors import run_and_report
from recipes.common.text_files import read_utf8

flags.DEFINE_string("model_dir", None, "The training run's --model_dir (holds model.keras).")
flags.mark_flag_as_required("model_dir")
flags.DEFINE_string("input_file", "", "A text file with one review per line, scored after the reviews given as arguments.")

FLAGS = flags.FLAGS

# Characters of each review echoed next to its probability.
_PREVIEW_CHARS = 60


def read_reviews(texts, input_file):
    """The reviews given as arguments, then the non-empty lines of input_file."""
    reviews = list(texts)
    if input_file:
        if not os.path.isfile(input_file):
            raise UsageError(
                f"--input_file must be an existing file. Received: input_file={input_file!r}"
            )
        lines = read_utf8(input_file, "--input_file").splitlines()
        reviews += [line.strip() for line in lines if line.strip()]
    if not reviews:
        raise UsageError(
            "give reviews to score as arguments or with --input_file. "
            f"Received: no reviews, input_file={input_file!r}"
        )
    return reviews


def load_model(model_dir):
    """Loads model_dir/model.keras (raw review strings -> P(positive))."""
    path = os.path.join(model_dir, "model.keras")
    if not os.path.isfile(path):
        raise UsageError(
            "--model_dir must hold the model.keras a finished training run "
            f"writes. Received: model_dir={model_dir!r}"
        )
    # Imported here so that bad arguments are reported without loading TF.
    import keras

    import keras_lstm  # noqa: F401  (registers keras_lstm.LSTM)
    import recipes.imdb_sentiment  # noqa: F401  (registers the custom objects)

    try:
        return keras.models.load_model(path)
    except Exception as error:  # noqa: BLE001 - a damaged file, whatever the cause.
        raise UsageError(
            f"{path} is damaged or not a Keras model ({type(error).__name__}); "
            "rerun the training command to write it again. "
            f"Received: model_dir={model_dir!r}"
        ) from None


def positive_probabilities(model, reviews):
    """P(positive) of each review, as a list of floats."""
    import tensorflow as tf

    probabilities = model.predict(tf.constant([[r] for r in reviews]), verbose=0)
    return [float(p) for p in probabilities[:, 0]]


def main(argv):
    reviews = read_reviews(argv[1:], FLAGS.input_file)
    model = load_model(FLAGS.model_dir)
    for review, probability in zip(reviews, positive_probabilities(model, reviews)):
        preview = " ".join(review.split())[:_PREVIEW_CHARS]
        print(f"{probability:.4f}\t{preview}")


if __name__ == "__main__":
    app.run(lambda argv: run_and_report(main, argv))
