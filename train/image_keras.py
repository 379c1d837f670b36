"""Build Keras MobileNetV2, convert it to `.tflite`, check parity, write a bucket version.

The converted model takes what the server feeds it: float32 (pixel - 127.5) / 127.5 (keras'
`preprocess_input`) for `none` and `float16` (float16 weights, float32 input and output), and
for `int8` a full-integer model with uint8 input and uint8 output (the convention of the
TF-hosted quantized classifiers: the server quantizes the normalized pixels with the input's
scale and zero point, and dequantizes the softmax output). Nothing is published unless the
`.tflite` answers like the Keras model on the parity samples.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide INFO/WARN

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from modelserve import contract
from modelserve.contract import ACTIVATION_NONE
from train.frameworks import versions
from train.image_import import (
    DEFAULT_FILTER,
    FLOAT_MEAN,
    FLOAT_STD,
    ModelInfo,
    Normalization,
    VersionContent,
    fit_labels,
    inspect_model,
    read_labels,
    run_model,
    write_version,
)

IMAGENET = "imagenet"
NO_WEIGHTS = "none"
QUANTIZE_CHOICES = ("none", "float16", "int8")
CLASSES = 1000  # Keras MobileNetV2's softmax: the ImageNet classes, no background
NORMALIZATION = Normalization(FLOAT_MEAN, FLOAT_STD)  # what preprocess_input does
CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"  # the hash keras' decode_predictions uses
DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation: an unreachable host fails fast
MIN_SIZE = 32  # MobileNetV2's smallest input
PARITY_SAMPLES = 8
MAX_CALIBRATION_IMAGES = 200
MIN_TOP1 = {"none": 1.0, "float16": 1.0, "int8": 0.75}  # top-1 agreement, keras vs tflite
MAX_PROB_DIFF = {"none": 1e-3, "float16": 0.05, "int8": None}  # None: reported, not bounded
FLAT_MARGIN = 1e-6  # a Keras top-1 margin below this: the top-1 is a tie, agreement says little
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp", ".tif", ".tiff")
OFFLINE_HINT = ("Offline, import an existing classifier instead: "
                "python -m train.image import --tflite PATH --labels PATH")
Progress = Callable[[str], None]


class DownloadError(RuntimeError):
    """ImageNet weights or class names could not be downloaded."""


class ParityError(RuntimeError):
    """The `.tflite` does not answer like the Keras model."""


class InputError(ValueError):
    """A command-line input (weights file, labels, representative images) is unusable."""


@dataclass(frozen=True)
class KerasOptions:
    """What to build: `weights` is "imagenet", "none" or a path to a Keras weights file."""

    weights: str = IMAGENET
    alpha: float = 1.0
    size: int = 224
    quantize: str = "none"
    representative: Path | None = None
    labels: Path | None = None
    seed: int = 42


def export_keras(options: KerasOptions, bucket_root: Path, name: str, command: str,
                 progress: Progress = print) -> tuple[Path, dict[str, Any]]:
    """Build, convert, check parity and write the version; (version folder, manifest)."""
    check_options(options)
    keras.utils.set_random_seed(options.seed)
    calibration = (load_images(options.representative, options.size)
                   if options.representative else None)
    progress(f"Building MobileNetV2 alpha {options.alpha:g}, {options.size}x{options.size}, "
             f"weights {options.weights}")
    model = build_model(options)
    labels, labels_source = choose_labels(options)
    plan = fit_labels(labels, CLASSES)
    samples = (calibration[:PARITY_SAMPLES] if calibration is not None
               else random_images(PARITY_SAMPLES, options.size, options.seed))
    with tempfile.TemporaryDirectory(prefix="train-image-") as scratch:
        tflite = Path(scratch) / "model.tflite"
        progress(f"Converting to .tflite (quantize {options.quantize})")
        tflite.write_bytes(convert(model, options.quantize, calibration))
        info = inspect_model(tflite)
        progress(f"Checking parity on {len(samples)} "
                 f"{'representative' if calibration is not None else 'random'} images")
        metrics = check_parity(model, tflite, info, samples, options.quantize)
        if metrics["parity_keras_top1_margin"] < FLAT_MARGIN:
            progress("  note: the Keras model scores every class about the same (untrained "
                     "weights?), so top-1 agreement says little here")
        content = VersionContent(
            info=info,
            labels=plan,
            normalization=NORMALIZATION,
            resize_filter=DEFAULT_FILTER,
            activation=ACTIVATION_NONE,  # the Keras model ends in a softmax
            training=keras_provenance(options, labels_source, calibration, command),
            metrics=metrics,
        )
        return write_version(bucket_root, name, tflite, content)


def check_options(options: KerasOptions) -> None:
    """Refuse unusable options before anything slow happens."""
    if not (options.alpha > 0 and options.size >= MIN_SIZE):
        raise InputError(f"--alpha must be > 0 and --size at least {MIN_SIZE}")
    if options.quantize not in QUANTIZE_CHOICES:
        raise InputError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}")
    if options.quantize == "int8" and options.representative is None:
        raise InputError("--quantize int8 needs --representative DIR (images to calibrate on)")
    if options.representative is not None and not options.representative.is_dir():
        raise InputError(f"--representative {options.representative} is not a folder")
    if options.weights not in (IMAGENET, NO_WEIGHTS) and not Path(options.weights).is_file():
        raise InputError(f"--weights {options.weights}: no such file (or use imagenet, none)")
    if options.labels is not None:
        if not options.labels.is_file():
            raise InputError(f"--labels {options.labels} is not a file")
        fit_labels(read_labels(options.labels), CLASSES)  # ImportRefused when they do not fit


def build_model(options: KerasOptions) -> keras.Model:
    """keras.applications.MobileNetV2 with the requested weights (DownloadError offline)."""
    weights = None if options.weights == NO_WEIGHTS else options.weights
    arguments = {"input_shape": (options.size, options.size, 3), "alpha": options.alpha,
                 "weights": weights}
    try:
        if weights == IMAGENET:
            return download("the ImageNet weights for MobileNetV2",
                             lambda: keras.applications.MobileNetV2(**arguments))
        return keras.applications.MobileNetV2(**arguments)
    except (ValueError, OSError) as error:  # bad alpha/size, or a weights file that does not fit
        raise InputError(f"MobileNetV2 (alpha {options.alpha:g}, size {options.size}, weights "
                         f"{options.weights}) cannot be built: {error}") from None


def choose_labels(options: KerasOptions) -> tuple[list[str], str]:
    """The labels and where they came from: --labels, keras' ImageNet names, or class_N."""
    if options.labels is not None:
        return read_labels(options.labels), options.labels.name
    if options.weights == IMAGENET:
        return imagenet_labels(), "keras imagenet_class_index.json"
    return [f"class_{index}" for index in range(CLASSES)], "generic class_N"


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names keras' decode_predictions uses, '_' read as a space."""
    path = download("the ImageNet class names", lambda: keras.utils.get_file(
        "imagenet_class_index.json", CLASS_INDEX_URL, cache_subdir="models",
        file_hash=CLASS_INDEX_MD5))
    index = json.loads(Path(path).read_text(encoding="utf-8"))
    return [index[str(number)][1].replace("_", " ") for number in range(CLASSES)]


def load_images(folder: Path, size: int) -> np.ndarray:
    """The images in `folder` (sorted by name, at most MAX_CALIBRATION_IMAGES) as uint8 RGB
    arrays resized to size x size the way the server resizes, shape (n, size, size, 3)."""
    resample = Image.Resampling[DEFAULT_FILTER.upper()]
    images = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB").resize((size, size), resample)
        except (OSError, UnidentifiedImageError) as error:
            raise InputError(f"{path}: not a readable image ({error})") from None
        images.append(np.asarray(rgb, dtype=np.uint8))
        if len(images) == MAX_CALIBRATION_IMAGES:
            break
    if not images:
        raise InputError(f"--representative {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return np.stack(images)


def random_images(count: int, size: int, seed: int) -> np.ndarray:
    """`count` seeded uniform-noise uint8 RGB images, shape (count, size, size, 3)."""
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> the float32 [-1, 1] input of Keras MobileNetV2."""
    return keras.applications.mobilenet_v2.preprocess_input(pixels.astype(np.float32))


def convert(model: keras.Model, quantize: str, calibration: np.ndarray | None) -> bytes:
    """The `.tflite` flatbuffer: float32, float16 weights, or full-integer with uint8 I/O."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if calibration is None:
            raise InputError("int8 quantization needs representative images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter prints its temp folder and warns
        return converter.convert()


def check_parity(model: keras.Model, tflite: Path, info: ModelInfo, pixels: np.ndarray,
                 quantize: str) -> dict[str, Any]:
    """Compare Keras and the `.tflite` (fed as the server feeds it) on `pixels`.

    Returns the parity metrics; raises ParityError when top-1 agreement or the largest
    probability difference is past the limits for `quantize`.
    """
    expected = np.asarray(model.predict(preprocess(pixels), verbose=0), dtype=np.float64)
    actual = run_model(tflite, info, NORMALIZATION, pixels).astype(np.float64)
    agreement = float(np.mean(expected.argmax(axis=1) == actual.argmax(axis=1)))
    max_diff = float(np.max(np.abs(expected - actual)))
    top_two = np.sort(expected, axis=1)[:, -2:]
    metrics = {
        "parity_samples": len(pixels),
        "parity_top1_agreement": agreement,
        "parity_max_prob_diff": max_diff,
        "parity_min_top1_agreement": MIN_TOP1[quantize],
        "parity_max_prob_diff_limit": MAX_PROB_DIFF[quantize],
        "parity_keras_top1_margin": float(np.min(top_two[:, 1] - top_two[:, 0])),
    }
    limit = MAX_PROB_DIFF[quantize]
    if agreement < MIN_TOP1[quantize] or (limit is not None and max_diff > limit):
        raise ParityError(
            f"quantize {quantize}: top-1 agreement {agreement:.0%} (at least "
            f"{MIN_TOP1[quantize]:.0%} needed), max probability difference {max_diff:.3g} "
            f"({'not bounded' if limit is None else f'limit {limit:g}'}) over "
            f"{len(pixels)} images")
    return metrics


def keras_provenance(options: KerasOptions, labels_source: str,
                     calibration: np.ndarray | None, command: str) -> dict[str, Any]:
    """The manifest's `training` block for a Keras export."""
    weights: dict[str, Any] = {"source": options.weights}
    if options.weights not in (IMAGENET, NO_WEIGHTS):
        path = Path(options.weights)
        weights = {"source": "file", "file": path.name, "sha256": contract.sha256_file(path)}
    return {
        "source": "keras",
        "architecture": "MobileNetV2",
        "alpha": options.alpha,
        "size": options.size,
        "weights": weights,
        "quantize": options.quantize,
        "representative": None if calibration is None else {
            "folder": str(options.representative), "images": len(calibration)},
        "labels": labels_source,
        "seed": options.seed,
        "frameworks": versions(),
        "command": command,
    }


def _representative_dataset(pixels: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's calibration generator: one preprocessed image per step."""
    def generate() -> Iterator[list[np.ndarray]]:
        for image in pixels:
            yield [preprocess(image[np.newaxis])]
    return generate


def download(what: str, fetch: Callable[[], Any]) -> Any:
    """Run `fetch` (a keras download) with a socket timeout; DownloadError if it fails."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return fetch()
    except (ValueError, TypeError):
        raise  # bad arguments, not the network
    except Exception as error:  # keras' get_file raises a bare Exception on URLError
        raise DownloadError(f"Could not download {what} (no network?): {error}. "
                            f"{OFFLINE_HINT}") from None
    finally:
        socket.setdefaulttimeout(previous)
