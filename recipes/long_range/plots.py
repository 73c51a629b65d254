"""The demo's figures as PNG files (matplotlib, Agg backend, no display).

Every function takes `runs`: {length: {model_name: results.json entry}}.
"""

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recipes.common.outputs import write_bytes_atomically  # noqa: E402

_STYLE = {
    "lstm": {"color": "tab:blue", "label": "keras_lstm.LSTM"},
    "simple_rnn": {"color": "tab:red", "label": "keras.layers.SimpleRNN"},
    "keras_lstm": {"color": "tab:green", "label": "keras.layers.LSTM"},
}


def plot_all(runs, baseline_mse, out_dir):
    """Writes the three figures into `out_dir`; returns their paths."""
    return [
        plot_mse_vs_length(runs, baseline_mse, os.path.join(out_dir, "mse_vs_length.png")),
        plot_gradient_norms(runs, os.path.join(out_dir, "gradient_norms.png")),
        plot_validation_curves(
            runs, baseline_mse, os.path.join(out_dir, "validation_curves.png")
        ),
    ]


def plot_mse_vs_length(runs, baseline_mse, path):
    """Test MSE of each model against the sequence length, log-log."""
    lengths = sorted(runs)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in _models(runs):
        points = [(n, runs[n][name]["test_mse"]) for n in lengths if name in runs[n]]
        xs, ys = zip(*points)
        ax.plot(xs, ys, "o-", **_STYLE[name])
    ax.axhline(baseline_mse, color="gray", ls="--",
               label=f"predict the mean ({baseline_mse:.3f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("test MSE")
    ax.set_title("Adding problem: test MSE vs sequence length")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_gradient_norms(runs, path):
    """‖∂loss/∂x_t‖ against the distance T - 1 - t, one panel per length."""
    lengths = sorted(runs)
    fig, axes = plt.subplots(
        1, len(lengths), figsize=(4.5 * len(lengths), 4), squeeze=False
    )
    for ax, length in zip(axes[0], lengths):
        for name, entry in sorted(runs[length].items()):
            for stage, ls in (("init", ":"), ("trained", "-")):
                norms = np.asarray(entry["gradient_norms"][stage])
                # A log axis cannot show 0: where float32 underflowed, the
                # curve ends.
                norms = np.where(norms > 0, norms, np.nan)
                ax.plot(norms, ls=ls, color=_STYLE[name]["color"],
                        label=f"{_STYLE[name]['label']}, {stage}")
        ax.set_yscale("log")
        ax.set_xlabel("distance to the output, T - 1 - t (steps)")
        ax.set_title(f"T = {length}")
    axes[0][0].set_ylabel("mean ‖∂loss/∂x_t‖")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(
        "How far back the gradient reaches (a curve ends where it underflows to 0)"
    )
    return _save(fig, path)


def plot_validation_curves(runs, baseline_mse, path):
    """Validation MSE against training steps, one panel per length."""
    lengths = sorted(runs)
    fig, axes = plt.subplots(
        1, len(lengths), figsize=(4.5 * len(lengths), 4), squeeze=False
    )
    for ax, length in zip(axes[0], lengths):
        for name, entry in sorted(runs[length].items()):
            steps = [row["step"] for row in entry["history"]]
            mse = [row["val_mse"] for row in entry["history"]]
            ax.plot(steps, mse, **_STYLE[name])
        ax.axhline(baseline_mse, color="gray", ls="--", label="predict the mean")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"T = {length}")
    axes[0][0].set_ylabel("validation MSE")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def _models(runs):
    return sorted({name for by_model in runs.values() for name in by_model})


def _save(fig, path):
    """Writes the figure as PNG through a temporary file and a rename, so a
    kill never leaves a truncated image in place of the last good one."""
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=110, format="png")
    plt.close(fig)
    write_bytes_atomically(path, image.getvalue())
    return path
