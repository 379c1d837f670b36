"""classify_image: the ImageNet classifier task (an image in, the top-k labels out)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import flask
import numpy as np
from PIL import Image
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from .artifacts import ModelArtifacts
from .config import Settings
from .endpoint import LoadedModel
from .errors import BadRequest, ModelError, PayloadTooLarge
from .http import read_body, require_content_type
from .images import decode_image
from .manifest import Manifest
from .openapi import build_document
from .runtime import InterpreterPool, LazyModel

FIELD = "image"
NO_IMAGE = "No posted image. Should be attribute named image."
TOP_K_DEFAULT, TOP_K_MAX = 5, 20
PROBABILITY_DECIMALS = 6
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the image bytes
MAX_FORM_PARTS = 16
BACKGROUND = "background"
_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


@dataclass(frozen=True)
class ImageSpec:
    """How pixels become the model's input and outputs become probabilities (from the manifest)."""

    width: int
    height: int
    resample: Image.Resampling
    pixel_lut: np.ndarray  # 256 entries: pixel value -> model input value, in the input dtype
    output_quantization: tuple[float, int] | None
    softmax: bool
    labels: tuple[str, ...]
    label_offset: int

    def label(self, class_id: int) -> str:
        index = class_id - self.label_offset
        return self.labels[index] if index >= 0 else BACKGROUND


@dataclass(frozen=True)
class ImageModel(LoadedModel):
    spec: ImageSpec
    pool: InterpreterPool

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """Probabilities over all classes for an RGB image."""
        spec = self.spec
        pixels = np.asarray(image.resize((spec.width, spec.height), spec.resample))
        # Each pixel value through the normalisation table, straight into the model's input
        # buffer ("clip" never clips 0..255 into 256 entries; it lets `out` go unbuffered).
        raw = self.pool.run_filled(
            lambda buffer: np.take(spec.pixel_lut, pixels, out=buffer, mode="clip")
        ).reshape(-1)
        if spec.output_quantization is not None:
            scale, zero_point = spec.output_quantization
            scores = (raw.astype(np.float32) - zero_point) * scale
        else:
            scores = raw.astype(np.float32)
        if spec.softmax:
            exp = np.exp(scores - scores.max())
            scores = exp / exp.sum()
        return scores

    def top(self, image: Image.Image, k: int) -> list[dict[str, Any]]:
        """The k most probable classes, most probable first (ties by class id)."""
        probabilities = self.probabilities(image)
        k = min(k, probabilities.size)
        candidates = np.argpartition(-probabilities, k - 1)[:k]
        ranked = sorted(candidates.tolist(), key=lambda i: (-probabilities[i], i))
        return [{"label": self.spec.label(i),
                 "probability": round(float(probabilities[i]), PROBABILITY_DECIMALS),
                 "class_id": i} for i in ranked]


class ImageTask:
    """The parts of classify_image that differ from predict_mpg."""

    function_name = "classify_image"
    title = "ImageNet image classifier"
    page = "image.html"

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        label_file = manifest.output.get("label_file")
        if not isinstance(label_file, str):
            raise ModelError("manifest output.label_file is missing")
        return (label_file,)

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> ImageModel:
        manifest = artifacts.manifest
        if manifest.task != "image_classification":
            raise ModelError(f"{artifacts.version_uri} is a {manifest.task} model, "
                             "not image_classification")
        pool = InterpreterPool(artifacts.files[manifest.model_file],
                               settings.interpreter_pool_size, settings.interpreter_threads)
        labels = artifacts.files[manifest.output["label_file"]].decode("utf-8").splitlines()
        spec = spec_from_manifest(manifest, tuple(line.strip() for line in labels), pool)
        return ImageModel(manifest, artifacts.version_uri, spec, pool)

    def warm_up(self, model: ImageModel) -> None:
        spec = model.spec
        model.probabilities(Image.new("RGB", (spec.width, spec.height), (128, 128, 128)))

    def answer(self, request: flask.Request, model: LazyModel[ImageModel],
               settings: Settings) -> dict[str, Any]:
        """The top-k ImageNet labels of the posted image, with probabilities."""
        top_k = parse_top_k(request.args.get("top_k"))
        data = upload_bytes(request, settings.max_image_bytes, settings.body_read_timeout_seconds)
        loaded = model.get()
        spec = loaded.spec
        image = decode_image(data, settings.max_image_pixels, (spec.width, spec.height))
        return {"predictions": loaded.top(image, top_k), "model": loaded.reference()}

    def openapi(self, model: ImageModel, settings: Settings) -> dict[str, Any]:
        binary = {"type": "string", "contentMediaType": "application/octet-stream"}
        request_body = {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": [FIELD],
                                               "properties": {FIELD: binary}}},
            "image/*": {"schema": binary},
        }}
        document = build_document(
            title=self.title,
            description="Classify a photo (JPEG, PNG, GIF, WebP or BMP) into ImageNet classes.",
            model_version=model.manifest.version,
            request_body=request_body,
            success_schema=_success_schema(),
        )
        document["paths"]["/"]["post"]["parameters"] = [{
            "name": "top_k", "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": TOP_K_MAX,
                       "default": TOP_K_DEFAULT},
        }]
        return document


def parse_top_k(raw: str | None) -> int:
    """The top_k query value: a whole number from 1 to TOP_K_MAX, default TOP_K_DEFAULT."""
    if raw is None:
        return TOP_K_DEFAULT
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= TOP_K_MAX:
        return int(raw)
    raise BadRequest("invalid_top_k", f"top_k must be a whole number from 1 to {TOP_K_MAX}.",
                     "top_k")


def upload_bytes(request: flask.Request, max_bytes: int, timeout: float) -> bytes:
    """The uploaded image: multipart field `image`, or a raw body sent as image/*."""
    media_type = require_content_type(request, ("multipart/form-data", "image/"),
                                      "multipart/form-data (a field named image) or image/*")
    if media_type.startswith("image/"):
        data = read_body(request, max_bytes, timeout)
    else:
        body = read_body(request, max_bytes + MULTIPART_OVERHEAD, timeout)
        data = _multipart_field(body, request.mimetype_params, FIELD)
    if len(data) > max_bytes:
        raise PayloadTooLarge("too_large", f"The image is larger than the limit of {max_bytes} "
                              "bytes.", FIELD)
    if not data:
        raise BadRequest("missing_image", NO_IMAGE, FIELD)
    return data


def _multipart_field(body: bytes, options: dict[str, str], name: str) -> bytes:
    """One file field of a multipart body, parsed in memory: uploads never touch the disk."""
    parser = FormDataParser(stream_factory=_in_memory, max_form_parts=MAX_FORM_PARTS)
    try:
        _, _, files = parser.parse(io.BytesIO(body), "multipart/form-data", len(body), options)
    except (ValueError, RequestEntityTooLarge):
        raise BadRequest("invalid_multipart", "The multipart body is malformed.", name) from None
    part = files.get(name)
    return part.stream.read() if part is not None else b""


def _in_memory(*_: object, **__: object) -> io.BytesIO:
    return io.BytesIO()


def spec_from_manifest(manifest: Manifest, labels: tuple[str, ...],
                       pool: InterpreterPool) -> ImageSpec:
    """Check the manifest against the model's own tensors and build the preprocessing spec."""
    source = f"{manifest.name}/{manifest.version}"
    spec_in, spec_out = manifest.input, manifest.output
    try:
        height, width = int(spec_in["height"]), int(spec_in["width"])
        resample = _FILTERS[spec_in["resize"]["filter"]]
        mode = spec_in["resize"].get("mode", "stretch")
        mean = float(spec_in["normalization"]["mean"])
        std = float(spec_in["normalization"]["std"])
        offset = int(spec_out.get("label_offset", 0))
        softmax = spec_out.get("activation", "none") == "softmax"
        out_q = spec_out.get("quantization")
        output_quantization = (float(out_q["scale"]), int(out_q["zero_point"])) if out_q else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{source}: manifest image input/output is malformed ({exc!r})") from None
    if mode != "stretch":
        raise ModelError(f"{source}: resize mode {mode!r} is not supported (use stretch)")
    if pool.input_shape != (1, height, width, 3):
        raise ModelError(f"{source}: model input {pool.input_shape} does not match the "
                         f"manifest's {height} x {width} x 3")
    classes = int(np.prod(pool.output_shape))
    if len(labels) + offset != classes:
        raise ModelError(f"{source}: {len(labels)} labels with offset {offset} do not fit "
                         f"{classes} outputs")
    lut = _pixel_lut(mean, std, pool.input_dtype, spec_in.get("quantization"))
    return ImageSpec(width, height, resample, lut, output_quantization, softmax, labels, offset)


def _pixel_lut(mean: float, std: float, dtype: np.dtype,
               quantization: dict[str, Any] | None) -> np.ndarray:
    # Every pixel value maps to one model input value: one table lookup per image.
    real = (np.arange(256, dtype=np.float64) - mean) / std
    if dtype == np.float32:
        return real.astype(np.float32)
    if not quantization:
        raise ModelError(f"a {dtype} model input needs quantization in the manifest")
    info = np.iinfo(dtype)
    quantized = np.round(real / float(quantization["scale"])) + int(quantization["zero_point"])
    return np.clip(quantized, info.min, info.max).astype(dtype)


def _success_schema() -> dict[str, Any]:
    prediction = {"type": "object", "required": ["label", "probability", "class_id"],
                  "properties": {"label": {"type": "string"},
                                 "probability": {"type": "number", "minimum": 0, "maximum": 1},
                                 "class_id": {"type": "integer", "minimum": 0}}}
    return {"type": "object", "required": ["id", "predictions", "model"],
            "properties": {"id": {"type": "string"},
                           "predictions": {"type": "array", "items": prediction},
                           "model": {"$ref": "#/components/schemas/ModelRef"}}}
