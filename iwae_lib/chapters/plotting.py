"""Figures and tables for the book, built with matplotlib and seaborn.

Every figure function returns a ``matplotlib.figure.Figure`` (a :class:`BookFigure`) that
is *not* registered with pyplot: nothing is shown by side effect and nothing leaks between
cells. End a notebook cell with the returned figure (or call ``display(fig)``) to show it
once, as a PNG; ``fig.savefig(path)`` writes it to a file.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
from matplotlib.figure import Figure

SIDE = 28


class BookFigure(Figure):
    """A Figure that Jupyter shows as a PNG by itself (no pyplot backend needed)."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


@contextlib.contextmanager
def _style():
    import seaborn as sns

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, size=(6.4, 4.0), **kwargs):
    """A pyplot-free Figure with an ``nrows x ncols`` grid of axes: (fig, axes array [nrows, ncols])."""
    fig = BookFigure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


# ----------------------------------------------------------------------------- images


def as_images(x) -> np.ndarray:
    """[N, 784] or [N, 28, 28] (or a single [784] / [28, 28] image) -> float32 [N, 28, 28]."""
    x = np.asarray(x, np.float32)
    if x.ndim == 1 and x.size == SIDE * SIDE or x.ndim == 2 and x.shape == (SIDE, SIDE):
        x = x.reshape(1, SIDE, SIDE)
    if x.ndim == 2 and x.shape[1] == SIDE * SIDE:
        return x.reshape(-1, SIDE, SIDE)
    if x.ndim == 3 and x.shape[1:] == (SIDE, SIDE):
        return x
    raise ValueError(f"images must have shape [N, 784] or [N, 28, 28], got {x.shape}")


def tile(images, ncols: int = 10, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Images [N, 784] or [N, 28, 28] arranged row by row into one array
    [rows * (28 + pad) - pad, ncols * (28 + pad) - pad]; empty cells and gaps get ``fill``."""
    images = as_images(images)
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    step = SIDE + pad
    mosaic = np.full((nrows * step - pad, ncols * step - pad), fill, np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        mosaic[r * step: r * step + SIDE, c * step: c * step + SIDE] = image
    return mosaic


def image_grid(images, ncols: int = 10, title: str | None = None, scale: float = 0.6):
    """Digits in a grid, black on white (1 = ink). images: [N, 784] or [N, 28, 28] in [0, 1].

    Returns a Figure with one axes holding one image (the tiled mosaic).
    """
    mosaic = tile(images, ncols, fill=0.0)
    rows, cols = mosaic.shape
    fig, axes = new_figure(size=(max(1.5, cols / SIDE * scale), max(1.5, rows / SIDE * scale + (0.4 if title else 0))))
    ax = axes[0, 0]
    ax.imshow(mosaic, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def image_rows(rows: dict, title: str | None = None, scale: float = 0.6):
    """Several labelled rows of digits (e.g. data, reconstructions, samples): one axes per row.

    rows: label -> images [N, 784] or [N, 28, 28]; all rows are shown with ``N`` columns.
    """
    if not rows:
        raise ValueError("no rows to show")
    ncols = max(len(as_images(v)) for v in rows.values())
    fig, axes = new_figure(len(rows), 1, size=(max(2.0, ncols * scale + 1.2), len(rows) * (scale + 0.35) + 0.3))
    for ax, (label, images) in zip(axes[:, 0], rows.items()):
        ax.imshow(tile(images, ncols, fill=0.0), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- curves


X_AXES = {"epoch": ("epoch", lambda h: h["epoch"]),
          "hours": ("training hours", lambda h: h["train_seconds"] / 3600.0)}


def learning_curves(histories: dict, key="test_bound", title: str | None = None, ylabel: str | None = None,
                    size=(7.0, 4.0), mark=None, x: str = "epoch", hlines: dict | None = None,
                    finals: dict | None = None, finals_label: str = "final estimate"):
    """Per-epoch curves from training histories (``metrics["history"]``).

    histories: name -> list of dicts with ``epoch`` and the plotted keys (entries missing
        a key are skipped, e.g. epochs without a held-out evaluation).
    key: one key or a list of keys (e.g. ``["train_bound", "test_bound"]``); one line per
        (name, key).
    mark: optional name -> epoch, drawn as a dot on that run's first curve (e.g. the
        validation-selected epoch).
    x: ``"epoch"`` or ``"hours"`` (the entries' cumulative ``train_seconds``).
    hlines: optional label -> value, drawn as dotted horizontal lines (e.g. the paper's).
    finals: optional name -> value, drawn as a star in the run's colour at the end of its
        first curve (e.g. the k=5000 estimate that closes a run whose curve is a bound with
        the training k); one legend entry, ``finals_label``, stands for all of them.
    Returns a Figure with one axes.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    xlabel, x_of = X_AXES[x]
    keys = [key] if isinstance(key, str) else list(key)
    with _style():
        fig, axes = new_figure(size=size)
        ax = axes[0, 0]
        for name, history in histories.items():
            for j, k in enumerate(keys):
                points = [(x_of(h), h[k]) for h in history if h.get(k) is not None]
                if not points:
                    continue
                epochs, values = zip(*points)
                label = name if len(keys) == 1 else (f"{name}: {k}" if len(histories) > 1 else k)
                line, = ax.plot(epochs, values, marker="." if len(points) < 30 else None,
                                linestyle="-" if j == 0 else "--", label=label)
                if finals and name in finals and j == 0:
                    ax.plot([epochs[-1]], [finals[name]], "*", ms=11, color=line.get_color(), label="_nolegend_")
                if mark and name in mark and j == 0:
                    marked = [(x_of(h), h[k]) for h in history if h["epoch"] == mark[name] and h.get(k) is not None]
                    if marked:
                        ax.plot([marked[0][0]], [marked[0][1]], "o", ms=9, mfc="none", color=line.get_color())
        if finals and any(name in finals for name in histories):  # one grey star in the legend
            ax.plot([], [], "*", ms=11, color="0.3", linestyle="none", label=finals_label)
        for label, value in (hlines or {}).items():
            ax.axhline(value, linestyle=":", color="0.3", linewidth=1)
            ax.annotate(label, (1.0, value), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                        fontsize="small", color="0.3")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel or (keys[0] if len(keys) == 1 else "nats per image"))
        if title:
            ax.set_title(title)
        if ax.lines:
            ax.legend(fontsize="small")
    return fig


def bound_vs_k(ks, values: dict, reference: dict | None = None, title: str | None = None,
               ylabel: str = "nats per image", size=(6.4, 4.0)):
    """Bounds (or estimates) as a function of the number of samples k, k on a log axis.

    ks: sequence of k values [K].
    values: name -> sequence [K] (one value per k).
    reference: optional name -> value drawn as horizontal dashed lines (e.g. log p(x)).
    """
    ks = list(ks)
    with _style():
        fig, axes = new_figure(size=size)
        ax = axes[0, 0]
        for name, ys in values.items():
            ys = list(ys)
            if len(ys) != len(ks):
                raise ValueError(f"{name!r} has {len(ys)} values for {len(ks)} values of k")
            ax.plot(ks, ys, marker="o", label=name)
        for name, y in (reference or {}).items():
            ax.axhline(y, linestyle="--", color="0.4", linewidth=1)
            ax.annotate(name, (ks[0], y), textcoords="offset points", xytext=(2, 3), fontsize="small", color="0.3")
        ax.set_xscale("log")
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_xlabel("k (samples)")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend(fontsize="small")
    return fig


def active_units(variances: dict, threshold: float = 1e-2, title: str | None = None, size=(6.4, 4.0)):
    """Sorted log10 variances of the posterior means of each unit, one line per model.

    variances: name -> list (one per stochastic layer) of arrays [latent_i], e.g.
        ``metrics["active_unit_variances"]``; layers are concatenated.
    Units above the dashed ``threshold`` line are active (Burda et al., Section 5.2).
    """
    with _style():
        fig, axes = new_figure(size=size)
        ax = axes[0, 0]
        for name, per_layer in variances.items():
            v = np.sort(np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in per_layer]))[::-1]
            ax.plot(np.arange(1, len(v) + 1), np.log10(np.maximum(v, 1e-12)), marker=".", label=name)
        ax.axhline(math.log10(threshold), linestyle="--", color="0.3", linewidth=1)
        ax.set_xlabel("unit (sorted by variance)")
        ax.set_ylabel("log10 Var_x(E_q[h | x])")
        if title:
            ax.set_title(title)
        ax.legend(fontsize="small")
    return fig


def distributions(samples: dict, xlabel: str, title: str | None = None, bins: int = 40, size=(6.4, 4.0)):
    """Overlaid histograms (densities) of 1-D samples: name -> array [N]."""
    import seaborn as sns

    with _style():
        fig, axes = new_figure(size=size)
        ax = axes[0, 0]
        for name, values in samples.items():
            sns.histplot(np.ravel(np.asarray(values, np.float64)), bins=bins, stat="density", element="step",
                         fill=False, label=name, ax=ax)
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title)
        ax.legend(fontsize="small")
    return fig


def density_2d(values, extent, title: str | None = None, points=None, cmap: str = "viridis", size=(4.5, 4.0)):
    """A 2-D function on a grid as an image.

    values: [H, W] (row 0 is the lowest y); extent: (x_min, x_max, y_min, y_max);
    points: optional [N, 2] array drawn on top (e.g. samples).
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D grid [H, W], got shape {values.shape}")
    with _style():
        fig, axes = new_figure(size=size)
        ax = axes[0, 0]
        image = ax.imshow(values, origin="lower", extent=extent, cmap=cmap, aspect="auto")
        fig.colorbar(image, ax=ax)
        if points is not None:
            points = np.asarray(points)
            ax.scatter(points[:, 0], points[:, 1], s=4, color="white", alpha=0.6)
        ax.grid(False)
        if title:
            ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------- tables


def _cell(value):
    if isinstance(value, (list, tuple)):
        return "+".join(str(v) for v in value)
    return value


DEFAULT_COLUMNS = {
    "test NLL": lambda m: -float(m["test_log_likelihood"]),
    "active units": lambda m: m["active_units"],
}


def results_table(records: dict, paper_values: dict | None = None, columns: dict | None = None, decimals: int = 2):
    """Our numbers next to the paper's, one row per run, as a pandas DataFrame.

    records: row label -> RunRecord (anything with ``.metrics``) or a metrics dict.
    paper_values: row label -> {column: value} (e.g. from ``iwae_lib.chapters.paper``); each column
        given there gets a ``"<column> (paper)"`` column right after ours.
    columns: column -> metrics key or callable(metrics) -> value; default: test NLL
        (= -test_log_likelihood) and active units. Lists (active units per layer) are
        shown as ``"a+b"``.
    """
    import pandas as pd

    columns = DEFAULT_COLUMNS if columns is None else columns
    paper_values = paper_values or {}
    rows = {}
    for label, record in records.items():
        metrics = getattr(record, "metrics", record)
        row = {}
        for column, getter in columns.items():
            value = getter(metrics) if callable(getter) else metrics.get(getter)
            row[column] = _cell(value)
            paper = paper_values.get(label, {})
            if column in paper:
                row[f"{column} (paper)"] = _cell(paper[column])
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table.round(decimals)
