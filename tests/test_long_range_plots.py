"""The PNG figures, from hand-made results (no training)."""

import numpy as np

from recipes.long_range import plots


def _entry(test_mse, norms):
    return {
        "test_mse": test_mse,
        "history": [{"step": 10, "val_mse": 0.2}, {"step": 20, "val_mse": test_mse}],
        "gradient_norms": {"init": list(norms), "trained": list(norms * 0.5)},
    }


def test_plot_all_writes_three_pngs_even_with_underflowed_gradients(tmp_path):
    decaying = 0.1 ** np.arange(12.0)
    decaying[-3:] = 0.0  # float32 underflow: must not break the log axis.
    runs = {
        12: {"lstm": _entry(0.004, np.ones(12)), "simple_rnn": _entry(0.16, decaying)},
        6: {"lstm": _entry(0.001, np.ones(6))},
    }
    paths = plots.plot_all(runs, 1 / 6, str(tmp_path))
    assert [p.split("/")[-1] for p in paths] == [
        "mse_vs_length.png", "gradient_norms.png", "validation_curves.png"
    ]
    for path in paths:
        with open(path, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_a_failed_redraw_keeps_the_last_good_png_and_no_temporary(tmp_path, monkeypatch):
    runs = {6: {"lstm": _entry(0.001, np.ones(6))}}
    paths = plots.plot_all(runs, 1 / 6, str(tmp_path))
    before = {path: open(path, "rb").read() for path in paths}

    def killed_midway(self, target, **kwargs):
        target.write(b"\x89PNG\r\n\x1a\n truncated")
        raise KeyboardInterrupt  # As a Ctrl-C while the image is being drawn.

    monkeypatch.setattr(plots.plt.Figure, "savefig", killed_midway)
    try:
        plots.plot_all(runs, 1 / 6, str(tmp_path))
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the patched savefig did not run")
    assert {path: open(path, "rb").read() for path in paths} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        path.split("/")[-1] for path in paths)
