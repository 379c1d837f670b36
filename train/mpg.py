"""Train the Auto MPG regression model and export it as a new bucket version.

    python -m train.mpg [--data auto-mpg.csv] [--seed 42] [--epochs 1000]
                        [--bucket model_bucket] [--name mpg] [--quiet]

Writes `<bucket>/<name>/<version>/` (model.keras, model.tflite, metrics.json, two plots,
manifest.json last) and then moves `<bucket>/<name>/LATEST`, following
model_bucket/README.md. Nothing is published unless the `.tflite` answers like the Keras
model on every row of the data.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelserve import contract
from train import bucket, mpg_data, mpg_model, mpg_report

if TYPE_CHECKING:
    import keras

DEFAULT_MAX_EPOCHS = 1000
DEFAULT_BUCKET = Path("model_bucket")
DEFAULT_NAME = "mpg"
MODEL_KERAS = "model.keras"
MODEL_TFLITE = contract.MODEL_FILE
METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"
PREDICTED_FILE = "predicted_vs_actual.png"
EXIT_PARITY = 1
EXIT_BAD_DATA = 2
OUTPUT = {"name": "mpg", "type": "number", "unit": "miles per gallon"}
METRIC_DECIMALS = 6


class ParityError(RuntimeError):
    """The `.tflite` does not answer like the Keras model."""


@dataclass(frozen=True)
class Dataset:
    """The loaded data and the frames cut from it (horsepower imputed where noted)."""

    raw: pd.DataFrame  # every row, as loaded
    used: pd.DataFrame  # rows with an mpg, not imputed (feature min/max come from here)
    train: pd.DataFrame  # imputed
    test: pd.DataFrame  # imputed
    fit: pd.DataFrame  # part of train the optimizer sees
    validation: pd.DataFrame  # part of train early stopping watches
    imputation: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m train.mpg", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", type=Path, help="UCI-style CSV ('?' = missing); default: vega_datasets cars.json"
    )
    parser.add_argument("--seed", type=int, default=mpg_data.DEFAULT_SEED, help="default 42")
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEFAULT_MAX_EPOCHS,
        help=f"maximum epochs; early stopping usually ends sooner (default {DEFAULT_MAX_EPOCHS})",
    )
    parser.add_argument("--bucket", type=Path, default=DEFAULT_BUCKET, help="bucket folder")
    parser.add_argument("--name", default=DEFAULT_NAME, help="model name (folder in the bucket)")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines; the summary is still printed"
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command = shlex.join(["python", "-m", "train.mpg", *argv])
    return args


def prepare_data(path: Path | None, seed: int) -> Dataset:
    """Load, drop rows without mpg, split, impute horsepower with the training median."""
    raw = mpg_data.load_data(path)
    used = mpg_data.with_target(raw)
    train, test = mpg_data.split(used, seed)
    value = mpg_data.imputation_value(train)
    train, test = mpg_data.impute(train, value), mpg_data.impute(test, value)
    fit, validation = mpg_data.split(train, seed, mpg_model.VALIDATION_FRACTION)
    return Dataset(raw, used, train, test, fit, validation, value)


def evaluate(model: keras.Model, data: Dataset) -> dict[str, float]:
    """Keras RMSE/MAE on the fit, validation and test rows."""
    figures: dict[str, float] = {}
    for label, frame in (("train", data.fit), ("validation", data.validation), ("test", data.test)):
        scores = mpg_model.regression_metrics(
            mpg_model.predict(model, mpg_data.feature_matrix(frame)), mpg_data.targets(frame)
        )
        figures.update({f"{label}_{key}": value for key, value in scores.items()})
    return figures


def check_parity(model: keras.Model, tflite_path: Path, data: Dataset) -> dict[str, float]:
    """Compare Keras and the `.tflite` on every row; raise ParityError past the tolerance."""
    features = mpg_data.feature_matrix(mpg_data.impute(data.raw, data.imputation))
    difference = np.abs(
        mpg_model.predict(model, features) - mpg_model.tflite_predict(tflite_path, features)
    )
    worst = float(np.max(difference))
    if not worst <= mpg_model.PARITY_TOLERANCE:
        row = int(np.argmax(difference))
        raise ParityError(
            f"{tflite_path.name} differs from the Keras model by {worst:.4g} mpg on data row "
            f"{row} (limit {mpg_model.PARITY_TOLERANCE} mpg)"
        )
    return {
        "parity_max_abs_diff": worst,
        "parity_rows": len(features),
        "parity_tolerance": mpg_model.PARITY_TOLERANCE,
    }


def write_artifacts(
    folder: Path, model: keras.Model, data: Dataset, result: mpg_model.TrainResult, seconds: float
) -> dict[str, Any]:
    """Save the models, check parity, write metrics and plots into `folder`; the metrics."""
    model.save(folder / MODEL_KERAS)
    (folder / MODEL_TFLITE).write_bytes(mpg_model.to_tflite(model))
    parity = check_parity(model, folder / MODEL_TFLITE, data)
    tflite_test = mpg_model.regression_metrics(
        mpg_model.tflite_predict(folder / MODEL_TFLITE, mpg_data.feature_matrix(data.test)),
        mpg_data.targets(data.test),
    )
    metrics: dict[str, Any] = {
        **evaluate(model, data),
        "tflite_test_rmse": tflite_test["rmse"],
        "tflite_test_mae": tflite_test["mae"],
        **parity,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": seconds,
    }
    metrics = {key: _rounded(key, value) for key, value in metrics.items()}
    bucket.write_json(folder / METRICS_FILE, metrics)
    mpg_report.plot_loss_curve(
        result.loss, result.val_loss, result.best_epoch, folder / LOSS_CURVE_FILE
    )
    test_features = mpg_data.feature_matrix(data.test)
    mpg_report.plot_predicted_vs_actual(
        mpg_data.targets(data.test),
        mpg_model.predict(model, test_features),
        metrics,
        folder / PREDICTED_FILE,
    )
    return metrics


def build_manifest(
    args: argparse.Namespace,
    data: Dataset,
    result: mpg_model.TrainResult,
    metrics: dict[str, Any],
    version: str,
    created_at: datetime,
) -> dict[str, Any]:
    """The manifest (without `files`, which `bucket.write_manifest` adds)."""
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "name": args.name,
        "version": version,
        "task": contract.TASK_REGRESSION,
        "created_at": contract.created_at_text(created_at),
        "runtime": {"format": contract.RUNTIME_FORMAT, "model_file": MODEL_TFLITE},
        "input": {
            "kind": "tabular",
            "dtype": "float32",
            "features": mpg_data.feature_schema(data.used),
        },
        "output": OUTPUT,
        "training": _training_provenance(args, data, result),
        "metrics": metrics,
    }


def export(
    args: argparse.Namespace,
    data: Dataset,
    model: keras.Model,
    result: mpg_model.TrainResult,
    seconds: float,
) -> tuple[Path, dict[str, Any]]:
    """Write the version into a staging folder, publish it, move LATEST; (folder, manifest).

    On any failure (ParityError included) the staging folder is removed and neither a
    version folder nor LATEST changes.
    """
    model_root = args.bucket / args.name
    with bucket.staging_folder(model_root) as staging:
        metrics = write_artifacts(staging, model, data, result, seconds)
        return bucket.publish_staged(
            staging, model_root,
            lambda version, now: build_manifest(args, data, result, metrics, version, now),
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the process exit code."""
    args = parse_args(argv)
    mpg_model.configure_determinism(args.seed)
    try:
        data = prepare_data(args.data, args.seed)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: cannot load the data: {error}", file=sys.stderr)
        return EXIT_BAD_DATA
    if not args.quiet:
        _print_now(
            f"Training on {len(data.fit)} rows, early stopping on {len(data.validation)}, "
            f"{len(data.test)} held out (seed {args.seed}, at most {args.epochs} epochs)"
        )
    model = mpg_model.build_model(mpg_data.feature_matrix(data.train))
    started = time.perf_counter()
    result = mpg_model.train(
        model,
        (mpg_data.feature_matrix(data.fit), mpg_data.targets(data.fit)),
        (mpg_data.feature_matrix(data.validation), mpg_data.targets(data.validation)),
        max_epochs=args.epochs,
        seed=args.seed,
        progress=None if args.quiet else _print_now,
    )
    seconds = time.perf_counter() - started
    try:
        folder, manifest = export(args, data, model, result, seconds)
    except ParityError as error:
        print(f"error: parity check failed, nothing exported: {error}", file=sys.stderr)
        return EXIT_PARITY
    print(mpg_report.summary(manifest, folder))
    return 0


def _training_provenance(
    args: argparse.Namespace, data: Dataset, result: mpg_model.TrainResult
) -> dict[str, Any]:
    """The manifest's `training` block."""
    source = mpg_data.data_path(args.data)
    return {
        "data": {
            "source": "vega_datasets" if args.data is None else "csv",
            "file": "vega_datasets/_data/cars.json" if args.data is None else str(args.data),
            "sha256": contract.sha256_file(source),
            "description": "UCI Auto MPG",
        },
        "rows": {
            "total": len(data.raw),
            "used": len(data.used),
            "dropped": len(data.raw) - len(data.used),
            "dropped_reason": "no mpg",
            "horsepower_imputed": int(data.used[mpg_data.IMPUTED_FEATURE].isna().sum()),
        },
        "split": {
            "method": "train.mpg_data.split: numpy RandomState(seed) permutation",
            "test_fraction": mpg_data.TEST_FRACTION,
            "validation_fraction": mpg_model.VALIDATION_FRACTION,
            "train_rows": len(data.train),
            "fit_rows": len(data.fit),
            "validation_rows": len(data.validation),
            "test_rows": len(data.test),
        },
        "seed": args.seed,
        "imputation": {mpg_data.IMPUTED_FEATURE: {"strategy": "median", "value": data.imputation}},
        "epochs": {
            "max": args.epochs,
            "run": result.epochs_run,
            "best": result.best_epoch,
            "patience": mpg_model.PATIENCE,
        },
        "model": {
            "layers": "Normalization, "
            + ", ".join(f"Dense {units} relu" for units in mpg_model.HIDDEN_UNITS)
            + ", Dense 1",
            "optimizer": "adam",
            "learning_rate": mpg_model.LEARNING_RATE,
            "loss": "mse",
            "batch_size": mpg_model.BATCH_SIZE,
        },
        "frameworks": mpg_model.versions(),
        "command": args.command,
    }


def _rounded(name: str, value: Any) -> Any:
    """RMSE/MAE/seconds to `METRIC_DECIMALS` places; the tiny parity figure as is."""
    keep = not isinstance(value, float) or name.startswith("parity_")
    return value if keep else round(value, METRIC_DECIMALS)


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _print_now(message: str) -> None:
    """Print and flush (progress must show up while training runs)."""
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
