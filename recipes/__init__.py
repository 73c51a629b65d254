"""Training recipes built on keras_lstm; each is run as `python -m recipes.<name>`."""
