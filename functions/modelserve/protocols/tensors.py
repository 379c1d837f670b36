"""Open Inference Protocol v2 tensors: the JSON infer request, binary data, output tensors.

Pure functions, no Flask: the bytes of a request in, an InferRequest out, or BadRequest (400)
naming what is wrong. The binary-data extension (tritonclient's default) is read as Triton
writes it: the `Inference-Header-Content-Length` first bytes are the JSON header, the rest is
each tensor with `parameters.binary_data_size` in turn; a BYTES element is a 4-byte
little-endian length and its bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadRequest
from ..http import escape_for_message
from ..jsonbody import parse_json

HEADER_LENGTH = "Inference-Header-Content-Length"
BYTES = "BYTES"
# Fixed-size datatypes, as numpy reads their little-endian binary data.
NUMPY_TYPES = {
    "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
DATATYPES = (*NUMPY_TYPES, BYTES)
REQUEST_KEYS = frozenset(("id", "parameters", "inputs", "outputs"))
TENSOR_KEYS = frozenset(("name", "shape", "datatype", "parameters", "data"))
MAX_TENSORS = 64
MAX_DIMS = 4
MAX_ELEMENTS = 1_000_000
MAX_ID_CHARS = 256
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tensor:
    """One input tensor: its elements flattened in row-major order (Python values or bytes)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]
    binary: bool  # the data came through the binary-data extension


@dataclass(frozen=True)
class InferRequest:
    """An infer request's JSON, checked for shape; what the tensors mean is the task's call."""

    id: str | None
    parameters: dict[str, Any]
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...]  # requested output names; empty: all of them


def bad(code: str, message: str, field: str | None = None) -> BadRequest:
    return BadRequest(code, message, field)


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """The infer request in `body`, with binary tensor data after `header_length` bytes."""
    binary = b""
    if header_length is not None:
        if not (header_length.isascii() and header_length.isdigit()) \
                or not 0 < int(header_length) <= len(body):
            raise bad("invalid_header", f"{HEADER_LENGTH} must be a whole number from 1 to the "
                      f"body's {len(body)} bytes.", HEADER_LENGTH)
        split = int(header_length)
        body, binary = body[:split], body[split:]
    document = parse_json(body)
    if not isinstance(document, dict):
        raise bad("not_object", "The infer request must be a JSON object with inputs.")
    _refuse_unknown(document, REQUEST_KEYS, None)
    request_id = document.get("id")
    if request_id is not None and (not isinstance(request_id, str)
                                   or len(request_id) > MAX_ID_CHARS):
        raise bad("wrong_type", f"Wrong type: id must be a string of at most {MAX_ID_CHARS} "
                  "characters.", "id")
    parameters = _object(document.get("parameters", {}), "parameters")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_TENSORS:
        raise bad("wrong_type", f"Wrong type: inputs must be an array of 1 to {MAX_TENSORS} "
                  "tensors.", "inputs")
    reader = _BinaryReader(binary)
    tensors = tuple(_tensor(item, index, reader) for index, item in enumerate(inputs))
    reader.finish()
    return InferRequest(request_id, parameters, tensors, _requested_outputs(document))


def output_tensor(name: str, datatype: str, shape: list[int], data: list[Any]
                  ) -> dict[str, Any]:
    """An output tensor as the protocol's JSON writes it."""
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _tensor(item: Any, index: int, reader: _BinaryReader) -> Tensor:
    if not isinstance(item, dict):
        raise bad("wrong_type", f"Wrong type: inputs[{index}] must be a tensor object.",
                  "inputs")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise bad("wrong_type", f"Wrong type: inputs[{index}].name must be a non-empty string.",
                  "inputs")
    field = escape_for_message(name)
    _refuse_unknown(item, TENSOR_KEYS, field)
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise bad("wrong_datatype", f"Input {field}: datatype must be one of "
                  f"{', '.join(DATATYPES)}, got {escape_for_message(datatype)}.", field)
    shape = _shape(item.get("shape"), field)
    count = math.prod(shape)
    parameters = _object(item.get("parameters", {}), f"{field}.parameters")
    if "shared_memory_region" in parameters:
        raise bad("unsupported", f"Input {field}: shared memory is not supported.", field)
    size = parameters.get("binary_data_size")
    if size is not None:
        if "data" in item:
            raise bad("invalid_tensor", f"Input {field}: give data or binary_data_size, not "
                      "both.", field)
        if type(size) is not int or size < 0:
            raise bad("invalid_tensor", f"Input {field}: binary_data_size must be a whole "
                      "number of bytes.", field)
        data = _from_binary(reader.take(size, field), datatype, count, field)
        return Tensor(name, datatype, shape, data, True)
    if "data" not in item:
        raise bad("missing", f"Input {field}: data is missing.", field)
    data = _flatten(item["data"], len(shape), field)
    if len(data) != count:
        raise bad("wrong_shape", f"Input {field}: shape {list(shape)} holds {count} elements, "
                  f"data has {len(data)}.", field)
    return Tensor(name, datatype, shape, data, False)


def _shape(shape: Any, field: str) -> tuple[int, ...]:
    if (not isinstance(shape, list) or not 1 <= len(shape) <= MAX_DIMS
            or any(type(d) is not int or d < 0 for d in shape)):
        raise bad("wrong_shape", f"Input {field}: shape must be an array of 1 to {MAX_DIMS} "
                  "whole numbers of 0 or more.", field)
    if math.prod(shape) > MAX_ELEMENTS:
        raise bad("wrong_shape", f"Input {field}: at most {MAX_ELEMENTS} elements.", field)
    return tuple(shape)


def _flatten(data: Any, dims: int, field: str) -> list[Any]:
    """Row-major elements of flat or nested JSON data (nested no deeper than the shape)."""
    if not isinstance(data, list):
        raise bad("wrong_type", f"Input {field}: data must be an array.", field)
    flat: list[Any] = []

    def walk(values: list[Any], depth: int) -> None:  # depth <= MAX_DIMS: bounded recursion
        for value in values:
            if not isinstance(value, list):
                flat.append(value)
            elif depth < dims:
                walk(value, depth + 1)
            else:
                raise bad("wrong_shape", f"Input {field}: data is nested deeper than its "
                          "shape.", field)

    walk(data, 1)
    return flat


def _from_binary(chunk: bytes, datatype: str, count: int, field: str) -> list[Any]:
    if datatype == BYTES:
        return _bytes_elements(chunk, count, field)
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if len(chunk) != count * dtype.itemsize:
        raise bad("wrong_shape", f"Input {field}: {count} {datatype} elements take "
                  f"{count * dtype.itemsize} bytes, binary_data_size is {len(chunk)}.", field)
    values = np.frombuffer(chunk, dtype=dtype)
    if datatype in ("FP16", "FP32"):
        # The shortest decimal naming each value, as it was written before it became FP32:
        # 24.8 stays 24.8 (not 24.7999992), so a range's bound admits its nearest FP32 value.
        return [float(text) for text in values.astype(str)]
    return values.tolist()


def _bytes_elements(chunk: bytes, count: int, field: str) -> list[bytes]:
    elements, offset = [], 0
    while offset < len(chunk):
        if offset + _LENGTH.size > len(chunk):
            raise bad("invalid_tensor", f"Input {field}: a BYTES element's length is cut "
                      "short.", field)
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += _LENGTH.size
        if offset + length > len(chunk):
            raise bad("invalid_tensor", f"Input {field}: a BYTES element is longer than its "
                      "data.", field)
        elements.append(chunk[offset:offset + length])
        offset += length
    if len(elements) != count:
        raise bad("wrong_shape", f"Input {field}: shape holds {count} elements, the binary "
                  f"data has {len(elements)}.", field)
    return elements


class _BinaryReader:
    """Hands out consecutive chunks of the binary data; all of it must be claimed."""

    def __init__(self, data: bytes) -> None:
        self._data, self._offset = data, 0

    def take(self, size: int, field: str) -> bytes:
        if self._offset + size > len(self._data):
            raise bad("invalid_tensor", f"Input {field}: binary_data_size {size} runs past the "
                      "end of the body.", field)
        chunk = self._data[self._offset:self._offset + size]
        self._offset += size
        return chunk

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise bad("invalid_tensor", f"{len(self._data) - self._offset} bytes of binary data "
                      "belong to no input.", HEADER_LENGTH)


def _requested_outputs(document: dict[str, Any]) -> tuple[str, ...]:
    outputs = document.get("outputs", [])
    if not isinstance(outputs, list) or len(outputs) > MAX_TENSORS:
        raise bad("wrong_type", "Wrong type: outputs must be an array of output objects.",
                  "outputs")
    names = []
    for output in outputs:
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise bad("wrong_type", "Wrong type: each output must be an object with a name.",
                      "outputs")
        _refuse_unknown(output, frozenset(("name", "parameters")), "outputs")
        _object(output.get("parameters", {}), "outputs.parameters")
        names.append(output["name"])
    return tuple(names)


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad("wrong_type", f"Wrong type: {field} must be an object.", field)
    return value


def _refuse_unknown(document: dict[str, Any], allowed: frozenset[str], where: str | None
                    ) -> None:
    for key in document:
        if key not in allowed:
            shown = escape_for_message(key)
            place = f" in {where}" if where else ""
            raise bad("unexpected", f"Unexpected field{place}: {shown}.", shown)
