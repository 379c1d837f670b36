"""The tabular task: JSON records in, the model's answer out (predict_mpg is one such function).

The features, their order, types, ranges and categories, and the shape of the answer all come
from the manifest, so any tabular model exported by train/ is served the same way: a regression
answers its value under the manifest's output name (predict_mpg: "mpg"), a classification its
`label` and the `probabilities` of every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flask
import numpy as np

from ..artifacts import ModelArtifacts
from ..bodies import read_body, require_content_type
from ..config import Settings, TabularLimits
from ..contract import (
    ACTIVATION_SOFTMAX,
    ACTIVATIONS,
    TABULAR_TASKS,
    TASK_CLASSIFICATION,
    Manifest,
    softmax,
)
from ..declarations import Declaration
from ..errors import BadRequest, ModelError, ModelUnavailable, PayloadTooLarge, Problem
from ..jsonbody import parse_json
from ..openapi import build_document
from ..runtime import InterpreterPool, LazyModel
from ..schema import (
    CATEGORY,
    INTEGER,
    MAX_PROBLEMS,
    TabularSchema,
    check_record,
    classification_labels,
    schema_from_manifest,
    unexpected_field,
)
from .base import LoadedModel

BATCH_KEY = "instances"
VALUE_DECIMALS = 3
PROBABILITY_DECIMALS = 6
DEFAULT_OUTPUT_NAME = "prediction"
LABEL_KEY, PROBABILITIES_KEY = "label", "probabilities"


@dataclass(frozen=True)
class Row:
    """One record's outcome: the model's answer, or the problems that kept it from the model.

    `value` is what a protocol replies with: the number for regression, the label for a
    classifier (None for a bad row); `result` is the own API's part of the answer.
    """

    value: float | str | None
    problems: list[Problem]
    warnings: list[Problem]
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class TabularModel(LoadedModel):
    schema: TabularSchema
    pool: InterpreterPool
    output_name: str  # the answer's key, from the manifest's output (predict_mpg: "mpg")
    labels: tuple[str, ...] = ()  # a classifier's classes in output order; () for regression
    activation: str = "none"  # a classifier's outputs: probabilities ("none") or logits

    @property
    def is_classifier(self) -> bool:
        return bool(self.labels)

    def predict(self, values: list[float]) -> float:
        """The model's value for one record's model-ordered values."""
        value = float(self._run(values)[0])
        return round(value, VALUE_DECIMALS)

    def classify(self, values: list[float]) -> dict[str, Any]:
        """A classifier's label and the probability of every class for one record."""
        scores = self._run(values).astype(np.float64)
        probabilities = softmax(scores) if self.activation == ACTIVATION_SOFTMAX else scores
        best = int(np.argmax(probabilities))
        return {LABEL_KEY: self.labels[best],
                PROBABILITIES_KEY: {label: round(float(p), PROBABILITY_DECIMALS)
                                    for label, p in zip(self.labels, probabilities,
                                                        strict=True)}}

    def result(self, values: list[float]) -> dict[str, Any]:
        """The answer's model part for one record: {output name: value}, or label and
        probabilities."""
        if self.is_classifier:
            return self.classify(values)
        return {self.output_name: self.predict(values)}

    def _run(self, values: list[float]) -> np.ndarray:
        output = self.pool.run(np.array([values], dtype=np.float32)).reshape(-1)
        if not np.all(np.isfinite(output)):
            raise ModelUnavailable("Model produced a non-finite value.", retry_after=1)
        return output


class TabularTask:
    """The parts of a tabular function that differ from an image one."""

    page = "mpg.html"

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        return ()

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> TabularModel:
        manifest = artifacts.manifest
        if manifest.task not in TABULAR_TASKS:
            raise ModelError(f"{artifacts.version_uri} is a {manifest.task} model, not "
                             f"{' or '.join(TABULAR_TASKS)}")
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
        if manifest.task != TASK_CLASSIFICATION:
            return TabularModel(manifest, artifacts.version_uri, schema, pool, output_name)
        labels = classification_labels(manifest.output)
        activation = str(manifest.output.get("activation", "none"))
        if activation not in ACTIVATIONS:
            raise ModelError(f"manifest output.activation {activation!r} is not one of "
                             f"{', '.join(ACTIVATIONS)}")
        if int(np.prod(pool.output_shape)) != len(labels):
            raise ModelError(f"model output {pool.output_shape} does not fit the manifest's "
                             f"{len(labels)} labels")
        return TabularModel(manifest, artifacts.version_uri, schema, pool, output_name,
                            labels, activation)

    def warm_up(self, model: TabularModel) -> None:
        checked = check_record(example_record(model.schema), model.schema)
        model.result(checked.values or [f.minimum for f in model.schema.features])

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
        if row.result is None:
            raise BadRequest.of(row.problems)
        return {**row.result, "model": model.reference(), **_warnings(row)}

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
                result = model.result(checked.values)
                value = result[LABEL_KEY] if model.is_classifier else result[model.output_name]
                rows.append(Row(value, [], checked.warnings, result))
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
            success_schema=_success_schema(_answer_properties(model)),
            post_paths=self.declaration.paths,
        )


def example_record(schema: TabularSchema) -> dict[str, float | int | str]:
    """A valid record: each category's first name, each feature's first allowed code, else the
    middle of its range."""
    record: dict[str, float | int | str] = {}
    for feature in schema.features:
        if feature.codes:
            record[feature.name] = next(iter(feature.codes))
        elif feature.allowed:
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
    return [{"errors": [p.as_dict() for p in row.problems]} if row.result is None
            else {**row.result, **_warnings(row)}
            for row in task.predict_rows(model, instances, limits)]


def _warnings(row: Row) -> dict[str, Any]:
    return {"warnings": [w.as_dict() for w in row.warnings]} if row.warnings else {}


def _record_schema(schema: TabularSchema, enforce_range: bool) -> dict[str, Any]:
    properties = {}
    for feature in schema.features:
        description = (f"{feature.description} ({feature.unit})" if feature.unit
                       else feature.description)
        if feature.type == CATEGORY:
            properties[feature.name] = {
                "description": f"{description}: {feature.range_text()}; the name or its code",
                "oneOf": [{"type": "string", "enum": list(feature.codes or {})},
                          {"type": "integer", "enum": list(feature.allowed or {})}],
            }
            continue
        prop: dict[str, Any] = {"type": feature.type, "description": description}
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


def _answer_properties(model: TabularModel) -> dict[str, Any]:
    """The answer's model part: the output's value, or the class label and probabilities."""
    if not model.is_classifier:
        return {model.output_name: {"type": "number"}}
    return {
        LABEL_KEY: {"type": "string", "enum": list(model.labels)},
        PROBABILITIES_KEY: {
            "type": "object",
            "required": list(model.labels),
            "additionalProperties": False,
            "properties": {label: {"type": "number", "minimum": 0, "maximum": 1}
                           for label in model.labels},
        },
    }


def _success_schema(answer: dict[str, Any]) -> dict[str, Any]:
    model_ref = {"$ref": "#/components/schemas/ModelRef"}
    problem_list = {"type": "array", "items": {"type": "object"}}
    single = {
        "type": "object",
        "required": ["id", *answer, "model"],
        "properties": {
            "id": {"type": "string"},
            **answer,
            "model": model_ref,
            "warnings": problem_list,
        },
    }
    item = {
        "type": "object",
        "properties": {**answer, "errors": problem_list, "warnings": problem_list},
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
