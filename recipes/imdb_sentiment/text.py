"""Review text to token ids: the standardization and the TextVectorization layer.

`standardize_review` and `standardize_review_keep_marks` are registered Keras
serializables, so a saved model that holds the vectorizer loads with
`keras.models.load_model` and no custom_objects once this package is imported
(`import recipes.imdb_sentiment` does it).
"""

import keras
import tensorflow as tf

# The reviews' HTML line breaks ("<br />", "<br/>", "<br>").
_LINE_BREAK = r"<br\s*/?>"
# ASCII punctuation except the apostrophe, which is dropped instead so that
# "don't" stays one token ("dont").
_PUNCTUATION = r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~]"
# The marks that `standardize_review_keep_marks` keeps as tokens of their own.
_MARKS = r"([!?])"
_PUNCTUATION_BUT_MARKS = r"[\"#$%&()*+,\-./:;<=>@\[\\\]^_`{|}~]"


def _standardize(texts, keep_marks):
    """Lower case, line breaks and punctuation to spaces, ' dropped.

    With `keep_marks`, "!" and "?" are spaced out into tokens of their own
    instead of being removed.
    """
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, _LINE_BREAK, " ")
    if keep_marks:
        texts = tf.strings.regex_replace(texts, _MARKS, r" \1 ")
    punctuation = _PUNCTUATION_BUT_MARKS if keep_marks else _PUNCTUATION
    texts = tf.strings.regex_replace(texts, punctuation, " ")
    return tf.strings.regex_replace(texts, "'", "")


@keras.saving.register_keras_serializable(package="imdb_sentiment")
def standardize_review(texts):
    """Lower-cases, turns line breaks and punctuation into spaces, drops '."""
    return _standardize(texts, keep_marks=False)


@keras.saving.register_keras_serializable(package="imdb_sentiment")
def standardize_review_keep_marks(texts):
    """`standardize_review`, but "!" and "?" become tokens ("great!" -> "great !")."""
    return _standardize(texts, keep_marks=True)


def make_vectorizer(vocab_size, max_len=None, vocabulary=None, keep_marks=False):
    """A TextVectorization layer: id 0 pads, 1 is [UNK], words from 2.

    Args:
        vocab_size: Most token ids to use, padding and [UNK] included.
        max_len: Pad or cut every review to this many tokens (dense output
            for the saved model); None gives ragged, uncut token ids, which
            the input pipeline cuts and batches itself.
        vocabulary: The words (from a previous `adapt`), or None to adapt later.
        keep_marks: Keep "!" and "?" as tokens (`standardize_review_keep_marks`).
    """
    return keras.layers.TextVectorization(
        max_tokens=vocab_size,
        standardize=standardize_review_keep_marks if keep_marks else standardize_review,
        output_mode="int",
        output_sequence_length=max_len,
        ragged=max_len is None,
        vocabulary=vocabulary,
        name="vectorizer",
    )
