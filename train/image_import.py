"""Package a TFLite image classifier as a bucket version (no TensorFlow here).

Everything about the model (input size, dtypes, quantization, number of outputs) is read from
the `.tflite` itself with LiteRT; the label file is fitted to the outputs (a leading
"background" class is detected); the manifest's input and output are the contract's
`ImageSpec` (modelserve.contract, documented in model_bucket/README.md). The Keras route
(`train.image_keras`) converts a model to a `.tflite` and then writes its version with the
same code (`write_version`). A float model is imported like a quantized one.
"""

from __future__ import annotations

import math
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from modelserve import contract
from modelserve.contract import (
    ACTIVATION_NONE,
    ACTIVATION_SOFTMAX,
    BACKGROUND_LABEL,
    CHANNELS,
    LABEL_FILE,
    MODEL_FILE,
    QUANTIZED_DTYPES,
    RESIZE_FILTERS,
    ImageSpec,
    Quantization,
)
from train import bucket

DEFAULT_NAME = "image"
DEFAULT_FILTER = "bilinear"
SUPPORTED_DTYPES = (contract.FLOAT_DTYPE, *QUANTIZED_DTYPES)
FLOAT_MEAN = FLOAT_STD = 127.5  # MobileNet's [-1, 1]: what keras' preprocess_input does
GREY_PIXEL = 128  # the test input for the activation check
PROBABILITY_SUM_TOLERANCE = 1e-3
Progress = Callable[[str], None]


class ImportRefused(ValueError):
    """The model or its labels cannot be packaged; the message says what to fix."""


@dataclass(frozen=True)
class ModelInfo:
    """What the `.tflite` says about its one input and one output."""

    height: int
    width: int
    input_dtype: str
    input_quantization: Quantization | None
    classes: int
    output_dtype: str
    output_quantization: Quantization | None


@dataclass(frozen=True)
class Normalization:
    """The model's real input is (pixel - mean) / std."""

    mean: float
    std: float


@dataclass(frozen=True)
class LabelPlan:
    """The labels to store and how class ids map to them (id i -> line i - offset)."""

    labels: tuple[str, ...]
    offset: int
    dropped_background: bool


@dataclass(frozen=True)
class VersionContent:
    """Everything a version's manifest says beyond the name, version and file list."""

    info: ModelInfo
    labels: LabelPlan
    normalization: Normalization
    resize_filter: str
    activation: str
    training: dict[str, Any]
    metrics: dict[str, Any]


def inspect_model(path: Path) -> ModelInfo:
    """Read input shape/dtype/quantization and output size/dtype/quantization from a `.tflite`."""
    interpreter = _interpreter(path)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ImportRefused(f"{path.name}: needs exactly one input and one output tensor, "
                            f"has {len(inputs)} and {len(outputs)}")
    shape = [int(d) for d in inputs[0]["shape"]]
    if len(shape) != 4 or shape[0] != 1 or shape[3] != CHANNELS:
        raise ImportRefused(f"{path.name}: input shape {shape} is not [1, height, width, 3]")
    out_shape = [int(d) for d in outputs[0]["shape"]]
    classes = math.prod(out_shape[1:])
    if len(out_shape) < 2 or out_shape[0] != 1 or classes < 2:
        raise ImportRefused(f"{path.name}: output shape {out_shape} is not [1, classes]")
    input_dtype, output_dtype = _dtype(inputs[0], path), _dtype(outputs[0], path)
    return ModelInfo(
        height=shape[1],
        width=shape[2],
        input_dtype=input_dtype,
        input_quantization=_quantization(inputs[0], input_dtype, path),
        classes=classes,
        output_dtype=output_dtype,
        output_quantization=_quantization(outputs[0], output_dtype, path),
    )


def read_labels(path: Path) -> list[str]:
    """One label per line (UTF-8, stripped); trailing blank lines ignored, inner ones refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(f"{path}: labels must be UTF-8 text ({error.reason})") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    blank = [number for number, line in enumerate(lines, start=1) if not line]
    if blank:
        raise ImportRefused(f"{path}: line {blank[0]} is empty; every class needs a label")
    if not lines:
        raise ImportRefused(f"{path}: no labels")
    return lines


def fit_labels(labels: Sequence[str], classes: int) -> LabelPlan:
    """Fit a label list to a model's number of outputs, detecting a leading background class.

    `classes == len + 1`: output 0 is an unlisted background class (offset 1). `classes ==
    len` with a first label "background": that line is dropped, offset 1. `classes == len`
    otherwise: offset 0. Anything else raises ImportRefused naming both counts.
    """
    labels = tuple(labels)
    if classes == len(labels) + 1:
        return LabelPlan(labels, 1, dropped_background=False)
    if classes == len(labels) and labels and labels[0].casefold() == BACKGROUND_LABEL:
        return LabelPlan(labels[1:], 1, dropped_background=True)
    if classes == len(labels):
        return LabelPlan(labels, 0, dropped_background=False)
    raise ImportRefused(
        f"the model has {classes} outputs but the label file has {len(labels)} labels: "
        f"expected {classes} labels (a first line '{BACKGROUND_LABEL}' is allowed) or "
        f"{classes - 1} when output 0 is an unlisted background class"
    )


def default_normalization(dtype: str, quantization: Quantization | None) -> Normalization:
    """Quantized input: mean zero_point, std 1/scale (raw pixels pass straight through, the
    convention of TF-hosted quantized models); float32 input: MobileNet's 127.5 / 127.5."""
    if dtype in QUANTIZED_DTYPES:
        if quantization is None:
            raise ImportRefused(f"a {dtype} input needs quantization parameters")
        return Normalization(float(quantization.zero_point), 1.0 / quantization.scale)
    return Normalization(FLOAT_MEAN, FLOAT_STD)


def choose_normalization(info: ModelInfo, mean: float | None, std: float | None) -> Normalization:
    """`mean`/`std` when both are given, else `default_normalization` for the model's input."""
    if (mean is None) != (std is None):
        raise ImportRefused("give both --mean and --std, or neither")
    if mean is None or std is None:
        return default_normalization(info.input_dtype, info.input_quantization)
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ImportRefused(f"normalization needs a finite mean and std > 0, got {mean}, {std}")
    return Normalization(float(mean), float(std))


def pixel_lut(info: ModelInfo, normalization: Normalization) -> np.ndarray:
    """256 entries: pixel value -> model input value in the input dtype (as the server does)."""
    return contract.pixel_table(normalization.mean, normalization.std, info.input_dtype,
                                info.input_quantization)


def run_model(path: Path, info: ModelInfo, normalization: Normalization,
              pixels: np.ndarray) -> np.ndarray:
    """Dequantized outputs, shape (images, classes), for uint8 RGB images (images, H, W, 3)."""
    interpreter = _interpreter(path)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    lut = pixel_lut(info, normalization)
    scores = []
    for image in np.asarray(pixels, dtype=np.uint8):
        try:
            interpreter.set_tensor(input_index, lut[image][np.newaxis])
            interpreter.invoke()
        except (RuntimeError, ValueError) as error:
            raise ImportRefused(f"{path.name}: LiteRT cannot run the model ({error})") from None
        scores.append(contract.dequantize(interpreter.get_tensor(output_index).reshape(-1),
                                          info.output_quantization))
    return np.stack(scores)


def detect_activation(info: ModelInfo, scores: np.ndarray) -> str:
    """"none" when outputs already are probabilities, else "softmax".

    A quantized uint8 output is taken as probabilities (TF-hosted quantized classifiers end
    in a softmax). Otherwise the outputs of one test inference must be non-negative and sum
    to 1 (within the rounding a quantized output allows).
    """
    if info.output_dtype == "uint8" and info.output_quantization is not None:
        return ACTIVATION_NONE
    tolerance = PROBABILITY_SUM_TOLERANCE
    if info.output_quantization is not None:
        tolerance += info.classes * info.output_quantization.scale / 2
    scores = np.asarray(scores, dtype=np.float64)
    if scores.min() >= 0 and abs(scores.sum() - 1.0) <= tolerance:
        return ACTIVATION_NONE
    return ACTIVATION_SOFTMAX


def grey_image(info: ModelInfo) -> np.ndarray:
    """One mid-grey uint8 RGB image of the model's input size, shape (1, H, W, 3)."""
    return np.full((1, info.height, info.width, CHANNELS), GREY_PIXEL, dtype=np.uint8)


def image_spec(content: VersionContent) -> ImageSpec:
    """The contract's description of the version's pixels, outputs and labels."""
    info = content.info
    return ImageSpec(
        height=info.height, width=info.width, input_dtype=info.input_dtype,
        mean=content.normalization.mean, std=content.normalization.std,
        input_quantization=info.input_quantization, resize_filter=content.resize_filter,
        classes=info.classes, output_dtype=info.output_dtype,
        output_quantization=info.output_quantization, activation=content.activation,
        label_offset=content.labels.offset,
    )


def build_manifest(name: str, version: str, created_at: datetime,
                   content: VersionContent) -> dict[str, Any]:
    """The manifest of an image version (without `files`, which `bucket.write_manifest` adds)."""
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "task": contract.TASK_IMAGE_CLASSIFICATION,
        "created_at": contract.created_at_text(created_at),
        "runtime": {"format": contract.RUNTIME_FORMAT, "model_file": MODEL_FILE},
        **image_spec(content).manifest_sections(),
        "training": content.training,
        "metrics": content.metrics,
    }


def write_version(bucket_root: Path, name: str, tflite: Path, content: VersionContent,
                  extras: Sequence[Path] = ()) -> tuple[Path, dict[str, Any]]:
    """Stage model.tflite, labels.txt, `extras` (report files, by their names) and the
    manifest, publish, move LATEST; (folder, manifest).

    On any failure the staging folder is removed; no version folder appears, LATEST stays.
    """
    model_root = Path(bucket_root) / name
    with bucket.staging_folder(model_root) as staging:
        shutil.copyfile(tflite, staging / MODEL_FILE)
        (staging / LABEL_FILE).write_text("\n".join(content.labels.labels) + "\n",
                                          encoding="utf-8", newline="\n")
        for extra in extras:
            shutil.copyfile(extra, staging / Path(extra).name)
        for path in staging.iterdir():
            path.chmod(bucket.FILE_MODE)
        return bucket.publish_staged(
            staging, model_root, lambda version, now: build_manifest(name, version, now, content)
        )


def import_version(
    tflite: Path,
    labels: Path,
    bucket_root: Path,
    name: str = DEFAULT_NAME,
    mean: float | None = None,
    std: float | None = None,
    resize_filter: str = DEFAULT_FILTER,
    *,
    command: str | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Package an existing TFLite classifier as a new version; (version folder, manifest).

    Everything is checked before the bucket is touched: ImportRefused means nothing was
    written.
    """
    say = progress or (lambda _message: None)
    tflite, labels = Path(tflite), Path(labels)
    for path in (tflite, labels):
        if not path.is_file():
            raise ImportRefused(f"{path} is not a file")
    if resize_filter not in RESIZE_FILTERS:
        raise ImportRefused(f"resize filter {resize_filter!r} is not one of "
                            f"{', '.join(RESIZE_FILTERS)}")
    say(f"Reading {tflite.name}")
    info = inspect_model(tflite)
    say(f"  input {info.height}x{info.width}x3 {info.input_dtype}, "
        f"output {info.classes} classes {info.output_dtype}")
    plan = fit_labels(read_labels(labels), info.classes)
    say(f"Fitted {labels.name}: {len(plan.labels)} labels, label_offset {plan.offset}"
        + (" (leading 'background' line dropped)" if plan.dropped_background else ""))
    normalization = choose_normalization(info, mean, std)
    say("Running one inference on a grey image to check the outputs")
    activation = detect_activation(info, run_model(tflite, info, normalization,
                                                   grey_image(info))[0])
    content = VersionContent(
        info=info,
        labels=plan,
        normalization=normalization,
        resize_filter=resize_filter,
        activation=activation,
        training=import_provenance(tflite, labels, plan, command or _import_command(
            tflite, labels, bucket_root, name, mean, std, resize_filter)),
        metrics={},
    )
    return write_version(bucket_root, name, tflite, content)


def import_provenance(tflite: Path, labels: Path, plan: LabelPlan,
                      command: str) -> dict[str, Any]:
    """The manifest's `training` block for an imported model."""
    return {
        "source": "import",
        "model": {"file": tflite.name, "sha256": contract.sha256_file(tflite)},
        "labels": {"file": labels.name, "sha256": contract.sha256_file(labels),
                   "background_line_dropped": plan.dropped_background},
        "command": command,
    }


def _import_command(tflite: Path, labels: Path, bucket_root: Path, name: str,
                    mean: float | None, std: float | None, resize_filter: str) -> str:
    """The command line equivalent to an `import_version` call (for provenance)."""
    words = ["python", "-m", "train.image", "import", "--tflite", str(tflite),
             "--labels", str(labels), "--bucket", str(bucket_root), "--name", name]
    if mean is not None and std is not None:
        words += ["--mean", repr(mean), "--std", repr(std)]
    words += ["--filter", resize_filter]
    return shlex.join(words)


def _interpreter(path: Path) -> Interpreter:
    """A LiteRT interpreter with tensors allocated; ImportRefused if it cannot load."""
    try:
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        raise ImportRefused(f"{path.name}: LiteRT cannot load the model ({error})") from None
    return interpreter


def _dtype(detail: Mapping[str, Any], path: Path) -> str:
    name = np.dtype(detail["dtype"]).name
    if name not in SUPPORTED_DTYPES:
        raise ImportRefused(f"{path.name}: tensor {detail['name']!r} is {name}; supported: "
                            f"{', '.join(SUPPORTED_DTYPES)}")
    return name


def _quantization(detail: Mapping[str, Any], dtype: str, path: Path) -> Quantization | None:
    if dtype not in QUANTIZED_DTYPES:
        return None
    scale, zero_point = detail["quantization"]
    if not scale > 0:
        raise ImportRefused(f"{path.name}: {dtype} tensor {detail['name']!r} has no "
                            "per-tensor quantization scale")
    return Quantization(float(scale), int(zero_point))
