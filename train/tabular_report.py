"""The training report's plots: loss curve, predicted against actual, confusion matrix.

Shared by the tabular exporter and the image fine-tuner. No pyplot: no GUI backend, no global
figure state; the PNGs carry no matplotlib version, so a re-run writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

FIGURE_SIZE = (6.4, 4.8)
FIGURE_DPI = 100
PNG_METADATA = {"Software": None}
MAX_ANNOTATED_CLASSES = 20  # above this the confusion matrix cells carry no numbers


def plot_loss_curve(loss: Sequence[float], val_loss: Sequence[float], best_epoch: int,
                    path: Path, *, title: str, ylabel: str, log_scale: bool = True) -> None:
    """Training and validation loss per epoch, the restored epoch marked."""
    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    axes = figure.add_subplot()
    epochs = np.arange(1, len(loss) + 1)
    axes.plot(epochs, loss, label="training")
    axes.plot(epochs, val_loss, label="validation")
    axes.axvline(best_epoch, color="grey", linestyle="--", label=f"restored (epoch {best_epoch})")
    if log_scale:
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)


def plot_predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, path: Path, *,
                             quantity: str, title: str) -> None:
    """Held-out rows: predicted against actual values, with the identity line."""
    actual, predicted = np.asarray(actual).reshape(-1), np.asarray(predicted).reshape(-1)
    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    axes = figure.add_subplot()
    axes.scatter(actual, predicted, s=14, alpha=0.7)
    low = float(min(np.min(actual), np.min(predicted)))
    high = float(max(np.max(actual), np.max(predicted)))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="predicted = actual")
    axes.set_xlabel(f"actual {quantity}")
    axes.set_ylabel(f"predicted {quantity}")
    axes.set_title(title)
    axes.set_aspect("equal")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts: row = actual class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(actual, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def plot_confusion_matrix(actual: np.ndarray, predicted: np.ndarray, labels: Sequence[str],
                          path: Path, *, title: str) -> np.ndarray:
    """The held-out confusion matrix as a PNG; the matrix."""
    matrix = confusion_matrix(actual, predicted, len(labels))
    side = max(FIGURE_SIZE[1], 0.45 * len(labels) + 2)
    figure = Figure(figsize=(side + 1, side), dpi=FIGURE_DPI)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels=list(labels), rotation=45, ha="right")
    axes.set_yticks(ticks, labels=list(labels))
    if len(labels) <= MAX_ANNOTATED_CLASSES:
        threshold = matrix.max() / 2 if matrix.size else 0
        for row in range(len(labels)):
            for column in range(len(labels)):
                axes.text(column, row, str(matrix[row, column]), ha="center", va="center",
                          color="white" if matrix[row, column] > threshold else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)
    return matrix
