"""An image task's tensors: one BYTES tensor holding the encoded image; top-k tensors out.

The image arrives through the binary-data extension (tritonclient's default: raw bytes), or
in JSON as a base64 string. It goes through ImageTask.classify_bytes: the same hardened
decoding, limits and model call as a multipart upload. `parameters: {"top_k": k}` picks k.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from ..bodies import MULTIPART_OVERHEAD
from ..config import ImageLimits, Settings
from ..tasks.image_classification import (
    FIELD,
    TOP_K_DEFAULT,
    TOP_K_MAX,
    ImageModel,
    ImageTask,
    parse_top_k,
)
from .openapi import infer_request_schema, tensor_schema
from .tensors import BYTES, InferRequest, bad, output_tensor

LABEL, PROBABILITY, CLASS_ID = "label", "probability", "class_id"
# An 8 x 8 orange PNG: the document's example request, a real image in base64.
EXAMPLE_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGM8UaHB"
               "gA0wYRUdtBIAHicBeAYWg8oAAAAASUVORK5CYII=")


class ImageTensors:
    """The Open Inference Protocol's view of an image task."""

    def __init__(self, task: ImageTask) -> None:
        self.task = task

    def body_limit(self, settings: Settings) -> int:
        # Room for the image as base64 in JSON (4 characters per 3 bytes) and the header.
        return math.ceil(settings.limits.max_image_bytes * 4 / 3) + MULTIPART_OVERHEAD

    def metadata(self, model: ImageModel) -> dict[str, Any]:
        return {
            "inputs": [{"name": FIELD, "datatype": BYTES, "shape": [1]}],
            "outputs": [{"name": LABEL, "datatype": BYTES, "shape": [1, -1]},
                        {"name": PROBABILITY, "datatype": "FP32", "shape": [1, -1]},
                        {"name": CLASS_ID, "datatype": "INT64", "shape": [1, -1]}],
            "parameters": {"top_k": TOP_K_DEFAULT},
        }

    def infer_schema(self, model: ImageModel, settings: Settings) -> dict[str, Any]:
        """The documented form of an infer request: the image as base64 in JSON."""
        data = {"type": "array", "minItems": 1, "maxItems": 1,
                "items": {"type": "string", "contentEncoding": "base64"}}
        parameters = {"type": "object", "properties": {
            "top_k": {"type": "integer", "minimum": 1, "maximum": TOP_K_MAX}}}
        return infer_request_schema(
            [tensor_schema({"type": "string", "minLength": 1}, [BYTES], [1], data)], parameters)

    def infer_example(self, model: ImageModel) -> dict[str, Any]:
        return {"inputs": [{"name": FIELD, "datatype": BYTES, "shape": [1],
                            "data": [EXAMPLE_PNG]}], "parameters": {"top_k": 3}}

    def infer(self, request: InferRequest, model: ImageModel,
              settings: Settings) -> list[dict[str, Any]]:
        limits: ImageLimits = settings.limits
        if len(request.inputs) != 1:
            raise bad("wrong_inputs", "Send one BYTES tensor holding the encoded image.",
                      "inputs")
        tensor = request.inputs[0]
        if tensor.datatype != BYTES:
            raise bad("wrong_datatype", f"Input {tensor.name}: datatype must be BYTES (the "
                      f"encoded image), got {tensor.datatype}.", tensor.name)
        if math.prod(tensor.shape) != 1:
            raise bad("wrong_shape", f"Input {tensor.name}: one image per request: shape [1], "
                      f"got {list(tensor.shape)}.", tensor.name)
        top_k = _top_k(request.parameters.get("top_k"))
        data = _image_bytes(tensor.data[0], tensor.name, tensor.binary)
        predictions = self.task.classify_bytes(model, data, top_k, limits)
        shape = [1, len(predictions)]
        return [output_tensor(LABEL, BYTES, shape, [p[LABEL] for p in predictions]),
                output_tensor(PROBABILITY, "FP32", shape, [p[PROBABILITY] for p in predictions]),
                output_tensor(CLASS_ID, "INT64", shape, [p[CLASS_ID] for p in predictions])]


def _top_k(value: Any) -> int:
    if value is None:
        return TOP_K_DEFAULT
    return parse_top_k(str(value) if type(value) is int else "")


def _image_bytes(element: Any, name: str, binary: bool) -> bytes:
    if binary:
        return element
    if not isinstance(element, str):
        raise bad("wrong_type", f"Input {name}: in JSON the image must be a base64 string.",
                  name)
    try:
        return base64.b64decode(element, validate=True)
    except (binascii.Error, ValueError):
        raise bad("invalid_base64", f"Input {name}: the image is not valid base64.",
                  name) from None
