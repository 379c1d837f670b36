"""Open Inference Protocol v2 (KServe's, Triton's HTTP/REST API) for any function.

Paths: GET /v2 (server metadata), GET /v2/health/live (never loads the model), GET
/v2/health/ready (loads the model if needed: 200 once loaded, 503 with Retry-After while it
cannot be), GET /v2/models/{name}[/versions/{version}] (model metadata from the manifest),
GET .../ready, POST .../infer. The name is the manifest's model name and the version its
version; anything else is 404. Errors use the protocol's shape {"error": "..."} (with the
request `id`), with the same statuses and headers as the own API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flask

from ..bodies import read_body
from ..config import Settings
from ..errors import AppError, BadRequest, MethodNotAllowed, NotFound, UnsupportedMediaType
from ..http import escape_for_message, json_response, preflight_headers
from ..runtime import LazyModel
from . import OIP_PREFIX as PREFIX
from .openapi import add_inference_paths
from .tensors import HEADER_LENGTH, parse_infer_request

SERVER_NAME = "modelserve"
SERVER_VERSION = "1"
EXTENSIONS = ("binary_tensor_data",)
PLATFORM = "tflite"
MAX_ERROR_CHARS = 1000
_READ = ("GET", "OPTIONS")
_POST = ("POST", "OPTIONS")
# An infer body is JSON, or JSON then binary tensors; tritonclient sends no Content-Type.
_INFER_MEDIA_TYPES = ("application/json", "application/octet-stream")


@dataclass(frozen=True)
class Route:
    action: str  # server, live, ready, model, model_ready, infer
    name: str | None = None
    version: str | None = None

    @property
    def allowed(self) -> tuple[str, ...]:
        return _POST if self.action == "infer" else _READ


def match(path: str) -> Route | None:
    """The route a /v2 path names, or None."""
    parts = path[len(PREFIX):].split("/")[1:]
    if not parts:
        return Route("server")
    if parts[0] == "health" and len(parts) == 2 and parts[1] in ("live", "ready"):
        return Route(parts[1])
    if parts[0] != "models" or len(parts) < 2 or not parts[1]:
        return None
    name, rest, version = parts[1], parts[2:], None
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        version, rest = rest[1], rest[2:]
    if not rest:
        return Route("model", name, version)
    if rest in (["ready"], ["infer"]):
        return Route("model_ready" if rest[0] == "ready" else "infer", name, version)
    return None


class OpenInference:
    """Answers /v2 requests for one function through its task's tensor adapter."""

    def __init__(self, function: str, adapter: Any) -> None:
        self.function = function
        self.adapter = adapter

    def handle(self, request: flask.Request, rid: str, model: LazyModel[Any],
               settings: Settings) -> flask.Response:
        """Any request under /v2: the protocol's answer, or its error shape."""
        try:
            route = match(request.path)
            if route is None:
                raise NotFound("not_found", f"No such path: {escape_for_message(request.path)}. "
                               "See GET /v2 and /v2/models/{name}.")
            if request.method == "OPTIONS":
                return json_response(rid, {}, 200,
                                     preflight_headers(request, settings.cors_origins))
            method = request.method
            if method not in route.allowed and not (method == "HEAD" and "GET" in route.allowed):
                raise MethodNotAllowed(method, route.allowed)
            return json_response(rid, self._answer(route, request, rid, model, settings))
        except AppError as error:
            return error_response(rid, error)

    def document(self, document: dict[str, Any], model: Any, settings: Settings) -> None:
        """Add the /v2 paths for the served model to the function's OpenAPI document."""
        add_inference_paths(document, model.manifest.name, model.manifest.version,
                            self.adapter.infer_schema(model, settings),
                            self.adapter.infer_example(model))

    def _answer(self, route: Route, request: flask.Request, rid: str, model: LazyModel[Any],
                settings: Settings) -> dict[str, Any]:
        if route.action == "server":
            return {"name": SERVER_NAME, "version": SERVER_VERSION,
                    "extensions": list(EXTENSIONS), "function": self.function}
        if route.action == "live":
            return {"live": True}
        if route.action == "ready":
            model.get()
            return {"ready": True}
        body = _infer_body(request, self.adapter.body_limit(settings), settings) \
            if route.action == "infer" else None
        loaded = model.get()
        manifest = loaded.manifest
        _check_model(route, manifest.name, manifest.version)
        if route.action == "model":
            return {"name": manifest.name, "versions": [manifest.version], "platform": PLATFORM,
                    **self.adapter.metadata(loaded)}
        if route.action == "model_ready":
            return {"name": manifest.name, "versions": [manifest.version], "ready": True}
        infer = parse_infer_request(body, request.headers.get(HEADER_LENGTH))
        outputs = select_outputs(self.adapter.infer(infer, loaded, settings), infer.outputs)
        return {"id": infer.id if infer.id is not None else rid, "model_name": manifest.name,
                "model_version": manifest.version, "outputs": outputs}


def _infer_body(request: flask.Request, limit: int, settings: Settings) -> bytes:
    media_type = request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if media_type and media_type not in _INFER_MEDIA_TYPES:
        raise UnsupportedMediaType("unsupported_media_type", "Content-Type must be "
                                   f"{' or '.join(_INFER_MEDIA_TYPES)} (or none), got "
                                   f"{escape_for_message(media_type)}.", "Content-Type")
    encoding = request.environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType("unsupported_encoding", "Content-Encoding "
                                   f"{escape_for_message(encoding)} is not supported; send the "
                                   "body uncompressed.", "Content-Encoding")
    return read_body(request, limit, settings.body_read_timeout_seconds)


def _check_model(route: Route, name: str, version: str) -> None:
    if route.name != name:
        raise NotFound("unknown_model", f"No model named {escape_for_message(route.name)}; "
                       f"this function serves {name} (version {version}).", "name")
    if route.version is not None and route.version != version:
        raise NotFound("unknown_version", f"Model {name} has no version "
                       f"{escape_for_message(route.version)}; this function serves {version}.",
                       "version")


def select_outputs(outputs: list[dict[str, Any]], requested: tuple[str, ...]
                   ) -> list[dict[str, Any]]:
    """The requested outputs in the requested order; all of them when none is named."""
    if not requested:
        return outputs
    by_name = {output["name"]: output for output in outputs}
    unknown = [name for name in requested if name not in by_name]
    if unknown:
        shown = escape_for_message(unknown[0])
        raise BadRequest("unknown_output", f"Unknown output: {shown}; this model has "
                         f"{', '.join(by_name)}.", "outputs")
    return [by_name[name] for name in dict.fromkeys(requested)]


def error_response(rid: str, error: AppError) -> flask.Response:
    """The protocol's error shape: {"id", "error": "every problem's message"}."""
    message = " ".join(problem.message for problem in error.problems)
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS - 3] + "..."
    return json_response(rid, {"error": message}, error.status, error.headers)
