"""IMDB sentiment recipe: Bidirectional keras_lstm.LSTM on movie reviews.

Train with `python -m recipes.imdb_sentiment --model_dir=DIR`, score texts with
`python -m recipes.imdb_sentiment.predict --model_dir=DIR "some review"`.
Importing this package registers the text standardization that the saved
model.keras refers to, so `keras.models.load_model` needs no custom_objects.
"""

from recipes.imdb_sentiment import text  # noqa: F401  (registers standardize_review)
