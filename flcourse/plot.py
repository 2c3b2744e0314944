"""Plots the chapters use. Each function draws on ``ax`` (a new figure if None) and returns it."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from .data.partition import PartitionStats


def _axes(ax, figsize=(6, 3.5)):
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def plot_partition(stats: PartitionStats, *, ax=None, title: str | None = None):
    """Stacked bars: one bar per client, one colour per label, height = number of samples."""
    ax = _axes(ax, figsize=(max(6, 0.12 * stats.n_clients + 3), 3.5))
    n_classes = stats.label_counts.shape[1]
    colours = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")(np.arange(n_classes) % 20)
    bottom = np.zeros(stats.n_clients)
    for label in range(n_classes):
        ax.bar(np.arange(stats.n_clients), stats.label_counts[:, label], bottom=bottom,
               color=colours[label], width=0.9, label=str(label))
        bottom += stats.label_counts[:, label]
    ax.set(xlabel="client", ylabel="samples", title=title or f"label skew {stats.label_skew:.2f}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(title="label", fontsize=7, ncol=1 if n_classes <= 10 else 2, loc="upper left",
              bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax


def plot_history(histories: dict, key: str, *, x: str | None = None, ax=None,
                 title: str | None = None, logy: bool = False):
    """Learning curves: ``key`` of each history in ``histories`` (a dict name -> history)."""
    ax = _axes(ax)
    for name, history in histories.items():
        x_name = x or next(k for k in ("epoch", "step", "round") if k in history)
        ax.plot(history[x_name], history[key], label=name, marker="." if len(history[key]) < 30 else None)
    ax.set(xlabel=x_name, ylabel=key.replace("_", " "), title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    return ax


def plot_digits(X, y, *, n: int = 10, ax=None):
    """Show the first ``n`` 8x8 digit images with their labels."""
    fig, axes = plt.subplots(1, n, figsize=(n * 0.8, 1.2)) if ax is None else (None, ax)
    for image, label, axis in zip(X[:n], y[:n], np.ravel(axes)):
        axis.imshow(np.reshape(image, (8, 8)), cmap="gray_r")
        axis.set(xticks=[], yticks=[], title=str(label))
    return axes
