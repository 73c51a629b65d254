"""Gate heatmap figures: axes, colour bar, title, marks, size; matplotlib optional."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_lstm import gate_figures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _values(steps=50, units=8, low=0.0, high=1.0):
    return np.random.default_rng(0).uniform(low, high, (steps, units))


def test_gate_figure_has_axes_colour_bar_and_title():
    values = _values()
    fig = gate_figures.gate_figure(values, "f", "'lstm'", "training step 3000")
    ax, bar = fig.axes
    assert ax.get_title() == "forget gate f · layer 'lstm' · training step 3000"
    assert ax.get_xlabel() == "time step" and ax.get_ylabel() == "unit"
    # Units down, time across, each value one cell centred on its index.
    image = ax.images[0]
    np.testing.assert_array_equal(image.get_array(), values.T)
    assert image.get_extent() == [-0.5, 49.5, 7.5, -0.5]
    # Gates on a fixed 0..1 colour scale, whatever the values.
    assert image.get_clim() == (0.0, 1.0)
    assert bar.get_ylim() == (0.0, 1.0)
    assert "0 closed, 1 open" in bar.get_ylabel()
    assert f"{values.min():.3f} to {values.max():.3f}" in bar.get_ylabel()


def test_states_use_a_symmetric_scale():
    values = _values(low=-3.0, high=2.0)
    fig = gate_figures.gate_figure(values, "c", "'lstm'", "training step 1")
    limit = np.abs(values).max()
    assert fig.axes[0].images[0].get_clim() == (-limit, limit)
    fig = gate_figures.gate_figure(values, "h", "'lstm'", "training step 1")
    assert fig.axes[0].images[0].get_clim() == (-1.0, 1.0)


def test_marks_sit_on_the_time_axis_with_labels():
    fig = gate_figures.gate_figure(_values(), "i", "'lstm'", "training step 3",
                                   marks=[40, 7], subtitle="example 1 of 2")
    ax = fig.axes[0]
    assert ax.get_title().endswith("training step 3 · example 1 of 2")
    # Two triangles per mark, below and above the picture.
    assert sorted(float(line.get_xdata()[0]) for line in ax.lines) == [7, 7, 40, 40]
    assert {text.get_text() for text in ax.texts} == {"t=7", "t=40"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["marked step"]


def test_figure_renders_to_an_rgb_image_of_fixed_size():
    for steps in (5, 1000):
        fig = gate_figures.gate_figure(_values(steps=steps), "o", "'x'", "epoch 1")
        image = gate_figures.figure_to_rgb(fig)
        assert image.shape == (360, 900, 3) and image.dtype == np.uint8
        # Something is drawn: not a blank canvas.
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50


def test_gate_figure_errors():
    with pytest.raises(ValueError, match=r"\(time, units\). Received: values.shape=\(5,\)"):
        gate_figures.gate_figure(np.zeros(5), "f", "'x'", "step 0")
    with pytest.raises(ValueError, match="Received: name='g'"):
        gate_figures.gate_figure(np.zeros((5, 2)), "g", "'x'", "step 0")


def test_keras_lstm_imports_without_matplotlib_and_the_callback_says_how_to_get_it():
    script = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None  # as if not installed
        import numpy as np
        import keras_lstm
        assert "matplotlib" not in [m for m in sys.modules if sys.modules[m]]
        try:
            keras_lstm.GateHeatmapCallback("lstm", np.zeros((1, 3, 2)), "/tmp/unused")
        except ImportError as error:
            print(error)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    assert "Gate heatmaps are drawn with matplotlib, which is not installed" in result.stdout
    assert "pip install matplotlib" in result.stdout
