"""The image task: an uploaded image in, the top-k labels out (classify_image is one such function).

How pixels become the model's input and outputs become probabilities is the contract's
`ImageSpec`, read from the manifest; this module adds what needs Pillow and the interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flask
import numpy as np
from PIL import Image

from ..artifacts import ModelArtifacts
from ..bodies import upload_bytes
from ..config import ImageLimits, Settings
from ..contract import TASK_IMAGE_CLASSIFICATION, ImageSpec, Manifest
from ..declarations import Declaration
from ..errors import BadRequest, ModelError, PayloadTooLarge
from ..image_decoding import ALLOWED_TEXT, decode_image
from ..openapi import build_document
from ..runtime import InterpreterPool, LazyModel
from .base import LoadedModel

FIELD = "image"
NO_IMAGE = "No posted image. Should be attribute named image."
TOP_K_DEFAULT, TOP_K_MAX = 5, 20
PROBABILITY_DECIMALS = 6


@dataclass(frozen=True)
class Preprocessing:
    """The manifest's ImageSpec made ready to run: PIL's filter, the pixel table, labels."""

    spec: ImageSpec
    resample: Image.Resampling
    pixel_table: np.ndarray  # 256 entries: pixel value -> model input value, in its dtype
    labels: tuple[str, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.spec.width, self.spec.height

    def label(self, class_id: int) -> str:
        return self.spec.label(class_id, self.labels)


@dataclass(frozen=True)
class ImageModel(LoadedModel):
    preprocessing: Preprocessing
    pool: InterpreterPool

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """Probabilities over all classes for an RGB image."""
        prep = self.preprocessing
        pixels = np.asarray(image.resize(prep.size, prep.resample))
        # Each pixel value through the normalisation table, straight into the model's input
        # buffer ("clip" never clips 0..255 into 256 entries; it lets `out` go unbuffered).
        raw = self.pool.run_filled(
            lambda buffer: np.take(prep.pixel_table, pixels, out=buffer, mode="clip")
        ).reshape(-1)
        return prep.spec.probabilities(raw)

    def top(self, image: Image.Image, k: int) -> list[dict[str, Any]]:
        """The k most probable classes, most probable first (ties by class id)."""
        probabilities = self.probabilities(image)
        k = min(k, probabilities.size)
        candidates = np.argpartition(-probabilities, k - 1)[:k]
        ranked = sorted(candidates.tolist(), key=lambda i: (-probabilities[i], i))
        return [{"label": self.preprocessing.label(i),
                 "probability": round(float(probabilities[i]), PROBABILITY_DECIMALS),
                 "class_id": i} for i in ranked]


class ImageTask:
    """The parts of an image function that differ from a tabular one."""

    page = "image.html"

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        label_file = manifest.output.get("label_file")
        if not isinstance(label_file, str):
            raise ModelError("manifest output.label_file is missing")
        return (label_file,)

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> ImageModel:
        manifest = artifacts.manifest
        if manifest.task != TASK_IMAGE_CLASSIFICATION:
            raise ModelError(f"{artifacts.version_uri} is a {manifest.task} model, "
                             "not image_classification")
        pool = InterpreterPool(artifacts.files[manifest.model_file],
                               settings.interpreter_pool_size, settings.interpreter_threads)
        labels = artifacts.files[manifest.output["label_file"]].decode("utf-8").splitlines()
        prep = preprocessing(manifest, tuple(line.strip() for line in labels), pool)
        return ImageModel(manifest, artifacts.version_uri, prep, pool)

    def warm_up(self, model: ImageModel) -> None:
        model.probabilities(Image.new("RGB", model.preprocessing.size, (128, 128, 128)))

    def answer(self, request: flask.Request, model: LazyModel[ImageModel],
               settings: Settings) -> dict[str, Any]:
        """The top-k labels of the posted image, with probabilities."""
        limits: ImageLimits = settings.limits
        top_k = parse_top_k(request.args.get("top_k"))
        data = upload_bytes(request, FIELD, limits.max_image_bytes,
                            settings.body_read_timeout_seconds, NO_IMAGE)
        loaded = model.get()
        return {"predictions": self.classify_bytes(loaded, data, top_k, limits),
                "model": loaded.reference()}

    def classify_bytes(self, model: ImageModel, data: bytes, top_k: int,
                       limits: ImageLimits) -> list[dict[str, Any]]:
        """The top-k labels of an encoded image: every protocol's one path.

        Hardened decoding (400, 413 for too many pixels or bytes, 415) then the model.
        """
        if len(data) > limits.max_image_bytes:
            raise PayloadTooLarge("too_large", f"The image is larger than the limit of "
                                  f"{limits.max_image_bytes} bytes.", FIELD)
        image = decode_image(data, limits.max_image_pixels, model.preprocessing.size)
        return model.top(image, top_k)

    def openapi(self, model: ImageModel, settings: Settings) -> dict[str, Any]:
        binary = {"type": "string", "contentMediaType": "application/octet-stream"}
        request_body = {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": [FIELD],
                                               "properties": {FIELD: binary}}},
            "image/*": {"schema": binary},
        }}
        return build_document(
            title=self.declaration.title,
            description=f"{self.declaration.summary} Formats: {ALLOWED_TEXT}.",
            model_version=model.manifest.version,
            request_body=request_body,
            success_schema=_success_schema(),
            post_paths=self.declaration.paths,
            parameters=[{
                "name": "top_k", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": TOP_K_MAX,
                           "default": TOP_K_DEFAULT},
            }],
        )


def parse_top_k(raw: str | None) -> int:
    """The top_k query value: a whole number from 1 to TOP_K_MAX, default TOP_K_DEFAULT."""
    if raw is None:
        return TOP_K_DEFAULT
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= TOP_K_MAX:
        return int(raw)
    raise BadRequest("invalid_top_k", f"top_k must be a whole number from 1 to {TOP_K_MAX}.",
                     "top_k")


def preprocessing(manifest: Manifest, labels: tuple[str, ...],
                  pool: InterpreterPool) -> Preprocessing:
    """Check the manifest's ImageSpec against the model's own tensors and make it runnable."""
    source = f"{manifest.name}/{manifest.version}"
    spec = ImageSpec.from_manifest(manifest)
    if pool.input_shape != (1, spec.height, spec.width, 3):
        raise ModelError(f"{source}: model input {pool.input_shape} does not match the "
                         f"manifest's {spec.height} x {spec.width} x 3")
    classes = int(np.prod(pool.output_shape))
    if len(labels) + spec.label_offset != classes:
        raise ModelError(f"{source}: {len(labels)} labels with offset {spec.label_offset} do "
                         f"not fit {classes} outputs")
    table = pixel_table_for(spec, pool.input_dtype)
    return Preprocessing(spec, Image.Resampling[spec.resize_filter.upper()], table, labels)


def pixel_table_for(spec: ImageSpec, model_dtype: np.dtype) -> np.ndarray:
    """The spec's pixel table, in the dtype the model's input tensor really has."""
    if np.dtype(spec.input_dtype) != model_dtype:
        raise ModelError(f"manifest input dtype {spec.input_dtype} is not the model's "
                         f"{model_dtype}")
    return spec.pixel_table()


def _success_schema() -> dict[str, Any]:
    prediction = {"type": "object", "required": ["label", "probability", "class_id"],
                  "properties": {"label": {"type": "string"},
                                 "probability": {"type": "number", "minimum": 0, "maximum": 1},
                                 "class_id": {"type": "integer", "minimum": 0}}}
    return {"type": "object", "required": ["id", "predictions", "model"],
            "properties": {"id": {"type": "string"},
                           "predictions": {"type": "array", "items": prediction},
                           "model": {"$ref": "#/components/schemas/ModelRef"}}}
