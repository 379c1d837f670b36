"""The tabular task: JSON records in, the model's value out (predict_mpg is one such function).

The features, their order, types and ranges, and the name of the answer all come from the
manifest, so any tabular regression model exported by train/ is served the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flask
import numpy as np

from ..artifacts import ModelArtifacts
from ..bodies import read_body, require_content_type
from ..config import Settings, TabularLimits
from ..contract import TASK_REGRESSION, Manifest
from ..declarations import Declaration
from ..errors import BadRequest, ModelError, ModelUnavailable, PayloadTooLarge, Problem
from ..jsonbody import parse_json
from ..openapi import build_document
from ..runtime import InterpreterPool, LazyModel
from ..schema import (
    INTEGER,
    MAX_PROBLEMS,
    TabularSchema,
    check_record,
    schema_from_manifest,
    unexpected_field,
)
from .base import LoadedModel

BATCH_KEY = "instances"
VALUE_DECIMALS = 3
DEFAULT_OUTPUT_NAME = "prediction"


@dataclass(frozen=True)
class Row:
    """One record's outcome: the model's value, or the problems that kept it from the model."""

    value: float | None
    problems: list[Problem]
    warnings: list[Problem]


@dataclass(frozen=True)
class TabularModel(LoadedModel):
    schema: TabularSchema
    pool: InterpreterPool
    output_name: str  # the answer's key, from the manifest's output (predict_mpg: "mpg")

    def predict(self, values: list[float]) -> float:
        """The model's value for one record's model-ordered values."""
        output = self.pool.run(np.array([values], dtype=np.float32))
        value = float(output.reshape(-1)[0])
        if not math.isfinite(value):
            raise ModelUnavailable("Model produced a non-finite value.", retry_after=1)
        return round(value, VALUE_DECIMALS)


class TabularTask:
    """The parts of a tabular function that differ from an image one."""

    page = "mpg.html"

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        return ()

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> TabularModel:
        manifest = artifacts.manifest
        if manifest.task != TASK_REGRESSION:
            raise ModelError(f"{artifacts.version_uri} is a {manifest.task} model, not regression")
        schema = schema_from_manifest(manifest.input)
        pool = InterpreterPool(
            artifacts.files[manifest.model_file],
            settings.interpreter_pool_size,
            settings.interpreter_threads,
        )
        expected = (1, len(schema.features))
        if pool.input_shape != expected or pool.input_dtype != np.float32:
            raise ModelError(
                f"model input is {pool.input_shape} {pool.input_dtype}, "
                f"the manifest's features need {expected} float32"
            )
        output_name = str(manifest.output.get("name") or DEFAULT_OUTPUT_NAME)
        return TabularModel(manifest, artifacts.version_uri, schema, pool, output_name)

    def warm_up(self, model: TabularModel) -> None:
        middle = [(f.minimum + f.maximum) / 2 for f in model.schema.features]
        model.predict(middle)

    def answer(
        self, request: flask.Request, model: LazyModel[TabularModel], settings: Settings
    ) -> dict[str, Any]:
        """One record's prediction, or a batch's predictions with per-item errors."""
        limits: TabularLimits = settings.limits
        body = read_json(request, limits.max_json_bytes, settings.body_read_timeout_seconds)
        return self.answer_body(body, model.get(), limits)

    def answer_body(self, body: Any, model: TabularModel, limits: TabularLimits
                    ) -> dict[str, Any]:
        """The own API's answer to a parsed JSON body: one record, or {"instances": [...]}."""
        if isinstance(body, dict) and BATCH_KEY in body:
            return {
                "predictions": _predict_batch(self, body, model, limits),
                "model": model.reference(),
            }
        row = self.predict_rows(model, [body], limits)[0]
        if row.value is None:
            raise BadRequest.of(row.problems)
        return {model.output_name: row.value, "model": model.reference(), **_warnings(row)}

    def predict_rows(self, model: TabularModel, records: Sequence[Any],
                     limits: TabularLimits) -> list[Row]:
        """Validate each record and predict the valid ones: every protocol's one path.

        A bad record never stops the others: its Row carries its problems instead of a value.
        The caller bounds how many records it passes (check_batch_size).
        """
        rows = []
        for record in records:
            checked = check_record(record, model.schema, limits.out_of_range)
            if checked.values is None:
                rows.append(Row(None, checked.problems, checked.warnings))
            else:
                rows.append(Row(model.predict(checked.values), [], checked.warnings))
        return rows

    def feature_schemas(self, model: TabularModel, settings: Settings) -> dict[str, Any]:
        """Each feature's JSON Schema, by name in model order (what the document says)."""
        limits: TabularLimits = settings.limits
        enforce_range = limits.out_of_range == "reject"
        return _record_schema(model.schema, enforce_range)["properties"]

    def openapi(self, model: TabularModel, settings: Settings) -> dict[str, Any]:
        limits: TabularLimits = settings.limits
        record = _record_schema(model.schema, enforce_range=limits.out_of_range == "reject")
        batch = {
            "type": "object",
            "required": [BATCH_KEY],
            "additionalProperties": False,
            "properties": {
                BATCH_KEY: {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": limits.max_batch_size,
                    "items": record,
                }
            },
        }
        request_body = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [record, batch]},
                    "example": example_record(model.schema),
                }
            },
        }
        return build_document(
            title=self.declaration.title,
            description=self.declaration.summary,
            model_version=model.manifest.version,
            request_body=request_body,
            success_schema=_success_schema(model.output_name),
            post_paths=self.declaration.paths,
        )


def example_record(schema: TabularSchema) -> dict[str, float | int]:
    """A valid record: each feature's first allowed code, else the middle of its range."""
    record: dict[str, float | int] = {}
    for feature in schema.features:
        if feature.allowed:
            record[feature.name] = next(iter(feature.allowed))
        else:
            middle = (feature.minimum + feature.maximum) / 2
            record[feature.name] = round(middle) if feature.type == INTEGER else middle
    return record


def read_json(request: flask.Request, limit: int, timeout: float) -> Any:
    """A JSON request body of at most `limit` bytes, parsed strictly (415, 413, 408, 400)."""
    require_content_type(request, ("application/json",), "application/json")
    return parse_json(read_body(request, limit, timeout))


def check_batch_size(count: int, limits: TabularLimits, field: str = BATCH_KEY) -> None:
    """413 for more than MAX_BATCH_SIZE records in one request."""
    if count > limits.max_batch_size:
        raise PayloadTooLarge(
            "too_many_instances",
            f"A batch may hold at most {limits.max_batch_size} instances, got {count}.",
            field,
        )


def _predict_batch(task: TabularTask, body: dict[str, Any], model: TabularModel,
                   limits: TabularLimits) -> list[dict]:
    extra = [unexpected_field(key) for key in body if key != BATCH_KEY][:MAX_PROBLEMS]
    instances = body[BATCH_KEY]
    if not isinstance(instances, list) or not instances:
        extra.append(
            Problem(
                BATCH_KEY,
                "wrong_type",
                f"Wrong type: {BATCH_KEY} must be a non-empty array of records.",
            )
        )
    if extra:
        raise BadRequest.of(extra)
    check_batch_size(len(instances), limits)
    return [{"errors": [p.as_dict() for p in row.problems]} if row.value is None
            else {model.output_name: row.value, **_warnings(row)}
            for row in task.predict_rows(model, instances, limits)]


def _warnings(row: Row) -> dict[str, Any]:
    return {"warnings": [w.as_dict() for w in row.warnings]} if row.warnings else {}


def _record_schema(schema: TabularSchema, enforce_range: bool) -> dict[str, Any]:
    properties = {}
    for feature in schema.features:
        prop: dict[str, Any] = {
            "type": feature.type,
            "description": f"{feature.description} ({feature.unit})".strip(),
        }
        if feature.allowed:
            prop["enum"] = list(feature.allowed)
            prop["description"] += ": " + feature.range_text()
        elif enforce_range:
            prop.update(minimum=feature.minimum, maximum=feature.maximum)
        else:
            prop["x-training-range"] = [feature.minimum, feature.maximum]
        properties[feature.name] = prop
    return {
        "type": "object",
        "required": list(schema.names),
        "additionalProperties": False,
        "properties": properties,
    }


def _success_schema(output_name: str) -> dict[str, Any]:
    model_ref = {"$ref": "#/components/schemas/ModelRef"}
    problem_list = {"type": "array", "items": {"type": "object"}}
    single = {
        "type": "object",
        "required": ["id", output_name, "model"],
        "properties": {
            "id": {"type": "string"},
            output_name: {"type": "number"},
            "model": model_ref,
            "warnings": problem_list,
        },
    }
    item = {
        "type": "object",
        "properties": {output_name: {"type": "number"}, "errors": problem_list,
                       "warnings": problem_list},
    }
    batch = {
        "type": "object",
        "required": ["id", "predictions", "model"],
        "properties": {
            "id": {"type": "string"},
            "model": model_ref,
            "predictions": {"type": "array", "items": item},
        },
    }
    return {"oneOf": [single, batch]}
