"""The protocols' part of a function's OpenAPI document: the /v2 paths, BigQuery's envelope.

Paths are written with the served model's literal name and version (the only ones that
answer), so schemathesis exercises the real operations instead of 404s.
"""

from __future__ import annotations

import copy
from typing import Any

from ..http import REQUEST_ID_HEADER

OIP_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"id": {"type": "string"}, "error": {"type": "string"}},
}
_ERRORS = {
    "400": "The request is malformed or a value is invalid (named, with its row).",
    "408": "The body did not arrive within BODY_READ_TIMEOUT_SECONDS.",
    "413": "The body, the batch or the image is larger than the limit.",
    "415": "The content type, encoding or image format is not supported.",
    "503": "The model is not available yet; retry after Retry-After seconds.",
}


def _response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description,
            "headers": {REQUEST_ID_HEADER: {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    responses = {status: _response({"$ref": "#/components/schemas/InferenceError"},
                                   _ERRORS[status]) for status in statuses}
    if "503" in responses:
        responses["503"]["headers"]["Retry-After"] = {"schema": {"type": "string"}}
    return responses


def _get(operation_id: str, summary: str, schema: dict[str, Any],
         *errors: str) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "summary": summary, "tags": ["inference"],
                    "responses": {"200": _response(schema, summary), **_errors(*errors)}}}


def _object(*required: str) -> dict[str, Any]:
    return {"type": "object", "required": list(required)}


def add_inference_paths(document: dict[str, Any], name: str, version: str,
                        infer_request: dict[str, Any], example: dict[str, Any]) -> None:
    """Add the Open Inference Protocol's paths for model `name` at `version`."""
    model = f"/v2/models/{name}"
    versioned = f"{model}/versions/{version}"
    output = {"type": "object", "required": ["name", "datatype", "shape", "data"]}
    infer_answer = {"type": "object",
                    "required": ["id", "model_name", "model_version", "outputs"],
                    "properties": {"id": {"type": "string"}, "model_name": {"const": name},
                                   "model_version": {"const": version},
                                   "outputs": {"type": "array", "items": output}}}
    metadata = {**_object("name", "versions", "platform", "inputs", "outputs"),
                "properties": {"name": {"const": name}}}
    document["paths"].update({
        "/v2": _get("server_metadata", "Server metadata (Open Inference Protocol v2).",
                    _object("name", "version", "extensions")),
        "/v2/health/live": _get("server_live", "Liveness; never loads the model.",
                                _object("live")),
        "/v2/health/ready": _get("server_ready", "Readiness: loads the model if needed; "
                                 "200 once loaded.", _object("ready"), "503"),
        model: _get("model_metadata", "Model metadata from the manifest.", metadata, "503"),
        f"{model}/ready": _get("model_ready", "The model is loaded (loads it if needed).",
                               _object("ready"), "503"),
        versioned: _get("model_version_metadata", "Model metadata of this version.",
                        metadata, "503"),
        f"{versioned}/ready": _get("model_version_ready", "This version is loaded.",
                                   _object("ready"), "503"),
        f"{model}/infer": {"post": {
            "operationId": "infer", "tags": ["inference"],
            "summary": "Inference (Open Inference Protocol v2; the binary-data extension too).",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": infer_request,
                                                             "example": example}}},
            "responses": {"200": _response(infer_answer, "The model's outputs."),
                          **_errors("400", "408", "413", "415", "503")},
        }},
    })
    document["components"]["schemas"]["InferenceError"] = OIP_ERROR


def infer_request_schema(inputs: list[dict[str, Any]],
                         parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """An infer request's JSON Schema with these input tensor schemas."""
    return {"type": "object", "required": ["inputs"], "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "maxLength": 256},
                "parameters": parameters or {"type": "object"},
                "inputs": {"type": "array", "prefixItems": inputs, "minItems": len(inputs),
                           "maxItems": len(inputs), "items": False},
            }}


def tensor_schema(name: dict[str, Any], datatypes: list[str], shape: list[int],
                  data: dict[str, Any]) -> dict[str, Any]:
    """One input tensor in JSON: its name, datatype, shape and data schemas."""
    return {"type": "object", "required": ["name", "shape", "datatype", "data"],
            "additionalProperties": False,
            "properties": {"name": name, "datatype": {"enum": datatypes},
                           "shape": {"const": shape}, "data": data}}


def add_remote_function(document: dict[str, Any], features: dict[str, Any],
                        max_rows: int) -> None:
    """POST / (and its aliases) also takes BigQuery's envelope (the features as each call's
    arguments)."""
    root = copy.deepcopy(document["paths"]["/"]["post"])
    call = {"type": "array", "prefixItems": list(features.values()),
            "minItems": len(features), "maxItems": len(features), "items": False}
    envelope = {
        "type": "object", "required": ["calls"], "additionalProperties": False,
        "description": "BigQuery remote-function request: each call is the features in order.",
        "properties": {
            "requestId": {"type": "string"}, "caller": {"type": "string"},
            "sessionUser": {"type": "string"},
            "userDefinedContext": {"type": "object", "additionalProperties": False,
                                   "properties": {"on_error": {"enum": ["error", "null"]}}},
            "calls": {"type": "array", "maxItems": max_rows, "items": call},
        },
    }
    replies = {"type": "object", "required": ["id", "replies"],
               "properties": {"id": {"type": "string"},
                              "replies": {"type": "array",
                                          "items": {"type": ["number", "null"]}}}}
    body = root["requestBody"]["content"]["application/json"]["schema"]
    body["oneOf"].append(envelope)
    answer = root["responses"]["200"]["content"]["application/json"]["schema"]
    answer["oneOf"].append(replies)
    for operations in document["paths"].values():  # POST / and its aliases (/api/mpg)
        post = operations.get("post")
        if post is not None and post["operationId"].startswith("predict"):
            post["requestBody"], post["responses"] = root["requestBody"], root["responses"]
