"""predict_mpg: the Auto MPG regression task (JSON records in, miles per gallon out)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import flask
import numpy as np

from .artifacts import ModelArtifacts
from .config import Settings
from .endpoint import LoadedModel
from .errors import BadRequest, ModelError, ModelUnavailable, PayloadTooLarge, Problem
from .http import read_body, require_content_type
from .jsonbody import parse_json
from .manifest import Manifest
from .openapi import build_document
from .runtime import InterpreterPool, LazyModel
from .schema import (
    MAX_PROBLEMS,
    Checked,
    TabularSchema,
    check_record,
    schema_from_manifest,
    unexpected_field,
)

BATCH_KEY = "instances"
MPG_DECIMALS = 3
LESSON_EXAMPLE = {
    "cylinders": 8,
    "displacement": 300,
    "horsepower": 78,
    "weight": 3500,
    "acceleration": 20,
    "year": 76,
    "origin": 1,
}


@dataclass(frozen=True)
class MpgModel(LoadedModel):
    schema: TabularSchema
    pool: InterpreterPool

    def predict(self, values: list[float]) -> float:
        """Miles per gallon for one record's model-ordered values."""
        output = self.pool.run(np.array([values], dtype=np.float32))
        mpg = float(output.reshape(-1)[0])
        if not math.isfinite(mpg):
            raise ModelUnavailable("Model produced a non-finite value.", retry_after=1)
        return round(mpg, MPG_DECIMALS)


class MpgTask:
    """The parts of predict_mpg that differ from classify_image."""

    function_name = "predict_mpg"
    title = "Auto MPG: predicted fuel economy"
    page = "mpg.html"

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        return ()

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> MpgModel:
        manifest = artifacts.manifest
        if manifest.task != "regression":
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
        return MpgModel(manifest, artifacts.version_uri, schema, pool)

    def warm_up(self, model: MpgModel) -> None:
        middle = [(f.minimum + f.maximum) / 2 for f in model.schema.features]
        model.predict(middle)

    def answer(
        self, request: flask.Request, model: LazyModel[MpgModel], settings: Settings
    ) -> dict[str, Any]:
        """One car's predicted mpg, or a batch's predictions with per-item errors."""
        require_content_type(request, ("application/json",), "application/json")
        body = parse_json(read_body(request, settings.max_json_bytes,
                                     settings.body_read_timeout_seconds))
        loaded = model.get()
        if isinstance(body, dict) and BATCH_KEY in body:
            return {
                "predictions": _predict_batch(body, loaded, settings),
                "model": loaded.reference(),
            }
        checked = check_record(body, loaded.schema, settings.out_of_range)
        if checked.values is None:
            raise BadRequest.of(checked.problems)
        return {
            "mpg": loaded.predict(checked.values),
            "model": loaded.reference(),
            **_warnings(checked),
        }

    def openapi(self, model: MpgModel, settings: Settings) -> dict[str, Any]:
        record = _record_schema(model.schema, enforce_range=settings.out_of_range == "reject")
        batch = {
            "type": "object",
            "required": [BATCH_KEY],
            "additionalProperties": False,
            "properties": {
                BATCH_KEY: {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_batch_size,
                    "items": record,
                }
            },
        }
        request_body = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [record, batch]},
                    "example": LESSON_EXAMPLE,
                }
            },
        }
        return build_document(
            title=self.title,
            description="Predict a car's fuel economy (miles per gallon) from seven attributes.",
            model_version=model.manifest.version,
            request_body=request_body,
            success_schema=_success_schema(),
        )


def _predict_batch(body: dict[str, Any], model: MpgModel, settings: Settings) -> list[dict]:
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
    if len(instances) > settings.max_batch_size:
        raise PayloadTooLarge(
            "too_many_instances",
            f"A batch may hold at most {settings.max_batch_size} instances, got {len(instances)}.",
            BATCH_KEY,
        )
    results = []
    for item in instances:
        checked = check_record(item, model.schema, settings.out_of_range)
        if checked.values is None:
            results.append({"errors": [p.as_dict() for p in checked.problems]})
        else:
            results.append({"mpg": model.predict(checked.values), **_warnings(checked)})
    return results


def _warnings(checked: Checked) -> dict[str, Any]:
    return {"warnings": [w.as_dict() for w in checked.warnings]} if checked.warnings else {}


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


def _success_schema() -> dict[str, Any]:
    model_ref = {"$ref": "#/components/schemas/ModelRef"}
    problem_list = {"type": "array", "items": {"type": "object"}}
    single = {
        "type": "object",
        "required": ["id", "mpg", "model"],
        "properties": {
            "id": {"type": "string"},
            "mpg": {"type": "number"},
            "model": model_ref,
            "warnings": problem_list,
        },
    }
    item = {
        "type": "object",
        "properties": {"mpg": {"type": "number"}, "errors": problem_list, "warnings": problem_list},
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
