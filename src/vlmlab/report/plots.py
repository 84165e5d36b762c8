"""Matplotlib figures for reports, returned as PNG bytes (Agg backend, no display needed)."""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig: "plt.Figure") -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    # Fixed metadata so that the same figure gives the same bytes.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def bar_chart(labels: Sequence[str], series: dict[str, Sequence[float]], title: str = "", ylabel: str = "") -> bytes:
    """Grouped bars: one group per label, one bar per series."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) * max(1, len(series)) * 0.5 + 3), 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, [np.nan if v is None else v for v in values], width, label=name)
    ax.set_xticks(x, [str(label) for label in labels], rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def panel_figure(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str = "") -> "plt.Figure":
    """One bar panel per series, each with its own y axis (the figure; `panel_bar_chart` renders it).

    Metrics on different scales (CIDEr 0-10 next to BLEU/METEOR/ROUGE 0-1) on one axis make
    the small ones invisible; side by side panels keep every metric readable.
    """
    n = max(1, len(series))
    fig, axes = plt.subplots(1, n, figsize=(max(5.0, 2.2 * n + 0.4 * len(labels)), 3.6), squeeze=False)
    x = np.arange(len(labels))
    for ax, (name, values) in zip(axes[0], series.items()):
        ax.bar(x, [np.nan if v is None else v for v in values], 0.7, color=[f"C{i % 10}" for i in range(len(labels))])
        ax.set_xticks(x, [str(label) for label in labels], rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def panel_bar_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str = "") -> bytes:
    """PNG of `panel_figure`."""
    return _png(panel_figure(labels, series, title))


def line_chart(x: Sequence[float], series: dict[str, Sequence[float]], title: str = "", xlabel: str = "", ylabel: str = "",
               errors: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> bytes:
    """Lines over x, with optional (low, high) bands per series."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, values in series.items():
        ax.plot(list(x), list(values), marker="o", label=name)
        if errors and name in errors:
            low, high = errors[name]
            ax.fill_between(list(x), list(low), list(high), alpha=0.15)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def confusion_matrix_plot(matrix: np.ndarray, labels: Sequence[str], title: str = "", xlabel: str = "model", ylabel: str = "human") -> bytes:
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 0.8 + 0.6 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    top = matrix.max() if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=8, color="white" if value > top / 2 else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _png(fig)


def scatter_plot(x: Sequence[float], y: Sequence[float], title: str = "", xlabel: str = "", ylabel: str = "", diagonal: bool = True) -> bytes:
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    rng = np.random.default_rng(0)
    xs = np.asarray(x, dtype=float) + rng.uniform(-0.12, 0.12, len(x))
    ys = np.asarray(y, dtype=float) + rng.uniform(-0.12, 0.12, len(y))
    ax.scatter(xs, ys, s=8, alpha=0.5)
    if diagonal and len(x):
        lo, hi = float(np.nanmin([np.nanmin(x), np.nanmin(y)])), float(np.nanmax([np.nanmax(x), np.nanmax(y)]))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _png(fig)
