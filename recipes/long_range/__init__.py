"""The long-term-dependency demo: the adding problem, LSTM against SimpleRNN.

Run: python -m recipes.long_range --model_dir=/tmp/long_range
"""
