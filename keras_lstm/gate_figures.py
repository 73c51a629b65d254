"""Gate heatmaps as figures a person can read: axes, a colour bar, a title.

One figure shows one gate (or state) of one example over time: units down
the y axis, time steps along the x axis, a colour bar with the value range
(gates on a fixed 0..1 scale), and the gate, layer and training step in the
title. Marked time steps (e.g. the adding problem's two marked inputs) are
drawn on the time axis.

matplotlib is imported only when a figure is made, so keras_lstm itself
does not need it; `require_matplotlib` says how to install it.
"""

import importlib

import numpy as np

GATE_NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "o": "output gate o",
    "c_hat": "candidate ĉ",
    "c": "cell state c",
    "h": "hidden state h",
}
"""The title of each `GateTrace` field."""

# Inches at 100 dpi: 900 x 360 pixels, wide enough for 1,000 steps.
FIGSIZE = (9.0, 3.6)
DPI = 100
_MARK_COLOR = "#e4002b"


def require_matplotlib():
    """(Figure, FigureCanvasAgg) classes; ImportError saying how to get them."""
    try:
        figure = importlib.import_module("matplotlib.figure")
        agg = importlib.import_module("matplotlib.backends.backend_agg")
    except ImportError as error:
        raise ImportError(
            "Gate heatmaps are drawn with matplotlib, which is not installed. "
            "Install it with `pip install matplotlib` (or the package's "
            "'recipes' extra: `pip install keras_lstm[recipes]`). "
            f"Received: {error}"
        ) from error
    return figure.Figure, agg.FigureCanvasAgg


def value_range(name, values):
    """(vmin, vmax, colour map) of a `GateTrace` field.

    Gates (i, f, o) use 0..1 so that pictures of different steps compare;
    c_hat and h -1..1; c is symmetric around 0 up to its largest magnitude.
    """
    if name == "c":
        limit = max(float(np.max(np.abs(values))), 1e-6)
        return -limit, limit, "coolwarm"
    if name in ("c_hat", "h"):
        return -1.0, 1.0, "coolwarm"
    return 0.0, 1.0, "viridis"


def gate_figure(values, name, layer_name, step_label, marks=(), subtitle=""):
    """A matplotlib Figure of one example's gate or state over time.

    Args:
        values: (time, units) array, e.g. ``trace.f[0]``.
        name: Field of `GateTrace` ("f", "i", "o", "c_hat", "c", "h").
        layer_name: The layer, for the title (with its direction, if any).
        step_label: When the trace was taken, e.g. "training step 3000".
        marks: Time steps to mark on the time axis.
        subtitle: Appended to the title, e.g. "example 2 of 3".

    Returns:
        A `matplotlib.figure.Figure` of FIGSIZE inches at DPI, not yet drawn.
    """
    figure_class, canvas_class = require_matplotlib()
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(
            "gate_figure expects values shaped (time, units). "
            f"Received: values.shape={values.shape}"
        )
    if name not in GATE_NAMES:
        raise ValueError(
            f"gate_figure draws one of {tuple(GATE_NAMES)}. Received: name={name!r}"
        )
    steps, units = values.shape
    vmin, vmax, cmap = value_range(name, values)
    fig = figure_class(figsize=FIGSIZE, dpi=DPI)
    canvas_class(fig)
    ax = fig.add_subplot()
    image = ax.imshow(
        values.T, aspect="auto", interpolation="nearest", cmap=cmap,
        vmin=vmin, vmax=vmax, origin="upper",
        extent=(-0.5, steps - 0.5, units - 0.5, -0.5),
    )
    colorbar = fig.colorbar(image, ax=ax, pad=0.02)
    colorbar.set_label(
        ("gate: 0 closed, 1 open" if vmin == 0.0 else "value")
        + f"\nhere {values.min():.3f} to {values.max():.3f}", fontsize=9)
    ax.set_xlabel("time step")
    ax.set_ylabel("unit")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    title = f"{GATE_NAMES[name]} · layer {layer_name} · {step_label}"
    ax.set_title(f"{title} · {subtitle}" if subtitle else title, fontsize=10,
                 pad=18 if len(marks) else 6)
    # Marks sit on the time axis, outside the picture, so that they hide
    # nothing of what happens at the marked steps.
    for k, t in enumerate(sorted(int(t) for t in marks)):
        # x in time steps, y in axes fractions: just below and above the picture.
        for y, marker in ((-0.025, "^"), (1.025, "v")):
            ax.plot([t], [y], marker=marker, ms=8, ls="none", color=_MARK_COLOR,
                    clip_on=False, zorder=5, transform=ax.get_xaxis_transform(),
                    label="marked step" if k == 0 and marker == "^" else None)
        ax.annotate(f"t={t}", (t, -0.5), xytext=(0, 10),
                    textcoords="offset points", ha="center", va="bottom",
                    color=_MARK_COLOR, fontsize=8, annotation_clip=False)
    if len(marks):
        ax.legend(loc="lower right", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    return fig


def figure_to_rgb(fig):
    """The figure drawn as a uint8 RGB array (height, width, 3)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
