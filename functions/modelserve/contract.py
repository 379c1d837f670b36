"""The bucket contract between train/ (which writes versions) and functions/ (which serves them).

The one definition of the layout (`<model>/LATEST`, `<model>/<version>/manifest.json`), the
version format, the keys a manifest must carry (to be read, and to be written), sha256
verification of a version's files, and how an image classifier's pixels become its input and
its outputs become probabilities. train/ imports this module; nothing here imports Flask,
Pillow or LiteRT. model_bucket/README.md documents the same contract for people.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
LATEST_FILE = "LATEST"
MODEL_FILE = "model.tflite"
LABEL_FILE = "labels.txt"
RUNTIME_FORMAT = "tflite"
VERSION_FORMAT = "%Y%m%dT%H%M%SZ"  # UTC export time: sortable, e.g. 20261125T120000Z
VERSION_PATTERN = re.compile(r"\d{8}T\d{6}Z")  # what VERSION_FORMAT writes
# A reader needs these to serve a version; a writer must add provenance and metrics too.
READER_REQUIRED_KEYS = ("schema_version", "name", "version", "task", "runtime", "files",
                        "input", "output")
WRITER_REQUIRED_KEYS = (*READER_REQUIRED_KEYS, "created_at", "training", "metrics")
TASK_REGRESSION = "regression"
TASK_CLASSIFICATION = "classification"  # a tabular classifier (output.labels: its classes)
TABULAR_TASKS = (TASK_REGRESSION, TASK_CLASSIFICATION)
TASK_IMAGE_CLASSIFICATION = "image_classification"
HASH_CHUNK_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PLAIN_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Image classification: the manifest's `input` and `output` (model_bucket/README.md).
RESIZE_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")  # PIL's names
RESIZE_MODE = "stretch"
COLOR = "RGB"
CHANNELS = 3
BACKGROUND_LABEL = "background"  # the label of class 0 when label_offset is 1
ACTIVATION_NONE = "none"
ACTIVATION_SOFTMAX = "softmax"
ACTIVATIONS = (ACTIVATION_NONE, ACTIVATION_SOFTMAX)
FLOAT_DTYPE = "float32"
QUANTIZED_DTYPES = ("uint8", "int8")


# --- versions ------------------------------------------------------------------------------

def version_name(moment: datetime | None = None) -> str:
    """The version folder name for `moment` (default now), in UTC."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.strftime(VERSION_FORMAT)


def parse_version(version: str) -> datetime:
    """The UTC time a version name stands for; ValueError if it is not one."""
    if not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"{version!r} is not a version name ({VERSION_FORMAT})")
    return datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=UTC)


def is_version(name: str) -> bool:
    """True when `name` is a version folder's name (not a model root's)."""
    return bool(VERSION_PATTERN.fullmatch(name))


# --- files and checksums -------------------------------------------------------------------

@dataclass(frozen=True)
class FileEntry:
    """A file of the version as the manifest lists it."""

    name: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """The manifest's description of one file: `{"sha256": ..., "size": ...}`."""
    return {"sha256": sha256_file(path), "size": Path(path).stat().st_size}


def describe_files(folder: Path) -> dict[str, dict[str, Any]]:
    """`file_entry` for every regular file in `folder` except the manifest, by name."""
    return {path.name: file_entry(path) for path in sorted(Path(folder).iterdir())
            if path.is_file() and path.name != MANIFEST_FILE}


def verify(entry: FileEntry, data: bytes) -> None:
    """ModelError unless `data` has the size and sha256 the manifest lists for it."""
    if len(data) != entry.size:
        raise ModelError(f"{entry.name}: size {len(data)} does not match the manifest's "
                         f"{entry.size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ModelError(f"{entry.name}: sha256 mismatch (manifest {entry.sha256[:12]}..., "
                         f"file {digest[:12]}...)")


# --- the manifest --------------------------------------------------------------------------

@dataclass(frozen=True)
class Manifest:
    """A checked manifest: what the version is and which files it must contain."""

    name: str
    version: str
    task: str
    model_file: str
    files: dict[str, FileEntry]
    input: dict[str, Any]
    output: dict[str, Any]
    raw: dict[str, Any]

    @property
    def model_sha256(self) -> str:
        return self.files[self.model_file].sha256


def parse_manifest(data: bytes, source: str) -> Manifest:
    """Parse and check manifest bytes for serving; ModelError names `source` and the problem."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: manifest is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{source}: manifest must be a JSON object")
    missing = [key for key in READER_REQUIRED_KEYS if key not in raw]
    if missing:
        raise ModelError(f"{source}: manifest lacks {', '.join(missing)}")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ModelError(
            f"{source}: manifest schema_version {raw['schema_version']!r} is not {SCHEMA_VERSION}"
        )
    files = _parse_files(raw["files"], source)
    model_file = raw["runtime"].get("model_file") if isinstance(raw["runtime"], dict) else None
    if model_file not in files:
        raise ModelError(f"{source}: runtime.model_file {model_file!r} is not among the files")
    if not isinstance(raw["input"], dict) or not isinstance(raw["output"], dict):
        raise ModelError(f"{source}: manifest input and output must be objects")
    return Manifest(name=str(raw["name"]), version=str(raw["version"]), task=str(raw["task"]),
                    model_file=model_file, files=files, input=raw["input"],
                    output=raw["output"], raw=raw)


def _parse_files(value: Any, source: str) -> dict[str, FileEntry]:
    if not isinstance(value, dict) or not value:
        raise ModelError(f"{source}: manifest files must be a non-empty object")
    files = {}
    for name, entry in value.items():
        if not is_plain_file_name(name):
            raise ModelError(f"{source}: file name {name!r} is not a plain file name")
        sha256 = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise ModelError(f"{source}: {name} has no valid sha256")
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            raise ModelError(f"{source}: {name} has no valid size")
        files[name] = FileEntry(name, sha256, size)
    return files


def is_plain_file_name(name: str) -> bool:
    """Names from a manifest become cache paths: no separators, no dot-dot, nothing hidden."""
    return bool(_PLAIN_FILE_NAME.fullmatch(name)) and ".." not in name


def complete_manifest(folder: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """`manifest` with the `files` of `folder`, checked as a writer must; ValueError if not.

    The result is also readable by parse_manifest (checked here, so train/ cannot write a
    version the functions refuse).
    """
    complete = {**manifest, "files": describe_files(folder)}
    missing = [key for key in WRITER_REQUIRED_KEYS if key not in complete]
    if missing:
        raise ValueError(f"manifest lacks required key(s): {', '.join(missing)}")
    if complete["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"manifest schema_version must be {SCHEMA_VERSION}")
    parse_version(str(complete["version"]))
    try:
        parse_manifest(manifest_bytes(complete), str(folder))
    except ModelError as exc:
        raise ValueError(str(exc)) from None
    return complete


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as written: indented UTF-8 JSON with a final newline."""
    text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return text.encode("utf-8")


def verify_folder(folder: Path) -> Manifest:
    """Read a version folder's manifest and check every listed file's size and sha256."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    try:
        manifest = parse_manifest(path.read_bytes(), str(path))
    except OSError as exc:
        raise ModelError(f"{path} cannot be read ({exc.strerror})") from None
    for entry in manifest.files.values():
        try:
            data = (folder / entry.name).read_bytes()
        except OSError:
            raise ModelError(f"{folder / entry.name}: listed in the manifest but missing") \
                from None
        try:
            verify(entry, data)
        except ModelError as exc:
            raise ModelError(f"{folder}/{exc}") from None
    return manifest


# --- image classification ------------------------------------------------------------------

@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    def as_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "zero_point": self.zero_point}

    @classmethod
    def from_json(cls, value: Any) -> Quantization | None:
        return None if not value else cls(float(value["scale"]), int(value["zero_point"]))


@dataclass(frozen=True)
class ImageSpec:
    """How an image classifier's pixels become its input and its outputs probabilities.

    Written by train/ into the manifest's `input` and `output`, read back by classify_image.
    """

    height: int
    width: int
    input_dtype: str
    mean: float
    std: float
    input_quantization: Quantization | None
    resize_filter: str
    classes: int
    output_dtype: str
    output_quantization: Quantization | None
    activation: str
    label_offset: int
    label_file: str = LABEL_FILE

    def manifest_sections(self) -> dict[str, dict[str, Any]]:
        """The manifest's `input` and `output` for this spec."""
        quantized = self.input_quantization
        output_quantized = self.output_quantization
        return {
            "input": {
                "kind": "image", "height": self.height, "width": self.width,
                "channels": CHANNELS, "color": COLOR, "dtype": self.input_dtype,
                "resize": {"filter": self.resize_filter, "mode": RESIZE_MODE},
                "normalization": {"mean": self.mean, "std": self.std},
                "quantization": quantized.as_json() if quantized else None,
            },
            "output": {
                "classes": self.classes, "dtype": self.output_dtype,
                "quantization": output_quantized.as_json() if output_quantized else None,
                "activation": self.activation, "label_file": self.label_file,
                "label_offset": self.label_offset,
            },
        }

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ImageSpec:
        """The spec a manifest describes; ModelError naming the version if it is malformed."""
        source = f"{manifest.name}/{manifest.version}"
        spec_in, spec_out = manifest.input, manifest.output
        try:
            spec = cls(
                height=int(spec_in["height"]), width=int(spec_in["width"]),
                input_dtype=str(spec_in.get("dtype", FLOAT_DTYPE)),
                mean=float(spec_in["normalization"]["mean"]),
                std=float(spec_in["normalization"]["std"]),
                input_quantization=Quantization.from_json(spec_in.get("quantization")),
                resize_filter=str(spec_in["resize"]["filter"]),
                classes=int(spec_out.get("classes", 0)),
                output_dtype=str(spec_out.get("dtype", FLOAT_DTYPE)),
                output_quantization=Quantization.from_json(spec_out.get("quantization")),
                activation=str(spec_out.get("activation", ACTIVATION_NONE)),
                label_offset=int(spec_out.get("label_offset", 0)),
                label_file=str(spec_out["label_file"]),
            )
            mode = spec_in["resize"].get("mode", RESIZE_MODE)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"{source}: manifest image input/output is malformed ({exc!r})") \
                from None
        if mode != RESIZE_MODE:
            raise ModelError(f"{source}: resize mode {mode!r} is not supported "
                             f"(use {RESIZE_MODE})")
        if spec.resize_filter not in RESIZE_FILTERS:
            raise ModelError(f"{source}: resize filter {spec.resize_filter!r} is not one of "
                             f"{', '.join(RESIZE_FILTERS)}")
        if spec.activation not in ACTIVATIONS:
            raise ModelError(f"{source}: activation {spec.activation!r} is not one of "
                             f"{', '.join(ACTIVATIONS)}")
        return spec

    def pixel_table(self) -> np.ndarray:
        """256 entries: pixel value -> model input value, in the input's dtype."""
        return pixel_table(self.mean, self.std, self.input_dtype, self.input_quantization)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Rows of raw outputs as probabilities: dequantized, then softmax when declared."""
        scores = dequantize(raw, self.output_quantization)
        return softmax(scores) if self.activation == ACTIVATION_SOFTMAX else scores

    def label(self, class_id: int, labels: tuple[str, ...]) -> str:
        """The label of an output index (BACKGROUND_LABEL below the offset)."""
        index = class_id - self.label_offset
        return labels[index] if index >= 0 else BACKGROUND_LABEL


def pixel_table(mean: float, std: float, dtype: str | np.dtype,
                quantization: Quantization | None) -> np.ndarray:
    """Every pixel value's model input: (pixel - mean) / std, quantized for an integer input."""
    real = (np.arange(256, dtype=np.float64) - mean) / std
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return real.astype(np.float32)
    if quantization is None:
        raise ModelError(f"a {dtype} model input needs quantization in the manifest")
    limits = np.iinfo(dtype)
    quantized = np.round(real / quantization.scale) + quantization.zero_point
    return np.clip(quantized, limits.min, limits.max).astype(dtype)


def dequantize(raw: np.ndarray, quantization: Quantization | None) -> np.ndarray:
    """Raw outputs as float32 (real = (q - zero_point) * scale when quantized)."""
    values = np.asarray(raw).astype(np.float32)
    if quantization is None:
        return values
    return (values - np.float32(quantization.zero_point)) * np.float32(quantization.scale)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (one row of scores, or many)."""
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def created_at_text(moment: datetime) -> str:
    """The manifest's `created_at`: ISO 8601 in UTC to the second, e.g. 2026-11-25T12:00:00Z."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
