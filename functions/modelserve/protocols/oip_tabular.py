"""A tabular task's tensors: one [N, F] tensor, or one [N] tensor per feature; [N, 1] out.

Rows become the own API's records (feature name -> value) and go through
TabularTask.predict_rows: the same validation, messages and model call. Any bad row fails
the request (400) with its index and field named: the protocol has no per-row errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import Settings, TabularLimits
from ..errors import BadRequest, Problem
from ..schema import TabularSchema
from ..tasks.tabular import TabularModel, TabularTask, check_batch_size, example_record
from . import row_problems
from .openapi import infer_request_schema, tensor_schema
from .tensors import InferRequest, Tensor, bad, output_tensor

MATRIX_INPUT = "input"  # the name metadata gives the [N, F] tensor; any non-feature name works
INPUT_DATATYPES = ("FP32", "FP64", "INT64")
OUTPUT_DATATYPE = "FP32"
LABEL_DATATYPE = "BYTES"  # a classifier answers its label per row


def output_datatype(model: TabularModel) -> str:
    """The output tensor's datatype: the value (FP32), or a classifier's label (BYTES)."""
    return LABEL_DATATYPE if model.is_classifier else OUTPUT_DATATYPE


class TabularTensors:
    """The Open Inference Protocol's view of a tabular task."""

    def __init__(self, task: TabularTask) -> None:
        self.task = task

    def body_limit(self, settings: Settings) -> int:
        return settings.limits.max_json_bytes

    def metadata(self, model: TabularModel) -> dict[str, Any]:
        names = list(model.schema.names)
        return {
            "inputs": [{"name": MATRIX_INPUT, "datatype": "FP32", "shape": [-1, len(names)]}],
            "outputs": [{"name": model.output_name, "datatype": output_datatype(model),
                         "shape": [-1, 1]}],
            "parameters": {"features": names, "input_datatypes": list(INPUT_DATATYPES)},
        }

    def infer_schema(self, model: TabularModel, settings: Settings) -> dict[str, Any]:
        """The documented form of an infer request: one row as a [1, F] tensor in JSON."""
        features = list(self.task.feature_schemas(model, settings).values())
        data = {"type": "array", "prefixItems": features, "minItems": len(features),
                "maxItems": len(features), "items": False}
        return infer_request_schema([tensor_schema({"const": MATRIX_INPUT}, ["FP32", "FP64"],
                                                   [1, len(features)], data)])

    def infer_example(self, model: TabularModel) -> dict[str, Any]:
        row = list(example_record(model.schema).values())
        return {"inputs": [{"name": MATRIX_INPUT, "datatype": "FP32", "shape": [1, len(row)],
                            "data": row}]}

    def infer(self, request: InferRequest, model: TabularModel,
              settings: Settings) -> list[dict[str, Any]]:
        limits: TabularLimits = settings.limits
        records = records_from_tensors(request.inputs, model.schema)
        check_batch_size(len(records), limits, request.inputs[0].name)
        rows = self.task.predict_rows(model, records, limits)
        problems = row_problems(rows)
        if problems:
            raise BadRequest.of(problems)
        values = [row.value for row in rows]
        return [output_tensor(model.output_name, output_datatype(model), [len(values), 1],
                              values)]


def records_from_tensors(inputs: tuple[Tensor, ...], schema: TabularSchema
                         ) -> list[dict[str, Any]]:
    """The request's rows as records; 400 for a shape, datatype or name that does not fit."""
    if any(tensor.name in schema.name_set for tensor in inputs):
        return _from_columns(inputs, schema)
    if len(inputs) != 1:
        raise bad("wrong_inputs", f"Send one [N, {len(schema.names)}] tensor, or one [N] "
                  "tensor per feature named as the feature.", "inputs")
    return _from_matrix(inputs[0], schema)


def _from_matrix(tensor: Tensor, schema: TabularSchema) -> list[dict[str, Any]]:
    names = schema.names
    _check_datatype(tensor)
    if len(tensor.shape) != 2 or tensor.shape[1] != len(names):
        raise bad("wrong_shape", f"Input {tensor.name}: shape must be [N, {len(names)}] (the "
                  f"features {', '.join(names)} in this order), got {list(tensor.shape)}.",
                  tensor.name)
    rows = _rows(tensor.shape[0], tensor.name)
    _check_integers(tensor, names)
    width, data = len(names), tensor.data
    return [dict(zip(names, data[row * width:(row + 1) * width], strict=True))
            for row in range(rows)]


def _from_columns(inputs: tuple[Tensor, ...], schema: TabularSchema) -> list[dict[str, Any]]:
    by_name: dict[str, Tensor] = {}
    problems: list[Problem] = []
    for tensor in inputs:
        if tensor.name not in schema.name_set:
            problems.append(Problem(tensor.name, "unexpected",
                                    f"Unexpected input: {tensor.name}."))
        elif tensor.name in by_name:
            problems.append(Problem(tensor.name, "duplicate", f"Duplicate input: {tensor.name}."))
        by_name.setdefault(tensor.name, tensor)
    problems.extend(Problem(name, "missing", f"Missing value: {name}.")
                    for name in schema.names if name not in by_name)
    if problems:
        raise BadRequest.of(problems)
    lengths = set()
    for tensor in by_name.values():
        _check_datatype(tensor)
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise bad("wrong_shape", f"Input {tensor.name}: shape must be [N] or [N, 1], got "
                      f"{list(tensor.shape)}.", tensor.name)
        lengths.add(tensor.shape[0])
    if len(lengths) != 1:
        raise bad("wrong_shape", "Every feature's tensor must have the same N, got "
                  f"{', '.join(map(str, sorted(lengths)))}.", "inputs")
    rows = _rows(lengths.pop(), "inputs")
    for tensor in by_name.values():
        _check_integers(tensor, (tensor.name,))
    return [{name: by_name[name].data[row] for name in schema.names} for row in range(rows)]


def _rows(count: int, field: str) -> int:
    if count < 1:
        raise bad("wrong_shape", f"Input {field}: N must be at least 1.", field)
    return count


def _check_datatype(tensor: Tensor) -> None:
    if tensor.datatype not in INPUT_DATATYPES:
        raise bad("wrong_datatype", f"Input {tensor.name}: datatype must be "
                  f"{', '.join(INPUT_DATATYPES)}, got {tensor.datatype}.", tensor.name)


def _check_integers(tensor: Tensor, names: Sequence[str]) -> None:
    """INT64 data written as JSON must be whole numbers (binary data always is)."""
    if tensor.datatype != "INT64" or tensor.binary:
        return
    for position, value in enumerate(tensor.data):
        if type(value) is not int:
            row, column = divmod(position, len(names))
            raise bad("wrong_type", f"Row {row}: Wrong type: {names[column]} is INT64 data, "
                      "so must be a whole number.", names[column])
