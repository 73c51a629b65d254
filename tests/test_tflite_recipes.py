"""The recipes' TFLite exports: the IMDB classifier and the one-step char LM."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import keras
import pytest
import tensorflow as tf

from keras_lstm import tflite
from recipes.char_lm import export_tflite as char_lm_export
from recipes.char_lm import generation
from recipes.char_lm import tflite_sampler
from recipes.char_lm.config import debug_config as char_lm_debug_config
from recipes.char_lm.model import MODEL_FILENAME
from recipes.char_lm.model import build_model
from recipes.char_lm.vocab import Vocabulary
from recipes.imdb_sentiment import export_tflite as imdb_export
from recipes.imdb_sentiment import model as imdb_model
from recipes.imdb_sentiment import text
from recipes.imdb_sentiment.config import debug_config as imdb_debug_config

FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def test_char_lm_tflite_sampler_gives_the_keras_sampler_text(tmp_path):
    model_dir = str(tmp_path)
    vocab = Vocabulary.from_text("First Citizen:\nBefore we proceed any further, hear me speak.")
    vocab.save(model_dir)
    keras.utils.set_random_seed(0)
    config = char_lm_debug_config(layers=2, units=12)
    build_model(vocab.size, config).save(os.path.join(model_dir, MODEL_FILENAME))

    content = char_lm_export.export(model_dir)
    ops = tflite.op_names(content)
    # One step has no loop to fuse: the cells' steps run on plain ops.
    assert not {FUSED, "WHILE"} & set(ops) and "FULLY_CONNECTED" in ops, ops
    for seed in (1, 2):
        want = generation.sample_run(model_dir, "Fir", 80, 0.8, seed)
        got = tflite_sampler.generate(content, vocab, "Fir", 80, 0.8, seed)
        assert got == want
    # The command line prints the same text (flags as char_lm.sample's).
    printed = subprocess.run(
        [sys.executable, "-m", "recipes.char_lm.tflite_sampler",
         f"--model_dir={model_dir}", "--prime=Fir", "--length=80", "--seed=2"],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout
    assert printed == want + "\n"


@pytest.mark.parametrize("ngram_buckets", [0, 7], ids=["lstm", "lstm+ngrams"])
def test_imdb_export_writes_fused_float_and_int8_models(tmp_path, ngram_buckets):
    model_dir = str(tmp_path)
    config = dataclasses.replace(
        imdb_debug_config(), lstm_layers=2, ngram_buckets=ngram_buckets)
    words = ["good", "bad", "film", "plot", "actor", "!", "?"]
    keras.utils.set_random_seed(0)
    classifier = imdb_model.build_classifier(config, len(words) + 2)
    if ngram_buckets:  # Weights that move the score, so the check has teeth.
        scores = classifier.get_layer("ngram_score")
        for table in (scores.ngram_weights, scores.log_count_ratios):
            table.assign(np.random.default_rng(0).normal(
                size=table.shape).astype("float32"))
    vectorizer = text.make_vectorizer(
        config.vocab_size, config.max_len, words, config.keep_marks)
    end_to_end = imdb_model.build_end_to_end(vectorizer, classifier)
    end_to_end.save(os.path.join(model_dir, "model.keras"))

    written = imdb_export.export(model_dir)
    for name in (imdb_export.FLOAT_FILE, imdb_export.INT8_FILE):
        assert os.path.isfile(os.path.join(model_dir, name))
        _, ops = written[name]
        assert ops.count(FUSED) == 4 and "WHILE" not in ops, ops
    reviews = ["Good film!", "bad plot, bad actor... bad?", "unknownword", "film " * 20]
    ids = [imdb_export.token_ids(vectorizer, review) for review in reviews]
    assert [i.shape[1] for i in ids] == [3, 6, 1, config.max_len]
    got, _ = imdb_export.score(written[imdb_export.FLOAT_FILE][0], ids)
    want = [float(classifier.predict(i, verbose=0)[0, 0]) for i in ids]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # The end-to-end Keras model (strings in) agrees with ids + .tflite.
    np.testing.assert_allclose(
        end_to_end.predict(tf.constant(reviews)[:, None], verbose=0)[:, 0], got,
        atol=1e-5, rtol=0)
