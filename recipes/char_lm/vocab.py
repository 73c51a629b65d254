"""The character vocabulary: pure encode/decode helpers, saved as JSON.

Id 0 is reserved for characters that were not in the training text (OOV), so
a model trained on one text can still read any other; ids 1..n are the
training text's distinct characters in sorted order.
"""

import json
import os

import numpy as np

from recipes.common.outputs import write_json_atomically

OOV_ID = 0
OOV_TEXT = "\ufffd"  # How an OOV id is shown when decoding.
VOCAB_FILENAME = "vocab.json"


class Vocabulary:
    """Maps characters to ids and back.

    Args:
        chars: The known characters, in id order starting at id 1.

    Example:

    >>> vocab = Vocabulary.from_text("hello")
    >>> vocab.decode(vocab.encode("hole"))
    'hole'
    """

    def __init__(self, chars):
        self.chars = list(chars)
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(
                f"Vocabulary characters must be distinct. Received: chars={chars!r}"
            )
        self._ids = {ch: i + 1 for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text):
        """Builds the vocabulary of `text`'s distinct characters."""
        return cls(sorted(set(text)))

    @property
    def size(self):
        """Number of ids, including the OOV id."""
        return len(self.chars) + 1

    def unknown_chars(self, text):
        """The distinct characters of `text` not in the vocabulary, sorted."""
        return sorted(set(text) - set(self._ids))

    def encode(self, text):
        """Returns `text` as an int32 array of ids (OOV_ID for unknown chars)."""
        return np.fromiter(
            (self._ids.get(ch, OOV_ID) for ch in text),
            dtype=np.int32,
            count=len(text),
        )

    def decode(self, ids):
        """Returns the text of a sequence of ids (OOV_TEXT for id 0)."""
        table = [OOV_TEXT] + self.chars
        return "".join(table[int(i)] for i in ids)

    def save(self, directory):
        """Writes the vocabulary to directory/vocab.json; returns the path."""
        path = os.path.join(directory, VOCAB_FILENAME)
        write_json_atomically(path, {"oov_id": OOV_ID, "chars": self.chars})
        return path

    @classmethod
    def load(cls, directory):
        """Reads the vocabulary written by `save`."""
        with open(os.path.join(directory, VOCAB_FILENAME), encoding="utf-8") as f:
            return cls(json.load(f)["chars"])
