"""The MPG Keras model: determinism, building, training, LiteRT conversion and inference.

The model takes the float32 vector of the seven features (`train.mpg_data.FEATURES` order)
and answers miles per gallon. Normalization lives inside the model, so the served `.tflite`
takes raw feature values.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide INFO/WARN

import ai_edge_litert
import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from train.mpg_data import FEATURES

HIDDEN_UNITS = (64, 64)
LEARNING_RATE = 1e-3
BATCH_SIZE = 32
PATIENCE = 50
VALIDATION_FRACTION = 0.2
PARITY_TOLERANCE = 0.01  # mpg: the most the .tflite may differ from Keras on any row
PROGRESS_EVERY = 25  # epochs between progress lines


@dataclass(frozen=True)
class TrainResult:
    """What `train` reports: per-epoch losses and where early stopping landed."""

    loss: list[float]
    val_loss: list[float]
    epochs_run: int
    best_epoch: int


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
    train_features: np.ndarray,
    hidden_units: Sequence[int] = HIDDEN_UNITS,
    learning_rate: float = LEARNING_RATE,
) -> keras.Model:
    """A small MLP: Normalization (adapted on `train_features`), ReLU layers, one output."""
    normalizer = keras.layers.Normalization(name="normalization")
    normalizer.adapt(train_features)
    inputs = keras.Input(shape=(len(FEATURES),), dtype="float32", name="features")
    hidden = normalizer(inputs)
    for index, units in enumerate(hidden_units, start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"hidden_{index}")(hidden)
    outputs = keras.layers.Dense(1, name="mpg")(hidden)
    model = keras.Model(inputs, outputs, name="mpg")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def train(
    model: keras.Model,
    fit: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    max_epochs: int,
    seed: int,
    progress: Callable[[str], None] | None = print,
) -> TrainResult:
    """Fit with early stopping on `validation` (best weights restored).

    `progress` gets a compact line every `PROGRESS_EVERY` epochs (None: silent).
    """
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=PATIENCE, restore_best_weights=True
    )
    callbacks: list[keras.callbacks.Callback] = [stopper]
    if progress is not None:
        callbacks.append(_ProgressLine(max_epochs, progress))
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
    """Keras predictions in mpg, shape (rows,) (a direct call: no tf.data pipeline)."""
    answers = model(np.asarray(features, dtype=np.float32), training=False)
    return np.asarray(keras.ops.convert_to_numpy(answers)).reshape(-1)


def to_tflite(model: keras.Model) -> bytes:
    """Convert to a float32 LiteRT flatbuffer (input [1, 7], batch dimension resizable)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its temp folder
        return converter.convert()


def tflite_predict(model_path: Path, features: np.ndarray) -> np.ndarray:
    """Run the `.tflite` at `model_path` one row at a time, as the function serves it."""
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    answers = []
    for row in np.asarray(features, dtype=np.float32):
        interpreter.set_tensor(input_index, row.reshape(1, -1))
        interpreter.invoke()
        answers.append(float(interpreter.get_tensor(output_index).reshape(-1)[0]))
    return np.asarray(answers, dtype=np.float32)


def regression_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE in mpg."""
    errors = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
    }


def versions() -> dict[str, Any]:
    """Versions of the frameworks that trained and converted the model."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
    }


def _dataset(
    features: np.ndarray, labels: np.ndarray, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """A batched tf.data pipeline; reshuffled every epoch from `shuffle_seed` when given."""
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(features), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(BATCH_SIZE)


class _ProgressLine(keras.callbacks.Callback):
    """Prints `epoch N/MAX  loss ..  val_loss .. (best .. at epoch ..)` every few epochs."""

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
        if number == 1 or number % PROGRESS_EVERY == 0:
            self.emit(
                f"epoch {number:>4}/{self.max_epochs}  loss {float(logs.get('loss', 0)):8.3f}"
                f"  val_loss {val_loss:8.3f}  (best {self.best[0]:.3f} at epoch {self.best[1]})"
            )
