"""The OpenAPI 3.1 document of a function, from the loaded model's manifest."""

from __future__ import annotations

from typing import Any

from .http import REQUEST_ID_HEADER

OPENAPI_VERSION = "3.1.0"

_ERROR_STATUSES = {
    "400": "The request is malformed or a value is invalid; every problem is listed.",
    "405": "The method is not allowed on this path.",
    "408": "The body did not arrive within BODY_READ_TIMEOUT_SECONDS.",
    "413": "The body (or the image's pixel count) is larger than the limit.",
    "415": "The content type or image format is not supported.",
    "503": "The model is not available yet; retry after Retry-After seconds.",
}

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["id", "errors"],
    "properties": {
        "id": {"type": "string"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

MODEL_REF = {
    "type": "object",
    "required": ["name", "version"],
    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": schema}},
    }


def _with_html(response: dict[str, Any]) -> dict[str, Any]:
    response["content"]["text/html"] = {"schema": {"type": "string"}}
    return response


def _errors(statuses: tuple[str, ...]) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    responses = {status: _json(error, _ERROR_STATUSES[status]) for status in statuses}
    if "503" in responses:
        responses["503"]["headers"]["Retry-After"] = {"schema": {"type": "string"}}
    return responses


def build_document(
    *,
    title: str,
    description: str,
    model_version: str,
    request_body: dict[str, Any],
    success_schema: dict[str, Any],
    post_paths: tuple[str, ...] = (),
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A complete OpenAPI 3.1 document for one function: POST / (and the same operation at
    each of `post_paths`, e.g. the lesson's /api/mpg) plus the shared GET paths."""
    get_ok = {"type": "object", "required": ["id"]}
    post = {
        "summary": description,
        "requestBody": request_body,
        "responses": {
            "200": _json(success_schema, "The model's answer."),
            **_errors(("400", "408", "413", "415", "503")),
        },
        **({"parameters": parameters} if parameters else {}),
    }
    aliases = {
        path: {"post": {**post, "operationId": "predict_" + path.strip("/").replace("/", "_"),
                        "description": "The same as POST /."}}
        for path in post_paths
    }
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": model_version, "description": description},
        "paths": {
            "/": {
                "post": {"operationId": "predict", **post},
                "get": {
                    "operationId": "metadata",
                    "summary": "Model, version, sha256, load state and input schema.",
                    "responses": {"200": _with_html(_json(get_ok, "Metadata; a demo page "
                                                          "to clients that prefer HTML."))},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors(("503",)),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness; never loads the model.",
                    "responses": {"200": _json(get_ok, "Alive.")},
                },
            },
        },
        "components": {"schemas": {"Error": ERROR_ENVELOPE, "ModelRef": MODEL_REF}},
    }
    document["paths"].update(aliases)
    return document
