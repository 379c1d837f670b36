"""Train (or take) a tabular Keras model and export it as a new bucket version.

    python -m train.tabular --data FILE.csv|FILE.parquet --target COLUMN
        [--features A,B,...] [--categorical A,...] [--task regression|classification]
        [--keras MODEL.keras] [--drop-missing] [--unit TEXT] [--name NAME]
        [--bucket model_bucket] [--epochs 500] [--patience 50] [--seed 42] [--quiet]

Without --task the task is inferred from the target (text, or at most 20 whole numbers:
classification; other numbers: regression) and the inference is printed. Without --keras the
default network is trained (normalization and one-hot categories inside the model, fixed seed
and held-out split, early stopping, one progress line per epoch). Writes
`<bucket>/<name>/<version>/` (model.keras, model.tflite, metrics.json, loss_curve.png,
predicted_vs_actual.png or confusion_matrix.png, manifest.json last), then moves LATEST.
Exit codes: 0 done, 1 the .tflite does not answer like Keras on every row (nothing written),
2 unusable data or model (nothing written).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelserve import contract
from modelserve.contract import TASK_CLASSIFICATION, TASK_REGRESSION
from modelserve.schema import CATEGORY, classification_output
from train import bucket, tabular_report
from train.tabular_data import (
    DEFAULT_SEED,
    MISSING_DROP,
    MISSING_REFUSE,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    DataError,
    Table,
    TableRequest,
    prepare,
    read_table,
)

if TYPE_CHECKING:
    import keras

DEFAULT_BUCKET = Path("model_bucket")
DEFAULT_MAX_EPOCHS = 500
DEFAULT_PATIENCE = 50
MODEL_KERAS = "model.keras"
METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"
PREDICTED_FILE = "predicted_vs_actual.png"
CONFUSION_FILE = "confusion_matrix.png"
EXIT_PARITY = 1
EXIT_INPUT = 2
METRIC_DECIMALS = 6
Progress = Callable[[str], None]


class CommandFailed(Exception):
    """The command stops with `code`; the message says why (and nothing was written)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Export:
    """Everything an export needs beyond the table."""

    name: str
    bucket: Path
    data: dict[str, Any]  # the manifest's training.data: source, file, sha256, ...
    command: str
    max_epochs: int = DEFAULT_MAX_EPOCHS
    patience: int = DEFAULT_PATIENCE
    seed: int = DEFAULT_SEED
    keras_file: Path | None = None
    output: dict[str, Any] = field(default_factory=dict)  # regression: unit, description
    title: str = ""  # the plots' title


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m train.tabular",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a CSV or Parquet file")
    parser.add_argument("--target", required=True, help="the column to predict")
    parser.add_argument("--features", type=_names, help="comma-separated feature columns "
                        "in model order (default: every other column)")
    parser.add_argument("--categorical", type=_names, default=(),
                        help="comma-separated feature columns that are categories")
    parser.add_argument("--task", choices=(TASK_REGRESSION, TASK_CLASSIFICATION),
                        help="default: inferred from the target (and printed)")
    parser.add_argument("--keras", type=Path, help="export this trained Keras model instead "
                        "of training one (it takes one float per feature, categories as codes)")
    parser.add_argument("--drop-missing", action="store_true",
                        help="drop rows with a missing feature (default: refuse them)")
    parser.add_argument("--unit", default="", help="regression: the target's unit")
    parser.add_argument("--name", help="model name (folder in the bucket; default: the file's "
                        "name)")
    parser.add_argument("--bucket", type=Path, default=DEFAULT_BUCKET, help="bucket folder")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULT_MAX_EPOCHS,
                        help=f"maximum epochs (default {DEFAULT_MAX_EPOCHS})")
    parser.add_argument("--patience", type=positive_int, default=DEFAULT_PATIENCE,
                        help=f"early stopping patience in epochs (default {DEFAULT_PATIENCE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default 42")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines; the summary is still printed")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command = shlex.join(["python", "-m", "train.tabular", *argv])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the process exit code."""
    args = parse_args(argv)
    say: Progress = (lambda _message: None) if args.quiet else print_now
    try:
        frame = read_table(args.data)
        table = prepare(frame, TableRequest(
            target=args.target, features=args.features, categorical=args.categorical,
            task=args.task, missing=MISSING_DROP if args.drop_missing else MISSING_REFUSE,
            seed=args.seed))
        if args.keras is not None and not args.keras.is_file():
            raise DataError(f"--keras {args.keras}: no such file")
    except DataError as error:
        print(f"error: nothing exported: {error}", file=sys.stderr)
        return EXIT_INPUT
    export = Export(
        name=args.name or _model_name(args.data), bucket=args.bucket,
        data={"source": "file", "file": args.data.name, "format": args.data.suffix.lstrip("."),
              "sha256": contract.sha256_file(args.data)},
        command=args.command, max_epochs=args.epochs, patience=args.patience, seed=args.seed,
        keras_file=args.keras, output={"unit": args.unit}, title=args.data.name)
    try:
        folder, manifest = run(export, table, say)
    except CommandFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.code
    print(summary(manifest, folder))
    return 0


def run(export: Export, table: Table, say: Progress) -> tuple[Path, dict[str, Any]]:
    """Train (or load), convert, check and write the version; (folder, manifest).

    CommandFailed (nothing written) for an unusable --keras model or failed parity.
    """
    say(f"Task: {table.task} ({table.task_reason})")
    dropped = table.rows["dropped_missing_features"]
    if dropped:
        say(f"Dropped {dropped} rows with a missing feature (--drop-missing)")
    if table.rows["dropped_no_target"]:
        say(f"Dropped {table.rows['dropped_no_target']} rows without a target")
    say("Loading TensorFlow")
    from train import tabular_model

    tabular_model.configure_determinism(export.seed)
    outputs = len(table.labels) if table.task == TASK_CLASSIFICATION else 1
    started = time.perf_counter()
    result = None
    if export.keras_file is not None:
        try:
            model = tabular_model.load_user_model(export.keras_file)
            tabular_model.check_user_model(model, table.features, outputs, export.keras_file)
        except ValueError as error:
            raise CommandFailed(f"nothing exported: {error}", EXIT_INPUT) from None
        say(f"Exporting {export.keras_file} (no training)")
    else:
        model = default_model(table, export.name)
        say(f"Training on {len(table.split['fit'])} rows, early stopping on "
            f"{len(table.split['validation'])}, {len(table.split['test'])} held out "
            f"(seed {export.seed}, at most {export.max_epochs} epochs)")
        result = tabular_model.train(
            model, table.part("fit"), table.part("validation"), max_epochs=export.max_epochs,
            seed=export.seed, patience=export.patience, progress=say)
    seconds = time.perf_counter() - started
    model_root = export.bucket / export.name
    with bucket.staging_folder(model_root) as staging:
        try:
            metrics = write_artifacts(staging, model, table, export, result, seconds)
        except tabular_model.ParityError as error:
            raise CommandFailed(f"parity check failed, nothing exported: {error}",
                                EXIT_PARITY) from None
        return bucket.publish_staged(
            staging, model_root,
            lambda version, now: build_manifest(export, table, result, metrics, version, now))


def default_model(table: Table, name: str) -> keras.Model:
    """The default network for `table` (normalization adapted on its training split)."""
    from train import tabular_model

    categories = {index: sorted(entry["categories"].values())
                  for index, entry in enumerate(table.schema) if entry["type"] == CATEGORY}
    train_x, train_y = table.part("train")
    return tabular_model.build_model(train_x, train_y, table.task, categories,
                                     classes=len(table.labels), name=_layer_name(name))


def write_artifacts(folder: Path, model: keras.Model, table: Table, export: Export,
                    result: Any, seconds: float) -> dict[str, Any]:
    """Save the models, check parity on every row, write metrics and plots; the metrics."""
    from train import tabular_model

    if export.keras_file is not None and export.keras_file.suffix == ".keras":
        shutil.copyfile(export.keras_file, folder / MODEL_KERAS)
    else:
        model.save(folder / MODEL_KERAS)
    (folder / contract.MODEL_FILE).write_bytes(tabular_model.to_tflite(model))
    keras_out = tabular_model.predict(model, table.x)
    tflite_out = tabular_model.tflite_predict(folder / contract.MODEL_FILE, table.x)
    parity = tabular_model.check_parity(keras_out, tflite_out, table.task, table.y)
    metrics: dict[str, Any] = {}
    for part in ("fit", "validation", "test"):
        index = table.split[part]
        label = "train" if part == "fit" else part
        scores = tabular_model.task_metrics(table.task, keras_out[index], table.y[index])
        metrics.update({f"{label}_{key}": value for key, value in scores.items()})
    test = table.split["test"]
    tflite_scores = tabular_model.task_metrics(table.task, tflite_out[test], table.y[test])
    metrics.update({f"tflite_test_{key}": value for key, value in tflite_scores.items()})
    metrics.update(parity)
    if result is not None:
        metrics.update(epochs_run=result.epochs_run, best_epoch=result.best_epoch)
    metrics["train_seconds"] = seconds
    metrics = {key: _rounded(key, value) for key, value in metrics.items()}
    bucket.write_json(folder / METRICS_FILE, metrics)
    _plots(folder, table, export, result, keras_out[test], metrics)
    return metrics


def build_manifest(export: Export, table: Table, result: Any, metrics: dict[str, Any],
                   version: str, created_at: datetime) -> dict[str, Any]:
    """The manifest (without `files`, which `bucket.write_manifest` adds)."""
    target = table.target
    if table.task == TASK_CLASSIFICATION:
        output = classification_output(target, list(table.labels), contract.ACTIVATION_NONE)
    else:
        output = {"name": target, "type": "number", **export.output}
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "name": export.name,
        "version": version,
        "task": table.task,
        "created_at": contract.created_at_text(created_at),
        "runtime": {"format": contract.RUNTIME_FORMAT, "model_file": contract.MODEL_FILE},
        "input": {"kind": "tabular", "dtype": "float32", "features": table.schema},
        "output": output,
        "training": provenance(export, table, result),
        "metrics": metrics,
    }


def provenance(export: Export, table: Table, result: Any) -> dict[str, Any]:
    """The manifest's `training` block."""
    from train import tabular_model

    split = table.split
    if export.keras_file is not None:
        model: dict[str, Any] = {"source": "keras file", "file": export.keras_file.name,
                                 "sha256": contract.sha256_file(export.keras_file)}
        epochs = None
    else:
        head = ("Dense softmax" if table.task == TASK_CLASSIFICATION
                else "Dense 1 rescaled to the target's mean and spread")
        model = {"source": "default network",
                 "layers": "Normalization, one-hot categories, "
                 + ", ".join(f"Dense {units} relu" for units in tabular_model.HIDDEN_UNITS)
                 + f", {head}",
                 "optimizer": "adam", "learning_rate": tabular_model.LEARNING_RATE,
                 "loss": ("sparse categorical cross-entropy"
                          if table.task == TASK_CLASSIFICATION else "mse"),
                 "batch_size": tabular_model.BATCH_SIZE}
        epochs = {"max": export.max_epochs, "run": result.epochs_run,
                  "best": result.best_epoch, "patience": export.patience}
    return {
        "data": export.data,
        "target": table.target,
        "task": {"value": table.task, "reason": table.task_reason},
        "rows": table.rows,
        "split": {
            "method": "train.tabular_data.split_indexes: numpy RandomState(seed) permutation",
            "test_fraction": TEST_FRACTION,
            "validation_fraction": VALIDATION_FRACTION,
            "train_rows": len(split["train"]),
            "fit_rows": len(split["fit"]),
            "validation_rows": len(split["validation"]),
            "test_rows": len(split["test"]),
        },
        "seed": export.seed,
        "imputation": table.imputation,
        "epochs": epochs,
        "model": model,
        "frameworks": tabular_model.versions(),
        "command": export.command,
    }


def summary(manifest: dict[str, Any], folder: Path) -> str:
    """The one-screen end-of-run summary."""
    training, metrics = manifest["training"], manifest["metrics"]
    rows, split = training["rows"], training["split"]
    if manifest["task"] == TASK_CLASSIFICATION:
        test = (f"accuracy {metrics['test_accuracy']:.1%}, log loss "
                f"{metrics['test_log_loss']:.3f} (.tflite: {metrics['tflite_test_accuracy']:.1%},"
                f" {metrics['tflite_test_log_loss']:.3f})")
        output = f"classes {', '.join(manifest['output']['labels'])}"
    else:
        test = (f"RMSE {metrics['test_rmse']:.4g}, MAE {metrics['test_mae']:.4g} (.tflite: "
                f"{metrics['tflite_test_rmse']:.4g}, {metrics['tflite_test_mae']:.4g})")
        output = f"{manifest['output']['name']} {manifest['output'].get('unit', '')}".strip()
    epochs = training["epochs"]
    trained = (f"{epochs['run']} epochs run, best {epochs['best']} restored"
               if epochs else f"taken from {training['model']['file']}")
    return "\n".join([
        "",
        f"Tabular model {manifest['name']} exported ({manifest['task']})",
        f"  data      {training['data']['file']}: {rows['used']} of {rows['total']} rows used",
        f"  task      {training['task']['reason']}",
        f"  features  {', '.join(f['name'] for f in manifest['input']['features'])}",
        f"  output    {output}",
        f"  split     train {split['train_rows']} (fit {split['fit_rows']}, validation "
        f"{split['validation_rows']}), test {split['test_rows']}, seed {training['seed']}",
        f"  model     {trained}; {metrics['train_seconds']:.1f} s",
        f"  test      {test}",
        f"  parity    max |keras - tflite| {metrics['parity_max_abs_diff']:.2g} over "
        f"{metrics['parity_rows']} rows (limit {metrics['parity_tolerance']:.2g})",
        f"  version   {folder}  (LATEST -> {manifest['version']})",
    ])


def _plots(folder: Path, table: Table, export: Export, result: Any, test_out: np.ndarray,
           metrics: dict[str, Any]) -> None:
    test_y = table.y[table.split["test"]]
    title = export.title or export.name
    if result is not None:
        ylabel = ("loss: cross-entropy" if table.task == TASK_CLASSIFICATION
                  else "loss: mean squared error")
        tabular_report.plot_loss_curve(result.loss, result.val_loss, result.best_epoch,
                                       folder / LOSS_CURVE_FILE, title=f"{title} training",
                                       ylabel=ylabel)
    if table.task == TASK_CLASSIFICATION:
        tabular_report.plot_confusion_matrix(
            test_y, test_out.argmax(axis=1), table.labels, folder / CONFUSION_FILE,
            title=f"Test split ({len(test_y)} rows): accuracy {metrics['test_accuracy']:.1%}")
    else:
        unit = export.output.get("unit") or ""
        tabular_report.plot_predicted_vs_actual(
            test_y, test_out, folder / PREDICTED_FILE, quantity=table.target,
            title=f"Test split ({len(test_y)} rows): RMSE {metrics['test_rmse']:.4g}, "
                  f"MAE {metrics['test_mae']:.4g} {unit}".strip())


def _rounded(name: str, value: Any) -> Any:
    """Figures to `METRIC_DECIMALS` places; the tiny parity figures as they are."""
    keep = not isinstance(value, float) or name.startswith("parity_")
    return value if keep else round(value, METRIC_DECIMALS)


def _model_name(path: Path) -> str:
    """A bucket folder name from a file name: letters, digits, '-' and '_'."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem).strip("_")
    return cleaned or "tabular"


def _layer_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "tabular"


def _names(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated column names."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("needs at least one column name")
    return names


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def print_now(message: str) -> None:
    """Print and flush (progress must show up while training runs)."""
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
