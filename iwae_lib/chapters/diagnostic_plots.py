"""Figures for chapters 5, 6 and 8: gradient SNR against k, active units per layer, and
quantities over training. Each function returns a pyplot-free Figure (see
:mod:`iwae_lib.chapters.plotting`)."""

from __future__ import annotations

import numpy as np

from iwae_lib.chapters import plotting


def _style():
    import seaborn as sns

    return sns.axes_style("whitegrid")


def snr_vs_k(rows, value: str = "mean_snr", ylabel: str = "mean SNR over parameters", size=(9.0, 3.6)):
    """One panel per network (encoder, decoder): ``value`` against k, one line per estimator.

    rows: dicts with ``k``, ``estimator``, ``network`` and ``value`` (``gradient_stats.snr_sweep``).
    Both axes are logarithmic.
    """
    networks = list(dict.fromkeys(r["network"] for r in rows))
    with _style():
        fig, axes = plotting.new_figure(1, len(networks), size=size)
        for ax, net in zip(axes[0], networks):
            for name in dict.fromkeys(r["estimator"] for r in rows):
                pts = sorted((r["k"], r[value]) for r in rows if r["network"] == net and r["estimator"] == name)
                ax.plot(*zip(*pts), marker="o", label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("k")
            ax.set_title(net)
        axes[0, 0].set_ylabel(ylabel)
        axes[0, 0].legend(fontsize="small")
    return fig


def active_units_per_layer(variances: dict, threshold: float = 1e-2, size_per_layer=(4.2, 3.4)):
    """Sorted per-unit variances Var_x(E_q[h_i | x]), log scale, one panel per layer.

    variances: run name -> list (one per layer) of arrays [latent_i]
    (``metrics["active_unit_variances"]``). The dashed line is the activity threshold.
    """
    n_layers = max(len(v) for v in variances.values())
    with _style():
        fig, axes = plotting.new_figure(1, n_layers, size=(size_per_layer[0] * n_layers, size_per_layer[1]))
        for layer, ax in enumerate(axes[0]):
            for name, per_layer in variances.items():
                if layer < len(per_layer):
                    v = np.sort(np.asarray(per_layer[layer], np.float64))[::-1]
                    ax.plot(np.arange(1, len(v) + 1), np.maximum(v, 1e-12), marker=".", label=name)
            ax.axhline(threshold, linestyle="--", color="0.3", linewidth=1)
            ax.set_yscale("log")
            ax.set_xlabel("unit (sorted by variance)")
            ax.set_title(f"layer $h_{layer + 1}$")
        axes[0, 0].set_ylabel("Var$_x$(E$_q$[u | x])")
        axes[0, 0].legend(fontsize="x-small")
    return fig


def series(values: dict, xlabel: str, ylabel: str, logx: bool = False, title: str | None = None, size=(6.4, 3.6)):
    """Lines from name -> (xs, ys), e.g. active units against epochs for several runs."""
    with _style():
        fig, axes = plotting.new_figure(size=size)
        ax = axes[0, 0]
        for name, (xs, ys) in values.items():
            ax.plot(xs, ys, marker="o", label=name)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend(fontsize="small")
    return fig

