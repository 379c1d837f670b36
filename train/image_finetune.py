"""Fine-tune MobileNetV2 on a folder of photos and write it as an image classifier version.

A new softmax head is trained on the (frozen, with pretrained weights) MobileNetV2 base, with
augmentation; then the top N base layers can be unfrozen and fine-tuned at a lower learning
rate. With `--weights none` there is nothing pretrained to keep, so the whole network trains
from the start. The exported model takes what classify_image feeds it ((pixel - 127.5) /
127.5, quantized for int8); the `.tflite` is checked against Keras on the held-out photos and
its accuracy and confusion matrix are recorded. labels.txt holds the class folder names.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide INFO/WARN

import keras
import numpy as np

from modelserve.contract import ACTIVATION_NONE, sha256_file
from train import tabular_report
from train.image_import import (
    DEFAULT_FILTER,
    LabelPlan,
    VersionContent,
    inspect_model,
    run_model,
    write_version,
)
from train.image_keras import (
    IMAGENET,
    NO_WEIGHTS,
    NORMALIZATION,
    InputError,
    ParityError,
    check_parity,
    convert,
    download,
    versions,
)
from train.image_photos import Photos, load_photos, skipped_text, stratified_split

QUANTIZE_CHOICES = ("int8", "float")
MIN_SIZE = 32
CONFUSION_FILE = "confusion_matrix.png"
LOSS_CURVE_FILE = "loss_curve.png"
MAX_CALIBRATION = 200
VALIDATION_FRACTION = 0.1
FINE_TUNE_RATE_FACTOR = 0.1  # the fine-tuning learning rate, relative to the head's
SCRATCH_BN_MOMENTUM = 0.9  # Keras' MobileNetV2 uses 0.999: thousands of steps to settle
Progress = Callable[[str], None]

__all__ = ["FinetuneOptions", "InputError", "ParityError", "export_finetuned"]


@dataclass(frozen=True)
class FinetuneOptions:
    """What to train: `weights` is "imagenet", "none" or a path to a Keras weights file."""

    data: Path
    weights: str = IMAGENET
    alpha: float = 1.0
    size: int = 224
    epochs: int = 10
    fine_tune_layers: int = 0  # unfreeze this many top base layers after the head is trained
    fine_tune_epochs: int = 5
    learning_rate: float = 1e-3
    batch_size: int = 32
    flip: bool = False  # also mirror photos left-right when augmenting
    quantize: str = "int8"
    seed: int = 42


def export_finetuned(options: FinetuneOptions, bucket_root: Path, name: str, command: str,
                     progress: Progress = print,
                     photos: Photos | None = None) -> tuple[Path, dict[str, Any]]:
    """Train, convert, check and write the version; (version folder, manifest). `photos`:
    the folder already loaded (train.image loads it before TensorFlow, to fail fast)."""
    check_options(options)
    keras.utils.set_random_seed(options.seed)
    photos = photos or load_photos(options.data, options.size)
    counts = ", ".join(f"{label} {count}" for label, count in photos.counts().items())
    progress(f"{len(photos.labels)} photos in {len(photos.classes)} classes ({counts})")
    if photos.skipped:
        progress(skipped_text(photos))
    train, test = stratified_split(photos.labels, options.seed)
    fit, validation = _validation_split(train, photos.labels, options.seed)
    progress(f"Training on {len(fit)}, validating on {len(validation)}, {len(test)} held out")
    started = time.perf_counter()
    core, trainer, base = build_models(options, len(photos.classes))
    history = train_model(options, trainer, base, photos, fit, validation, progress)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="train-finetune-") as scratch:
        folder = Path(scratch)
        tflite = folder / "model.tflite"
        quantize = "int8" if options.quantize == "int8" else "none"
        progress(f"Converting to .tflite ({options.quantize})")
        calibration = photos.pixels[fit[:MAX_CALIBRATION]]
        tflite.write_bytes(convert(core, quantize, calibration))
        info = inspect_model(tflite)
        progress(f"Checking the .tflite against Keras on the {len(test)} held-out photos")
        parity = check_parity(core, tflite, info, photos.pixels[test], quantize)
        metrics = evaluate(core, tflite, info, photos, test, folder, history, seconds, parity)
        content = VersionContent(
            info=info,
            labels=LabelPlan(photos.classes, 0, False),
            normalization=NORMALIZATION,
            resize_filter=DEFAULT_FILTER,
            activation=ACTIVATION_NONE,  # the head ends in a softmax
            training=provenance(options, photos, train, test, fit, validation, command),
            metrics=metrics,
        )
        extras = [folder / CONFUSION_FILE, folder / LOSS_CURVE_FILE]
        return write_version(bucket_root, name, tflite, content, extras)


def check_options(options: FinetuneOptions) -> None:
    """Refuse unusable options before anything slow happens."""
    if not (options.alpha > 0 and options.size >= MIN_SIZE):
        raise InputError(f"--alpha must be > 0 and --size at least {MIN_SIZE}")
    if options.quantize not in QUANTIZE_CHOICES:
        raise InputError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}")
    if options.epochs < 1 or options.fine_tune_layers < 0 or options.fine_tune_epochs < 0:
        raise InputError("--epochs must be at least 1; --fine-tune-layers and "
                         "--fine-tune-epochs at least 0")
    if options.weights not in (IMAGENET, NO_WEIGHTS) and not Path(options.weights).is_file():
        raise InputError(f"--weights {options.weights}: no such weights file (or use "
                         f"{IMAGENET} or {NO_WEIGHTS})")


def build_models(options: FinetuneOptions, classes: int
                 ) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(core, trainer, base): core takes normalized pixels and is what gets exported; trainer
    adds augmentation and the pixel scaling in front of it."""
    weights = None if options.weights == NO_WEIGHTS else options.weights
    arguments = {"input_shape": (options.size, options.size, 3), "alpha": options.alpha,
                 "include_top": False, "weights": weights, "pooling": "avg"}
    try:
        if weights == IMAGENET:
            base = download("the ImageNet weights for MobileNetV2",
                             lambda: keras.applications.MobileNetV2(**arguments))
        else:
            base = keras.applications.MobileNetV2(**arguments)
    except (ValueError, OSError) as error:
        raise InputError(f"MobileNetV2 (alpha {options.alpha:g}, size {options.size}, weights "
                         f"{options.weights}) cannot be built: {error}") from None
    pretrained = weights is not None
    base.trainable = not pretrained
    if not pretrained:
        for layer in base.layers:  # statistics that settle within a short from-scratch run
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    inputs = keras.Input((options.size, options.size, 3), name="normalized_pixels")
    # A pretrained base keeps its batch-norm statistics (inference mode), also when its top
    # layers are fine-tuned; a base trained from scratch learns them.
    features = base(inputs, training=False) if pretrained else base(inputs)
    features = keras.layers.Dropout(0.2, name="dropout")(features)
    outputs = keras.layers.Dense(classes, activation="softmax", name="classes")(features)
    core = keras.Model(inputs, outputs, name="classifier")
    pixels = keras.Input((options.size, options.size, 3), name="pixels")
    augmented = augmentation(options.flip, options.seed)(pixels)
    scaled = keras.layers.Rescaling(1 / NORMALIZATION.std, offset=-NORMALIZATION.mean /
                                    NORMALIZATION.std, name="scale")(augmented)
    trainer = keras.Model(pixels, core(scaled), name="trainer")
    return core, trainer, base


def augmentation(flip: bool, seed: int) -> keras.Sequential:
    """Small random shifts, rotations and zooms (and left-right mirroring with `flip`)."""
    layers = [keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
              keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed),
              keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed)]
    if flip:
        layers.insert(0, keras.layers.RandomFlip("horizontal", seed=seed))
    return keras.Sequential(layers, name="augmentation")


def train_model(options: FinetuneOptions, trainer: keras.Model, base: keras.Model,
                photos: Photos, fit: np.ndarray, validation: np.ndarray,
                progress: Progress) -> dict[str, list[float]]:
    """The head (or, without pretrained weights, everything), then the top layers; the
    per-epoch losses of both phases, one after the other."""
    x, y = photos.pixels.astype(np.float32), photos.labels
    data = {"x": x[fit], "y": y[fit], "validation_data": (x[validation], y[validation]),
            "batch_size": options.batch_size, "verbose": 0, "callbacks": [_Progress(progress)]}
    history = {"loss": [], "val_loss": [], "val_accuracy": []}

    def phase(epochs: int, rate: float) -> None:
        # Decayed to zero over the phase: the exported weights are those of the last step,
        # and at a constant rate they swing by several points of accuracy from epoch to epoch.
        steps = epochs * math.ceil(len(fit) / options.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps)
        trainer.compile(optimizer=keras.optimizers.Adam(schedule),
                        loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        result = trainer.fit(epochs=epochs, **data).history
        for key in history:
            history[key].extend(float(value) for value in result[key])

    progress(f"Training {'the whole network' if base.trainable else 'the new head'} for "
             f"{options.epochs} epochs")
    phase(options.epochs, options.learning_rate)
    if options.fine_tune_layers and options.fine_tune_epochs and not base.trainable:
        base.trainable = True
        for layer in base.layers[:-options.fine_tune_layers]:
            layer.trainable = False
        progress(f"Fine-tuning the top {options.fine_tune_layers} base layers for "
                 f"{options.fine_tune_epochs} epochs")
        phase(options.fine_tune_epochs, options.learning_rate * FINE_TUNE_RATE_FACTOR)
    return history


def evaluate(core: keras.Model, tflite: Path, info: Any, photos: Photos, test: np.ndarray,
             folder: Path, history: dict[str, list[float]], seconds: float,
             parity: dict[str, Any]) -> dict[str, Any]:
    """Held-out accuracy of Keras and of the `.tflite`, the plots; the manifest's metrics."""
    pixels, actual = photos.pixels[test], photos.labels[test]
    scaled = (pixels.astype(np.float32) - NORMALIZATION.mean) / NORMALIZATION.std
    keras_scores = np.asarray(core.predict(scaled, verbose=0))
    tflite_scores = run_model(tflite, info, NORMALIZATION, pixels)
    accuracy = float(np.mean(keras_scores.argmax(axis=1) == actual))
    tflite_accuracy = float(np.mean(tflite_scores.argmax(axis=1) == actual))
    matrix = tabular_report.plot_confusion_matrix(
        actual, tflite_scores.argmax(axis=1), photos.classes, folder / CONFUSION_FILE,
        title=f".tflite on {len(test)} held-out photos: accuracy {tflite_accuracy:.1%}")
    best = int(np.argmin(history["val_loss"])) + 1
    tabular_report.plot_loss_curve(history["loss"], history["val_loss"], best,
                                   folder / LOSS_CURVE_FILE, title="Fine-tuning",
                                   ylabel="loss: cross-entropy", log_scale=False)
    return {
        "test_accuracy": round(accuracy, 6),
        "tflite_test_accuracy": round(tflite_accuracy, 6),
        "test_images": len(test),
        "confusion_matrix": matrix.tolist(),
        "epochs_run": len(history["loss"]),
        "final_val_accuracy": round(history["val_accuracy"][-1], 6),
        "train_seconds": round(seconds, 3),
        **parity,
    }


def provenance(options: FinetuneOptions, photos: Photos, train: np.ndarray, test: np.ndarray,
               fit: np.ndarray, validation: np.ndarray, command: str) -> dict[str, Any]:
    """The manifest's `training` block."""
    weights: dict[str, Any] = {"source": options.weights}
    if options.weights not in (IMAGENET, NO_WEIGHTS):
        weights = {"source": "file", "file": Path(options.weights).name,
                   "sha256": sha256_file(Path(options.weights))}
    return {
        "source": "finetune",
        "architecture": "MobileNetV2",
        "alpha": options.alpha,
        "size": options.size,
        "weights": weights,
        "quantize": options.quantize,
        "data": {"folder": str(options.data), "classes": list(photos.classes),
                 "images": photos.counts(), "skipped": len(photos.skipped)},
        "split": {"method": "train.image_photos.stratified_split (per class, seeded)",
                  "test_fraction": 0.2, "train_images": len(train),
                  "fit_images": len(fit), "validation_images": len(validation),
                  "test_images": len(test)},
        "epochs": {"head": options.epochs, "fine_tune": options.fine_tune_epochs,
                   "fine_tune_layers": options.fine_tune_layers},
        "learning_rate": options.learning_rate,
        "learning_rate_schedule": "cosine decay to 0 within each phase",
        "batch_size": options.batch_size,
        "augmentation": "translation 0.1, rotation 0.05, zoom 0.1"
                        + (", horizontal flip" if options.flip else ""),
        "representative": {"source": "training photos",
                           "images": min(len(fit), MAX_CALIBRATION)},
        "seed": options.seed,
        "frameworks": versions(),
        "command": command,
    }


def _validation_split(train: np.ndarray, labels: np.ndarray,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Part of the training photos watched while training (the held-out ones never are)."""
    fit, validation = stratified_split(labels[train], seed + 1, VALIDATION_FRACTION)
    if not len(validation):  # one training photo per class: watch the training photos
        return train, train
    return train[fit], train[validation]


class _Progress(keras.callbacks.Callback):
    """One line per epoch: loss, accuracy and their validation counterparts."""

    def __init__(self, emit: Progress) -> None:
        super().__init__()
        self.emit = emit

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        self.emit(f"epoch {epoch + 1:>3}  loss {logs.get('loss', 0):.4f}  accuracy "
                  f"{logs.get('accuracy', 0):.3f}  val_loss {logs.get('val_loss', 0):.4f}  "
                  f"val_accuracy {logs.get('val_accuracy', 0):.3f}")
