"""The tabular Keras model: determinism, the default network, training, LiteRT and parity.

The model takes one float32 per feature, in the manifest's order (a category as its code),
and answers one value (regression) or one probability per class (classification).
Normalization (and one-hot encoding of categories) lives inside the model, so the served
`.tflite` takes the values a request carries.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide INFO/WARN

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from modelserve.contract import TASK_CLASSIFICATION
from train import frameworks

HIDDEN_UNITS = (64, 64)
LEARNING_RATE = 1e-3
BATCH_SIZE = 32
PATIENCE = 50
REGRESSION_PARITY = 1e-4  # x max(1, largest |target|): the most the .tflite may differ
PROBABILITY_PARITY = 1e-3  # the most a class probability may differ
TIE_MARGIN = 1e-3  # Keras' top two closer than this: either label agrees
LOG_LOSS_EPSILON = 1e-7


class ParityError(RuntimeError):
    """The `.tflite` does not answer like the Keras model."""


@dataclass(frozen=True)
class TrainResult:
    """What `train` reports: per-epoch losses and where early stopping landed."""

    loss: list[float]
    val_loss: list[float]
    epochs_run: int
    best_epoch: int


@keras.saving.register_keras_serializable(package="train")
class OneHotColumns(keras.layers.Layer):
    """One-hot encodings of the category columns of the input: `columns` is
    [[column index, [code, ...]], ...]; an unknown code encodes as all zeros."""

    def __init__(self, columns: Sequence[Sequence[Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = [[int(index), [float(code) for code in codes]]
                        for index, codes in columns]

    def call(self, inputs: Any) -> Any:
        parts = []
        for index, codes in self.columns:
            column = inputs[:, index : index + 1]
            known = keras.ops.convert_to_tensor(np.array([codes], dtype=np.float32))
            parts.append(keras.ops.cast(keras.ops.equal(column, known), "float32"))
        return keras.ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], sum(len(codes) for _, codes in self.columns))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "columns": self.columns}


def configure_determinism(seed: int) -> None:
    """Seed Python, numpy and TensorFlow; deterministic, single-threaded ops.

    Call before any TensorFlow op runs: thread counts cannot change once TensorFlow has
    started (then the current ones stay; op determinism alone keeps results reproducible).
    """
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def build_model(
    train_x: np.ndarray,
    train_y: np.ndarray,
    task: str,
    categories: dict[int, list[int]],
    *,
    classes: int = 0,
    name: str = "tabular",
    hidden_units: Sequence[int] = HIDDEN_UNITS,
    learning_rate: float = LEARNING_RATE,
) -> keras.Model:
    """The default network: Normalization (adapted on `train_x`), categories one-hot, ReLU
    layers, then one value (scaled to the target's mean and spread) or a softmax over
    `classes`. `categories` maps a column index to its codes."""
    normalizer = keras.layers.Normalization(name="normalization")
    normalizer.adapt(train_x)
    inputs = keras.Input(shape=(train_x.shape[1],), dtype="float32", name="features")
    hidden = normalizer(inputs)
    if categories:
        encoded = OneHotColumns(sorted(categories.items()), name="categories")(inputs)
        hidden = keras.layers.Concatenate(name="encoded")([hidden, encoded])
    for index, units in enumerate(hidden_units, start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"hidden_{index}")(hidden)
    if task == TASK_CLASSIFICATION:
        outputs = keras.layers.Dense(classes, activation="softmax", name="probabilities")(hidden)
        loss = "sparse_categorical_crossentropy"
    else:
        raw = keras.layers.Dense(1, name="standardized")(hidden)
        spread = float(np.std(train_y)) or 1.0
        outputs = keras.layers.Rescaling(spread, offset=float(np.mean(train_y)),
                                         name="value")(raw)
        loss = "mse"
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    return model


def train(
    model: keras.Model,
    fit: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    max_epochs: int,
    seed: int,
    patience: int = PATIENCE,
    progress: Callable[[str], None] | None = print,
) -> TrainResult:
    """Fit with early stopping on `validation` (best weights restored); `progress` gets one
    line per epoch (None: silent)."""
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    callbacks: list[keras.callbacks.Callback] = [stopper]
    if progress is not None:
        callbacks.append(ProgressLine(max_epochs, progress))
    history = model.fit(
        _dataset(*fit, shuffle_seed=seed),
        validation_data=_dataset(*validation),
        epochs=max_epochs,
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself, seeded
        verbose=0,
    )
    val_loss = [float(value) for value in history.history["val_loss"]]
    return TrainResult(
        loss=[float(value) for value in history.history["loss"]],
        val_loss=val_loss,
        epochs_run=len(val_loss),
        best_epoch=int(np.argmin(val_loss)) + 1,
    )


def predict(model: keras.Model, features: np.ndarray) -> np.ndarray:
    """Keras outputs, shape (rows, outputs) (a direct call: no tf.data pipeline)."""
    answers = model(np.asarray(features, dtype=np.float32), training=False)
    array = np.asarray(keras.ops.convert_to_numpy(answers), dtype=np.float32)
    return array.reshape(len(features), -1)


def to_tflite(model: keras.Model) -> bytes:
    """Convert to a float32 LiteRT flatbuffer (input [1, features])."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its temp folder
        return converter.convert()


def tflite_predict(model_path: Path, features: np.ndarray) -> np.ndarray:
    """Run the `.tflite` one row at a time, as the function serves it; (rows, outputs)."""
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    answers = []
    for row in np.asarray(features, dtype=np.float32):
        interpreter.set_tensor(input_index, row.reshape(1, -1))
        interpreter.invoke()
        answers.append(interpreter.get_tensor(output_index).reshape(-1).copy())
    return np.stack(answers).astype(np.float32)


def check_parity(keras_out: np.ndarray, tflite_out: np.ndarray, task: str,
                 targets: np.ndarray) -> dict[str, Any]:
    """Compare the two models' answers on every row; ParityError past the tolerance."""
    difference = np.abs(keras_out.astype(np.float64) - tflite_out.astype(np.float64))
    worst = float(np.max(difference))
    row = int(np.argmax(np.max(difference, axis=1)))
    if task == TASK_CLASSIFICATION:
        tolerance = PROBABILITY_PARITY
        top_two = np.sort(keras_out, axis=1)[:, -2:]
        tied = (top_two[:, 1] - top_two[:, 0]) < TIE_MARGIN
        same = (keras_out.argmax(axis=1) == tflite_out.argmax(axis=1)) | tied
        if not same.all():
            raise ParityError(f"the .tflite picks another class than Keras on data row "
                              f"{int(np.argmin(same))}")
        extra = {"parity_label_agreement": float(np.mean(same))}
    else:
        tolerance = REGRESSION_PARITY * max(1.0, float(np.max(np.abs(targets))))
        extra = {}
    if not worst <= tolerance:
        raise ParityError(f"the .tflite differs from the Keras model by {worst:.4g} on data "
                          f"row {row} (limit {tolerance:.4g})")
    return {"parity_max_abs_diff": worst, "parity_rows": len(keras_out),
            "parity_tolerance": tolerance, **extra}


def regression_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE in the target's unit."""
    errors = np.asarray(predicted, np.float64).reshape(-1) - np.asarray(actual, np.float64)
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}


def classification_metrics(probabilities: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss (natural log, probabilities clipped away from 0)."""
    probabilities = np.asarray(probabilities, np.float64)
    actual = np.asarray(actual, np.int64)
    chosen = np.clip(probabilities[np.arange(len(actual)), actual], LOG_LOSS_EPSILON, 1.0)
    return {"accuracy": float(np.mean(probabilities.argmax(axis=1) == actual)),
            "log_loss": float(-np.mean(np.log(chosen)))}


def task_metrics(task: str, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """The task's figures: accuracy and log loss, or RMSE and MAE."""
    if task == TASK_CLASSIFICATION:
        return classification_metrics(outputs, actual)
    return regression_metrics(outputs, actual)


def load_user_model(path: Path) -> keras.Model:
    """A user's saved Keras model (.keras or .h5); ValueError naming the file if unusable."""
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # keras raises many kinds for a file it cannot read
        raise ValueError(f"--keras {path}: cannot be loaded as a Keras model ({error})") \
            from None


def check_user_model(model: keras.Model, features: Sequence[str], outputs: int,
                     path: Path) -> None:
    """The user's model must take one float per feature and give `outputs` values."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"--keras {path}: the model needs exactly one input and one output, "
                         f"has {len(model.inputs)} and {len(model.outputs)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 2 or shape[1] != len(features):
        raise ValueError(f"--keras {path}: the model's input {shape} does not fit the "
                         f"{len(features)} features ({', '.join(features)}); it must take "
                         f"(None, {len(features)})")
    out_shape = tuple(model.outputs[0].shape)
    if len(out_shape) != 2 or out_shape[1] != outputs:
        raise ValueError(f"--keras {path}: the model's output {out_shape} does not fit the "
                         f"task, which needs (None, {outputs})")


def versions() -> dict[str, str]:
    """Versions of the frameworks that trained and converted the model, pandas included."""
    return frameworks.versions(pandas=pd.__version__)


def _dataset(
    features: np.ndarray, labels: np.ndarray, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """A batched tf.data pipeline; reshuffled every epoch from `shuffle_seed` when given."""
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(features), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(BATCH_SIZE)


class ProgressLine(keras.callbacks.Callback):
    """One line per epoch: `epoch N/MAX  loss ..  val_loss .. (best .. at epoch ..)`."""

    def __init__(self, max_epochs: int, emit: Callable[[str], None]) -> None:
        super().__init__()
        self.max_epochs = max_epochs
        self.emit = emit
        self.best = (float("inf"), 0)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        number = epoch + 1
        val_loss = float(logs.get("val_loss", float("nan")))
        if val_loss < self.best[0]:
            self.best = (val_loss, number)
        self.emit(
            f"epoch {number:>4}/{self.max_epochs}  loss {float(logs.get('loss', 0)):10.4f}"
            f"  val_loss {val_loss:10.4f}  (best {self.best[0]:.4f} at epoch {self.best[1]})"
        )
