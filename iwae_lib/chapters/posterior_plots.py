"""Figures for a model with a 2-D latent space: the true posterior against q, and log p(x)
estimates against k.

The densities come from :mod:`iwae_lib.posterior` on its ``latent_grid``: arrays [B, G]
with G = n * n grid points, row-major (``reshape(n, n)`` gives [h_2 index, h_1 index]).
Contours are drawn at *highest-density mass levels*: the 50 % contour encloses the
smallest region holding half of the distribution's mass on the grid.
"""

from __future__ import annotations

import contextlib

import numpy as np

from iwae_lib.chapters import plotting

MASSES = (0.5, 0.9, 0.99)


@contextlib.contextmanager
def _style():
    import seaborn as sns

    with sns.axes_style("white"), sns.plotting_context("notebook", font_scale=0.85):
        yield


def mass_levels(probabilities, masses=MASSES) -> np.ndarray:
    """Density thresholds whose superlevel sets hold the given masses.

    probabilities: [G] cell probabilities summing to 1. Returns increasing thresholds
    (one per mass, largest mass first, as ``contour`` wants): the cells with probability
    >= threshold for mass m hold at least m of the total.
    """
    p = np.sort(np.ravel(np.asarray(probabilities, np.float64)))[::-1]
    if p.size == 0 or not np.isclose(p.sum(), 1.0, atol=1e-6):
        raise ValueError("probabilities must be a non-empty distribution summing to 1")
    cumulative = np.cumsum(p)
    levels = [p[min(np.searchsorted(cumulative, m), p.size - 1)] for m in sorted(masses, reverse=True)]
    return np.maximum.accumulate(np.asarray(levels))


def _grid_side(grid) -> tuple:
    grid = np.asarray(grid, np.float64)
    n = int(round(np.sqrt(len(grid))))
    if n * n != len(grid) or grid.ndim != 2 or grid.shape[1] != 2:
        raise ValueError(f"grid must be a square latent grid [n*n, 2], got {grid.shape}")
    return n, grid[:n, 0], grid[::n, 1]


def _contours(ax, centres_1, centres_2, probabilities, n, color, filled):
    z = np.asarray(probabilities, np.float64).reshape(n, n)
    levels = mass_levels(z)
    if filled:  # 99 %, 90 %, 50 % regions from light to dark, outlined so that samples cannot hide them
        ax.contourf(centres_1, centres_2, z, levels=[*levels, z.max() + 1e-12],
                    colors=["#9ecae1", "#4292c6", "#08519c"][-len(levels):], alpha=0.8)
        ax.contour(centres_1, centres_2, z, levels=levels, colors="#08306b", linewidths=0.8, zorder=3.5)
    else:
        ax.contour(centres_1, centres_2, z, levels=levels, colors=color, linewidths=1.0)


def posterior_panels(images, grid, true_posterior, q_probabilities, samples=None, means=None,
                     zoom_mass: float = 0.999, size_per_row: float = 2.6):
    """For each image: the digit, and the true posterior (filled contours) against q (lines).

    Args:
        images: [B, 784] digits.
        grid: [G, 2] latent grid (``posterior.latent_grid``).
        true_posterior: [B, G] exact posterior cell probabilities (``posterior.grid_posterior``).
        q_probabilities: [B, G] q(h | x) as cell probabilities (normalise exp(log q) per row).
        samples: optional [S, B, 2] posterior samples (e.g. SIR), drawn as dots.
        means: optional {label: [B, 2]} point estimates, drawn as markers with a legend.
        zoom_mass: each panel shows the box holding this much of both distributions.

    Returns a Figure with B rows and 2 columns.
    """
    images = plotting.as_images(images)
    true_posterior, q_probabilities = np.asarray(true_posterior), np.asarray(q_probabilities)
    n, c1, c2 = _grid_side(grid)
    if true_posterior.shape != (len(images), n * n) or q_probabilities.shape != true_posterior.shape:
        raise ValueError(f"need [B, G] = [{len(images)}, {n * n}] posteriors, got {true_posterior.shape} "
                         f"and {q_probabilities.shape}")
    markers = ["X", "P", "o", "D"]
    with _style():
        fig, axes = plotting.new_figure(len(images), 2, size=(2 * size_per_row + 0.6, size_per_row * len(images)),
                                        gridspec_kw={"width_ratios": [1, 1.4]})
        for b, (image_ax, ax) in enumerate(axes):
            image_ax.imshow(images[b], cmap="gray_r", vmin=0, vmax=1)
            image_ax.set_axis_off()
            _contours(ax, c1, c2, true_posterior[b], n, None, filled=True)
            _contours(ax, c1, c2, q_probabilities[b], n, "tab:red", filled=False)
            if samples is not None:
                pts = np.asarray(samples)[:, b]
                ax.scatter(pts[:, 0], pts[:, 1], s=3, color="black", alpha=0.35, label="SIR samples", zorder=3)
            for marker, (label, values) in zip(markers, (means or {}).items()):
                ax.scatter(*np.asarray(values)[b], marker=marker, s=60, edgecolor="white", linewidth=0.8,
                           label=label, zorder=4)
            box = _mass_box(true_posterior[b] + q_probabilities[b], n, c1, c2, zoom_mass)
            ax.set_xlim(box[:2])
            ax.set_ylim(box[2:])
            ax.set_xlabel("$h_1$")
            ax.set_ylabel("$h_2$")
        axes[0, 1].set_title("p(h|x) filled, q(h|x) red", fontsize="small")
        if samples is not None or means:
            axes[0, 1].legend(fontsize="x-small", loc="upper right")
    return fig


def _mass_box(weights, n, c1, c2, mass):
    """A square-ish box [x0, x1, y0, y1] around the cells holding ``mass`` of ``weights``."""
    z = np.asarray(weights, np.float64).reshape(n, n)
    z = z / z.sum()
    keep = z >= mass_levels(z, (mass,))[0]
    rows, cols = np.nonzero(keep)
    step = c1[1] - c1[0]
    x0, x1 = c1[cols.min()] - step, c1[cols.max()] + step
    y0, y1 = c2[rows.min()] - step, c2[rows.max()] + step
    half = max(x1 - x0, y1 - y0) / 2
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    return mx - half, mx + half, my - half, my + half


def estimates_vs_k(ks, estimates, exact, labels=None, size=(8.0, 3.0)):
    """IWAE estimates of log p(x) against k, with the exact value, one panel per image.

    Args:
        ks: [K] numbers of samples.
        estimates: [R, K, B] estimates (R independent repeats for each k and image).
        exact: [B] log p(x) by quadrature.
        labels: optional [B] panel titles.

    Each panel shows every repeat as a faint dot, their mean as a line, and the exact value
    as a dashed line; k is on a log axis.
    """
    ks = np.asarray(ks)
    estimates, exact = np.asarray(estimates, np.float64), np.asarray(exact, np.float64)
    if estimates.ndim != 3 or estimates.shape[1] != len(ks) or estimates.shape[2] != len(exact):
        raise ValueError(f"estimates must be [R, K={len(ks)}, B={len(exact)}], got {estimates.shape}")
    import seaborn as sns

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig, axes = plotting.new_figure(1, len(exact), size=size, sharey=False)
        for b, ax in enumerate(axes[0]):
            for r in range(estimates.shape[0]):
                ax.scatter(ks, estimates[r, :, b], s=6, color="tab:blue", alpha=0.3)
            ax.plot(ks, estimates[:, :, b].mean(axis=0), marker="o", color="tab:blue", label="$\\mathcal{L}_k$ estimate")
            ax.axhline(exact[b], linestyle="--", color="0.2", label="log p(x), quadrature")
            ax.set_xscale("log")
            ax.set_xlabel("k")
            if labels is not None:
                ax.set_title(str(labels[b]), fontsize="small")
        axes[0, 0].set_ylabel("nats")
        axes[0, 0].legend(fontsize="x-small")
    return fig


def posterior_columns(images, grid, columns: dict, zoom_mass: float = 0.999, size_per_panel: float = 2.4):
    """Several models side by side: for each image (a row), the digit, then one panel per
    model with its true posterior p(h | x) (filled contours) against its q(h | x) (red lines).

    Args:
        images: [B, 784] digits.
        grid: [G, 2] latent grid (``posterior.latent_grid``).
        columns: title -> (true_posterior [B, G], q_probabilities [B, G]), one entry per model
            (each model has its own p(h | x)), e.g. ``{"VAE, k=5": (p, q), "IWAE, k=5": (p, q)}``.
        zoom_mass: each panel shows the box holding this much of its two distributions.

    Returns a Figure with B rows and 1 + len(columns) columns.
    """
    images = plotting.as_images(images)
    n, c1, c2 = _grid_side(grid)
    columns = {title: (np.asarray(p), np.asarray(q)) for title, (p, q) in columns.items()}
    for title, (p, q) in columns.items():
        if p.shape != (len(images), n * n) or q.shape != p.shape:
            raise ValueError(f"{title}: need [B, G] = [{len(images)}, {n * n}] posteriors, got {p.shape} and {q.shape}")
    with _style():
        fig, axes = plotting.new_figure(len(images), 1 + len(columns),
                                        size=((1 + 1.3 * len(columns)) * size_per_panel, size_per_panel * len(images)),
                                        gridspec_kw={"width_ratios": [1] + [1.3] * len(columns)})
        for b, row in enumerate(axes):
            row[0].imshow(images[b], cmap="gray_r", vmin=0, vmax=1)
            row[0].set_axis_off()
            for ax, (title, (p, q)) in zip(row[1:], columns.items()):
                _contours(ax, c1, c2, p[b], n, None, filled=True)
                _contours(ax, c1, c2, q[b], n, "tab:red", filled=False)
                box = _mass_box(p[b] + q[b], n, c1, c2, zoom_mass)
                ax.set_xlim(box[:2])
                ax.set_ylim(box[2:])
                ax.set_xlabel("$h_1$")
                ax.set_ylabel("$h_2$")
                if b == 0:
                    ax.set_title(f"{title}\np(h|x) filled, q(h|x) red", fontsize="small")
    return fig
