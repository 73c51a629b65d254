"""Character-level language model: a custom tf.distribute training loop.

Train:  python -m recipes.char_lm --model_dir=/tmp/char_lm
Sample: python -m recipes.char_lm.sample --model_dir=/tmp/char_lm --prime="ROMEO:"
"""
