"""Package a TFLite image classifier as a bucket version (no TensorFlow here).

Everything about the model (input size, dtypes, quantization, number of outputs) is read from
the `.tflite` itself with LiteRT; the label file is fitted to the outputs (a leading
"background" class is detected); the manifest follows model_bucket/README.md, "Image
classification". The Keras route (`train.image_keras`) converts a model to a `.tflite` and
then writes its version with the same code (`write_version`).

With `dequantize`, a quantized model is stored as its float32 twin (`train.tflite_float`), which
LiteRT's XNNPACK runs about 1.6x faster on x86 for 4x the file size. The twin takes the real
values the quantized model saw (same normalization, no input quantization) and must answer like
its source (`float_parity`): the largest probability difference over the parity images is at
most FLOAT_MAX_PROB_DIFF and top-1 agrees on every photo given; else ParityFailed, nothing
written.
"""

from __future__ import annotations

import math
import shlex
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageOps, UnidentifiedImageError

from train import bucket

DEFAULT_NAME = "image"
TASK = "image_classification"
MODEL_FILE = "model.tflite"
LABEL_FILE = "labels.txt"
CHANNELS = 3
COLOR = "RGB"
RESIZE_MODE = "stretch"
DEFAULT_FILTER = "bilinear"
RESIZE_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")  # modelserve's
SUPPORTED_DTYPES = ("float32", "uint8", "int8")
QUANTIZED_DTYPES = ("uint8", "int8")
FLOAT_MEAN = FLOAT_STD = 127.5  # MobileNet's [-1, 1]: what keras' preprocess_input does
BACKGROUND = "background"
ACTIVATION_NONE = "none"
ACTIVATION_SOFTMAX = "softmax"
GREY_PIXEL = 128  # the test input for the activation check
PROBABILITY_SUM_TOLERANCE = 1e-3
# The float32 twin of a quantized model (dequantize) differs from its source by the source's
# quantization noise (the shared MobileNetV2: probabilities within 0.022 on the shared photos);
# a conversion error moves them far more (weight zero points off by one: 0.99, every top-1
# changed). Top-1 must agree on photos only: on the synthetic images the top two classes nearly
# tie (shared model: margins under 0.02), so quantization noise may swap them.
FLOAT_MAX_PROB_DIFF = 0.15
PARITY_NOISE_IMAGES = 3
PARITY_SEED = 0
MAX_PARITY_PHOTOS = 200
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp", ".tif", ".tiff")
MEGABYTE = 1e6
Progress = Callable[[str], None]


class ImportRefused(ValueError):
    """The model or its labels cannot be packaged; the message says what to fix."""


class ParityFailed(ImportRefused):
    """The float32 twin does not answer like its quantized source; nothing was written."""


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    def as_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "zero_point": self.zero_point}


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
    if classes == len(labels) and labels and labels[0].casefold() == BACKGROUND:
        return LabelPlan(labels[1:], 1, dropped_background=True)
    if classes == len(labels):
        return LabelPlan(labels, 0, dropped_background=False)
    raise ImportRefused(
        f"the model has {classes} outputs but the label file has {len(labels)} labels: "
        f"expected {classes} labels (a first line '{BACKGROUND}' is allowed) or "
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
    real = (np.arange(256, dtype=np.float64) - normalization.mean) / normalization.std
    if info.input_quantization is None:
        return real.astype(np.float32)
    limits = np.iinfo(np.dtype(info.input_dtype))
    scale, zero_point = info.input_quantization.scale, info.input_quantization.zero_point
    quantized = np.round(real / scale) + zero_point
    return np.clip(quantized, limits.min, limits.max).astype(info.input_dtype)


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
        scores.append(dequantize(interpreter.get_tensor(output_index), info.output_quantization))
    return np.stack(scores)


def dequantize(raw: np.ndarray, quantization: Quantization | None) -> np.ndarray:
    """Raw output values as float32 (real = (q - zero_point) * scale when quantized)."""
    values = np.asarray(raw).reshape(-1).astype(np.float32)
    if quantization is None:
        return values
    return (values - quantization.zero_point) * np.float32(quantization.scale)


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


def build_manifest(name: str, version: str, created_at: datetime,
                   content: VersionContent) -> dict[str, Any]:
    """The manifest of an image version (without `files`, which `bucket.write_manifest` adds)."""
    info = content.info
    return {
        "schema_version": bucket.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "task": TASK,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "runtime": {"format": "tflite", "model_file": MODEL_FILE},
        "input": {
            "kind": "image",
            "height": info.height,
            "width": info.width,
            "channels": CHANNELS,
            "color": COLOR,
            "dtype": info.input_dtype,
            "resize": {"filter": content.resize_filter, "mode": RESIZE_MODE},
            "normalization": {"mean": content.normalization.mean,
                              "std": content.normalization.std},
            "quantization": _json_or_none(info.input_quantization),
        },
        "output": {
            "classes": info.classes,
            "dtype": info.output_dtype,
            "quantization": _json_or_none(info.output_quantization),
            "activation": content.activation,
            "label_file": LABEL_FILE,
            "label_offset": content.labels.offset,
        },
        "training": content.training,
        "metrics": content.metrics,
    }


def write_version(bucket_root: Path, name: str, tflite: Path,
                  content: VersionContent) -> tuple[Path, dict[str, Any]]:
    """Stage model.tflite, labels.txt and the manifest, publish, move LATEST; (folder, manifest).

    On any failure the staging folder is removed; no version folder appears, LATEST stays.
    """
    model_root = Path(bucket_root) / name
    with bucket.staging_folder(model_root) as staging:
        shutil.copyfile(tflite, staging / MODEL_FILE)
        (staging / LABEL_FILE).write_text("\n".join(content.labels.labels) + "\n",
                                          encoding="utf-8", newline="\n")
        for path in (staging / MODEL_FILE, staging / LABEL_FILE):
            path.chmod(bucket.FILE_MODE)
        return bucket.publish_staged(
            staging, model_root, lambda version, now: build_manifest(name, version, now, content)
        )


def import_classifier(tflite: Path, labels: Path, bucket: Path, **options: Any) -> Path:
    """Package an existing TFLite classifier as a new version of `bucket/name`; the folder.

    `options` are `import_version`'s (name, mean, std, resize_filter, dequantize,
    parity_images, command, progress). Everything is checked before the bucket is touched:
    ImportRefused (ParityFailed among them) means nothing was written.
    """
    folder, _ = import_version(tflite, labels, bucket, **options)
    return folder


def import_version(
    tflite: Path,
    labels: Path,
    bucket_root: Path,
    name: str = DEFAULT_NAME,
    mean: float | None = None,
    std: float | None = None,
    resize_filter: str = DEFAULT_FILTER,
    *,
    dequantize: bool = False,
    parity_images: Path | None = None,
    command: str | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Package an existing TFLite classifier as a new version; (version folder, manifest).

    `dequantize`: store the float32 twin of a quantized model, checked against it on synthetic
    images and the photos in `parity_images` (see the module docstring). Everything is checked
    before the bucket is touched: ImportRefused (ParityFailed among them) means nothing was
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
    if parity_images is not None and not dequantize:
        raise ImportRefused("parity images check the float32 twin: give them with "
                            "dequantize (--float)")
    say(f"Reading {tflite.name}")
    info = inspect_model(tflite)
    say(f"  input {info.height}x{info.width}x3 {info.input_dtype}, "
        f"output {info.classes} classes {info.output_dtype}")
    plan = fit_labels(read_labels(labels), info.classes)
    say(f"Fitted {labels.name}: {len(plan.labels)} labels, label_offset {plan.offset}"
        + (" (leading 'background' line dropped)" if plan.dropped_background else ""))
    normalization = choose_normalization(info, mean, std)
    photos = (load_photos(Path(parity_images), info, resize_filter)
              if parity_images is not None else None)
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
            tflite, labels, bucket_root, name, mean, std, resize_filter, dequantize,
            parity_images)),
        metrics={},
    )
    if not dequantize:
        return write_version(bucket_root, name, tflite, content)
    with tempfile.TemporaryDirectory(prefix="train-image-") as scratch:
        twin = Path(scratch) / f"{tflite.stem}.float32.tflite"
        twin_info = float_twin(tflite, twin)
        say(f"Dequantized to float32: {tflite.stat().st_size / MEGABYTE:.1f} MB -> "
            f"{twin.stat().st_size / MEGABYTE:.1f} MB")
        samples = synthetic_images(info)
        say(f"Checking the float32 model against {tflite.name} on {len(samples)} synthetic "
            f"images and {0 if photos is None else len(photos)} photos")
        metrics = float_parity(tflite, info, twin, twin_info, normalization, activation,
                               samples, photos)
        content = replace(content, info=twin_info, metrics=metrics,
                          training={**content.training, "dequantized": dequantize_provenance()})
        return write_version(bucket_root, name, twin, content)


def float_twin(source: Path, target: Path) -> ModelInfo:
    """Write the float32 twin of the quantized `source` to `target`; what LiteRT reads in it."""
    from train.tflite_float import dequantize_model  # here: tflite_float builds on ImportRefused

    target.write_bytes(dequantize_model(source.read_bytes()))
    return inspect_model(target)


def synthetic_images(info: ModelInfo) -> np.ndarray:
    """The fixed parity inputs: mid-grey, an RGB gradient and PARITY_NOISE_IMAGES seeded
    uniform-noise images, uint8 RGB, shape (n, H, W, 3)."""
    across = np.linspace(0, 255, info.width)[np.newaxis, :].repeat(info.height, axis=0)
    down = np.linspace(0, 255, info.height)[:, np.newaxis].repeat(info.width, axis=1)
    gradient = np.stack([across, down, 255 - across], axis=-1).round().astype(np.uint8)
    noise = np.random.default_rng(PARITY_SEED).integers(
        0, 256, (PARITY_NOISE_IMAGES, info.height, info.width, CHANNELS), dtype=np.uint8)
    return np.concatenate([grey_image(info), gradient[np.newaxis], noise])


def load_photos(folder: Path, info: ModelInfo, resize_filter: str) -> np.ndarray:
    """The images in `folder` (sorted by name, at most MAX_PARITY_PHOTOS), upright RGB,
    stretched to the model's input with `resize_filter`, shape (n, H, W, 3)."""
    if not folder.is_dir():
        raise ImportRefused(f"parity images: {folder} is not a folder")
    resample = Image.Resampling[resize_filter.upper()]
    photos = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                upright = ImageOps.exif_transpose(image).convert(COLOR)
                photos.append(np.asarray(upright.resize((info.width, info.height), resample),
                                         dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as error:
            raise ImportRefused(f"{path}: not a readable image ({error})") from None
        if len(photos) == MAX_PARITY_PHOTOS:
            break
    if not photos:
        raise ImportRefused(f"parity images: no images in {folder} "
                            f"({', '.join(IMAGE_SUFFIXES)})")
    return np.stack(photos)


def float_parity(source: Path, source_info: ModelInfo, twin: Path, twin_info: ModelInfo,
                 normalization: Normalization, activation: str, synthetic: np.ndarray,
                 photos: np.ndarray | None) -> dict[str, Any]:
    """Run the quantized source and its float32 twin on the same pixels; the manifest's
    `metrics`. ParityFailed when a probability differs by more than FLOAT_MAX_PROB_DIFF or
    top-1 differs on a photo."""
    samples = synthetic if photos is None else np.concatenate([synthetic, photos])
    expected = _probabilities(run_model(source, source_info, normalization, samples), activation)
    answered = _probabilities(run_model(twin, twin_info, normalization, samples), activation)
    agrees = expected.argmax(axis=1) == answered.argmax(axis=1)
    photo_agrees = agrees[len(synthetic):]
    max_diff = float(np.abs(expected - answered).max())
    metrics = {
        "parity_reference": "quantized source",
        "parity_samples": len(samples),
        "parity_photos": len(photo_agrees),
        "parity_top1_agreements": int(agrees.sum()),
        "parity_photo_top1_agreements": int(photo_agrees.sum()),
        "parity_max_prob_diff": max_diff,
        "parity_max_prob_diff_limit": FLOAT_MAX_PROB_DIFF,
    }
    problems = []
    if max_diff > FLOAT_MAX_PROB_DIFF:
        problems.append(f"a probability differs by {max_diff:.3g} (limit {FLOAT_MAX_PROB_DIFF:g})")
    if not photo_agrees.all():
        problems.append(f"top-1 differs on {int((~photo_agrees).sum())} of "
                        f"{len(photo_agrees)} photos")
    if problems:
        raise ParityFailed(f"the float32 model does not answer like {source.name}: "
                           + "; ".join(problems))
    return metrics


def dequantize_provenance() -> dict[str, Any]:
    """The manifest's `training.dequantized` block: how model.tflite was made from the source."""
    return {"dtype": "float32", "tool": "train.tflite_float",
            "ai_edge_litert": package_version("ai-edge-litert")}


def import_provenance(tflite: Path, labels: Path, plan: LabelPlan,
                      command: str) -> dict[str, Any]:
    """The manifest's `training` block for an imported model."""
    return {
        "source": "import",
        "model": {"file": tflite.name, "sha256": bucket.sha256_file(tflite)},
        "labels": {"file": labels.name, "sha256": bucket.sha256_file(labels),
                   "background_line_dropped": plan.dropped_background},
        "command": command,
    }


def _import_command(tflite: Path, labels: Path, bucket_root: Path, name: str,
                    mean: float | None, std: float | None, resize_filter: str,
                    dequantize: bool, parity_images: Path | None) -> str:
    """The command line equivalent to an `import_classifier` call (for provenance)."""
    words = ["python", "-m", "train.image", "import", "--tflite", str(tflite),
             "--labels", str(labels), "--bucket", str(bucket_root), "--name", name]
    if mean is not None and std is not None:
        words += ["--mean", repr(mean), "--std", repr(std)]
    words += ["--filter", resize_filter]
    if dequantize:
        words.append("--float")
    if parity_images is not None:
        words += ["--parity-images", str(parity_images)]
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


def _probabilities(scores: np.ndarray, activation: str) -> np.ndarray:
    """Rows of scores as probabilities (softmax when the activation says so)."""
    scores = np.asarray(scores, dtype=np.float64)
    if activation != ACTIVATION_SOFTMAX:
        return scores
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _json_or_none(quantization: Quantization | None) -> dict[str, Any] | None:
    return None if quantization is None else quantization.as_json()
