"""The MPG training report: the two plots and the end-of-run summary text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

FIGURE_SIZE = (6.4, 4.8)
FIGURE_DPI = 100
PNG_METADATA = {"Software": None}  # keep the matplotlib version out of the PNG bytes


def plot_loss_curve(
    loss: Sequence[float], val_loss: Sequence[float], best_epoch: int, path: Path
) -> None:
    """Training and validation MSE per epoch (log scale), the restored epoch marked."""
    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    axes = figure.add_subplot()
    epochs = np.arange(1, len(loss) + 1)
    axes.plot(epochs, loss, label="training")
    axes.plot(epochs, val_loss, label="validation")
    axes.axvline(best_epoch, color="grey", linestyle="--", label=f"restored (epoch {best_epoch})")
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss: mean squared error (mpg²)")
    axes.set_title("Auto MPG training")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)


def plot_predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, metrics: Mapping[str, float], path: Path
) -> None:
    """Held-out test rows: predicted against actual mpg, with the identity line."""
    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    axes = figure.add_subplot()
    axes.scatter(actual, predicted, s=14, alpha=0.7)
    low = float(min(np.min(actual), np.min(predicted)))
    high = float(max(np.max(actual), np.max(predicted)))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="predicted = actual")
    axes.set_xlabel("actual mpg")
    axes.set_ylabel("predicted mpg")
    axes.set_title(
        f"Test split ({len(actual)} cars): RMSE {metrics['test_rmse']:.2f}, "
        f"MAE {metrics['test_mae']:.2f} mpg"
    )
    axes.set_aspect("equal")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)


def summary(manifest: Mapping[str, Any], version_folder: Path) -> str:
    """The one-screen end-of-run summary."""
    training = manifest["training"]
    rows, split, epochs = training["rows"], training["split"], training["epochs"]
    metrics = manifest["metrics"]
    imputation = training["imputation"]["horsepower"]["value"]
    return "\n".join(
        [
            "",
            "Auto MPG model exported",
            f"  data      {training['data']['file']} (sha256 {training['data']['sha256'][:12]}…)",
            f"  rows      {rows['total']} total, {rows['used']} used, {rows['dropped']} dropped"
            f" (no mpg); {rows['horsepower_imputed']} horsepower imputed with {imputation:g}",
            f"  split     train {split['train_rows']} (fit {split['fit_rows']}, validation"
            f" {split['validation_rows']}), test {split['test_rows']}, seed {training['seed']}",
            f"  epochs    {epochs['run']} run, best {epochs['best']} restored"
            f" (max {epochs['max']}, patience {epochs['patience']});"
            f" {metrics['train_seconds']:.1f} s",
            f"  test      RMSE {metrics['test_rmse']:.2f} mpg, MAE {metrics['test_mae']:.2f} mpg"
            f" (.tflite: RMSE {metrics['tflite_test_rmse']:.2f}, MAE"
            f" {metrics['tflite_test_mae']:.2f})",
            f"  parity    max |keras - tflite| {metrics['parity_max_abs_diff']:.2g} mpg over"
            f" {metrics['parity_rows']} rows (limit {metrics['parity_tolerance']})",
            f"  version   {version_folder}  (LATEST -> {manifest['version']})",
        ]
    )
