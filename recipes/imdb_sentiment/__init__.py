"""IMDB sentiment recipe: Bidirectional keras_lstm.LSTM on movie reviews.

Train with `python -m recipes.imdb_sentiment --model_dir=DIR`, score texts with
`python -m recipes.imdb_sentiment.predict --model_dir=DIR "some review"`.
Importing this package registers what the saved model.keras refers to (the
text standardizations, the masked max pooling layer, keras_lstm.LSTM), so
`keras.models.load_model` needs no custom_objects.
"""

from recipes.imdb_sentiment import model  # noqa: F401  (MaskedGlobalMaxPooling1D)
from recipes.imdb_sentiment import text  # noqa: F401  (standardize_review...)
